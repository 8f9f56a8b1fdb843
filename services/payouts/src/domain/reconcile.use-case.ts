import { newEvent, Streams, type PayoutEvent } from '@postsale/contracts';
import { commitWithNext, retryDelayMs } from '@postsale/runtime';
import { publishPayout, type PayoutsContext } from './context';
import { recordClawback, scheduleRetry } from './intent-decisions';
import { FINAL_ITEM_STATUSES, classifyItemStatus } from './payout-rules';
import type { BusyItems, PayPalItemState, Tx } from './ports';
import type { BatchCheckJob, Intent, IntentMove, ItemOutcome, ItemWithBatchId, PayoutItem } from './records';

// Learning PayPal's outcome of what we sent: the reconciliation worker checks each accepted, unfinished batch page by
// page, the webhook and an adopted duplicate bring item states too. Each set of states (one page of PayPal results, one
// webhook) is applied in ONE transaction; the batch row is never locked for it.

/**
 * One job of the reconciliation worker (createJobWorker; the batch is leased to this worker, `job.fence` its token):
 * carry out requested cancellations of the batch's UNCLAIMED items, then read the batch from PayPal page by page and
 * apply each page. The check is recorded only while the lease is still this worker's.
 */
export async function checkBatch(ctx: PayoutsContext, job: BatchCheckJob): Promise<void> {
  try {
    await checkBatchAtPayPal(ctx, job);
  } catch (error) {
    // PayPal or the database failed this time: check again after the interval, not only once the lease runs out
    // (the worker counts and logs the failure)
    await ctx.store.deferBatchCheck(job, retryDelayMs(1, ctx.settings.reconcileIntervalMs, 30_000)).catch(() => undefined);
    throw error;
  }
}

async function checkBatchAtPayPal(ctx: PayoutsContext, job: BatchCheckJob): Promise<void> {
  const { gateway, store, metrics, settings, logger } = ctx;
  if (!gateway) return;
  for (const item of await store.itemsWithCancelRequested(job.batchId)) {
    const result = await gateway.cancelItem(item.paypalItemId!);
    metrics.paypalCalls.inc({ operation: 'cancel_item', outcome: result.kind });
    if (result.kind === 'cancelled') {
      await applyItemStates(ctx, [{ ...result.item, senderItemId: item.senderItemId }], () => 'PayPal cancelled the unclaimed item on operator request', 'skip');
    } else {
      // ITEM_ALREADY_CANCELLED and friends: the batch read below brings the real status
      await store.recordCancelRefused(item.id, `cancel refused: ${result.name}: ${result.message}`);
    }
  }
  let recorded = false;
  for (let page = 1, pages = 1; page <= pages; page++) {
    const state = await gateway.getBatchPage(job.paypalBatchId, page);
    metrics.paypalCalls.inc({ operation: 'get_batch', outcome: 'ok' });
    pages = state.totalPages;
    const last = page >= pages || state.items.length === 0;
    // The batch is done when every item is final: decided by the statement that records the check (no read of the
    // items), after the last page's moves and in their transaction (one commit, not one more of its own).
    const recordCheck = async (trx: Tx | undefined) => {
      if (trx) await commitWithNext(trx);
      recorded = await store.recordBatchCheck(job, state.batchStatus, FINAL_ITEM_STATUSES, settings.reconcileIntervalMs, trx);
    };
    // items a webhook is applying meanwhile are skipped, not waited for (it applies PayPal's word, and newer): the batch
    // is not done while they are unfinished, so its next check reads them again
    await applyItemStates(ctx, state.items, (item) => `PayPal batch ${job.paypalBatchId} reports ${item.transactionStatus}`, 'skip', last ? recordCheck : undefined);
    if (last) break;
  }
  if (!recorded) logger.info({ batchId: job.batchId, fence: job.fence }, 'batch check outlived its lease; another worker records it');
}

/** A verified `PAYMENT.PAYOUTS-ITEM.*` webhook: the item's state as PayPal reports it, and the event that reported it. */
export interface WebhookItem {
  event: { id: string; type: string };
  state: PayPalItemState;
}

/**
 * Verified `PAYMENT.PAYOUTS-ITEM.*` webhooks that arrived together (PayPal sends a batch's item events at once, and the
 * route's group commit hands them over as one set), applied like a page of the reconciler. ONE statement reads their
 * items and records the webhooks that repeat what is stored (the reconciler read them first): a set of repeats is one
 * statement. The ones that change an item are applied in ONE transaction (one commit), their records riding on the
 * statement that moves the items. A set naming an item twice is refused (its caller then applies each webhook on its
 * own). For each webhook: true when it changed its item.
 */
