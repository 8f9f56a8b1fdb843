import { formatDecimal, newEvent, parseDecimal, Streams, type FulfillmentEvent, type FxConversion, type Money, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import { commitWithNext, type Tx } from '@postsale/runtime';
import { convert } from './fx';
import { assertBalanced, mirrorPostings, payoutPostings, reversalPostings, salePostings } from './ledger';
import { computeBreakdown, reversalBetween, scheduledMarketplaceFee, type Breakdown } from './money-breakdown';
import {
  lockKeys, OrderStates, type AdjustmentRecord, type AppliedAmounts, type HistoryLine, type JournalEntryInput, type NewFacts, type OrderRecord, type OrderState,
  type SaleRecord, type SalesDeps, type StateMove, type TermsRead,
} from './ports';

type Hold = { hold: OrderState; reason: string };
type Prepared = { breakdown: Breakdown; supplierCostCharged: Money; fx: FxConversion | null; marketplaceFeeSource: SaleRecord['marketplaceFeeSource']; termsSource: SaleRecord['termsSource'] };

/** Deterministic: the same order always has the same sale id, whatever replays happen. */
export const saleIdFor = (orderId: string) => `sale-${orderId}`;

/*
 * The ledger flow, run inside the consumer's inbox transaction (or an admin request's transaction) `trx`: record what
 * an event says, then move the order as far as the known facts allow. Every write is keyed by a natural key (order,
 * refund id, journal entry key), so a replay through a fresh consumer group changes nothing.
 */

export async function recordOrderEvent(deps: SalesDeps, trx: Tx, event: OrderEvent): Promise<void> {
  if (event.type === 'OrderReceived') return recordOrderReceived(deps, trx, event);
  const { order } = await lockOrCreate(deps, trx, event, OrderStates.AWAITING_PURCHASE);
  let note: HistoryLine | undefined;
  switch (event.type) {
    case 'OrderCancelled': {
      const fresh = await remember(deps, trx, order, {
        adjustmentId: `${order.orderId}:cancel`, orderId: order.orderId, kind: 'CANCELLATION', refundId: null, amount: null, full: true,
        reason: event.payload.reason, occurredAt: new Date(event.payload.cancelledAt), eventId: event.eventId, status: 'PENDING',
      });
      note = { state: order.state, cause: 'OrderCancelled', detail: { eventId: event.eventId, reason: event.payload.reason, ignored: fresh ? undefined : 'already cancelled' } };
      if (!fresh) return deps.store.saveHistory(trx, order.orderId, [note]);
      break;
    }
    case 'OrderRefunded': {
      const p = event.payload;
      const fresh = await remember(deps, trx, order, {
        adjustmentId: `${order.orderId}:refund:${p.refundId}`, orderId: order.orderId, kind: 'REFUND', refundId: p.refundId, amount: p.amount,
        full: p.full, reason: p.reason, occurredAt: new Date(p.refundedAt), eventId: event.eventId, status: 'PENDING',
      });
      note = { state: order.state, cause: 'OrderRefunded', detail: { eventId: event.eventId, refundId: p.refundId, amount: p.amount, full: p.full, ignored: fresh ? undefined : 'refund id already known' } };
      if (!fresh) return deps.store.saveHistory(trx, order.orderId, [note]);
      break;
    }
  }
  await advance(deps, trx, order, event.type, event.eventId, true, note ? [note] : []);
}

/** The order's facts, recorded (with their history line) by the statement that locks the order, unless already known. */
async function recordOrderReceived(deps: SalesDeps, trx: Tx, event: Extract<OrderEvent, { type: 'OrderReceived' }>): Promise<void> {
  const p = event.payload;
  const { order, recorded, terms } = await lockOrCreate(deps, trx, event, OrderStates.AWAITING_PURCHASE, {
    order: {
      marketplace: p.marketplace, externalOrderId: p.externalOrderId, saleAmount: p.saleAmount, marketplaceFee: p.marketplaceFee ?? null,
      paymentFee: p.paymentFee ?? null, receivedAt: new Date(p.receivedAt), eventId: event.eventId,
    },
    cause: 'OrderReceived', detail: { eventId: event.eventId, saleAmount: p.saleAmount },
  });
  if (!recorded) {
    return deps.store.saveHistory(trx, order.orderId, [{ state: order.state, cause: 'OrderReceived', detail: { ignored: 'order already known', eventId: event.eventId } }]);
  }
  // a sale needs both facts: one learned by this event means no sale was recorded before it
  await advance(deps, trx, order, 'OrderReceived', event.eventId, false, [], terms);
}

export async function recordFulfillmentEvent(deps: SalesDeps, trx: Tx, event: FulfillmentEvent): Promise<void> {
  // A completed purchase, and a purchase fulfillment gave up for good (needsReview false: e.g. an operator cancelled
  // the order before buying), matter to the ledger; failures sent to review, shipping and delivery are fulfillment's story.
  if (event.type === 'PurchaseFailed' && !event.payload.needsReview) return recordPurchaseAbandoned(deps, trx, event);
  if (event.type !== 'PurchaseCompleted') return;
  const p = event.payload;
  const { order, recorded, terms } = await lockOrCreate(deps, trx, event, OrderStates.AWAITING_ORDER, {
    purchase: {
      supplier: p.supplier, supplierOrderId: p.supplierOrderId, supplierCost: p.supplierCost, purchasedAt: new Date(p.purchasedAt), knownAt: deps.now(),
      eventId: event.eventId,
    },
    cause: 'PurchaseCompleted', detail: { eventId: event.eventId, supplierCost: p.supplierCost },
  });
  if (!recorded) {
    return deps.store.saveHistory(trx, order.orderId, [{ state: order.state, cause: 'PurchaseCompleted', detail: { ignored: 'purchase already known', eventId: event.eventId } }]);
  }
  await advance(deps, trx, order, 'PurchaseCompleted', event.eventId, false, [], terms);
}

/**
 * Nothing was bought and nothing will be: the order is cancelled before any purchase, exactly as a marketplace
 * cancellation before purchase is (the same adjustment key, so both together are one cancellation): no sale, no
 * supplier cost, no commission, no payout. The buyer's payment never reached the reseller's books — the marketplace
 * collected it and refunds it — so no journal entry moves; the order's state and history say so, in minor units.
 */
async function recordPurchaseAbandoned(deps: SalesDeps, trx: Tx, event: Extract<FulfillmentEvent, { type: 'PurchaseFailed' }>): Promise<void> {
  const { order } = await lockOrCreate(deps, trx, event, OrderStates.AWAITING_PURCHASE);
  const p = event.payload;
  const fresh = await remember(deps, trx, order, {
    adjustmentId: `${order.orderId}:cancel`, orderId: order.orderId, kind: 'CANCELLATION', refundId: null, amount: null, full: true,
    reason: `${p.reasonCode}${p.message ? `: ${p.message}` : ''}`.slice(0, 500), occurredAt: new Date(p.failedAt), eventId: event.eventId, status: 'PENDING',
  });
  const note: HistoryLine = { state: order.state, cause: 'PurchaseFailed', detail: { eventId: event.eventId, reasonCode: p.reasonCode, needsReview: false, ignored: fresh ? undefined : 'already cancelled' } };
  if (!fresh) return deps.store.saveHistory(trx, order.orderId, [note]);
  await advance(deps, trx, order, 'PurchaseFailed', event.eventId, true, [note]);
}

/**
 * The payouts stream settles the payables: PayoutSent debits what it paid off (seller_payable, or the platform's
 * platform_commission) by the OWED amount and credits payouts_sent with what was paid (FX and rounding booked, see
 * payoutPostings); PayoutReturned re-credits it with the mirror of that entry. PayoutFailed moved no money: nothing
 * to book. Keyed by `payout:<payoutId>:<senderItemId>` and `return:<that key>`, so replays change nothing.
 */
export async function recordPayoutEvent(deps: SalesDeps, trx: Tx, event: PayoutEvent): Promise<void> {
  const { store } = deps;
  const now = deps.now();
  if (event.type === 'PayoutSent') {
    const p = event.payload;
    const postings = payoutPostings({ recipient: p.recipient, paid: p.amount, owed: p.owedAmount, fxRate: p.fxRate });
    assertBalanced(postings);
    // one statement: the order's row lock, the entry, and the history line saying whether it was new; the last one,
    // so the COMMIT goes with it
    await commitWithNext(trx);
    await store.postEntry(trx, {
      entryKey: `payout:${p.payoutId}:${p.senderItemId}`, orderId: event.orderId, sellerId: event.sellerId, kind: 'PAYOUT',
      description: `${p.recipient === 'SELLER' ? 'net profit' : 'platform commission'} paid through PayPal (item ${p.payoutItemId}, batch ${p.payoutBatchId})`
        + (p.owedAmount ? `: ${formatDecimal(p.amount)} ${p.amount.currency} for ${formatDecimal(p.owedAmount)} ${p.owedAmount.currency} owed${p.fxRate ? ` at ${p.fxRate} (${p.fxRateDate})` : ''}` : ''),
      postings, postedAt: new Date(p.sentAt || now.getTime()),
    }, { cause: 'PayoutSent', detail: { eventId: event.eventId, recipient: p.recipient, amount: p.amount, owed: p.owedAmount }, ignored: 'payout already settled' });
    return;
  }
  if (event.type === 'PayoutReturned') {
    const order = await store.lockOrder(trx, event.orderId);
    const note = async (detail: Record<string, unknown>) => {
      if (order) await store.saveHistory(trx, order.orderId, [{ state: order.state, cause: 'PayoutReturned', detail: { eventId: event.eventId, ...detail } }]);
    };
    const p = event.payload;
    const sent = await store.unreturnedPayoutEntry(trx, event.orderId, p.payoutId);
    if (!sent) {
      await note({ recipient: p.recipient, ignored: 'no settled payout to re-credit (never reported sent, or already returned)' });
      return;
    }
    await store.postEntry(trx, {
      entryKey: `return:${sent.entryKey}`, orderId: event.orderId, sellerId: event.sellerId, kind: 'PAYOUT_RETURN',
      description: `payout returned by PayPal (${p.status}: ${p.reason}); owed again`, postings: mirrorPostings(sent.postings), postedAt: new Date(p.returnedAt || now.getTime()),
    });
    await note({ recipient: p.recipient, amount: p.amount, status: p.status });
  }
}

/** Re-examines orders held for terms or rates, after an operator supplied them. Returns the order ids examined. */
export async function retryHeld(deps: SalesDeps, trx: Tx, state: typeof OrderStates.PENDING_TERMS | typeof OrderStates.AWAITING_FX_RATE, sellerId?: string, cause = 'admin'): Promise<string[]> {
  const ids = await deps.store.ordersInState(trx, state, sellerId);
  for (const id of ids) await advance(deps, trx, await lock(deps, trx, id), cause, null, true);
  return ids;
}

/**
 * Moves one order, locked by this transaction and as it now stands, as far as the facts allow: record the sale, then
 * apply pending cancellations/refunds. `saleMayExist` false skips looking for a sale this event made possible.
 * `history`: lines of this event not written yet; they are written with the order's new state, in one statement.
 * `terms`: the seller's terms when the statement that locked the order read them (under the terms lock).
 */
async function advance(
  deps: SalesDeps, trx: Tx, order: OrderRecord, cause: string, causationId: string | null, saleMayExist: boolean, history: HistoryLine[] = [], terms?: TermsRead,
): Promise<void> {
  const { store } = deps;
  const orderId = order.orderId;
  let sale = saleMayExist && order.order && order.purchase ? await store.findSale(orderId, trx) : undefined;
  // the order's count of adjustments is as current as its row lock: none means there is nothing to read
  const adjustments = order.adjustmentCount > 0 ? await store.adjustments(trx, orderId) : [];
  const pending = adjustments.filter((a) => a.status === 'PENDING');

  if (!sale) {
    if (!order.order || !order.purchase) {
      // No sale can exist yet. A cancellation (or full refund) before any purchase ends the order here: nothing was
      // bought, nothing is owed. The adjustment stays pending in case a purchase still completes.
      let state: OrderState = order.purchase ? OrderStates.AWAITING_ORDER : OrderStates.AWAITING_PURCHASE;
      let reason: string | null = null;
      if (!order.purchase && pending.some((a) => a.kind === 'CANCELLATION')) {
        state = OrderStates.CANCELLED;
        const paid = order.order?.saleAmount;
        reason = 'cancelled before any purchase: no sale, no supplier cost, no commission, nothing to pay'
          + (paid ? `; the buyer's ${formatDecimal(paid)} ${paid.currency} (${paid.amountMinor} minor units) is refunded by the marketplace` : '');
      } else if (!order.purchase && pending.some((a) => a.kind === 'REFUND' && a.full)) {
        state = OrderStates.REFUNDED;
        reason = 'refunded before any purchase: no sale, nothing to pay';
      }
      await transition(deps, trx, order, state, reason, cause, history);
      return;
    }
    const prepared = await prepare(deps, trx, order, terms);
    if ('hold' in prepared) {
      if (order.state !== prepared.hold || order.stateReason !== prepared.reason) deps.observer.saleHeld(trx, prepared.hold, prepared.reason);
      await transition(deps, trx, order, prepared.hold, prepared.reason, cause, history);
      return;
    }
    if (pending.length === 0) {
      // nothing to apply to it: the sale, its event, the order's state and the history lines are one statement
      await record(deps, trx, order, prepared, causationId, history, { ...stateAfter(prepared.breakdown, 0, adjustments), cause });
      return;
    }
    sale = await record(deps, trx, order, prepared, causationId, history);
  }

  let refunded = sale.refundedMinor;
  for (const adjustment of pending.sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime())) {
    refunded = await applyAdjustment(deps, trx, sale, adjustment, refunded, causationId);
  }
  sale.refundedMinor = refunded;

  const all = pending.length > 0 ? await store.adjustments(trx, orderId) : adjustments;
  const { state, reason } = stateAfter(sale.breakdown, refunded, all);
  await transition(deps, trx, order, state, reason, cause, history);
}

