import { parseDecimal } from '@postsale/contracts';
import { afterCommit, retryDelayMs, type OutboxRow, type Tx } from '@postsale/runtime';
import { outboxEvent, sendToReview, SupplierCallError, type Fulfillment, type FulfillmentDeps, type SupplierAnswer, type SupplierOrderStatus } from './ports';
import type { FulfillmentPatch } from './records';
import { closeReasonOf, Reasons, States, type State } from './states';

/**
 * Every commit here is conditional on the state AND on the claim's fencing token (`f.leaseVersion`): a worker whose
 * lease expired and whose order another replica has claimed since commits nothing.
 *
 * After the supplier accepted an order: follow it until it is paid (AWAITING_PAYMENT → PURCHASED, lesson 16), shipped
 * (PURCHASED → SHIPPED, tracking pushed to the marketplace through `tracking_pushes`) and delivered (SHIPPED →
 * DELIVERED). Each check is a read; between checks the order waits with exponential backoff.
 *
 * The supplier's answer behind a decision is recorded (supplier_responses, for the operator) in the statement of the
 * transition that records the decision — kept even when that statement finds the order moved or fenced off; an answer
 * that changes nothing is recorded on its own. An event the decision publishes is written by that statement too, only
 * if the order moved: a decision that nothing else goes with is one statement, no BEGIN/COMMIT.
 */
const PAID = new Set(['WAIT_SELLER_SEND_GOODS', 'SELLER_PART_SEND_GOODS', 'WAIT_BUYER_ACCEPT_GOODS', 'FINISH']);
const PAYMENT_FAILED = new Set(['RISK_CONTROL', 'IN_CANCEL']);

export async function runFollowUp(deps: FulfillmentDeps, f: Fulfillment): Promise<void> {
  const api = await deps.supplierFor(f.sellerId);
  if (!api || !f.supplierOrderId) {
    await later(deps, f, 'NO_SUPPLIER_ACCESS');
    return;
  }
  try {
    if (f.state === States.AWAITING_PAYMENT) {
      await decidePayment(deps, f, await api.getOrder(f.supplierOrderId));
      return;
    }

    if (f.state === States.PURCHASED) {
      const tracking = (await api.getTracking(f.supplierOrderId)).find((t) => t.trackingNumber);
      if (!tracking) {
        // No tracking yet: the order may have been closed at the supplier instead of shipped (seller_send_goods_timeout,
        // cancel_order_close_trade, risk…). Tracking would then never come: read the order so it is not polled forever.
        const order = await api.getOrder(f.supplierOrderId);
        const closed = closeReasonOf(order);
        if (closed || order.status === 'IN_CANCEL') {
          if (closed) await closedAtSupplier(deps, f, [States.PURCHASED], closed, orderAnswer(order));
          else await cancelledAtSupplier(deps, f, [States.PURCHASED], orderAnswer(order));
          return;
        }
        await later(deps, f, 'NOT_SHIPPED');
        return;
      }
      const answer: SupplierAnswer = { method: 'aliexpress.ds.order.tracking.get', outcome: 'SHIPPED', summary: { carrier: tracking.carrier, trackingNumber: tracking.trackingNumber } };
      const shippedAt = new Date(tracking.events.map((e) => e.at ?? Infinity).reduce((a, b) => Math.min(a, b), Date.now()));
      const event = outboxEvent(deps, f, 'OrderShipped', { carrier: tracking.carrier, trackingNumber: tracking.trackingNumber, shippedAt: shippedAt.getTime() });
      await deps.repo.transaction(async (trx) => {
        const moved = await moveWithEvent(deps, trx, f, [States.PURCHASED], States.SHIPPED, 'supplier tracking available', { carrier: tracking.carrier, trackingNumber: tracking.trackingNumber }, {
          carrier: tracking.carrier,
          trackingNumber: tracking.trackingNumber,
          shippedAt,
          statusChecks: 0,
          nextRunAt: new Date(Date.now() + deps.settings.trackingPollMinMs),
        }, { answer, event });
        if (!moved) return;
        // the marketplace step, in the same transaction: it cannot be forgotten (lessons 14-15)
        const pushable = f.marketplace === 'EBAY' || f.marketplace === 'MERCADOLIBRE';
        await deps.repo.insertTrackingPush(trx, f.orderId, f.sellerId, f.marketplace ?? 'UNKNOWN', pushable ? 'PENDING' : 'SKIPPED');
        // pushed at once by this process's worker, which otherwise looks for due pushes only rarely
        if (pushable) afterCommit(trx, () => deps.pushQueued?.());
        if (f.purchasedAt) deps.metrics.timeToTracking.observe((Date.now() - f.purchasedAt.getTime()) / 1000);
      });
      return;
    }

    if (f.state === States.SHIPPED) {
      const order = await api.getOrder(f.supplierOrderId);
      if (order.status !== 'FINISH') {
        await later(deps, f, order.status);
        return;
      }
      const answer = orderAnswer(order);
      const closed = closeReasonOf(order);
      if (closed) {
        await closedAtSupplier(deps, f, [States.SHIPPED], closed, answer);
        return;
      }
      const deliveredAt = new Date();
      const event = outboxEvent(deps, f, 'OrderDelivered', { deliveredAt: deliveredAt.getTime() });
      // one statement on its own: the event is written only if the order moved
      await moveWithEvent(deps, undefined, f, [States.SHIPPED], States.DELIVERED, 'supplier reports delivered', { supplierStatus: order.status }, { deliveredAt, nextRunAt: null }, { answer, event });
    }
  } catch (error) {
    if (!(error instanceof SupplierCallError)) throw error;
    deps.metrics.workerFailures.inc({ step: `follow_up_${f.state.toLowerCase()}`, code: error.code });
    deps.logger.warn({ orderId: f.orderId, code: error.code, state: f.state }, 'supplier status check failed; will retry');
    await later(deps, f, error.code);
  }
}

