import { maskText, type AdminAuditRecord } from '@postsale/runtime';
import type { PayoutsContext } from './context';
import { convertRoundingDown } from './payout-currency';
import { CONFIGURATION_HOLDS, isPayPalRefusal, partyOf, TERMINAL_STATUSES, type HoldReason, type IntentStatus } from './payout-rules';
import type { FxRate, Intent, PayoutItem } from './records';

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

export function intentView(intent: Intent, items: PayoutItem[], reveal = false) {
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
      attempt: i.attempt, senderItemId: i.senderItemId, receiver: reveal ? i.receiver : maskText(i.receiver) as string, amount: { amountMinor: i.amountMinor, currency: i.currency },
      owed: i.sourceCurrency && i.sourceAmountMinor !== null ? { amountMinor: i.sourceAmountMinor, currency: i.sourceCurrency } : null,
      fx: i.sourceCurrency && i.fxRateDate ? { rate: i.fxRate, rateDate: i.fxRateDate, rounding: 'down' } : null,
      status: i.status, payoutItemId: i.paypalItemId, transactionId: i.transactionId, error: i.errorName ? { name: i.errorName, message: i.errorMessage } : null,
      cancelRequestedAt: i.cancelRequestedAt?.toISOString() ?? null, createdAt: i.createdAt.toISOString(), updatedAt: i.updatedAt.toISOString(),
    })),
  };
}

/**
 * Personal data in a read (payee emails, item receivers) is masked unless an admin asks for it with a reason; the
 * reveal is recorded in admin_audit before anything is shown (who, what, why — never the data itself).
 */
export interface Reveal {
  actor: string;
  reason: string;
}

// The operator API's reads. Answers are views for the HTTP layer; nothing here writes except a reveal's audit row.

export async function listPayouts(ctx: PayoutsContext, filter: { status?: string; sellerId?: string; limit: number }, reveal?: Reveal) {
  const { store } = ctx;
  if (reveal) await recordReveal(ctx, reveal, filter.sellerId ? `seller:${filter.sellerId}` : 'payouts');
  const intents = await store.listIntents(filter);
  const items = await store.itemsOfIntents(intents.map((i) => i.id));
  return intents.map((i) => intentView(i, items, Boolean(reveal)));
}

export async function orderPayouts(ctx: PayoutsContext, orderId: string, reveal?: Reveal) {
  if (reveal) await recordReveal(ctx, reveal, `order:${orderId}`);
  return payoutsOf(ctx, orderId, Boolean(reveal));
}

/** Everything this service knows about one order (GET /admin/orders/:orderId). undefined when it knows nothing. */
export async function orderDetails(ctx: PayoutsContext, orderId: string, reveal?: Reveal) {
  const { store } = ctx;
  const [sales, reversals, milestones, payouts, history] = await Promise.all([
    store.salesForOrder(orderId),
    store.reversalsForOrder(orderId),
    store.milestones(orderId),
    payoutsOf(ctx, orderId, Boolean(reveal)),
    store.history(orderId),
  ]);
  if (sales.length === 0 && payouts.length === 0 && !milestones.shippedAt && !milestones.deliveredAt) return undefined;
  if (reveal) await recordReveal(ctx, reveal, `order:${orderId}`);
  const statuses = payouts.map((p) => p.status as IntentStatus);
  const state = statuses.length === 0 ? 'AWAITING_SALE' : statuses.every((s) => TERMINAL_STATUSES.includes(s)) ? 'SETTLED' : 'IN_PROGRESS';
  return {
    service: 'payouts',
    orderId,
    sellerId: sales[0]?.sellerId ?? payouts[0]?.sellerId ?? null,
    state,
    sales: sales.map((s) => ({
      saleId: s.saleId, currency: s.currency, saleAmountMinor: s.saleAmountMinor, platformCommissionMinor: s.platformCommissionMinor,
      sellerNetMinor: s.sellerNetMinor, isLoss: s.isLoss, recordedAt: s.recordedAt.toISOString(), causedBy: s.eventId,
    })),
    reversals: reversals.map((r) => ({
      reversalId: r.reversalId, saleId: r.saleId, kind: r.kind, currency: r.currency, commissionReversedMinor: r.commissionReversedMinor,
      sellerNetReversedMinor: r.sellerNetReversedMinor, reversedAt: r.reversedAt.toISOString(),
    })),
    milestones: { shippedAt: milestones.shippedAt?.toISOString() ?? null, deliveredAt: milestones.deliveredAt?.toISOString() ?? null },
    payouts,
    history: history.map((h) => ({ intentId: h.intentId, from: h.from, to: h.to, cause: h.cause, at: h.at.toISOString() })),
  };
}

