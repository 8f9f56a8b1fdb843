import { randomUUID } from 'node:crypto';
import { formatDecimal } from '@postsale/contracts';
import type { PayoutsContext } from './context';
import { decisionFacts, redecideIntent, reevaluateIntents, type DecisionFacts } from './intent-decisions';
import { convertRoundingDown, formatPayPalValue, isPayPalPayoutCurrency, unpayableReason } from './payout-currency';
import { offsetAgainstDebt, partyOf, senderBatchId, senderItemId, type HoldReason } from './payout-rules';
import type { CreateBatchResult, PayoutRequestBody, PayoutRequestItem, PayPalBatchState, Tx } from './ports';
import type { Batch, Intent } from './records';
import { applyItemStates } from './reconcile.use-case';

/** PayPal's batch pages hold up to 1,000 items: an adopted batch's items are applied in sets of that size. */
const APPLY_SET_SIZE = 1000;

// Sending what is due to PayPal, one run of the batching poller at a time:
// 1. batches whose create call has an unknown outcome are resolved first, by re-posting the SAME body with the SAME
//    sender_batch_id (PayPal: "if you receive a 5nn you can safely retry with the same sender_batch_id"). PayPal
//    either creates it now (the first call never arrived) or refuses it as a duplicate (it did) — never two batches;
// 2. due intents are claimed, netted against what their payee owes, and written as a batch row + items, and the
//    intents move to SUBMITTED — all committed BEFORE the call, with the first post counted (post_attempts 1);
// 3. the batch is posted and the answer recorded.

/**
 * One run. Returns true when another run may find work at once (the poller then runs again without waiting): a full
 * batch was claimed (more may be due), an intent was decided again (it may be due now), or the batch's post has an
 * unknown outcome (re-posted at once, as before). A run that claimed everything due returns false: intents that
 * become due later nudge the batcher after their commit (a nudge during a run makes the poller run again), so the
 * empty run that used to follow every batch is not needed.
 */
export async function submitDueBatches(ctx: PayoutsContext): Promise<boolean> {
  await resolveUnknownBatches(ctx);
  await releaseFxHolds(ctx);
  const claimed = await claimDueIntents(ctx);
  const outcome = claimed.batch?.status === 'SUBMITTING' ? await postBatch(ctx, claimed.batch, 'first post, counted') : 'settled';
  return claimed.more || outcome === 'unknown';
}

async function resolveUnknownBatches(ctx: PayoutsContext): Promise<void> {
  for (const batch of await ctx.store.batchesWithStatus('SUBMITTING', 20)) {
    if (Date.now() - batch.createdAt.getTime() > ctx.settings.resubmitWindowMs) {
      await markNeedsReview(ctx, batch);
      continue;
    }
    await postBatch(ctx, batch);
  }
}

/**
 * Intents still HELD for a missing rate are re-decided, so a rate that was committed while their sale was being
 * recorded (the PUT could not see the uncommitted intent), or while this sweep held their rows (the PUT skips locked
 * rows), still releases them.
 */
async function releaseFxHolds(ctx: PayoutsContext): Promise<void> {
  // most runs find none: one read instead of a transaction per run (the batcher runs after every nudge)
  if (!(await ctx.store.anyHeldFor('FX_RATE_MISSING'))) return;
  await ctx.store.transaction(async (trx) => {
    // only rows held for a rate (locked, skipping those another transaction holds: they are decided there)
    const held = await ctx.store.intentsAwaitingRelease(trx, { holdReason: 'FX_RATE_MISSING', limit: 500 });
    await reevaluateIntents(ctx, trx, held, 'FX rate found');
  });
}

