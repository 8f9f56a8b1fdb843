import { randomUUID } from 'node:crypto';
import { formatDecimal, money, type OrderDelivered, type OrderShipped, type SaleRecorded, type SaleReversed } from '@postsale/contracts';
import { conflict, notFound, type Tx } from '@postsale/runtime';
import type { FxRate, Intent, PayoutTerms } from '../db/payouts.repository';
import type { PayoutsContext } from './context';
import { choosePayoutCurrency, convertRoundingDown, parseRate, utcDay } from './payout-currency';
import {
  applyReversal,
  isPayPalRefusal,
  decideRelease,
  parseReleasePolicy,
  partyOf,
  type Recipient,
  type ReleaseDecision,
  type ReleasePolicy,
} from './payout-rules';

interface EventMeta {
  eventId: string;
  orderId: string;
  sellerId: string;
}

/**
 * SaleRecorded → one intent per recipient (lesson 2: the (sale, recipient) pair is unique in the database, and the
 * sale itself is recorded once, so a re-delivered, re-published or replayed sale changes nothing). A zero or negative
 * share (a loss order) becomes a SKIPPED intent: visible, never sent to PayPal.
 */
export async function recordSale(ctx: PayoutsContext, trx: Tx, meta: EventMeta, sale: SaleRecorded): Promise<void> {
  const commission = money(sale.platformCommission.amountMinor, sale.platformCommission.currency);
  const net = money(sale.sellerNetProfit.amountMinor, sale.sellerNetProfit.currency);
  const fresh = await ctx.repo.insertSale(trx, {
    saleId: sale.saleId, orderId: meta.orderId, sellerId: meta.sellerId, currency: sale.saleAmount.currency,
    saleAmountMinor: sale.saleAmount.amountMinor, platformCommissionMinor: commission.amountMinor, sellerNetMinor: net.amountMinor,
    isLoss: sale.isLoss, eventId: meta.eventId, recordedAt: new Date(sale.recordedAt),
  });
  if (!fresh) {
    ctx.logger.info({ saleId: sale.saleId, orderId: meta.orderId, eventId: meta.eventId }, 'sale already recorded; no new intents');
    return;
  }
  const shares: Array<[Recipient, { amountMinor: number; currency: string }]> = [['PLATFORM', commission], ['SELLER', net]];
  for (const [recipient, share] of shares) {
    const base = {
      id: randomUUID(), saleId: sale.saleId, orderId: meta.orderId, sellerId: meta.sellerId, recipient,
      currency: share.currency, amountMinor: share.amountMinor, saleRecordedAt: new Date(sale.recordedAt),
    };
    const cause = `SaleRecorded ${meta.eventId}`;
    if (share.amountMinor <= 0) {
      await ctx.repo.insertIntent(trx, { ...base, payableMinor: 0, status: 'SKIPPED', holdReason: null, releaseAt: null },
        `SaleRecorded ${meta.eventId}: ${recipient.toLowerCase()} share is ${share.amountMinor} (${sale.isLoss ? 'loss order' : 'nothing owed'}); nothing to pay`);
      continue;
    }
    const decision = await releaseDecision(ctx, trx, { ...base, payableMinor: share.amountMinor });
    await ctx.repo.insertIntent(trx, { ...base, payableMinor: share.amountMinor, ...decision }, describeDecision(cause, decision));
  }
  // A reversal that arrived before its sale (should not happen on one partition, but replays and repairs exist).
  for (const r of await ctx.repo.reversalsForSale(trx, sale.saleId)) {
    await applyReversalToSale(ctx, trx, sale.saleId, String(r.reversal_id), {
      PLATFORM: Number(r.commission_reversed_minor), SELLER: Number(r.seller_net_reversed_minor),
    });
  }
  // No nudge: due intents wait for the next batching interval, so they go out together in one batch.
}