export async function applyWebhookItems(ctx: PayoutsContext, webhooks: WebhookItem[]): Promise<boolean[]> {
  const { store } = ctx;
  const ours = webhooks.filter((w) => w.state.senderItemId);
  if (new Set(ours.map((w) => w.state.senderItemId)).size < ours.length) throw new Error('applyWebhookItems: an item named twice in one set');
  const rows = ours.length === 0 ? [] : await store.peekWebhookItems(ours);
  const rowOf = new Map(rows.map((r) => [r.senderItemId, r]));
  // the read recorded each webhook whose item is already as it says: nothing to apply for those
  const recorded = new Set(ours.filter(({ state }) => {
    const row = rowOf.get(state.senderItemId!);
    return row !== undefined && row.status === state.transactionStatus && row.paypalItemId === state.payoutItemId;
  }).map((w) => w.event.id));
  const seen = planItemStates(rows, ours.map((w) => w.state));
  warnUnknown(ctx, seen.unknown);
  const moving = new Set(seen.moves.map((m) => m.state.senderItemId));
  const isMoving = (w: WebhookItem) => !!w.state.senderItemId && moving.has(w.state.senderItemId);
  // recorded by the statement that moves their items, whatever it finds
  const withMoves = webhooks.filter(isMoving).map((w) => w.event);
  const toRecord = webhooks.filter((w) => !recorded.has(w.event.id) && !isMoving(w)).map((w) => w.event);
  if (!anythingIn(seen)) {
    if (toRecord.length > 0) await store.recordWebhookEvents(undefined, toRecord);
    return webhooks.map(() => false);
  }
  const eventOf = new Map(ours.map((w) => [w.state.senderItemId!, w.event]));
  const causeOf = (state: PayPalItemState) => {
    const event = eventOf.get(state.senderItemId!)!;
    return `PayPal webhook ${event.type} (${event.id})`;
  };
  const moved = await store.transaction(async (trx) => {
    if (toRecord.length > 0) await store.recordWebhookEvents(trx, toRecord);
    const movedItems = await applyItemStatesIn(ctx, trx, seen, causeOf, withMoves);
    // an open batch these moves may have finished is closed with them (riding with the COMMIT): no check at PayPal is
    // needed for it
    const finishing = seen.moves.filter((m) => m.item.batchStatus === 'ACCEPTED' && movedItems.has(m.state.senderItemId!)
      && (FINAL_ITEM_STATUSES as readonly string[]).includes(m.state.transactionStatus));
    await store.closeFinishedBatches(trx, finishing.map((m) => m.item.batchId), FINAL_ITEM_STATUSES);
    return movedItems;
  });
  return webhooks.map((w) => !!w.state.senderItemId && moved.has(w.state.senderItemId));
}

/**
 * A `PAYMENT.PAYOUTSBATCH.*` webhook (its header only, no items): the batch moved at PayPal. Its items' webhooks come
 * with it, so an open batch is checked within the grace they have (`firstCheckInMs`), or at once without it; one they
 * closed already needs nothing. Without the batch's id, the reconciler looks at what is due.
 */
export async function batchChanged(ctx: PayoutsContext, paypalBatchId: string | undefined): Promise<void> {
  if (!paypalBatchId) {
    ctx.nudge.reconciler();
    return;
  }
  const due = await ctx.store.checkBatchWithin(paypalBatchId, ctx.settings.firstCheckInMs);
  if (due) ctx.nudge.reconcilerAt(due);
}

/**
 * Applies PayPal item statuses (a page of a batch read, an item read or a webhook) to our items and, when an item is
 * its intent's current attempt, to the intent — all in one transaction. Items, then intents, are locked in id order,
 * so concurrent pages and webhooks never deadlock. Idempotent: the same status twice changes nothing. `busy` 'skip':
 * items another transaction holds are left as they are (the reconciler, which reads the batch again later).
 * `alongside` runs in that transaction after the moves (without one when nothing moves). Returns how many items changed.
 */
export async function applyItemStates(
  ctx: PayoutsContext, states: PayPalItemState[], causeOf: (state: PayPalItemState) => string, busy: BusyItems = 'wait',
  alongside?: (trx: Tx | undefined) => Promise<void>,
): Promise<number> {
  const known = lastWordPerItem(states);
  const seen = await planFromPeek(ctx, known);
  if (!anythingIn(seen)) {
    await alongside?.(undefined);
    return 0;
  }
  return (await ctx.store.transaction(async (trx) => {
    const moved = await applyItemStatesIn(ctx, trx, seen, causeOf, [], busy);
    await alongside?.(trx);
    return moved;
  })).size;
}