/** Where a recorded sale leaves the order, given what it has refunded and the order's adjustments as they now stand. */
function stateAfter(breakdown: Breakdown, refunded: number, all: AdjustmentRecord[]): { state: OrderState; reason: string | null } {
  const total = breakdown.saleAmount.amountMinor;
  if (all.some((a) => a.status === 'REJECTED')) return { state: OrderStates.NEEDS_REVIEW, reason: 'a refund could not be applied (see adjustments)' };
  if (refunded === total && total > 0) {
    return { state: all.some((a) => a.kind === 'CANCELLATION' && a.status === 'APPLIED') ? OrderStates.CANCELLED : OrderStates.REFUNDED, reason: null };
  }
  if (refunded > 0) return { state: OrderStates.PARTIALLY_REFUNDED, reason: null };
  if (breakdown.isLoss) return { state: OrderStates.LOSS, reason: 'gross profit not positive: no commission, nothing to pay' };
  return { state: OrderStates.RECORDED, reason: null };
}

async function prepare(deps: SalesDeps, trx: Tx, order: OrderRecord, read?: TermsRead): Promise<Prepared | Hold> {
  const { store, settings } = deps;
  const facts = order.order!;
  const purchase = order.purchase!;
  const currency = facts.saleAmount.currency;
  // read now unless the order's locking statement read them: under the shared terms lock either way
  const terms = read ? read.current : await store.findTerms(order.sellerId, trx);
  const rateBps = terms?.commissionRateBps ?? settings.defaultCommissionRateBps;
  if (rateBps === undefined) return { hold: OrderStates.PENDING_TERMS, reason: 'NO_COMMERCIAL_TERMS: the seller has no commission rate' };

  let marketplaceFee: Money;
  let marketplaceFeeSource: Prepared['marketplaceFeeSource'];
  if (facts.marketplaceFee) {
    if (facts.marketplaceFee.currency !== currency) {
      return { hold: OrderStates.NEEDS_REVIEW, reason: `MARKETPLACE_FEE_CURRENCY_MISMATCH: fee in ${facts.marketplaceFee.currency}, sale in ${currency}` };
    }
    marketplaceFee = facts.marketplaceFee;
    marketplaceFeeSource = 'MARKETPLACE';
  } else {
    const schedule = terms?.marketplaceFees[facts.marketplace];
    if (!schedule) return { hold: OrderStates.PENDING_TERMS, reason: `NO_FEE_SCHEDULE: no marketplace fee data and no ${facts.marketplace} fee schedule` };
    const fixedTable = schedule.fixed ?? {};
    const fixedText = fixedTable[currency];
    if (Object.keys(fixedTable).length > 0 && fixedText === undefined) {
      return { hold: OrderStates.PENDING_TERMS, reason: `NO_FIXED_FEE_FOR_CURRENCY: the ${facts.marketplace} schedule has no fixed fee in ${currency}` };
    }
    const fixedMinor = fixedText === undefined ? 0 : parseDecimal(fixedText, currency).amountMinor;
    marketplaceFee = scheduledMarketplaceFee(facts.saleAmount, schedule.percentBps, fixedMinor);
    marketplaceFeeSource = 'SCHEDULE';
  }

  // A missing payment fee means the processor reported none (marketplace-collected payments): zero, stated as such.
  const paymentFee = facts.paymentFee ?? { amountMinor: 0, currency };
  if (paymentFee.currency !== currency) {
    return { hold: OrderStates.NEEDS_REVIEW, reason: `PAYMENT_FEE_CURRENCY_MISMATCH: fee in ${paymentFee.currency}, sale in ${currency}` };
  }

  const charged = purchase.supplierCost;
  let supplierCost = charged;
  let fx: FxConversion | null = null;
  if (charged.currency !== currency) {
    const onOrBefore = isoDate(purchase.purchasedAt);
    const notBefore = isoDate(new Date(purchase.purchasedAt.getTime() - settings.fxMaxRateAgeDays * 86_400_000));
    const rate = await store.findFxRate(trx, charged.currency, currency, onOrBefore, notBefore);
    if (!rate) {
      return { hold: OrderStates.AWAITING_FX_RATE, reason: `NO_FX_RATE: no ${charged.currency}->${currency} rate dated ${notBefore}..${onOrBefore}` };
    }
    supplierCost = convert(charged, currency, rate.rate);
    fx = { fromCurrency: charged.currency, toCurrency: currency, rate: rate.rate, rateDate: rate.rateDate, source: rate.source };
  }

  const breakdown = computeBreakdown({ saleAmount: facts.saleAmount, marketplaceFee, paymentFee, supplierCost, commissionRateBps: rateBps });
  return { breakdown, supplierCostCharged: charged, fx, marketplaceFeeSource, termsSource: terms ? 'SELLER' : 'DEFAULT' };
}