/**
 * SaleReversed → before payout the intent shrinks or is cancelled; what was already paid becomes a clawback the payee
 * owes, netted against its future payouts. Partial reversals reduce the intent by the reversed share.
 */
export async function reverseSale(ctx: PayoutsContext, trx: Tx, meta: EventMeta, reversal: SaleReversed): Promise<void> {
  const fresh = await ctx.repo.insertReversal(trx, {
    reversalId: reversal.reversalId, saleId: reversal.saleId, orderId: meta.orderId, kind: reversal.kind,
    currency: reversal.refundedAmount.currency, commissionReversedMinor: reversal.commissionReversed.amountMinor,
    sellerNetReversedMinor: reversal.sellerNetReversed.amountMinor, reversedAt: new Date(reversal.reversedAt),
  });
  if (!fresh) return;
  await applyReversalToSale(ctx, trx, reversal.saleId, reversal.reversalId, {
    PLATFORM: reversal.commissionReversed.amountMinor, SELLER: reversal.sellerNetReversed.amountMinor,
  });
}

async function applyReversalToSale(ctx: PayoutsContext, trx: Tx, saleId: string, reversalId: string, reversed: Record<Recipient, number>): Promise<void> {
  for (const intent of await ctx.repo.intentsForSale(trx, saleId)) {
    const amount = reversed[intent.recipient];
    if (amount <= 0) continue;
    const effect = applyReversal(intent, amount);
    const cause = `SaleReversed ${reversalId}: ${amount} ${intent.currency} of the ${intent.recipient.toLowerCase()} share reversed`;
    await ctx.repo.updateIntent(trx, intent, {
      reversedMinor: intent.reversedMinor + amount,
      payableMinor: effect.payableMinor,
      pendingReversalMinor: intent.pendingReversalMinor + effect.pendingMinor,
      ...(effect.cancel ? { status: 'CANCELLED', holdReason: null } : {}),
    }, effect.cancel ? `${cause}; cancelled before payout` : effect.pendingMinor > 0 ? `${cause}; in flight at PayPal, settled when the outcome is known` : cause);
    if (effect.clawbackMinor > 0) await recordClawback(ctx, trx, intent, effect.clawbackMinor, reversalId);
  }
}

export async function recordClawback(ctx: PayoutsContext, trx: Tx, intent: Intent, amountMinor: number, reference: string): Promise<void> {
  await ctx.repo.lockBalance(trx, partyOf(intent.recipient, intent.sellerId), intent.currency);
  await ctx.repo.addBalanceEntry(trx, {
    party: partyOf(intent.recipient, intent.sellerId), currency: intent.currency, amountMinor: -amountMinor, kind: 'CLAWBACK',
    orderId: intent.orderId, intentId: intent.id, reference,
  });
  ctx.metrics.clawbacks.inc({ currency: intent.currency, recipient: intent.recipient }, amountMinor);
}

/** OrderShipped / OrderDelivered → remember the milestone and release what the seller's policy now allows. */
export async function recordMilestone(
  ctx: PayoutsContext, trx: Tx, meta: EventMeta, event: { type: 'OrderShipped'; payload: OrderShipped } | { type: 'OrderDelivered'; payload: OrderDelivered },
): Promise<void> {
  if (event.type === 'OrderShipped') await ctx.repo.recordMilestone(trx, meta.orderId, meta.sellerId, 'shipped_at', new Date(event.payload.shippedAt));
  else await ctx.repo.recordMilestone(trx, meta.orderId, meta.sellerId, 'delivered_at', new Date(event.payload.deliveredAt));
  await reevaluate(ctx, trx, await ctx.repo.intentsAwaitingRelease(trx, { orderId: meta.orderId }), `${event.type} ${meta.eventId}`);
}