/** The last word per item (a page never repeats one, but a caller might); states without a sender_item_id are not ours. */
function lastWordPerItem(states: PayPalItemState[]): PayPalItemState[] {
  return [...new Map(states.filter((s) => s.senderItemId).map((s) => [s.senderItemId!, s])).values()];
}

type ItemPlan = ReturnType<typeof planItemStates>;

/**
 * What these states would change, from a read without locks and outside any transaction: most answers repeat what is
 * stored (a webhook after the reconciler's page, a page after the webhooks), and those need no transaction. "Nothing"
 * is final: what it saw is committed, and an item only moves forward, so a locked read could only find it further on
 * (still nothing to apply). "Something" holds only while the items are still as seen: the transaction checks that.
 */
async function planFromPeek(ctx: PayoutsContext, known: PayPalItemState[]): Promise<ItemPlan> {
  if (known.length === 0) return planItemStates([], []);
  const plan = planItemStates(await ctx.store.peekItemsBySenderItemIds(known.map((s) => s.senderItemId!)), known);
  warnUnknown(ctx, plan.unknown);
  return plan;
}

function anythingIn(plan: ItemPlan): boolean {
  return plan.moves.length > 0 || plan.learnt.size > 0;
}

/**
 * applyItemStatesIn the caller's transaction. The items move as they were seen, with their intents, in one statement
 * (a paid item moves its intent to SENT in it too; the webhook's record rides on it). When any was moved meanwhile,
 * nothing moved and those items are held locked: they are read again and the plan decided on them, in the same order
 * (items, then intents, each in id order). Items the peek found nothing to apply to are not touched: they only move
 * forward, so there is still nothing to apply.
 */
async function applyItemStatesIn(
  ctx: PayoutsContext, trx: Tx, seen: ItemPlan, causeOf: (state: PayPalItemState) => string, webhookEvents: Array<{ id: string; type: string }> = [],
  busy: BusyItems = 'wait',
): Promise<Set<string>> {
  const { store } = ctx;
  // a batch's PayPal id is written only while unknown, so learning it from what was seen is safe (and rare)
  for (const [batchId, paypalBatchId] of seen.learnt) await store.learnPayPalBatchId(trx, batchId, paypalBatchId);
  if (seen.moves.length === 0) return new Set();
  const movedAsSeen = await moveAsSeen(ctx, trx, seen.moves, causeOf, webhookEvents, busy);
  if (movedAsSeen) return movedAsSeen;
  // (items skipped as busy the first time are skipped again: this transaction holds the others)
  const states = seen.moves.map((m) => m.state);
  const { moves } = planItemStates(await store.itemsBySenderItemIds(trx, states.map((s) => s.senderItemId!), busy), states);
  if (moves.length === 0) return new Set();
  // locked since the first try: they are as read
  const moved = await moveAsSeen(ctx, trx, moves, causeOf, [], busy);
  if (!moved || moved.size < moves.length) throw new Error('payout items moved while locked');
  return moved;
}

/**
 * One statement moving the items (and the paid ones' intents), then what follows each intent's move. The moved items'
 * sender_item_ids (all, or with busy 'skip' those not held by another transaction); undefined when any item was not as
 * seen (nothing moved).
 */