async function claimDueIntents(ctx: PayoutsContext): Promise<{ more: boolean; batch?: Batch }> {
  const dryRun = ctx.settings.mode === 'dry-run';
  return ctx.store.transaction(async (trx) => {
    const due = await ctx.store.claimDueIntents(trx, ctx.settings.batchSize);
    if (due.length === 0) return { more: false };
    let redecided = 0;
    const batchId = randomUUID();
    const debts = await lockDebts(ctx, trx, due);
    // the sellers' payees (their receivers) in one read, shared with any decision taken again below
    const facts = decisionFacts(ctx, trx);
    await facts.loadPayees(due.filter((i) => i.recipient === 'SELLER').map((i) => i.sellerId));
    const items: Array<{ intent: Intent; item: PayoutRequestItem; plan: PayPlan }> = [];
    for (const claimed of due) {
      const intent = await settleDebtFirst(ctx, trx, claimed, batchId, debts);
      if (intent.status !== 'DUE') continue;
      const receiver = await receiverOf(ctx, intent, facts);
      if (!receiver) {
        await ctx.store.updateIntent(trx, intent, { status: 'HELD', holdReason: intent.recipient === 'PLATFORM' ? 'PLATFORM_PAYEE_MISSING' : 'PAYEE_MISSING', releaseAt: null }, 'no payee at payout time');
        continue;
      }
      // Every item is checked against what PayPal accepts BEFORE it goes into a batch: one unpayable item would make
      // PayPal refuse the whole batch and block everybody else's payouts with it.
      const plan = planPayout(intent);
      if (plan.kind === 'redecide') {
        await redecideIntent(ctx, trx, intent, `not payable as decided (${plan.reason}); decided again`, facts);
        redecided += 1;
        continue;
      }
      if (plan.kind === 'skip') {
        await ctx.store.updateIntent(trx, intent, { status: 'SKIPPED', skipReason: plan.reason }, `skipped at payout time: ${plan.reason}`);
        continue;
      }
      if (plan.kind === 'unpayable') {
        ctx.logger.error({ intentId: intent.id, orderId: intent.orderId, reason: plan.reason }, 'payout amount PayPal would refuse; held, kept out of the batch');
        await ctx.store.updateIntent(trx, intent, { status: 'HELD', holdReason: 'PAYOUT_NOT_PAYABLE', releaseAt: null }, `kept out of the batch: ${plan.reason}`);
        continue;
      }
      items.push({
        intent,
        plan,
        item: {
          recipient_type: 'EMAIL',
          receiver,
          amount: { value: formatPayPalValue(plan.amountMinor, plan.currency), currency: plan.currency },
          sender_item_id: senderItemId(intent.id, intent.attempt),
          note: intent.recipient === 'PLATFORM' ? `Platform commission, order ${intent.orderId}` : `Net profit, order ${intent.orderId}`,
        },
      });
    }
    const more = due.length >= ctx.settings.batchSize || redecided > 0;
    if (items.length === 0) return { more }; // offsets or holds happened, nothing to send
    const request: PayoutRequestBody = {
      sender_batch_header: {
        sender_batch_id: senderBatchId(batchId),
        email_subject: 'You have a payout',
        email_message: 'You received a payout for a completed sale.',
        recipient_type: 'EMAIL',
      },
      items: items.map((i) => i.item),
    };
    const status = dryRun ? 'DRY_RUN' : 'SUBMITTING';
    // the batch, its items and the intents' move (with their history): three statements, whatever the batch's size.
    // The first post is counted here, not by a write of its own before the call: this run posts the batch right after
    // this commit, and a batch that a crash leaves unposted is then re-posted as one whose first post's outcome is
    // unknown — the same body and sender_batch_id, so never paid twice; only a refusal of it goes to review, not HELD.
    const batch = await ctx.store.insertBatch(trx, {
      id: batchId, senderBatchId: request.sender_batch_header.sender_batch_id, status, request, itemCount: items.length, postAttempts: dryRun ? 0 : 1,
    });
    await ctx.store.insertItems(trx, items.map(({ intent, item, plan }) => ({
      intentId: intent.id, attempt: intent.attempt, senderItemId: item.sender_item_id, batchId, receiver: item.receiver,
      amountMinor: plan.amountMinor, currency: plan.currency, status: dryRun ? 'DRY_RUN' : 'SUBMITTED', source: plan.source,
    })));
    await ctx.store.updateIntents(trx, items.map(({ intent, item, plan }) => {
      const converted = plan.source
        ? ` for ${formatDecimal({ amountMinor: plan.source.amountMinor, currency: plan.source.currency })} ${plan.source.currency} owed`
          + (plan.source.fxRateDate ? ` at ${plan.source.fxRate} (rate of ${plan.source.fxRateDate}), rounded down` : ', rounded down to what PayPal pays')
        : '';
      return {
        before: intent,
        cause: dryRun
          ? `dry-run: would pay ${item.amount.value} ${item.amount.currency}${converted} (${item.sender_item_id}); nothing sent`
          : `in batch ${request.sender_batch_header.sender_batch_id} as ${item.sender_item_id}: ${item.amount.value} ${item.amount.currency}${converted}`,
      };
    }), { status: dryRun ? 'DRY_RUN' : 'SUBMITTED', batchId });
    ctx.metrics.batches.inc({ outcome: dryRun ? 'dry_run' : 'created' });
    return { more, batch };
  });
}