/** PUT /admin/sellers/:sellerId/payee → store it and re-decide the seller's unpaid intents (held ones may go out). */
export async function setPayee(
  ctx: PayoutsContext,
  input: { sellerId: string; email: string; releasePolicy: string; releaseDelayDays: number; payoutCurrency: string | null },
  audit?: { actor: string; reason: string | null },
) {
  const policyText = input.releasePolicy === 'after_delivery_plus_days' ? `after_delivery_plus_days:${input.releaseDelayDays}` : input.releasePolicy;
  parseReleasePolicy(policyText);
  await ctx.db.transaction(async (trx) => {
    const before = await ctx.repo.payee(trx, input.sellerId);
    await ctx.repo.upsertPayee(trx, input);
    // who changed where a seller's money goes, from what to what, and why: in the same transaction as the change
    if (audit) await ctx.repo.recordAudit(trx, { actor: audit.actor, action: 'PUT_PAYEE', target: `seller:${input.sellerId}`, before: before ?? null, after: await ctx.repo.payee(trx, input.sellerId), reason: audit.reason });
    // the platform's intents follow the seller's policy too (the commission is earned when the sale is final)
    await reevaluate(ctx, trx, await ctx.repo.intentsAwaitingRelease(trx, { sellerId: input.sellerId }),
      `payee settings of seller changed (${policyText}, payout currency ${input.payoutCurrency ?? 'default'})`);
  });
  ctx.nudgeBatcher();
  return ctx.repo.payee(ctx.db, input.sellerId);
}

/** At start: the platform payee may have been configured (or removed) since intents were last decided. */
export async function reevaluatePlatformIntents(ctx: PayoutsContext): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const intents = await ctx.repo.intentsAwaitingRelease(trx, { recipient: 'PLATFORM' });
    await reevaluate(ctx, trx, intents, ctx.settings.platformPayeeEmail ? 'platform payee configured' : 'platform payee not configured');
  });
}

/**
 * PUT /admin/fx-rates/:from/:to/:date → store the dated rate and re-decide every unpaid intent owed in `from`: those
 * HELD with FX_RATE_MISSING are released, DUE ones re-pin the rate that now applies (a corrected rate for the same
 * day replaces the old one for what has not been paid yet). Paid items keep the rate they were paid at.
 */
export async function setFxRate(ctx: PayoutsContext, rate: FxRate): Promise<{ reevaluated: number }> {
  parseRate(rate.rate);
  const reevaluated = await ctx.db.transaction(async (trx) => {
    await ctx.repo.saveFxRate(trx, rate);
    const intents = await ctx.repo.intentsAwaitingRelease(trx, { currency: rate.from });
    return reevaluate(ctx, trx, intents, `FX rate ${rate.from}->${rate.to} of ${rate.rateDate} set to ${rate.rate} (${rate.source})`);
  });
  ctx.nudgeBatcher();
  return { reevaluated };
}

/**
 * Each batching run: intents still HELD for a missing rate are re-decided, so a rate that was committed while their
 * sale was being recorded (the PUT could not see the uncommitted intent), or while this sweep held their rows (the
 * PUT skips locked rows), still releases them.
 */
export async function releaseFxHolds(ctx: PayoutsContext): Promise<number> {
  return ctx.db.transaction(async (trx) => {
    // only rows held for a rate (locked, skipping those another transaction holds: they are decided there)
    const held = await ctx.repo.intentsAwaitingRelease(trx, { holdReason: 'FX_RATE_MISSING', limit: 500 });
    return reevaluate(ctx, trx, held, 'FX rate found');
  });
}

async function reevaluate(ctx: PayoutsContext, trx: Tx, intents: Intent[], cause: string): Promise<number> {
  let changed = 0;
  for (const intent of intents) {
    if (intent.status === 'HELD' && isPayPalRefusal(intent.holdReason)) continue; // released by an operator's retry only
    const d = await releaseDecision(ctx, trx, intent);
    const sameRelease = (d.releaseAt?.getTime() ?? null) === (intent.releaseAt?.getTime() ?? null);
    const sameTerms = d.payoutCurrency === intent.payoutCurrency && d.fxRate === intent.fxRate && d.fxRateDate === intent.fxRateDate && d.fxSource === intent.fxSource;
    if (d.status === intent.status && d.holdReason === intent.holdReason && sameRelease && sameTerms) continue;
    await ctx.repo.updateIntent(trx, intent, d, describeDecision(cause, d));
    changed += 1;
  }
  return changed;
}

