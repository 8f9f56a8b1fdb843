import { money, newEvent, safeInteger, Streams, type Marketplace, type OrderEvent, type OrderReceived } from '@postsale/contracts';
import type { Metrics, OutboxWriter, Tx } from '@postsale/runtime';
import type { DeliveriesRepository, DeliveryStatus } from '../db/deliveries.repository';
import type { OrdersRepository } from '../db/orders.repository';
import type { MarketplaceOrderVerdict, RefundFacts } from './marketplace-order';
import { orderIdFor } from './order-id';

export interface Outcome {
  status: DeliveryStatus;
  reason: string | null;
  orderId: string | null;
}

export interface RecordDeps {
  transaction: <T>(fn: (trx: Tx) => Promise<T>) => Promise<T>;
  orders: OrdersRepository;
  deliveries: DeliveriesRepository;
  outbox: OutboxWriter;
  metrics: Metrics;
  /** the order as it goes on Kafka: the buyer's personal data sealed under its subject's key (crypto-shredding) */
  sealPersonal: (trx: Tx, orderId: string, order: OrderReceived) => Promise<OrderReceived>;
}

/**
 * Commits what a marketplace said about an order: the order row, its outbox event and the delivery's outcome in ONE
 * transaction, so a 2xx (given after this returns) means the event will be published. The unique
 * (marketplace, external order id) makes duplicates, retries and per-line notifications collapse to one event.
 */
export function createOrderRecorder(deps: RecordDeps) {
  const emitted = deps.metrics.counter('ingest_orders_emitted_total', 'Events ingest committed to the orders stream', ['marketplace', 'type']);

  async function publish(trx: Tx, event: OrderEvent, cause: string, deliveryId: string | null, refund?: { refundId: string; amountMinor: number }): Promise<boolean> {
    const recorded = await deps.orders.addEvent(trx, { orderId: event.orderId, eventId: event.eventId, type: event.type, cause, deliveryId, ...(refund ?? {}) });
    if (!recorded) return false;
    await deps.outbox.publish(trx, Streams.orders, event);
    return true;
  }

  return {
    async commitVerdict(deliveryId: string, marketplace: Marketplace, externalOrderId: string, sellerId: string, verdict: MarketplaceOrderVerdict): Promise<Outcome> {
      const orderId = orderIdFor(marketplace, externalOrderId);
      const decide = (trx: Tx, status: DeliveryStatus, reason: string | null, detail?: string) =>
        deps.deliveries.decide(trx, deliveryId, status, { reason, detail: detail ?? null, orderId, externalOrderId }).then(() => ({ status, reason, orderId }));
      const counted: Array<() => void> = [];
      const outcome = await deps.transaction(async (trx): Promise<Outcome> => {
        switch (verdict.kind) {
          case 'paid': {
            const created = await deps.orders.insertIfNew(trx, { orderId, sellerId, deliveryId, payload: verdict.order });
            if (!created) return decide(trx, 'duplicate', 'ORDER_ALREADY_RECEIVED');
            const sealed = await deps.sealPersonal(trx, orderId, verdict.order);
            await publish(trx, newEvent(Streams.orders, 'OrderReceived', sealed, { orderId, sellerId, causationId: deliveryId }), 'received from marketplace', deliveryId);
            counted.push(() => emitted.inc({ marketplace, type: 'OrderReceived' }));
            return decide(trx, 'accepted', null);
          }
          case 'cancelled': {
            const order = await deps.orders.get(orderId, trx, true);
            if (!order) return decide(trx, 'ignored', 'CANCELLED_BEFORE_RECEIPT');
            // a partially refunded order can still be cancelled (the rest of the money goes back)
            if (order.state !== 'RECEIVED' && order.state !== 'PARTIALLY_REFUNDED') return decide(trx, 'duplicate', `ORDER_ALREADY_${order.state}`);
            await deps.orders.update(trx, orderId, { state: 'CANCELLED' });
            await publish(trx, newEvent(Streams.orders, 'OrderCancelled', { marketplace, externalOrderId, reason: verdict.reason, cancelledAt: verdict.at }, {
              orderId, sellerId: order.seller_id, causationId: deliveryId,
            }), `cancelled: ${verdict.reason}`, deliveryId);
            counted.push(() => emitted.inc({ marketplace, type: 'OrderCancelled' }));
            return decide(trx, 'accepted', 'CANCELLED');
          }
          case 'not-paid':
            return decide(trx, 'ignored', 'NOT_PAID', `status ${verdict.status}`);
          case 'unmappable':
            return decide(trx, 'parked', verdict.reason, verdict.detail);
        }
      });
      counted.forEach((c) => c());
      return outcome;
    },

    /** One OrderRefunded per marketplace refund id; full when everything received has now been refunded. */
    async commitRefund(deliveryId: string, orderId: string, facts: RefundFacts): Promise<Outcome> {
      let emittedRefund: string | undefined;
      const outcome = await deps.transaction(async (trx): Promise<Outcome> => {
        const order = await deps.orders.get(orderId, trx, true);
        if (!order) throw new Error(`order ${orderId} vanished`);
        const decide = (status: DeliveryStatus, reason: string | null) => deps.deliveries.decide(trx, deliveryId, status, { reason, orderId, externalOrderId: order.external_order_id }).then(() => ({ status, reason, orderId }));
        if (facts.amount.currency !== order.currency) return decide('parked', 'REFUND_CURRENCY_MISMATCH');
        const sale = safeInteger(order.sale_amount_minor);
        const before = safeInteger(order.refunded_amount_minor);
        const after = facts.totalRefunded && facts.totalRefunded.currency === order.currency ? Math.max(facts.totalRefunded.amountMinor, before + facts.amount.amountMinor) : before + facts.amount.amountMinor;
        const full = after >= sale;
        const event = newEvent(Streams.orders, 'OrderRefunded', {
          marketplace: order.marketplace, externalOrderId: order.external_order_id, refundId: facts.refundId, amount: money(facts.amount.amountMinor, facts.amount.currency), full, reason: facts.reason, refundedAt: facts.at,
        }, { orderId, sellerId: order.seller_id, causationId: deliveryId });
        if (!(await publish(trx, event, `refund ${facts.refundId}`, deliveryId, { refundId: facts.refundId, amountMinor: facts.amount.amountMinor }))) {
          return decide('duplicate', 'REFUND_ALREADY_RECORDED');
        }
        await deps.orders.update(trx, orderId, { state: full ? 'REFUNDED' : 'PARTIALLY_REFUNDED', refundedMinor: after });
        emittedRefund = order.marketplace;
        return decide('accepted', full ? 'REFUNDED' : 'PARTIALLY_REFUNDED');
      });
      if (emittedRefund) emitted.inc({ marketplace: emittedRefund, type: 'OrderRefunded' });
      return outcome;
    },
  };
}
export type OrderRecorder = ReturnType<typeof createOrderRecorder>;