type Debts = Map<string, number>;
const debtKey = (party: string, currency: string) => `${party}\n${currency}`;

/**
 * Locks the balance of every party these intents pay (per currency) for the rest of the transaction, then reads what
 * each owes: two statements for the whole batch. The read is a statement of its own after the locks, so it sees every
 * clawback or offset committed before them; nothing moves these balances until the commit but this transaction.
 */
async function lockDebts(ctx: PayoutsContext, trx: Tx, intents: Intent[]): Promise<Debts> {
  const balances = [...new Map(intents.map((i) => {
    const party = partyOf(i.recipient, i.sellerId);
    return [debtKey(party, i.currency), { party, currency: i.currency }];
  })).values()];
  await ctx.store.lockBalances(trx, balances);
  return new Map((await ctx.store.owedMany(balances, trx)).map((b) => [debtKey(b.party, b.currency), b.owedMinor]));
}

/**
 * Nets the payee's outstanding clawbacks against this payment; an intent fully used up that way is OFFSET. `debts`
 * (from lockDebts) follows the offsets this batch makes, as the running balance does.
 */
async function settleDebtFirst(ctx: PayoutsContext, trx: Tx, intent: Intent, reference: string, debts: Debts): Promise<Intent> {
  const party = partyOf(intent.recipient, intent.sellerId);
  const key = debtKey(party, intent.currency);
  const owed = debts.get(key);
  if (owed === undefined) throw new Error(`balance ${party} ${intent.currency} was not locked for this batch`);
  const offset = offsetAgainstDebt(intent.payableMinor, owed);
  if (offset === 0) return intent;
  await ctx.store.addBalanceEntry(trx, { party, currency: intent.currency, amountMinor: offset, kind: 'OFFSET', orderId: intent.orderId, intentId: intent.id, reference });
  debts.set(key, owed - offset);
  const payable = intent.payableMinor - offset;
  return ctx.store.updateIntent(trx, intent, {
    offsetMinor: intent.offsetMinor + offset,
    payableMinor: payable,
    ...(payable === 0 ? { status: 'OFFSET' as const } : {}),
  }, `${offset} ${intent.currency} kept to settle what the payee owed (clawbacks)` + (payable === 0 ? '; nothing left to send' : ''));
}

async function receiverOf(ctx: PayoutsContext, intent: Intent, facts: DecisionFacts): Promise<string | undefined> {
  if (intent.recipient === 'PLATFORM') return ctx.settings.platformPayeeEmail;
  return (await facts.payee(intent.sellerId))?.email;
}