/** A seller's balance per currency: what it owes back (clawbacks not yet netted), what is still to be paid, entries. */
export async function sellerBalance(ctx: PayoutsContext, sellerId: string, reveal?: Reveal) {
  const { store, settings } = ctx;
  if (reveal) await recordReveal(ctx, reveal, `seller:${sellerId}`);
  const entries = await store.balanceEntries(partyOf('SELLER', sellerId));
  const open = await store.sellerPayableTotals(sellerId, ['HELD', 'DUE', 'SUBMITTED', 'FAILED', 'RETURNED', 'NEEDS_REVIEW']);
  const paid = await store.sellerPayableTotals(sellerId, ['SENT']);
  const currencies = new Set<string>([...entries.map((e) => e.currency), ...open.map((o) => o.currency), ...paid.map((o) => o.currency)]);
  const payee = await store.payee(sellerId);
  return {
    sellerId,
    payee: payee ? {
      email: reveal ? payee.email : maskText(payee.email) as string, releasePolicy: payee.releasePolicy, releaseDelayDays: payee.releaseDelayDays,
      payoutCurrency: payee.payoutCurrency, defaultPayoutCurrency: settings.defaultPayoutCurrency, updatedAt: payee.updatedAt.toISOString(),
    } : null,
    balances: [...currencies].sort().map((currency) => {
      const ledger = entries.filter((e) => e.currency === currency).reduce((sum, e) => sum + e.amountMinor, 0);
      return {
        currency,
        /** what the seller owes back, not yet netted against a payout */
        clawbackOwedMinor: Math.max(0, -ledger),
        /** what is still to be paid to the seller (before netting) */
        pendingPayoutMinor: open.find((o) => o.currency === currency)?.totalMinor ?? 0,
        paidMinor: paid.find((o) => o.currency === currency)?.totalMinor ?? 0,
      };
    }),
    entries: entries.map((e) => ({
      kind: e.kind, amountMinor: e.amountMinor, currency: e.currency, orderId: e.orderId, payoutId: e.intentId, reference: e.reference,
      at: e.at.toISOString(),
    })),
  };
}

export async function fxRates(ctx: PayoutsContext, filter: { from?: string; to?: string; limit: number }): Promise<FxRate[]> {
  return ctx.store.listFxRates(filter);
}

/** The audit trail (its before/after are what an admin wrote: the trail of who changed a payee is the point of it). */
export async function auditTrail(ctx: PayoutsContext, filter: { target?: string; limit: number }): Promise<Array<Omit<AdminAuditRecord, 'at'> & { at: string }>> {
  return (await ctx.store.audit(filter)).map((a) => ({ ...a, at: a.at.toISOString() }));
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
  const intents = await ctx.store.openIntents();
  const violations = [];
  for (const r of intents) {
    const status = r.status;
    let since = r.statusSince.getTime();
    let deadline: number;
    let reason: string;
    if (status === 'DUE') {
      since = Math.max(since, r.releaseAt?.getTime() ?? 0);
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
      reason = `needs review: ${r.holdReason ?? 'batch outcome unknown'}`;
    } else if (CONFIGURATION_HOLDS.includes(r.holdReason as HoldReason) || isPayPalRefusal(r.holdReason)) {
      deadline = deadlines.dueSeconds;
      reason = `held: ${r.holdReason}`;
    } else {
      deadline = deadlines.heldSeconds;
      reason = `held: ${r.holdReason}`;
    }
    const ageSeconds = Math.max(0, Math.floor((now - since) / 1000));
    if (ageSeconds < deadline) continue;
    violations.push({
      orderId: r.orderId, sellerId: r.sellerId, state: status, since: new Date(since).toISOString(), ageSeconds, deadlineSeconds: deadline,
      reason: `${r.recipient.toLowerCase()} payout ${r.id}: ${reason}`,
    });
  }
  return { service: 'payouts', stage: 'payouts', generatedAt: new Date(now).toISOString(), violations };
}

async function payoutsOf(ctx: PayoutsContext, orderId: string, reveal: boolean) {
  const { store } = ctx;
  const intents = await store.intentsForOrder(orderId);
  const items = await store.itemsOfIntents(intents.map((i) => i.id));
  return intents.map((i) => intentView(i, items, reveal));
}

async function recordReveal(ctx: PayoutsContext, reveal: Reveal, target: string): Promise<void> {
  await ctx.store.recordAudit(undefined, { actor: reveal.actor, action: 'REVEAL_PERSONAL_DATA', target, reason: reveal.reason });
}