/**
 * Records the sale and its journal entry, publishes SaleRecorded, in one statement; the history line joins `history`
 * for the state move. With `then` (nothing left to apply to the sale), the same statement also moves the order to
 * `then.state` and writes `history`, as `transition` would.
 */
async function record(
  deps: SalesDeps, trx: Tx, order: OrderRecord, prepared: Prepared, causationId: string | null, history: HistoryLine[],
  then?: { state: OrderState; reason: string | null; cause: string },
): Promise<SaleRecord> {
  const { store, events } = deps;
  const now = deps.now();
  const sale: SaleRecord = {
    saleId: saleIdFor(order.orderId), orderId: order.orderId, sellerId: order.sellerId, breakdown: prepared.breakdown,
    marketplaceFeeSource: prepared.marketplaceFeeSource, termsSource: prepared.termsSource, supplierCostCharged: prepared.supplierCostCharged,
    fx: prepared.fx, recordedAt: now, refundedMinor: 0,
  };
  const postings = salePostings(sale.breakdown, sale.supplierCostCharged);
  assertBalanced(postings);
  const b = sale.breakdown;
  const event = events.row(newEvent(Streams.sales, 'SaleRecorded', {
    saleId: sale.saleId, saleAmount: b.saleAmount, marketplaceFee: b.marketplaceFee, paymentFee: b.paymentFee, supplierCost: b.supplierCost,
    supplierCostCharged: sale.supplierCostCharged, fx: sale.fx, grossProfit: b.grossProfit, commissionRateBps: b.commissionRateBps,
    platformCommission: b.platformCommission, sellerNetProfit: b.sellerNetProfit, loss: b.loss, isLoss: b.isLoss, recordedAt: now.getTime(),
  }, { orderId: order.orderId, sellerId: order.sellerId, causationId, occurredAt: now.getTime() }));
  history.push({
    state: b.isLoss ? OrderStates.LOSS : OrderStates.RECORDED, cause: 'SaleRecorded',
    detail: { saleId: sale.saleId, commissionRateBps: b.commissionRateBps, termsSource: sale.termsSource, fx: sale.fx },
  });
  const entry: JournalEntryInput = { entryKey: `sale:${order.orderId}`, orderId: order.orderId, sellerId: order.sellerId, kind: 'SALE', description: `sale ${sale.saleId}`, postings, postedAt: now };
  await store.recordSale(trx, sale, entry, { event, ...(then ? stateChange(deps, order, then.state, then.reason, then.cause, history) : {}) });
  events.written(trx);
  deps.observer.saleRecorded(trx, sale, order.purchase!.purchasedAt);
  return sale;
}