async function moveAsSeen(
  ctx: PayoutsContext, trx: Tx, moves: ItemPlan['moves'], causeOf: (state: PayPalItemState) => string, webhookEvents: Array<{ id: string; type: string }> = [],
  busy: BusyItems = 'wait',
): Promise<Set<string> | undefined> {
  const moved = await ctx.store.moveItemsAsSeen(trx, moves.map(({ item, state }) => {
    // a paid item (nearly every answer) moves its intent to SENT in the same statement, by the same rule as
    // applyToIntent, and that statement writes its PayoutSent only if the intent moved
    const paid = classifyItemStatus(state.transactionStatus) === 'SENT';
    return {
      seen: item, outcome: outcomeOf(item, state),
      ...(paid ? { intentMove: sentMove(causeOf(state)), event: ctx.outbox.row(Streams.payouts, payoutSent(item.intentId, item.payment, item, state)) } : {}),
    };
  }), webhookEvents, busy);
  if (!moved) return undefined;
  if (moved.some((m) => m.after)) ctx.outbox.written(trx);
  const byItem = new Map(moved.map((m) => [m.itemId, m]));
  const movedNow = moves.filter(({ item }) => byItem.has(item.id));
  // an intent as it stands after the items before it in this set (one item per intent and attempt: nearly always one each)
  const current = new Map<string, Intent>();
  for (const { item, state } of [...movedNow].sort((a, b) => Number(a.item.id) - Number(b.item.id))) {
    const { before: locked, after } = byItem.get(item.id)!;
    const before = current.get(locked.id) ?? locked;
    if (after) {
      await afterSent(ctx, trx, before, after, item, state, true);
      current.set(after.id, after);
    } else if (before.attempt === item.attempt) {
      current.set(before.id, await applyToIntent(ctx, trx, before, item, state, causeOf(state)));
    } // an older attempt: the item's history only
  }
  return new Set(movedNow.map((m) => m.state.senderItemId!));
}

/** What an item stores of PayPal's answer: ids PayPal left out keep the ones we know. */
function outcomeOf(item: PayoutItem, state: PayPalItemState): ItemOutcome {
  return {
    status: state.transactionStatus,
    paypalItemId: state.payoutItemId || item.paypalItemId,
    transactionId: state.transactionId ?? item.transactionId,
    errorName: state.errorName,
    errorMessage: state.errorMessage,
  };
}

/** Which items move to which state, which batches learn their PayPal id, and which states name items we never sent. */
function planItemStates(rows: ItemWithBatchId[], known: PayPalItemState[]) {
  const items = new Map(rows.map((i) => [i.senderItemId, i]));
  const moves: Array<{ item: ItemWithBatchId; state: PayPalItemState }> = [];
  const learnt = new Map<string, string>();
  const unknown: PayPalItemState[] = [];
  for (const state of known) {
    const item = items.get(state.senderItemId!);
    if (!item) {
      unknown.push(state);
      continue;
    }
    // a batch whose PayPal id we never learnt (its create answer was lost) learns it from its items; once known it
    // never changes, so a batch that knows it (nearly always) is not written to
    if (state.payoutBatchId && item.batchPayPalBatchId === null) learnt.set(item.batchId, state.payoutBatchId);
    if (item.status === state.transactionStatus && item.paypalItemId === state.payoutItemId) continue;
    if (!itemMayMove(item.status, state.transactionStatus)) continue;
    moves.push({ item, state });
  }
  return { moves, learnt, unknown };
}

function warnUnknown(ctx: PayoutsContext, unknown: PayPalItemState[]): void {
  for (const state of unknown) ctx.logger.warn({ senderItemId: state.senderItemId, payoutItemId: state.payoutItemId }, 'PayPal reports an item we never sent; ignored');
}

/** Moves the intent by its current item's final (or in-flight) PayPal status; returns the intent as stored. */
async function applyToIntent(ctx: PayoutsContext, trx: Tx, intent: Intent, item: PayoutItem, state: PayPalItemState, cause: string): Promise<Intent> {
  const { store, metrics, settings } = ctx;
  const outcome = classifyItemStatus(state.transactionStatus);
  const amount = { amountMinor: item.amountMinor, currency: item.currency };
  const reason = [state.errorName, state.errorMessage].filter(Boolean).join(': ') || state.transactionStatus;
  if (outcome === 'IN_FLIGHT') {
    if (intent.status === 'SUBMITTED' || intent.status === 'NEEDS_REVIEW') {
      return store.updateIntent(trx, intent, { status: 'SUBMITTED' }, `${cause} (not final yet)`);
    }
    return intent;
  }
  if (outcome === 'SENT') {
    const move = sentMove(cause);
    if (!move.from.includes(intent.status)) return intent;
    const sent = await store.updateIntent(trx, intent, move.patch, move.cause);
    await afterSent(ctx, trx, intent, sent, item, state);
    return sent;
  }
  // FAILED or RETURNED: the money did not stay with the receiver, so it is owed again (less any reversal in flight).
  if (intent.status !== 'SUBMITTED' && intent.status !== 'NEEDS_REVIEW' && intent.status !== 'SENT') return intent;
  const payable = intent.payableMinor - intent.pendingReversalMinor;
  const status = outcome === 'FAILED' ? 'FAILED' : 'RETURNED';
  const updated = await store.updateIntent(trx, intent, {
    status: payable > 0 ? status : 'CANCELLED',
    payableMinor: Math.max(0, payable),
    pendingReversalMinor: 0,
    batchId: null,
  }, `${cause}: ${reason}` + (payable > 0 ? '; owed again' : '; reversed meanwhile, nothing owed'));
  if (payable < 0) await recordClawback(ctx, trx, updated, -payable, `pending-reversal:${item.senderItemId}`);
  if (status === 'FAILED') {
    await publishPayout(ctx, trx, updated, 'PayoutFailed', {
      payoutId: updated.id, recipient: updated.recipient, amount, status: state.transactionStatus, reason, owedAgain: payable > 0, failedAt: Date.now(),
    }, state.payoutItemId);
  } else {
    await publishPayout(ctx, trx, updated, 'PayoutReturned', {
      payoutId: updated.id, recipient: updated.recipient, amount, status: state.transactionStatus, reason, returnedAt: Date.now(),
    }, state.payoutItemId);
  }
  metrics.outcomes.inc({ status: state.transactionStatus, currency: item.currency }, item.amountMinor);
  if (payable > 0 && updated.attempt < settings.autoRetryMaxAttempts) {
    // the system's one backoff: attempt n waits between half and all of base·2^(n-1), at most a week
    const delayMs = retryDelayMs(updated.attempt, settings.autoRetryDelayMs, AUTO_RETRY_MAX_DELAY_MS);
    return scheduleRetry(ctx, trx, updated, new Date(Date.now() + delayMs), 'automatic retry by policy');
  }
  return updated;
}

