import { conflict, notFound, type AdminAuditEntry, type Tx } from '@postsale/runtime';
import { publish, type FulfillmentDeps } from './ports';
import { States, type State } from './states';

/** Where admin writes are recorded, in the transaction of the write itself. */
export interface AdminAuditLog {
  record(entry: AdminAuditEntry, trx: Tx): Promise<void>;
}

/** The reason code of an order an operator cancelled before anything was bought (also PurchaseFailed.reasonCode). */
export const CANCELLED_BY_OPERATOR = 'CANCELLED_BY_OPERATOR';

/**
 * States an operator may cancel from: nothing was bought yet. RECEIVED (waiting for the purchase worker) and
 * NEEDS_REVIEW — each only when no supplier order exists AND no earlier attempt may have placed one (its outcome
 * unknown, or placed without an id): such an order may be bought already and has to be settled at the supplier first.
 * PURCHASING (a call may be in flight) and every later state are refused.
 */
export const CANCELLABLE_STATES: State[] = [States.NEEDS_REVIEW, States.RECEIVED];

/**
 * An operator cancels an order fulfillment will not buy. In one transaction, under the order's row lock (so a purchase
 * worker either committed its attempt first — and we refuse — or finds the order CANCELLED and places nothing):
 * the transition to CANCELLED with the operator as the cause, the audit row, and PurchaseFailed with needsReview false
 * — "nothing was bought and nothing will be" — which takes the order to a terminal state in sales (no sale, no payout).
 */
export async function cancelBeforePurchase(deps: FulfillmentDeps, audit: AdminAuditLog, orderId: string, input: { reason: string; actor: string }) {
  return deps.repo.transaction(async (trx) => {
    const f = await deps.repo.getForUpdate(trx, orderId);
    if (!f) throw notFound('ORDER_NOT_FOUND', `no fulfillment for order ${orderId}`);
    if (f.state === States.CANCELLED) throw conflict('ALREADY_CANCELLED', 'the order is already cancelled');
    if (f.state === States.PURCHASING) throw conflict('PURCHASE_IN_FLIGHT', 'a purchase attempt is in progress; wait for its outcome');
    if (!CANCELLABLE_STATES.includes(f.state) || f.supplierOrderId) {
      throw conflict('BOUGHT_AT_SUPPLIER', `order is ${f.state}${f.supplierOrderId ? ` with supplier order ${f.supplierOrderId}` : ''}; only orders not bought at the supplier can be cancelled here`);
    }
    if (await deps.repo.mayHaveSupplierOrder(orderId, trx)) {
      throw conflict('BOUGHT_AT_SUPPLIER', `an earlier purchase with out_order_id ${f.outOrderId} may have been placed; settle it at the supplier (mark purchased, or retry to resolve) first`);
    }
    const before = { state: f.state, reason: f.reasonCode };
    const moved = await deps.repo.transition(trx, orderId, [f.state], States.CANCELLED, `operator cancel by ${input.actor}`, { reason: input.reason, previousReason: f.reasonCode }, {
      reasonCode: CANCELLED_BY_OPERATOR,
      reasonDetails: { message: input.reason, previousReason: f.reasonCode },
      nextRunAt: null,
    });
    if (!moved) throw conflict('STATE_CHANGED', 'the order changed state meanwhile; reload and try again');
    // The operator's words stay here (audit, transition); the event says only what happened.
    await publish(deps, trx, f, 'PurchaseFailed', {
      reasonCode: CANCELLED_BY_OPERATOR,
      supplierErrorCode: null,
      message: 'cancelled by an operator before any purchase',
      needsReview: false,
      failedAt: Date.now(),
    });
    await audit.record({
      actor: input.actor, action: 'CANCEL_ORDER', target: `order:${orderId}`, orderId, before, after: { state: States.CANCELLED, reason: CANCELLED_BY_OPERATOR }, reason: input.reason,
    }, trx);
    deps.metrics.purchases.inc({ outcome: 'cancelled', reason: CANCELLED_BY_OPERATOR, channel: f.channel ?? 'none' });
    return moved;
  });
}
