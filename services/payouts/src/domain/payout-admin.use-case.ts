import { conflict, notFound } from '@postsale/runtime';
import type { PayoutsContext } from './context';
import { reevaluateIntents, scheduleRetry } from './intent-decisions';
import { parseRate } from './payout-currency';
import { isPayPalRefusal, parseReleasePolicy } from './payout-rules';
import type { FxRate, Intent, Payee, PayeeSettings } from './records';

/** Who asked for an admin write, and why (X-Audit-Reason): recorded in admin_audit in the write's transaction. */
export interface AuditContext {
  actor: string;
  reason: string | null;
}

// The operator's writes: payee settings, FX rates, retries and cancellations. Each one is recorded in the audit trail
// in the same transaction as the change, and wakes the worker that carries it out once committed.

/** PUT /admin/sellers/:sellerId/payee → store it and re-decide the seller's unpaid intents (held ones may go out). */
export async function setPayee(ctx: PayoutsContext, input: PayeeSettings, audit: AuditContext): Promise<Payee | undefined> {
  const { store } = ctx;
  const policyText = input.releasePolicy === 'after_delivery_plus_days' ? `after_delivery_plus_days:${input.releaseDelayDays}` : input.releasePolicy;
  parseReleasePolicy(policyText);
  await store.transaction(async (trx) => {
    const before = await store.payee(input.sellerId, trx);
    await store.upsertPayee(trx, input);
    // who changed where a seller's money goes, from what to what, and why: in the same transaction as the change
    await store.recordAudit(trx, { actor: audit.actor, action: 'PUT_PAYEE', target: `seller:${input.sellerId}`, before: before ?? null, after: await store.payee(input.sellerId, trx), reason: audit.reason });
    // the platform's intents follow the seller's policy too (the commission is earned when the sale is final)
    await reevaluateIntents(ctx, trx, await store.intentsAwaitingRelease(trx, { sellerId: input.sellerId }),
      `payee settings of seller changed (${policyText}, payout currency ${input.payoutCurrency ?? 'default'})`);
  });
  ctx.nudge.batcher();
  return store.payee(input.sellerId);
}

/** At start: the platform payee may have been configured (or removed) since intents were last decided. */
export async function reevaluatePlatformIntents(ctx: PayoutsContext): Promise<void> {
  await ctx.store.transaction(async (trx) => {
    const intents = await ctx.store.intentsAwaitingRelease(trx, { recipient: 'PLATFORM' });
    await reevaluateIntents(ctx, trx, intents, ctx.settings.platformPayeeEmail ? 'platform payee configured' : 'platform payee not configured');
  });
}

/**
 * PUT /admin/fx-rates/:from/:to/:date → store the dated rate and re-decide every unpaid intent owed in `from`: those
 * HELD with FX_RATE_MISSING are released, DUE ones re-pin the rate that now applies (a corrected rate for the same
 * day replaces the old one for what has not been paid yet). Paid items keep the rate they were paid at.
 */
export async function setFxRate(ctx: PayoutsContext, rate: FxRate, audit: AuditContext): Promise<{ reevaluated: number }> {
  const { store } = ctx;
  parseRate(rate.rate);
  const { changed } = await store.transaction(async (trx) => {
    await store.saveFxRate(trx, rate);
    await store.recordAudit(trx, { actor: audit.actor, action: 'PUT_FX_RATE', target: `fx:${rate.from}:${rate.to}:${rate.rateDate}`, after: rate, reason: audit.reason });
    const intents = await store.intentsAwaitingRelease(trx, { currency: rate.from });
    return reevaluateIntents(ctx, trx, intents, `FX rate ${rate.from}->${rate.to} of ${rate.rateDate} set to ${rate.rate} (${rate.source})`);
  });
  ctx.nudge.batcher();
  return { reevaluated: changed };
}

/**
 * POST /admin/payouts/:id/retry → pay a FAILED or RETURNED intent, or one HELD because PayPal refused its batch
 * (PAYPAL_REFUSED:*), again under a new sender_item_id (attempt + 1).
 */
export async function retryPayout(ctx: PayoutsContext, intentId: string, audit: AuditContext): Promise<Intent> {
  const { store } = ctx;
  const result = await store.transaction(async (trx) => {
    const intent = await store.intentForUpdate(trx, intentId);
    if (!intent) throw notFound('PAYOUT_NOT_FOUND', 'no such payout');
    const refused = intent.status === 'HELD' && isPayPalRefusal(intent.holdReason);
    if (intent.status !== 'FAILED' && intent.status !== 'RETURNED' && !refused) {
      throw conflict('PAYOUT_NOT_RETRIABLE', `a ${intent.status} payout cannot be retried; only FAILED, RETURNED or PayPal-refused (held) ones`);
    }
    if (intent.payableMinor <= 0) throw conflict('PAYOUT_NOTHING_OWED', 'nothing is owed on this payout any more');
    const retried = await scheduleRetry(ctx, trx, intent, new Date(), `operator retry by ${audit.actor}`);
    await store.recordAudit(trx, { actor: audit.actor, action: 'RETRY_PAYOUT', target: `payout:${intentId}`, after: { status: retried.status, attempt: retried.attempt }, reason: audit.reason });
    return retried;
  });
  ctx.nudge.batcher();
  return result;
}

/** POST /admin/payouts/:id/cancel → ask PayPal (through the reconciliation poller) to cancel an UNCLAIMED item. */
export async function requestCancel(ctx: PayoutsContext, intentId: string, audit: AuditContext): Promise<void> {
  const { store } = ctx;
  await store.transaction(async (trx) => {
    const intent = await store.intentForUpdate(trx, intentId);
    if (!intent) throw notFound('PAYOUT_NOT_FOUND', 'no such payout');
    const item = await store.currentItem(intent, trx);
    if (intent.status !== 'SUBMITTED' || item?.status !== 'UNCLAIMED' || !item.paypalItemId) {
      throw conflict('PAYOUT_NOT_CANCELLABLE', `only UNCLAIMED payouts can be cancelled (this one is ${item?.status ?? intent.status})`);
    }
    await store.requestItemCancel(trx, item.id);
    await store.checkBatchSoon(trx, item.batchId);
    await store.updateIntent(trx, intent, {}, 'operator asked PayPal to cancel the unclaimed item');
    await store.recordAudit(trx, { actor: audit.actor, action: 'CANCEL_PAYOUT', target: `payout:${intentId}`, after: { cancelRequested: true }, reason: audit.reason });
  });
  ctx.nudge.reconciler();
}
