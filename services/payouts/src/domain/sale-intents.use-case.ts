import { randomUUID } from 'node:crypto';
import { money, type OrderDelivered, type OrderShipped, type SaleRecorded, type SaleReversed } from '@postsale/contracts';
import type { PayoutsContext } from './context';
import { decideIntent, decisionFacts, describeDecision, isDueNow, recordClawback, reevaluateIntents } from './intent-decisions';
import { applyReversal, type Recipient } from './payout-rules';
import type { Tx } from './ports';
import type { NewIntent } from './records';

export interface EventMeta {
  eventId: string;
  orderId: string;
  sellerId: string;
}

// What the sales and fulfillment streams do to payouts, inside the consumer's inbox transaction: a recorded sale
// becomes one intent per recipient, a reversal shrinks or claws back, a shipment or delivery releases what the
// seller's policy now allows. Intents that become due wake the batcher once the transaction committed.

/**
 * SaleRecorded → one intent per recipient (lesson 2: the (sale, recipient) pair is unique in the database, and the
 * sale itself is recorded once, so a re-delivered, re-published or replayed sale changes nothing). A zero or negative
 * share (a loss order) becomes a SKIPPED intent: visible, never sent to PayPal.
 */
export async function recordSale(ctx: PayoutsContext, trx: Tx, meta: EventMeta, sale: SaleRecorded): Promise<void> {
  const { store } = ctx;
  const commission = money(sale.platformCommission.amountMinor, sale.platformCommission.currency);
  const net = money(sale.sellerNetProfit.amountMinor, sale.sellerNetProfit.currency);
  const fresh = await store.insertSale(trx, {
    saleId: sale.saleId, orderId: meta.orderId, sellerId: meta.sellerId, currency: sale.saleAmount.currency,
    saleAmountMinor: sale.saleAmount.amountMinor, platformCommissionMinor: commission.amountMinor, sellerNetMinor: net.amountMinor,
    isLoss: sale.isLoss, eventId: meta.eventId, recordedAt: new Date(sale.recordedAt),
  });
  if (!fresh) {
    ctx.logger.info({ saleId: sale.saleId, orderId: meta.orderId, eventId: meta.eventId }, 'sale already recorded; no new intents');
    return;
  }
  // both shares are decided on one read of the payee and milestones, and inserted (with their history) in one statement
  const facts = decisionFacts(ctx, trx);
  const entries: Array<{ intent: NewIntent; cause: string }> = [];
  const shares: Array<[Recipient, { amountMinor: number; currency: string }]> = [['PLATFORM', commission], ['SELLER', net]];
  for (const [recipient, share] of shares) {
    const base = {
      id: randomUUID(), saleId: sale.saleId, orderId: meta.orderId, sellerId: meta.sellerId, recipient,
      currency: share.currency, amountMinor: share.amountMinor, saleRecordedAt: new Date(sale.recordedAt),
    };
    if (share.amountMinor <= 0) {
      entries.push({
        intent: { ...base, payableMinor: 0, status: 'SKIPPED', holdReason: null, releaseAt: null },
        cause: `SaleRecorded ${meta.eventId}: ${recipient.toLowerCase()} share is ${share.amountMinor} (${sale.isLoss ? 'loss order' : 'nothing owed'}); nothing to pay`,
      });
      continue;
    }
    const decision = await decideIntent(ctx, trx, { ...base, payableMinor: share.amountMinor }, facts);
    entries.push({ intent: { ...base, payableMinor: share.amountMinor, ...decision }, cause: describeDecision(`SaleRecorded ${meta.eventId}`, decision) });
  }
  const { reversed } = await store.insertSaleIntents(trx, sale.saleId, entries);
  const due = entries.filter((e) => isDueNow(e.intent)).length;
  // A reversal that arrived before its sale (should not happen on one partition, but replays and repairs exist): the
  // insert said so, read only then. The order's lock (insertSale) makes this exact: a reversal recorded concurrently
  // either committed before it (seen) or waited and sees these intents itself; a shipment likewise.
  if (reversed) {
    for (const r of await store.reversalsForSale(sale.saleId, trx)) {
      await applyReversalToSale(ctx, trx, sale.saleId, r.reversalId, { PLATFORM: r.commissionReversedMinor, SELLER: r.sellerNetReversedMinor });
    }
  }
  wakeBatcherAfterCommit(ctx, trx, due);
}

