import type { Tx } from '@postsale/runtime';
import type { PayoutItem } from '../db/payouts.repository';
import { publishPayout, type PayoutsContext } from './context';
import { recordClawback, scheduleRetry } from './intents.use-case';
import { classifyItemStatus } from './payout-rules';
import type { PayPalItemState } from './ports';

/**
 * One run of the reconciliation poller: carry out requested cancellations of UNCLAIMED items, then read every
 * accepted, unfinished batch from PayPal and apply each item's status. Returns true when something changed.
 */
export async function runReconciliation(ctx: PayoutsContext): Promise<boolean> {
  if (!ctx.gateway) return false;
  let changed = false;
  for (const item of await ctx.repo.itemsWithCancelRequested(ctx.db, 50)) {
    const result = await ctx.gateway.cancelItem(item.paypalItemId!);
    ctx.metrics.paypalCalls.inc({ operation: 'cancel_item', outcome: result.kind });
    if (result.kind === 'cancelled') {
      changed = (await applyItemState(ctx, { ...result.item, senderItemId: item.senderItemId }, 'PayPal cancelled the unclaimed item on operator request')) || changed;
    } else {
      await ctx.repo.updateItem(ctx.db, item.id, { cancel_requested_at: null, error_message: `cancel refused: ${result.name}: ${result.message}` });
      // ITEM_ALREADY_CANCELLED and friends: the batch read below brings the real status
    }
  }
  for (const batch of await ctx.repo.batchesWithStatus(ctx.db, 'ACCEPTED', 20)) {
    if (!batch.paypalBatchId) continue; // only webhooks can tell us about it (see README of this service)
    const state = await ctx.gateway.getBatch(batch.paypalBatchId);
    ctx.metrics.paypalCalls.inc({ operation: 'get_batch', outcome: 'ok' });
    for (const item of state.items) {
      changed = (await applyItemState(ctx, item, `PayPal batch ${batch.paypalBatchId} reports ${item.transactionStatus}`)) || changed;
    }
    const items = await ctx.repo.itemsOfBatch(ctx.db, batch.id);
    const finished = items.every((i) => classifyItemStatus(i.status) !== 'IN_FLIGHT' && i.status !== 'SUBMITTED');
    await ctx.repo.updateBatch(ctx.db, batch.id, {
      paypal_batch_status: state.batchStatus, last_checked_at: ctx.db.fn.now(),
      ...(finished ? { status: 'COMPLETED', completed_at: ctx.db.fn.now() } : {}),
    });
  }
  return changed;
}

/**
 * Applies one PayPal item status (from a batch read, an item read or a webhook) to our item and, when it is the
 * intent's current attempt, to the intent. Idempotent: the same status twice changes nothing. Returns true on change.
 */
export async function applyItemState(ctx: PayoutsContext, state: PayPalItemState, cause: string): Promise<boolean> {
  if (!state.senderItemId) return false;
  const changed = await ctx.db.transaction(async (trx) => {
    const item = await ctx.repo.itemBySenderItemId(trx, state.senderItemId!, true);
    if (!item) {
      ctx.logger.warn({ senderItemId: state.senderItemId, payoutItemId: state.payoutItemId }, 'PayPal reports an item we never sent; ignored');
      return false;
    }
    const batch = await ctx.repo.batch(trx, item.batchId, true);
    if (batch && !batch.paypalBatchId && state.payoutBatchId) {
      await ctx.repo.updateBatch(trx, batch.id, { paypal_batch_id: state.payoutBatchId });
    }
    if (item.status === state.transactionStatus && item.paypalItemId === state.payoutItemId) return false;
    if (!itemMayMove(item.status, state.transactionStatus)) return false;
    await ctx.repo.updateItem(trx, item.id, {
      status: state.transactionStatus,
      paypal_item_id: state.payoutItemId || item.paypalItemId,
      transaction_id: state.transactionId ?? item.transactionId,
      error_name: state.errorName,
      error_message: state.errorMessage,
    });
    const intent = await ctx.repo.intent(trx, item.intentId, true);
    if (!intent || intent.attempt !== item.attempt) return true; // an older attempt: history only
    await applyToIntent(ctx, trx, intent.id, item, state, cause);
    return true;
  });
  return changed;
}

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

async function applyToIntent(
  ctx: PayoutsContext, trx: Tx, intentId: string,
  item: PayoutItem,
  state: PayPalItemState, cause: string,
): Promise<void> {
  const intent = (await ctx.repo.intent(trx, intentId, true))!;
  const outcome = classifyItemStatus(state.transactionStatus);
  const amount = { amountMinor: item.amountMinor, currency: item.currency };
  const reason = [state.errorName, state.errorMessage].filter(Boolean).join(': ') || state.transactionStatus;
  if (outcome === 'IN_FLIGHT') {
    if (intent.status === 'SUBMITTED' || intent.status === 'NEEDS_REVIEW') {
      await ctx.repo.updateIntent(trx, intent, { status: 'SUBMITTED' }, `${cause} (not final yet)`);
    }
    return;
  }
  if (outcome === 'SENT') {
    if (intent.status !== 'SUBMITTED' && intent.status !== 'NEEDS_REVIEW') return;
    const sent = await ctx.repo.updateIntent(trx, intent, { status: 'SENT', pendingReversalMinor: 0 }, cause);
    await publishPayout(ctx, trx, sent, 'PayoutSent', {
      payoutId: sent.id, recipient: sent.recipient, amount, senderItemId: item.senderItemId,
      payoutBatchId: state.payoutBatchId, payoutItemId: state.payoutItemId, sentAt: Date.now(),
      // what the payment was converted from (the debt in the sale's currency) and at which dated rate
      owedAmount: item.sourceAmountMinor !== null && item.sourceCurrency ? { amountMinor: item.sourceAmountMinor, currency: item.sourceCurrency } : null,
      fxRate: item.sourceCurrency ? item.fxRate : null,
      fxRateDate: item.sourceCurrency ? item.fxRateDate : null,
    }, state.payoutItemId);
    if (intent.pendingReversalMinor > 0) await recordClawback(ctx, trx, sent, intent.pendingReversalMinor, `pending-reversal:${item.senderItemId}`);
    ctx.metrics.outcomes.inc({ status: 'SUCCESS', currency: item.currency }, item.amountMinor);
    ctx.metrics.saleToPayout.observe({ recipient: sent.recipient }, (Date.now() - sent.saleRecordedAt.getTime()) / 1000);
    return;
  }
  // FAILED or RETURNED: the money did not stay with the receiver, so it is owed again (less any reversal in flight).
  if (intent.status !== 'SUBMITTED' && intent.status !== 'NEEDS_REVIEW' && intent.status !== 'SENT') return;
  const payable = intent.payableMinor - intent.pendingReversalMinor;
  const status = outcome === 'FAILED' ? 'FAILED' : 'RETURNED';
  const updated = await ctx.repo.updateIntent(trx, intent, {
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
  ctx.metrics.outcomes.inc({ status: state.transactionStatus, currency: item.currency }, item.amountMinor);
  if (payable > 0 && updated.attempt < ctx.settings.autoRetryMaxAttempts) {
    await scheduleRetry(ctx, trx, updated, new Date(Date.now() + ctx.settings.autoRetryDelayMs), 'automatic retry by policy');
  }
}