/** Applies one cancellation/refund to a recorded sale; returns the new refunded total. */
async function applyAdjustment(deps: SalesDeps, trx: Tx, sale: SaleRecord, adjustment: AdjustmentRecord, refundedBefore: number, causationId: string | null): Promise<number> {
  const { store, events } = deps;
  const now = deps.now();
  const total = sale.breakdown.saleAmount.amountMinor;
  const currency = sale.breakdown.saleAmount.currency;
  if (adjustment.amount && adjustment.amount.currency !== currency) {
    await store.markAdjustment(trx, adjustment.adjustmentId, 'REJECTED', `REFUND_CURRENCY_MISMATCH: refund in ${adjustment.amount.currency}, sale in ${currency}`);
    return refundedBefore;
  }
  const remaining = total - refundedBefore;
  const wholeRemainder = adjustment.kind === 'CANCELLATION' || adjustment.full;
  const requested = wholeRemainder ? remaining : adjustment.amount!.amountMinor;
  const amount = Math.min(Math.max(requested, 0), remaining);
  if (amount === 0) {
    await store.markAdjustment(trx, adjustment.adjustmentId, 'IGNORED', remaining === 0 ? 'sale already fully reversed' : 'zero amount');
    return refundedBefore;
  }
  const refundedAfter = refundedBefore + amount;
  const reversal = reversalBetween(sale.breakdown, refundedBefore, refundedAfter);
  const reversalKind: AppliedAmounts['reversalKind'] =
    adjustment.kind === 'CANCELLATION' ? 'CANCELLATION' : refundedAfter === total ? 'FULL_REFUND' : 'PARTIAL_REFUND';
  const postings = reversalPostings(reversal);
  assertBalanced(postings);
  await store.postEntry(trx, {
    entryKey: `reversal:${adjustment.adjustmentId}`, orderId: sale.orderId, sellerId: sale.sellerId, kind: 'REVERSAL',
    description: `${reversalKind.toLowerCase()} of ${sale.saleId}${adjustment.refundId ? ` (refund ${adjustment.refundId})` : ''}`, postings, postedAt: now,
  });
  await store.setSaleRefunded(trx, sale.saleId, refundedAfter);
  const applied: AppliedAmounts = {
    reversalKind, refundedMinor: amount, commissionReversedMinor: reversal.commissionReversed.amountMinor,
    sellerNetReversedMinor: reversal.sellerNetReversed.amountMinor, lossAddedMinor: reversal.lossAdded.amountMinor,
  };
  await store.markAdjustment(trx, adjustment.adjustmentId, 'APPLIED', requested > remaining ? `capped at the unrefunded ${remaining}` : null, applied, now);
  await events.publish(trx, newEvent(Streams.sales, 'SaleReversed', {
    saleId: sale.saleId, reversalId: adjustment.adjustmentId, kind: reversalKind, refundedAmount: reversal.refunded,
    commissionReversed: reversal.commissionReversed, sellerNetReversed: reversal.sellerNetReversed, reversedAt: now.getTime(),
  }, { orderId: sale.orderId, sellerId: sale.sellerId, causationId: causationId ?? adjustment.eventId, occurredAt: now.getTime() }));
  deps.observer.saleReversed(trx, sale, applied);
  return refundedAfter;
}

