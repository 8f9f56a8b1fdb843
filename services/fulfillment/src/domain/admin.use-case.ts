import { AppError, conflict, notFound } from '@postsale/runtime';
import type { Money } from '@postsale/contracts';
import { publish, type FulfillmentDeps } from './ports';
import { APPROVABLE_REASONS, Reasons, States, TERMINAL_STATES, type State } from './states';

/** Out of review and due now, with the attempt counters of a new order (retry and approval). */
const freshStart = () => ({ reasonCode: null, reasonDetails: null, purchaseAttempts: 0, statusChecks: 0, nextRunAt: new Date() });

/** Operator actions. Each is one conditional transition, recorded with the operator as the cause. */
export async function retryOrder(deps: FulfillmentDeps, orderId: string, operator: string) {
  const f = await deps.repo.get(orderId);
  if (!f) throw notFound('ORDER_NOT_FOUND', `no fulfillment for order ${orderId}`);
  if (f.state !== States.NEEDS_REVIEW) throw conflict('NOT_IN_REVIEW', `order is ${f.state}; only orders in review can be retried`);
  if (f.reasonCode === Reasons.CANCEL_AT_SUPPLIER_REQUIRED) throw conflict('CANCELLED_ORDER', 'the marketplace order was cancelled; cancel at the supplier instead of retrying');
  if (f.reasonCode === Reasons.SUPPLIER_ORDER_ID_UNKNOWN && !f.supplierOrderId) {
    // retrying would place it again under the same key (REPEATED_ORDER_ERROR) or, after 24 h, buy a second time
    throw conflict('PLACED_AT_SUPPLIER', 'AliExpress says this order was already placed; link it with mark-purchased instead of retrying');
  }
  // A supplier order already exists: follow it again instead of buying (purchased ones resume tracking).
  const to: State = f.supplierOrderId ? (f.purchasedAt ? States.PURCHASED : States.AWAITING_PAYMENT) : States.RECEIVED;
  const moved = await deps.repo.transaction((trx) =>
    deps.repo.transition(trx, orderId, [States.NEEDS_REVIEW], to, `operator retry by ${operator}`, { previousReason: f.reasonCode }, freshStart()),
  );
  if (!moved) throw conflict('STATE_CHANGED', 'the order changed state meanwhile; reload and try again');
  return moved;
}

export async function approveOrder(deps: FulfillmentDeps, orderId: string, maxSupplierCost: Money, operator: string) {
  const f = await deps.repo.get(orderId);
  if (!f) throw notFound('ORDER_NOT_FOUND', `no fulfillment for order ${orderId}`);
  if (f.state !== States.NEEDS_REVIEW || !APPROVABLE_REASONS.includes(f.reasonCode ?? '')) {
    throw conflict('NOT_APPROVABLE', `only orders in review for ${APPROVABLE_REASONS.join('/')} can be approved; this one is ${f.state} ${f.reasonCode ?? ''}`.trim());
  }
  const moved = await deps.repo.transaction((trx) =>
    deps.repo.transition(trx, orderId, [States.NEEDS_REVIEW], States.RECEIVED, `operator approval by ${operator}`, { maxSupplierCost, previousReason: f.reasonCode }, {
      ...freshStart(),
      approvedMax: maxSupplierCost,
      approvedBy: operator,
    }),
  );
  if (!moved) throw conflict('STATE_CHANGED', 'the order changed state meanwhile; reload and try again');
  return moved;
}

/** Bought by hand: record it and say so (PurchaseCompleted, channel MANUAL); tracking follows as for any order. */
export async function markPurchased(deps: FulfillmentDeps, orderId: string, input: { supplierOrderId: string; supplierCost: Money }, operator: string) {
  const f = await deps.repo.get(orderId);
  if (!f) throw notFound('ORDER_NOT_FOUND', `no fulfillment for order ${orderId}`);
  const from: State[] = [States.NEEDS_REVIEW, States.RECEIVED, States.AWAITING_PAYMENT];
  if (!from.includes(f.state)) throw conflict('NOT_MARKABLE', `order is ${f.state}; only ${from.join(', ')} orders can be marked purchased`);
  if (f.cancelRequested) throw conflict('CANCELLED_ORDER', 'the marketplace order was cancelled');
  if (f.supplierOrderId && f.supplierOrderId !== input.supplierOrderId) {
    throw conflict('SUPPLIER_ORDER_MISMATCH', `this order already has supplier order ${f.supplierOrderId}`);
  }
  const purchasedAt = new Date();
  return deps.repo.transaction(async (trx) => {
    const moved = await deps.repo.transition(trx, orderId, [f.state], States.PURCHASED, `marked purchased by ${operator}`, { ...input, previousReason: f.reasonCode }, {
      supplierOrderId: input.supplierOrderId,
      supplierCost: input.supplierCost,
      channel: 'MANUAL',
      purchasedAt,
      reasonCode: null,
      reasonDetails: null,
      statusChecks: 0,
      nextRunAt: new Date(),
    });
    if (!moved) throw conflict('STATE_CHANGED', 'the order changed state meanwhile; reload and try again');
    await publish(deps, trx, f, 'PurchaseCompleted', {
      supplier: 'ALIEXPRESS',
      supplierOrderId: input.supplierOrderId,
      supplierCost: input.supplierCost,
      channel: 'MANUAL',
      purchasedAt: purchasedAt.getTime(),
    });
    deps.metrics.purchases.inc({ outcome: 'purchased', reason: 'manual', channel: 'MANUAL' });
    return moved;
  });
}

export interface Deadlines {
  RECEIVED: number;
  PURCHASING: number;
  AWAITING_PAYMENT: number;
  PURCHASED: number;
  SHIPPED: number;
  trackingPush: number;
}

/** Computed from the data: every non-terminal order past its stage deadline, and every tracking push stuck. */
export async function integrityReport(deps: FulfillmentDeps, deadlines: Deadlines) {
  const now = Date.now();
  const stateDeadlines: Partial<Record<State, number>> = {
    RECEIVED: deadlines.RECEIVED,
    PURCHASING: deadlines.PURCHASING,
    AWAITING_PAYMENT: deadlines.AWAITING_PAYMENT,
    PURCHASED: deadlines.PURCHASED,
    SHIPPED: deadlines.SHIPPED,
  };
  const overdue = await deps.repo.overdue(stateDeadlines);
  const pushes = await deps.repo.overduePushes(deadlines.trackingPush);
  const violations = [
    ...overdue
      .filter((o) => !TERMINAL_STATES.includes(o.state))
      .map((o) => ({
        orderId: o.orderId,
        sellerId: o.sellerId,
        state: o.state,
        since: o.since.toISOString(),
        ageSeconds: Math.floor((now - o.since.getTime()) / 1000),
        deadlineSeconds: stateDeadlines[o.state]!,
        reason: `${o.state} for longer than ${stateDeadlines[o.state]} s`,
      })),
    ...pushes.map((p) => ({
      orderId: p.orderId,
      sellerId: p.sellerId,
      state: `TRACKING_PUSH_${p.status}`,
      since: p.since.toISOString(),
      ageSeconds: Math.floor((now - p.since.getTime()) / 1000),
      deadlineSeconds: deadlines.trackingPush,
      reason: `tracking not pushed to the marketplace${p.lastError ? `: ${p.lastError}` : ''}`,
    })),
  ];
  return { service: 'fulfillment', stage: 'fulfillment', generatedAt: new Date(now).toISOString(), violations };
}

export function assertFound<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new AppError('ORDER_NOT_FOUND', `${what} not found`, { status: 404 });
  return value;
}
