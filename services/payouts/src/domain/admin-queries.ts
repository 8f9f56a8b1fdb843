import { safeInteger } from '@postsale/contracts';
import type { Intent, PayoutItem } from '../db/payouts.repository';
import type { PayoutsContext } from './context';
import { convertRoundingDown } from './payout-currency';
import { CONFIGURATION_HOLDS, isPayPalRefusal, partyOf, TERMINAL_STATUSES, type HoldReason, type IntentStatus } from './payout-rules';

/** What the intent's current payable amount pays in its payout currency (null while the currency or rate is unknown). */
function payoutOf(intent: Intent) {
  if (!intent.payoutCurrency) return null;
  const fx = intent.fxRate ? { rate: intent.fxRate, rateDate: intent.fxRateDate, source: intent.fxSource, rounding: 'down' } : null;
  if (intent.payoutCurrency !== intent.currency && !fx) return { currency: intent.payoutCurrency, amountMinor: null, fx: null };
  let amountMinor: number | null = null;
  try {
    amountMinor = convertRoundingDown(intent.payableMinor, intent.currency, intent.payoutCurrency, intent.fxRate ?? '1');
  } catch {
    amountMinor = null; // a currency PayPal does not take: the batcher decides the intent again
  }
  return { currency: intent.payoutCurrency, amountMinor, fx };
}

export interface IntegrityDeadlines {
  dueSeconds: number;
  submittedSeconds: number;
  heldSeconds: number;
}

export function intentView(intent: Intent, items: PayoutItem[]) {
  const now = Date.now();
  const heldUntil = intent.status === 'DUE' && intent.releaseAt && intent.releaseAt.getTime() > now ? intent.releaseAt.toISOString() : null;
  return {
    id: intent.id,
    orderId: intent.orderId,
    sellerId: intent.sellerId,
    saleId: intent.saleId,
    recipient: intent.recipient,
    status: intent.status,
    hold: intent.status === 'HELD' ? { reason: intent.holdReason, until: null } : heldUntil ? { reason: 'RELEASE_POLICY', until: heldUntil } : null,
    /** why an operator must look at it (e.g. PAYPAL_REFUSED_REPOST:AUTHORIZATION_ERROR); the history has PayPal's debug_id */
    review: intent.status === 'NEEDS_REVIEW' ? { reason: intent.holdReason ?? 'RESUBMIT_WINDOW_EXPIRED' } : null,
    amount: { amountMinor: intent.amountMinor, currency: intent.currency },
    reversed: { amountMinor: intent.reversedMinor, currency: intent.currency },
    offset: { amountMinor: intent.offsetMinor, currency: intent.currency },
    payable: { amountMinor: intent.payableMinor, currency: intent.currency },
    /** what the payable amount pays in the payee's payout currency, and the rate pinned for it */
    payout: payoutOf(intent),
    skipReason: intent.skipReason,
    attempt: intent.attempt,
    releaseAt: intent.releaseAt?.toISOString() ?? null,
    statusSince: intent.statusSince.toISOString(),
    createdAt: intent.createdAt.toISOString(),
    items: items.filter((i) => i.intentId === intent.id).map((i) => ({
      attempt: i.attempt, senderItemId: i.senderItemId, receiver: i.receiver, amount: { amountMinor: i.amountMinor, currency: i.currency },
      owed: i.sourceCurrency && i.sourceAmountMinor !== null ? { amountMinor: i.sourceAmountMinor, currency: i.sourceCurrency } : null,
      fx: i.sourceCurrency && i.fxRateDate ? { rate: i.fxRate, rateDate: i.fxRateDate, rounding: 'down' } : null,
      status: i.status, payoutItemId: i.paypalItemId, transactionId: i.transactionId, error: i.errorName ? { name: i.errorName, message: i.errorMessage } : null,
      cancelRequestedAt: i.cancelRequestedAt?.toISOString() ?? null, createdAt: i.createdAt.toISOString(), updatedAt: i.updatedAt.toISOString(),
    })),
  };
}