/**
 * SaleReversed → before payout the intent shrinks or is cancelled; what was already paid becomes a clawback the payee
 * owes, netted against its future payouts. Partial reversals reduce the intent by the reversed share.
 */
export async function reverseSale(ctx: PayoutsContext, trx: Tx, meta: EventMeta, reversal: SaleReversed): Promise<void> {
  const fresh = await ctx.store.insertReversal(trx, {
    reversalId: reversal.reversalId, saleId: reversal.saleId, orderId: meta.orderId, kind: reversal.kind,
    currency: reversal.refundedAmount.currency, commissionReversedMinor: reversal.commissionReversed.amountMinor,
    sellerNetReversedMinor: reversal.sellerNetReversed.amountMinor, reversedAt: new Date(reversal.reversedAt),
  });
  if (!fresh) return;
  await applyReversalToSale(ctx, trx, reversal.saleId, reversal.reversalId, {
    PLATFORM: reversal.commissionReversed.amountMinor, SELLER: reversal.sellerNetReversed.amountMinor,
  });
}

/** OrderShipped / OrderDelivered → remember the milestone and release what the seller's policy now allows. */
export async function recordMilestone(
  ctx: PayoutsContext, trx: Tx, meta: EventMeta, event: { type: 'OrderShipped'; payload: OrderShipped } | { type: 'OrderDelivered'; payload: OrderDelivered },
): Promise<void> {
  const { store } = ctx;
  if (event.type === 'OrderShipped') await store.recordMilestone(trx, meta.orderId, meta.sellerId, 'shipped', new Date(event.payload.shippedAt));
  else await store.recordMilestone(trx, meta.orderId, meta.sellerId, 'delivered', new Date(event.payload.deliveredAt));
  // the order's intents (one seller) share one read of its payee and milestones, made after the milestone was recorded
  const { due } = await reevaluateIntents(ctx, trx, await store.intentsAwaitingRelease(trx, { orderId: meta.orderId }), `${event.type} ${meta.eventId}`, decisionFacts(ctx, trx));
  wakeBatcherAfterCommit(ctx, trx, due);
}

async function applyReversalToSale(ctx: PayoutsContext, trx: Tx, saleId: string, reversalId: string, reversed: Record<Recipient, number>): Promise<void> {
  for (const intent of await ctx.store.intentsForSale(trx, saleId)) {
    const amount = reversed[intent.recipient];
    if (amount <= 0) continue;
    const effect = applyReversal(intent, amount);
    const cause = `SaleReversed ${reversalId}: ${amount} ${intent.currency} of the ${intent.recipient.toLowerCase()} share reversed`;
    await ctx.store.updateIntent(trx, intent, {
      reversedMinor: intent.reversedMinor + amount,
      payableMinor: effect.payableMinor,
      pendingReversalMinor: intent.pendingReversalMinor + effect.pendingMinor,
      ...(effect.cancel ? { status: 'CANCELLED', holdReason: null } : {}),
    }, effect.cancel ? `${cause}; cancelled before payout` : effect.pendingMinor > 0 ? `${cause}; in flight at PayPal, settled when the outcome is known` : cause);
    if (effect.clawbackMinor > 0) await recordClawback(ctx, trx, intent, effect.clawbackMinor, reversalId);
  }
}

/** The batcher cannot see the intents before the commit, so it is told after it (a rollback tells nobody). */
function wakeBatcherAfterCommit(ctx: PayoutsContext, trx: Tx, due: number): void {
  if (due > 0) ctx.store.afterCommit(trx, () => ctx.nudge.intentsDue(due));
}