/**
 * Posts a SUBMITTING batch and records what PayPal answered. The run that created the batch posts it as its first post
 * (counted at creation). Any other post of a SUBMITTING batch (post_attempts > 0: posted before without a known
 * outcome — timeout, dropped answer, 5xx, a crash after the call or just before it) is a RE-POST, counted before the
 * call, and PayPal may already hold the first one. The answers, and what each means:
 * - accepted: created now (the first post never arrived);
 * - duplicate (400 USER_BUSINESS_ERROR "Batch with given sender_batch_id already exists" + link): adopted — the
 *   original batch is read through its link, checked to be ours, and reconciled; never paid again;
 * - any other refusal of a RE-POST: the first post may have paid, so nothing is owed again automatically → batch
 *   and intents NEEDS_REVIEW with PayPal's name and debug_id;
 * - a refusal of a FIRST post (INSUFFICIENT_FUNDS, AUTHORIZATION_ERROR, SENDER_RESTRICTED, NON_HOLDING_CURRENCY,
 *   VALIDATION_ERROR…): nothing was created → intents HELD `PAYPAL_REFUSED:<name>`, retried on operator action only;
 * - unknown (500 INTERNAL_ERROR, timeout…): stays SUBMITTING, re-posted with the same sender_batch_id next run.
 */
async function postBatch(ctx: PayoutsContext, batch: Batch, attempt: 'first post, counted' | 'resolve' = 'resolve'): Promise<PostOutcome> {
  if (!ctx.gateway) throw new Error('postBatch without a PayPal gateway (dry-run never posts)');
  // a batch posted by the run that created it: its attempt was counted in the batch's own transaction
  const repost = attempt === 'resolve' && batch.postAttempts > 0;
  if (attempt === 'resolve') await ctx.store.recordPostAttempt(batch.id, batch.postAttempts + 1);
  let result: CreateBatchResult;
  try {
    result = await ctx.gateway.createBatch(batch.request as PayoutRequestBody);
  } catch (error) {
    result = { kind: 'unknown', message: error instanceof Error ? error.message : String(error) };
  }
  ctx.metrics.paypalCalls.inc({ operation: 'create_batch', outcome: result.kind });
  switch (result.kind) {
    case 'accepted': {
      // PayPal has just begun the batch: its items' webhooks bring the outcomes, the check is their fallback
      const firstCheckInMs = ctx.settings.firstCheckInMs;
      const due = await ctx.store.markBatchAccepted(batch.id, { paypalBatchId: result.payoutBatchId, paypalBatchStatus: result.batchStatus, lastError: null, firstCheckInMs });
      ctx.logger.info({ batchId: batch.id, senderBatchId: batch.senderBatchId, payoutBatchId: result.payoutBatchId }, 'payout batch accepted');
      if (firstCheckInMs === 0) ctx.nudge.reconciler();
      else ctx.nudge.reconcilerAt(due);
      return 'settled';
    }
    case 'duplicate':
      return adoptOriginal(ctx, batch, result.payoutBatchId,
        `${result.name ?? 'USER_BUSINESS_ERROR'} (HTTP ${result.httpStatus ?? 400}, debug_id ${result.debugId ?? 'none'}): Batch with given sender_batch_id already exists`);
    case 'unknown':
      await ctx.store.setBatchError(batch.id, `unknown outcome: ${result.message}`);
      ctx.logger.warn({ batchId: batch.id, senderBatchId: batch.senderBatchId, reason: result.message }, 'payout batch outcome unknown; will ask PayPal with the same sender_batch_id');
      return 'unknown';
    case 'rejected': {
      const said = `${result.name} (HTTP ${result.httpStatus}, debug_id ${result.debugId ?? 'none'}): ${result.message}`
        + (result.details?.length ? ` [${result.details.join('; ')}]` : '');
      if (repost) {
        await markNeedsReview(ctx, batch, `PAYPAL_REFUSED_REPOST:${result.name}`,
          `PayPal refused the re-post of a batch whose first post has an unknown outcome: ${said}; it may already have paid, so nothing is owed again until an operator checks`);
      } else {
        await holdRefusedBatch(ctx, batch, result.name, said);
      }
      return 'settled';
    }
  }
}

/** unknown: the batch is still SUBMITTING, to be posted again with the same sender_batch_id */
type PostOutcome = 'settled' | 'unknown';