export async function listPayouts(ctx: PayoutsContext, filter: { status?: string; sellerId?: string; limit: number }) {
  const intents = await ctx.repo.listIntents(ctx.db, filter);
  const items = await ctx.repo.itemsOfIntents(ctx.db, intents.map((i) => i.id));
  return intents.map((i) => intentView(i, items));
}

export async function orderPayouts(ctx: PayoutsContext, orderId: string) {
  const intents = await ctx.repo.intentsForOrder(ctx.db, orderId);
  const items = await ctx.repo.itemsOfIntents(ctx.db, intents.map((i) => i.id));
  return intents.map((i) => intentView(i, items));
}

/** Everything this service knows about one order (GET /admin/orders/:orderId). undefined when it knows nothing. */
export async function orderDetails(ctx: PayoutsContext, orderId: string) {
  const [sales, reversals, milestones, payouts, history] = await Promise.all([
    ctx.repo.salesForOrder(ctx.db, orderId),
    ctx.repo.reversalsForOrder(ctx.db, orderId),
    ctx.repo.milestones(ctx.db, orderId),
    orderPayouts(ctx, orderId),
    ctx.repo.history(ctx.db, orderId),
  ]);
  if (sales.length === 0 && payouts.length === 0 && !milestones.shippedAt && !milestones.deliveredAt) return undefined;
  const statuses = payouts.map((p) => p.status as IntentStatus);
  const state = statuses.length === 0 ? 'AWAITING_SALE' : statuses.every((s) => TERMINAL_STATUSES.includes(s)) ? 'SETTLED' : 'IN_PROGRESS';
  return {
    service: 'payouts',
    orderId,
    sellerId: sales[0]?.seller_id ?? payouts[0]?.sellerId ?? null,
    state,
    sales: sales.map((s) => ({
      saleId: s.sale_id, currency: s.currency, saleAmountMinor: safeInteger(s.sale_amount_minor), platformCommissionMinor: safeInteger(s.platform_commission_minor),
      sellerNetMinor: safeInteger(s.seller_net_minor), isLoss: s.is_loss, recordedAt: new Date(s.recorded_at).toISOString(), causedBy: s.event_id,
    })),
    reversals: reversals.map((r) => ({
      reversalId: r.reversal_id, saleId: r.sale_id, kind: r.kind, currency: r.currency, commissionReversedMinor: safeInteger(r.commission_reversed_minor),
      sellerNetReversedMinor: safeInteger(r.seller_net_reversed_minor), reversedAt: new Date(r.reversed_at).toISOString(),
    })),
    milestones: { shippedAt: milestones.shippedAt?.toISOString() ?? null, deliveredAt: milestones.deliveredAt?.toISOString() ?? null },
    payouts,
    history: history.map((h) => ({ intentId: h.intent_id, from: h.from_status, to: h.to_status, cause: h.cause, at: new Date(h.at).toISOString() })),
  };
}