/** Re-decides one unpaid intent now (the batcher, for an intent whose payout currency or rate is not usable). */
export async function redecide(ctx: PayoutsContext, trx: Tx, intent: Intent, cause: string): Promise<Intent> {
  const d = await releaseDecision(ctx, trx, intent);
  return ctx.repo.updateIntent(trx, intent, d, describeDecision(cause, d));
}

/** What an intent will be paid in and when: release decision + payout currency + pinned rate (or SKIPPED). */
export type PayoutDecision = (ReleaseDecision | { status: 'SKIPPED'; holdReason: null; releaseAt: null }) & PayoutTerms & { skipReason: string | null };

const NO_TERMS: PayoutTerms = { payoutCurrency: null, fxRate: null, fxRateDate: null, fxSource: null };
const DAY_MS = 24 * 3600 * 1000;

/**
 * Decides an unpaid intent. Payout currency: see choosePayoutCurrency. When it differs from the sale's currency the
 * rate is the most recent one from sale currency to payout currency dated on or before the UTC day the sale was
 * recorded, and at most PAYOUTS_FX_MAX_RATE_AGE_DAYS older than that day; none → HELD FX_RATE_MISSING. An amount
 * that converts to less than one payable unit → SKIPPED with the reason (nothing PayPal could send).
 */
async function releaseDecision(ctx: PayoutsContext, trx: Tx, i: {
  recipient: Recipient; sellerId: string; orderId: string; saleRecordedAt: Date; currency: string; payableMinor: number;
}): Promise<PayoutDecision> {
  const payee = await ctx.repo.payee(trx, i.sellerId);
  const policy: ReleasePolicy = payee
    ? parseReleasePolicy(payee.releasePolicy === 'after_delivery_plus_days' ? `after_delivery_plus_days:${payee.releaseDelayDays}` : payee.releasePolicy)
    : ctx.settings.defaultReleasePolicy;
  const payeeKnown = i.recipient === 'PLATFORM' ? Boolean(ctx.settings.platformPayeeEmail) : Boolean(payee);
  let terms = NO_TERMS;
  let fxRateKnown = true;
  if (payeeKnown) {
    const payoutCurrency = choosePayoutCurrency({
      recipient: i.recipient, saleCurrency: i.currency, payeeChoice: payee?.payoutCurrency ?? null,
      platformCurrency: ctx.settings.platformPayoutCurrency, defaultCurrency: ctx.settings.defaultPayoutCurrency,
    });
    terms = { ...NO_TERMS, payoutCurrency };
    if (payoutCurrency !== i.currency) {
      const saleDay = utcDay(i.saleRecordedAt);
      const oldest = utcDay(new Date(i.saleRecordedAt.getTime() - ctx.settings.fxMaxRateAgeDays * DAY_MS));
      const rate = await ctx.repo.findFxRate(trx, i.currency, payoutCurrency, saleDay, oldest);
      if (rate) terms = { payoutCurrency, fxRate: rate.rate, fxRateDate: rate.rateDate, fxSource: rate.source };
      else fxRateKnown = false;
    }
  }
  const milestones = await ctx.repo.milestones(trx, i.orderId);
  const release = decideRelease({ recipient: i.recipient, payeeKnown, fxRateKnown, policy, saleRecordedAt: i.saleRecordedAt, ...milestones });
  if (terms.payoutCurrency && fxRateKnown && i.payableMinor > 0
    && convertRoundingDown(i.payableMinor, i.currency, terms.payoutCurrency, terms.fxRate ?? '1') === 0) {
    const owed = `${formatDecimal({ amountMinor: i.payableMinor, currency: i.currency })} ${i.currency}`;
    const skipReason = `CONVERTS_TO_ZERO: ${owed} is less than one payable unit of ${terms.payoutCurrency}`
      + (terms.fxRate ? ` at ${terms.fxRate} (${terms.fxRateDate})` : '') + '; nothing PayPal could send';
    return { status: 'SKIPPED', holdReason: null, releaseAt: null, ...terms, skipReason };
  }
  return { ...release, ...terms, skipReason: null };
}

