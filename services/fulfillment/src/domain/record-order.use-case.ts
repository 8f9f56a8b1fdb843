import type { OrderEvent } from '@postsale/contracts';
import type { Tx } from '@postsale/runtime';
import { outOrderIdFor } from './out-order-id';
import { sendToReview, type FulfillmentDeps } from './ports';
import { Reasons, States } from './states';

/**
 * The orders consumer's use case. It only records: the fulfillment row and its transitions (and any event that follows
 * from the data alone), in the inbox transaction. It never calls the supplier; the purchase worker does that.
 */
export async function recordOrderEvent(deps: FulfillmentDeps, event: OrderEvent, trx: Tx): Promise<void> {
  switch (event.type) {
    case 'OrderReceived': {
      const p = event.payload;
      const inserted = await deps.repo.insertReceived(
        trx,
        {
          orderId: event.orderId,
          sellerId: event.sellerId,
          marketplace: p.marketplace,
          externalOrderId: p.externalOrderId,
          marketplaceAccountId: p.marketplaceAccountId,
          lines: p.lines,
          shipTo: p.shipTo,
          shipToIssue: p.shipToIssue,
          saleAmount: p.saleAmount,
          marketplaceFee: p.marketplaceFee,
          paymentFee: p.paymentFee,
          outOrderId: outOrderIdFor(event.orderId),
          receivedAt: new Date(p.receivedAt),
        },
        `OrderReceived ${event.eventId}`,
      );
      // a second OrderReceived for the same order (re-ingested, replayed under another id) changes nothing
      if (!inserted) return;
      if (!p.shipTo) {
        // lesson 10: never invent an address; a person completes it
        await sendToReview(deps, trx, { orderId: event.orderId, sellerId: event.sellerId, channel: null }, [States.RECEIVED], {
          reason: Reasons.INCOMPLETE_ADDRESS,
          message: `the marketplace address is incomplete${p.shipToIssue ? ` (${p.shipToIssue})` : ''}`,
          details: { shipToIssue: p.shipToIssue },
        }, 'address check');
      }
      return;
    }
    case 'OrderCancelled':
      return cancel(deps, trx, event.orderId, event.sellerId, `OrderCancelled ${event.eventId}`, { reason: event.payload.reason });
    case 'OrderRefunded':
      // a full refund before anything was bought means: do not buy. After purchase the ledger handles it (sales).
      if (event.payload.full) return cancel(deps, trx, event.orderId, event.sellerId, `OrderRefunded ${event.eventId}`, { refundId: event.payload.refundId }, true);
      return;
    case 'OrderPersonalDataErased':
      // The buyer's data was erased at ingest: our copy of the address goes too. An order not bought yet then waits
      // in review for an address (lesson 10: never invent one).
      await deps.repo.erasePersonalData(trx, event.orderId);
      return;
  }
}

async function cancel(deps: FulfillmentDeps, trx: Tx, orderId: string, sellerId: string, cause: string, details: Record<string, unknown>, onlyBeforePurchase = false): Promise<void> {
  const f = await deps.repo.get(orderId, trx);
  if (!f) {
    if (!onlyBeforePurchase) await deps.repo.insertCancelledPlaceholder(trx, orderId, sellerId, cause, details);
    return;
  }
  // Nothing bought yet: stop here. (NEEDS_REVIEW without a supplier order is also "nothing bought".)
  if (f.state === States.RECEIVED || (f.state === States.NEEDS_REVIEW && !f.supplierOrderId)) {
    await deps.repo.transition(trx, orderId, [f.state], States.CANCELLED, cause, details, { reasonCode: 'CANCELLED_BY_MARKETPLACE', nextRunAt: null });
    return;
  }
  if (onlyBeforePurchase) return;
  if (f.state === States.PURCHASING) {
    // An attempt may be in flight: the purchase worker resolves it first, then cancels or sends it to review.
    await deps.repo.update(trx, orderId, States.PURCHASING, { cancelRequested: true });
    return;
  }
  if (f.state === States.AWAITING_PAYMENT || f.state === States.PURCHASED) {
    // The Dropshipping API has no order-cancel method (the sandbox documents none either): a person cancels it.
    await sendToReview(deps, trx, f, [f.state], {
      reason: Reasons.CANCEL_AT_SUPPLIER_REQUIRED,
      message: `the marketplace order was cancelled after supplier order ${f.supplierOrderId} was placed; cancel it at the supplier`,
      details: { supplierOrderId: f.supplierOrderId, ...details },
      publishFailure: false,
    }, cause);
    await deps.repo.update(trx, orderId, States.NEEDS_REVIEW, { cancelRequested: true });
  }
  // SHIPPED / DELIVERED / CANCELLED: too late or already done; the ledger (sales) reverses the sale.
}