/** A seller's balance per currency: what it owes back (clawbacks not yet netted), what is still to be paid, entries. */
export async function sellerBalance(ctx: PayoutsContext, sellerId: string) {
  const party = partyOf('SELLER', sellerId);
  const entries = await ctx.repo.balanceEntries(ctx.db, party);
  const open = await ctx.db('payout_intents').where({ seller_id: sellerId, recipient: 'SELLER' }).whereIn('status', ['HELD', 'DUE', 'SUBMITTED', 'FAILED', 'RETURNED', 'NEEDS_REVIEW'])
    .select('currency').sum<{ currency: string; total: string }[]>('payable_minor as total').groupBy('currency');
  const paid = await ctx.db('payout_intents').where({ seller_id: sellerId, recipient: 'SELLER', status: 'SENT' })
    .select('currency').sum<{ currency: string; total: string }[]>('payable_minor as total').groupBy('currency');
  const currencies = new Set<string>([...entries.map((e) => String(e.currency)), ...open.map((o) => o.currency), ...paid.map((o) => o.currency)]);
  const payee = await ctx.repo.payee(ctx.db, sellerId);
  return {
    sellerId,
    payee: payee ? {
      email: payee.email, releasePolicy: payee.releasePolicy, releaseDelayDays: payee.releaseDelayDays,
      payoutCurrency: payee.payoutCurrency, defaultPayoutCurrency: ctx.settings.defaultPayoutCurrency, updatedAt: payee.updatedAt.toISOString(),
    } : null,
    balances: [...currencies].sort().map((currency) => {
      const ledger = entries.filter((e) => e.currency === currency).reduce((s, e) => s + safeInteger(e.amount_minor), 0);
      return {
        currency,
        /** what the seller owes back, not yet netted against a payout */
        clawbackOwedMinor: Math.max(0, -ledger),
        /** what is still to be paid to the seller (before netting) */
        pendingPayoutMinor: safeInteger(open.find((o) => o.currency === currency)?.total ?? 0),
        paidMinor: safeInteger(paid.find((o) => o.currency === currency)?.total ?? 0),
      };
    }),
    entries: entries.map((e) => ({
      kind: e.kind, amountMinor: safeInteger(e.amount_minor), currency: e.currency, orderId: e.order_id, payoutId: e.intent_id, reference: e.reference,
      at: new Date(e.created_at).toISOString(),
    })),
  };
}

/**
 * Integrity report, from the data. Violations:
 * - DUE past its release time + due deadline (should have gone out), FAILED/RETURNED owed again past the due deadline,
 * - SUBMITTED without a final PayPal outcome past the submitted deadline, every NEEDS_REVIEW intent,
 * - HELD for a missing payee or FX rate (or an unpayable amount) past the due deadline (configuration someone must fix),
 * - HELD by the release policy (awaiting shipment/delivery) only past the long held deadline: waiting for fulfillment
 *   is a known state, and fulfillment's own report covers a stuck shipment.
 */
export async function integrityReport(ctx: PayoutsContext, deadlines: IntegrityDeadlines) {
  const now = Date.now();
  const rows = await ctx.db('payout_intents').whereNotIn('status', TERMINAL_STATUSES);
  const violations = [];
  for (const r of rows) {
    const status = r.status as IntentStatus;
    let since = new Date(r.status_since).getTime();
    let deadline: number;
    let reason: string;
    if (status === 'DUE') {
      since = Math.max(since, new Date(r.release_at).getTime());
      deadline = deadlines.dueSeconds;
      reason = 'due but not paid';
    } else if (status === 'FAILED' || status === 'RETURNED') {
      deadline = deadlines.dueSeconds;
      reason = `payout ${status.toLowerCase()}; owed again and not retried`;
    } else if (status === 'SUBMITTED') {
      deadline = deadlines.submittedSeconds;
      reason = 'submitted to PayPal without a final outcome';
    } else if (status === 'NEEDS_REVIEW') {
      deadline = 0;
      reason = `needs review: ${r.hold_reason ?? 'batch outcome unknown'}`;
    } else if (CONFIGURATION_HOLDS.includes(r.hold_reason as HoldReason) || isPayPalRefusal(r.hold_reason)) {
      deadline = deadlines.dueSeconds;
      reason = `held: ${r.hold_reason}`;
    } else {
      deadline = deadlines.heldSeconds;
      reason = `held: ${r.hold_reason}`;
    }
    const ageSeconds = Math.max(0, Math.floor((now - since) / 1000));
    if (ageSeconds < deadline) continue;
    violations.push({
      orderId: r.order_id, sellerId: r.seller_id, state: status, since: new Date(since).toISOString(), ageSeconds, deadlineSeconds: deadline,
      reason: `${r.recipient.toLowerCase()} payout ${r.id}: ${reason}`,
    });
  }
  return { service: 'payouts', stage: 'payouts', generatedAt: new Date(now).toISOString(), violations };
}