/** Moves the order to `state` (when it changes) with its history line last, and writes the event's lines: one statement. */
async function transition(deps: SalesDeps, trx: Tx, order: OrderRecord, state: OrderState, reason: string | null, cause: string, history: HistoryLine[]): Promise<void> {
  const { history: lines, move } = stateChange(deps, order, state, reason, cause, history);
  await deps.store.saveHistory(trx, order.orderId, lines, move);
}

/** The history lines to write, and the move when the order's state (or its reason) changes: its line comes last. */
function stateChange(deps: SalesDeps, order: OrderRecord, state: OrderState, reason: string | null, cause: string, history: HistoryLine[]): { history: HistoryLine[]; move?: StateMove } {
  if (order.state === state && order.stateReason === reason) return { history };
  return { history: [...history, { state, cause, detail: reason ? { reason } : undefined }], move: { state, reason, at: deps.now() } };
}

/**
 * Takes the shared advisory locks, then creates (if new) and locks the order — and records the event's facts when given
 * — in one statement. Without the locks, an admin PUT of terms (or a rate) could commit between this transaction
 * reading "no terms" and committing PENDING_TERMS, and the sale would stay held. Shared: events do not block each other.
 */
function lockOrCreate(deps: SalesDeps, trx: Tx, event: { orderId: string; sellerId: string }, state: OrderState, facts?: NewFacts) {
  return deps.store.lockOrCreateOrder(trx, event.orderId, event.sellerId, state, deps.now(), [lockKeys.terms(event.sellerId), lockKeys.fxRates], facts);
}

async function lock(deps: SalesDeps, trx: Tx, orderId: string): Promise<OrderRecord> {
  const order = await deps.store.lockOrder(trx, orderId);
  if (!order) throw new Error(`order ${orderId} vanished inside its transaction`);
  return order;
}

/** Records a cancellation or refund; a new one counts on the order (in the database too, by trigger). */
async function remember(deps: SalesDeps, trx: Tx, order: OrderRecord, adjustment: AdjustmentRecord): Promise<boolean> {
  const fresh = await deps.store.insertAdjustment(trx, adjustment);
  if (fresh) order.adjustmentCount += 1;
  return fresh;
}

export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}