function describeDecision(cause: string, d: PayoutDecision): string {
  const fx = d.fxRate ? `; paid in ${d.payoutCurrency} at ${d.fxRate} (rate of ${d.fxRateDate}, ${d.fxSource})` : d.payoutCurrency ? `; paid in ${d.payoutCurrency}` : '';
  if (d.status === 'SKIPPED') return `${cause}; skipped: ${d.skipReason}`;
  return cause + (d.holdReason ? `; held: ${d.holdReason}` : '; due') + fx;
}

/**
 * POST /admin/payouts/:id/retry → pay a FAILED or RETURNED intent, or one HELD because PayPal refused its batch
 * (PAYPAL_REFUSED:*), again under a new sender_item_id (attempt + 1).
 */
export async function retryIntent(ctx: PayoutsContext, intentId: string, cause: string): Promise<Intent> {
  const result = await ctx.db.transaction(async (trx) => {
    const intent = await ctx.repo.intent(trx, intentId, true);
    if (!intent) throw notFound('PAYOUT_NOT_FOUND', 'no such payout');
    const refused = intent.status === 'HELD' && isPayPalRefusal(intent.holdReason);
    if (intent.status !== 'FAILED' && intent.status !== 'RETURNED' && !refused) {
      throw conflict('PAYOUT_NOT_RETRIABLE', `a ${intent.status} payout cannot be retried; only FAILED, RETURNED or PayPal-refused (held) ones`);
    }
    if (intent.payableMinor <= 0) throw conflict('PAYOUT_NOTHING_OWED', 'nothing is owed on this payout any more');
    return scheduleRetry(ctx, trx, intent, new Date(), cause);
  });
  ctx.nudgeBatcher();
  return result;
}

export async function scheduleRetry(ctx: PayoutsContext, trx: Tx, intent: Intent, at: Date, cause: string): Promise<Intent> {
  const d = await releaseDecision(ctx, trx, intent);
  const releaseAt = d.status === 'DUE' && d.releaseAt.getTime() > at.getTime() ? d.releaseAt : at;
  return ctx.repo.updateIntent(trx, intent, {
    attempt: intent.attempt + 1,
    batchId: null,
    ...d,
    ...(d.status === 'DUE' ? { releaseAt } : {}),
  }, describeDecision(`${cause}: attempt ${intent.attempt + 1}`, d));
}

/** POST /admin/payouts/:id/cancel → ask PayPal (through the reconciliation poller) to cancel an UNCLAIMED item. */
export async function requestCancel(ctx: PayoutsContext, intentId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const intent = await ctx.repo.intent(trx, intentId, true);
    if (!intent) throw notFound('PAYOUT_NOT_FOUND', 'no such payout');
    const item = await ctx.repo.currentItem(trx, intent);
    if (intent.status !== 'SUBMITTED' || item?.status !== 'UNCLAIMED' || !item.paypalItemId) {
      throw conflict('PAYOUT_NOT_CANCELLABLE', `only UNCLAIMED payouts can be cancelled (this one is ${item?.status ?? intent.status})`);
    }
    await ctx.repo.updateItem(trx, item.id, { cancel_requested_at: trx.fn.now() });
    await ctx.repo.updateIntent(trx, intent, {}, 'operator asked PayPal to cancel the unclaimed item');
  });
  ctx.nudgeReconciler();
}