/**
 * A payment check's decision on the supplier's answer `order`, for an order AWAITING_PAYMENT. With `trx` its statements
 * join that transaction: the purchase worker decides the first check in the transaction that records the supplier's
 * acceptance (purchase.use-case), so a paid order is PURCHASED with one commit instead of two.
 */
export async function decidePayment(deps: FulfillmentDeps, f: Fulfillment, order: SupplierOrderStatus, trx?: Tx): Promise<void> {
  const answer = orderAnswer(order);
  const closed = closeReasonOf(order);
  if (closed) {
    await closedAtSupplier(deps, f, [States.AWAITING_PAYMENT], closed, answer, trx);
    return;
  }
  if (PAID.has(order.status) && order.amount) {
    const cost = parseDecimal(order.amount.amount, order.amount.currency);
    const purchasedAt = new Date();
    const event = outboxEvent(deps, f, 'PurchaseCompleted', {
      supplier: 'ALIEXPRESS',
      supplierOrderId: f.supplierOrderId!,
      supplierCost: cost,
      channel: (f.channel as 'API' | 'BROWSER') ?? 'API',
      purchasedAt: purchasedAt.getTime(),
    });
    // One statement (given no transaction, on its own: no BEGIN/COMMIT): the move, its transitions row, the answer and
    // the event, which is written only if the order moved.
    const moved = await moveWithEvent(deps, trx, f, [States.AWAITING_PAYMENT], States.PURCHASED, 'supplier payment settled', { supplierStatus: order.status, supplierCost: cost }, {
      supplierCost: cost,
      purchasedAt,
      statusChecks: 0,
      // a supplier paid a moment ago has not shipped: the first tracking look is a tracking interval away (it was
      // due at once, one claim and one empty answer per order)
      nextRunAt: new Date(Date.now() + deps.settings.trackingPollMinMs),
    }, { answer, event });
    if (!moved) return;
    afterCommit(trx, () => {
      deps.metrics.purchases.inc({ outcome: 'purchased', reason: 'none', channel: f.channel ?? 'API' });
      if (f.receivedAt) deps.metrics.orderToPurchase.observe((purchasedAt.getTime() - f.receivedAt.getTime()) / 1000);
    });
    return;
  }
  if (order.status === 'WAIT_COMPLETE_ADDRESS') {
    // Corrections: the supplier holds the order until its address is completed: a person must do that
    await sendToReview(deps, trx, f, [States.AWAITING_PAYMENT], {
      reason: Reasons.INCOMPLETE_ADDRESS,
      message: `supplier order ${f.supplierOrderId} waits for its address to be completed at AliExpress (WAIT_COMPLETE_ADDRESS)`,
      supplierCode: order.status,
      details: { supplierOrderId: f.supplierOrderId },
      publishFailure: false,
      fence: f.leaseVersion,
      answer,
    }, 'payment check');
    return;
  }
  if (PAYMENT_FAILED.has(order.status)) {
    await sendToReview(deps, trx, f, [States.AWAITING_PAYMENT], {
      reason: order.status === 'IN_CANCEL' ? Reasons.SUPPLIER_ORDER_CANCELLED : Reasons.SUPPLIER_PAYMENT_FAILED,
      message: `supplier order ${f.supplierOrderId} is ${order.status}: not paid`,
      supplierCode: order.status,
      details: { supplierOrderId: f.supplierOrderId },
      fence: f.leaseVersion,
      answer,
    }, 'payment check');
    return;
  }
  await keep(deps, f, answer, trx);
  await later(deps, f, order.status, trx); // PLACE_ORDER_SUCCESS = awaiting payment, PAYMENT_PROCESSING, …
}