/**
 * PayPal says the sender_batch_id exists: read the original batch through the link it gave, check it is ours (same
 * sender_batch_id, our sender_item_ids) and reconcile its items now. No link, or a batch that is not ours → review
 * with PayPal's name and debug_id (`said`): PayPal holds a batch under our sender_batch_id that we cannot see, so it
 * may have paid; nothing is FAILED or owed again, and nothing is re-posted (it would only be refused again).
 * A failed read leaves the batch SUBMITTING: the next run re-posts and gets the same answer (nothing is paid twice).
 */
async function adoptOriginal(ctx: PayoutsContext, batch: Batch, payoutBatchId: string | null, said: string): Promise<PostOutcome> {
  if (!payoutBatchId) {
    await markNeedsReview(ctx, batch, 'PAYPAL_DUPLICATE_WITHOUT_LINK',
      `PayPal says sender_batch_id ${batch.senderBatchId} already exists but gave no link to the original batch: ${said}; it may already have paid, find the batch in PayPal's activity before paying again`);
    return 'settled';
  }
  let original: PayPalBatchState;
  try {
    original = await ctx.gateway!.getBatch(payoutBatchId);
    ctx.metrics.paypalCalls.inc({ operation: 'get_batch', outcome: 'ok' });
  } catch (error) {
    ctx.metrics.paypalCalls.inc({ operation: 'get_batch', outcome: 'error' });
    await ctx.store.setBatchError(batch.id, `duplicate of ${payoutBatchId}; reading it failed: ${error instanceof Error ? error.message : String(error)}`);
    return 'unknown';
  }
  const ours = new Set((batch.request as PayoutRequestBody).items.map((i) => i.sender_item_id));
  const foreign = original.items.filter((i) => !i.senderItemId || !ours.has(i.senderItemId));
  const senderMismatch = original.senderBatchId !== batch.senderBatchId;
  if (senderMismatch || foreign.length > 0) {
    await markNeedsReview(ctx, batch, 'PAYPAL_DUPLICATE_NOT_OURS',
      `PayPal's duplicate answer links batch ${payoutBatchId}, which is not ours (sender_batch_id ${original.senderBatchId ?? 'unknown'}, ${foreign.length} unknown items): ${said}; the real original may already have paid, find it before paying again`);
    return 'settled';
  }
  await ctx.store.markBatchAccepted(batch.id, {
    paypalBatchId: payoutBatchId, paypalBatchStatus: original.batchStatus,
    lastError: `PayPal already had this sender_batch_id (${said}): the earlier post was accepted as ${payoutBatchId}; adopted`,
    // its items' webhooks may have come long ago: the check after the items below is due at once
    firstCheckInMs: 0,
  });
  ctx.logger.info({ batchId: batch.id, senderBatchId: batch.senderBatchId, payoutBatchId }, 'payout batch already at PayPal: adopted the original');
  for (let i = 0; i < original.items.length; i += APPLY_SET_SIZE) {
    await applyItemStates(ctx, original.items.slice(i, i + APPLY_SET_SIZE),
      (item) => `original batch ${payoutBatchId} (adopted after a duplicate answer) reports ${item.transactionStatus}`);
  }
  ctx.nudge.reconciler();
  return 'settled';
}

/**
 * PayPal refused a batch on its FIRST post: nothing was created and nothing paid. The intents stay owed but are HELD
 * with PayPal's reason (e.g. PAYPAL_REFUSED:INSUFFICIENT_FUNDS): re-posting by itself would only be refused again, so
 * they go out again only when an operator retries them (POST /admin/payouts/:id/retry) after fixing the cause.
 */
