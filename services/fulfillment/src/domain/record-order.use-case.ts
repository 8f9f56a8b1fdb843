import type { OrderEvent } from '@postsale/contracts';
import { commitWithNext, type Tx } from '@postsale/runtime';
import { outOrderIdFor } from './out-order-id';
import { sendToReview, type FulfillmentDeps } from './ports';
import { Reasons, States } from './states';

/**
 * The orders consumer's use case. It only records: the fulfillment row and its transitions (and any event that follows
 * from the data alone), in the inbox transaction. It never calls the supplier; the purchase worker does that. Returns
 * true when that worker already has the recorded order (claimed as it was inserted): nothing to wake it for.
 */
export async function recordOrderEvent(deps: FulfillmentDeps, event: OrderEvent, trx: Tx): Promise<boolean> {
  switch (event.type) {
    case 'OrderReceived': {
      const p = event.payload;
      // an order with an address is bought next: by this process's purchase worker, when it has a free slot
      const handOver = p.shipTo ? deps.purchaseOnCommit?.(trx) : undefined;
      // with an address the insert is the last statement: the COMMIT goes with it
      if (p.shipTo) await commitWithNext(trx);
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
        handOver ? deps.settings.leaseMs : undefined,
      );
      // a second OrderReceived for the same order (re-ingested, replayed under another id) changes nothing
      if (!inserted) return false;
      if (handOver) {
        handOver(inserted);
        return true;
      }
      if (!p.shipTo) {
        // lesson 10: never invent an address; a person completes it
        await sendToReview(deps, trx, { orderId: event.orderId, sellerId: event.sellerId, channel: null }, [States.RECEIVED], {
          reason: Reasons.INCOMPLETE_ADDRESS,
          message: `the marketplace address is incomplete${p.shipToIssue ? ` (${p.shipToIssue})` : ''}`,
          details: { shipToIssue: p.shipToIssue },
        }, 'address check');
      }
      return false;
    }
    case 'OrderCancelled':
      await cancel(deps, trx, event.orderId, event.sellerId, `OrderCancelled ${event.eventId}`, { reason: event.payload.reason });
      return false;
    case 'OrderRefunded':
      // a full refund before anything was bought means: do not buy. After purchase the ledger handles it (sales).
      if (event.payload.full) await cancel(deps, trx, event.orderId, event.sellerId, `OrderRefunded ${event.eventId}`, { refundId: event.payload.refundId }, true);
      return false;
    case 'OrderPersonalDataErased':
      // The buyer's data was erased at ingest: our copy of the address goes too. An order not bought yet then waits
      // in review for an address (lesson 10: never invent one).
      await deps.repo.erasePersonalData(trx, event.orderId);
      return false;
  }
}

async function cancel(deps: FulfillmentDeps, trx: Tx, orderId: string, sellerId: string, cause: string, details: Record<string, unknown>, onlyBeforePurchase = false): Promise<void> {
  // The row is locked for the rest of the inbox transaction: a purchase worker committing its outcome (which locks it
  // too) either finished before — and we see its state — or waits for us and sees cancel_requested. Never lost.
  const f = await deps.repo.getForUpdate(trx, orderId);
  if (!f) {
    if (!onlyBeforePurchase) await deps.repo.insertCancelledPlaceholder(trx, orderId, sellerId, cause, details);
    return;
  }
  // An attempt whose outcome is unknown (or placed without an id) may have bought: such an order is never CANCELLED.
  const mayBeBought = (f.state === States.RECEIVED || f.state === States.NEEDS_REVIEW) && !f.supplierOrderId && (await deps.repo.mayHaveSupplierOrder(orderId, trx));
  // Nothing bought yet: stop here. (NEEDS_REVIEW without a supplier order is also "nothing bought".)
  if ((f.state === States.RECEIVED || (f.state === States.NEEDS_REVIEW && !f.supplierOrderId)) && !mayBeBought) {
    await deps.repo.transition(trx, orderId, [f.state], States.CANCELLED, cause, details, { reasonCode: 'CANCELLED_BY_MARKETPLACE', nextRunAt: null });
    return;
  }
  if (onlyBeforePurchase && !mayBeBought) return;
  if (f.state === States.PURCHASING) {
    // An attempt may be in flight: the purchase worker resolves it first, then cancels or sends it to review.
    if (!(await deps.repo.update(trx, orderId, States.PURCHASING, { cancelRequested: true }))) throw new Error(`order ${orderId} left PURCHASING under a row lock`);
    return;
  }
  if (mayBeBought) {
    // In review (or sent back by an operator) after an attempt whose outcome is unknown or placed without an id: it
    // may exist at the supplier, so it is not CANCELLED; it stays with a person, who now also has to cancel it there.
    const reason = f.reasonCode === Reasons.SUPPLIER_ORDER_ID_UNKNOWN ? Reasons.CANCEL_AT_SUPPLIER_REQUIRED : Reasons.UNRESOLVED_PURCHASE;
    const message = `the marketplace order was cancelled but an earlier purchase with out_order_id ${f.outOrderId} may have been placed; look for it at the supplier and cancel it there`;
    if (f.state === States.NEEDS_REVIEW) {
      await deps.repo.transition(trx, orderId, [States.NEEDS_REVIEW], States.NEEDS_REVIEW, cause, { reason, previousReason: f.reasonCode, ...details }, {
        reasonCode: reason,
        reasonDetails: { message, previousReason: f.reasonCode, outOrderId: f.outOrderId, ...details },
        cancelRequested: true,
      });
    } else {
      await sendToReview(deps, trx, f, [f.state], { reason, message, details: { outOrderId: f.outOrderId, ...details }, publishFailure: false }, cause);
      await deps.repo.update(trx, orderId, States.NEEDS_REVIEW, { cancelRequested: true });
    }
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