/**
 * The order's move under this worker's fence, with the supplier's answer and the event it publishes, both written by
 * the transition's statement (the event only if the order moved). After the commit, the relay and the order's next
 * check are woken. Undefined when the order had moved or the fence was stale: nothing written but the answer.
 */
async function moveWithEvent(
  deps: FulfillmentDeps, trx: Tx | undefined, f: Fulfillment, from: State[], to: State, cause: string, details: unknown, patch: FulfillmentPatch,
  decided: { answer: SupplierAnswer; event: OutboxRow },
): Promise<Fulfillment | undefined> {
  const moved = await deps.repo.transition(trx, f.orderId, from, to, cause, details, patch, f.leaseVersion, decided);
  if (moved) {
    deps.outbox.written(trx);
    checkAgainAt(deps, moved.nextRunAt, trx);
  }
  return moved;
}

/** FINISH with a close end_reason: nothing was (or will be) delivered; a person decides (refund, re-buy…). */
async function closedAtSupplier(deps: FulfillmentDeps, f: Fulfillment, from: Array<Fulfillment['state']>, endReason: string, answer: SupplierAnswer, trx?: Tx): Promise<void> {
  await sendToReview(deps, trx, f, from, {
    reason: Reasons.SUPPLIER_ORDER_CLOSED,
    message: `supplier order ${f.supplierOrderId} is FINISH but closed (end_reason ${endReason})${f.state === States.PURCHASED ? ' before any tracking appeared: it will not ship' : ''}: not delivered`,
    supplierCode: endReason,
    details: { supplierOrderId: f.supplierOrderId, endReason },
    publishFailure: f.state === States.AWAITING_PAYMENT,
    fence: f.leaseVersion,
    answer,
  }, 'supplier status check');
}

/** IN_CANCEL after payment: the supplier is cancelling (and refunding) an order we paid; a person decides. */
async function cancelledAtSupplier(deps: FulfillmentDeps, f: Fulfillment, from: Array<Fulfillment['state']>, answer: SupplierAnswer): Promise<void> {
  await sendToReview(deps, undefined, f, from, {
    reason: Reasons.SUPPLIER_ORDER_CANCELLED,
    message: `supplier order ${f.supplierOrderId} is IN_CANCEL before any tracking appeared: it will not ship`,
    supplierCode: 'IN_CANCEL',
    details: { supplierOrderId: f.supplierOrderId },
    publishFailure: false,
    fence: f.leaseVersion,
    answer,
  }, 'supplier status check');
}


const orderAnswer = (order: { status: string }): SupplierAnswer => ({ method: 'aliexpress.trade.ds.order.get', outcome: order.status, summary: order });

/** Records an `answer` that changed nothing, on its own (one that led to a decision goes in the decision's statement). */
function keep(deps: FulfillmentDeps, f: Fulfillment, answer: SupplierAnswer, trx?: Tx): Promise<void> {
  return deps.repo.recordSupplierResponse(f.orderId, answer.method, answer.outcome, answer.summary, trx);
}

async function later(deps: FulfillmentDeps, f: Fulfillment, why: string, trx?: Tx): Promise<void> {
  const checks = f.statusChecks + 1;
  // a payment settles in seconds to minutes; tracking and delivery in days
  const { statusPollMinMs, statusPollMaxMs, trackingPollMinMs, trackingPollMaxMs } = deps.settings;
  const delay = f.state === States.AWAITING_PAYMENT ? retryDelayMs(checks, statusPollMinMs, statusPollMaxMs) : retryDelayMs(checks, trackingPollMinMs, trackingPollMaxMs);
  const next = new Date(Date.now() + delay);
  // fenced: a worker whose lease expired must not push back the next check of the worker that holds it now
  if (await deps.repo.update(trx, f.orderId, f.state, { statusChecks: checks, nextRunAt: next }, f.leaseVersion)) checkAgainAt(deps, next, trx);
  deps.logger.debug({ orderId: f.orderId, state: f.state, why, nextInMs: delay }, 'order checked; not moved');
}

/**
 * The order's next check, which this worker just scheduled: this process's follow-up worker is woken then (once `trx`
 * commits), instead of looking for due orders every WORKER_INTERVAL_MS.
 */
export function checkAgainAt(deps: FulfillmentDeps, at: Date | null, trx?: Tx): void {
  if (!at || !deps.followUpDue) return;
  afterCommit(trx, deps.followUpDue.bind(deps, at));
}