/** An intent in flight (or under review: its batch may have paid) whose current item PayPal reports paid is SENT. */
function sentMove(cause: string): IntentMove {
  return { from: ['SUBMITTED', 'NEEDS_REVIEW'], patch: { status: 'SENT', pendingReversalMinor: 0 }, cause };
}

/**
 * What follows an intent's move to SENT: its event (unless the statement that moved it wrote it: `published`), and the
 * clawback of a reversal that was pending on it.
 */
async function afterSent(ctx: PayoutsContext, trx: Tx, before: Intent, sent: Intent, item: PayoutItem, state: PayPalItemState, published = false): Promise<void> {
  const { metrics } = ctx;
  if (!published) await ctx.outbox.publish(trx, Streams.payouts, payoutSent(sent.id, sent, item, state));
  if (before.pendingReversalMinor > 0) await recordClawback(ctx, trx, sent, before.pendingReversalMinor, `pending-reversal:${item.senderItemId}`);
  metrics.outcomes.inc({ status: 'SUCCESS', currency: item.currency }, item.amountMinor);
  metrics.saleToPayout.observe({ recipient: sent.recipient }, (Date.now() - sent.saleRecordedAt.getTime()) / 1000);
}

/** The PayoutSent of the intent `payoutId` (of `payment`) paid by `item`, as PayPal reported it in `state`. */
function payoutSent(payoutId: string, payment: Pick<Intent, 'orderId' | 'sellerId' | 'recipient'>, item: PayoutItem, state: PayPalItemState): PayoutEvent {
  return newEvent(Streams.payouts, 'PayoutSent', {
    payoutId, recipient: payment.recipient, amount: { amountMinor: item.amountMinor, currency: item.currency }, senderItemId: item.senderItemId,
    payoutBatchId: state.payoutBatchId, payoutItemId: state.payoutItemId, sentAt: Date.now(),
    // what the payment was converted from (the debt in the sale's currency) and at which dated rate
    owedAmount: item.sourceAmountMinor !== null && item.sourceCurrency ? { amountMinor: item.sourceAmountMinor, currency: item.sourceCurrency } : null,
    fxRate: item.sourceCurrency ? item.fxRate : null,
    fxRateDate: item.sourceCurrency ? item.fxRateDate : null,
  }, { orderId: payment.orderId, sellerId: payment.sellerId, causationId: state.payoutItemId });
}

const AUTO_RETRY_MAX_DELAY_MS = 7 * 24 * 3600 * 1000;

/** Item statuses only move forward: a late, stale read never undoes a final outcome. */
function itemMayMove(from: string, to: string): boolean {
  const rank = (s: string) => {
    const outcome = classifyItemStatus(s);
    if (s === 'SUBMITTED') return 0;
    if (outcome === 'IN_FLIGHT') return 1;
    if (outcome === 'SENT') return 2;
    return 3; // FAILED / RETURNED
  };
  if (from === to) return true;
  return rank(to) >= rank(from) && !(rank(from) === 3 && rank(to) === 3);
}