async function holdRefusedBatch(ctx: PayoutsContext, batch: Batch, name: string, said: string): Promise<void> {
  ctx.logger.error({ batchId: batch.id, senderBatchId: batch.senderBatchId, reason: said }, 'payout batch refused by PayPal; intents held');
  const holdReason = `PAYPAL_REFUSED:${name}` as HoldReason;
  await ctx.store.transaction(async (trx) => {
    await ctx.store.markBatchRejected(trx, batch.id, said);
    await ctx.store.rejectItemsOfBatch(trx, batch.id, name, said);
    for (const item of await ctx.store.itemsOfBatch(batch.id, trx)) {
      const intent = await ctx.store.intentForUpdate(trx, item.intentId);
      if (!intent || intent.status !== 'SUBMITTED' || intent.attempt !== item.attempt) continue;
      await ctx.store.updateIntent(trx, intent, { status: 'HELD', holdReason, releaseAt: null, batchId: null },
        `batch refused by PayPal on its first post, nothing paid: ${said}; held until an operator retries`);
      ctx.metrics.outcomes.inc({ status: 'REJECTED', currency: item.currency }, item.amountMinor);
    }
  });
}

/** The batch's outcome cannot be settled automatically: batch and its intents go to NEEDS_REVIEW with the reason. */
async function markNeedsReview(ctx: PayoutsContext, batch: Batch, code = 'RESUBMIT_WINDOW_EXPIRED', reason = WINDOW_EXPIRED): Promise<void> {
  ctx.logger.error({ batchId: batch.id, senderBatchId: batch.senderBatchId, code }, reason);
  await ctx.store.transaction(async (trx) => {
    await ctx.store.markBatchNeedsReview(trx, batch.id, `${code}: ${reason}`);
    for (const item of await ctx.store.itemsOfBatch(batch.id, trx)) {
      const intent = await ctx.store.intentForUpdate(trx, item.intentId);
      if (intent?.status === 'SUBMITTED' && intent.attempt === item.attempt) {
        await ctx.store.updateIntent(trx, intent, { status: 'NEEDS_REVIEW', holdReason: code as HoldReason }, `${code}: ${reason}`);
      }
    }
  });
}

const WINDOW_EXPIRED = 'outcome still unknown after the resubmit window: re-posting could pay twice once PayPal forgets the sender_batch_id';

type PayPlan = {
  kind: 'pay';
  amountMinor: number;
  currency: string;
  /** what was converted (the owed amount in the sale's currency); null when paid exactly as owed */
  source: { amountMinor: number; currency: string; fxRate: string; fxRateDate: string | null } | null;
};

/**
 * What one DUE intent pays, in its payout currency at its pinned rate (convertRoundingDown: never more than owed).
 * Not usable as decided (no payout currency, one PayPal does not take, a conversion without a rate) → decide again;
 * converts to zero → SKIPPED; anything PayPal would still refuse → kept out of the batch.
 */
type NoPayPlan = { kind: 'redecide'; reason: string } | { kind: 'skip'; reason: string } | { kind: 'unpayable'; reason: string };

export function planPayout(intent: Intent): PayPlan | NoPayPlan {
  const currency = intent.payoutCurrency;
  if (!currency || !isPayPalPayoutCurrency(currency)) return { kind: 'redecide', reason: `payout currency ${currency ?? 'undecided'}` };
  if (currency !== intent.currency && !intent.fxRate) return { kind: 'redecide', reason: `no ${intent.currency}->${currency} rate pinned` };
  const rate = currency === intent.currency ? '1' : intent.fxRate!;
  const amountMinor = convertRoundingDown(intent.payableMinor, intent.currency, currency, rate);
  if (amountMinor === 0) {
    return { kind: 'skip', reason: `CONVERTS_TO_ZERO: ${formatDecimal({ amountMinor: intent.payableMinor, currency: intent.currency })} ${intent.currency} is less than one payable unit of ${currency}` };
  }
  const refused = unpayableReason(amountMinor, currency);
  if (refused) return { kind: 'unpayable', reason: refused };
  const exact = currency === intent.currency && amountMinor === intent.payableMinor;
  return {
    kind: 'pay', amountMinor, currency,
    source: exact ? null : { amountMinor: intent.payableMinor, currency: intent.currency, fxRate: rate, fxRateDate: currency === intent.currency ? null : intent.fxRateDate },
  };
}

