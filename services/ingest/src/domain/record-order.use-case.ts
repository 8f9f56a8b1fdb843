import { money, newEvent, Streams, type Marketplace, type OrderEvent, type OrderReceived, type SubjectKey } from '@postsale/contracts';
import type { OutboxWriter, Tx } from '@postsale/runtime';
import type { IngestMetrics } from '../metrics';
import type { MarketplaceOrderVerdict, RefundFacts } from './marketplace-order';
import { orderIdFor } from './order-id';
import type { DeliveryStore, OrderStore, Transaction } from './ports';
import type { DecisionFields, Delivery, DeliveryStatus } from './records';

/** The delivery a verdict is committed for, under its lease. */
export type LeasedDelivery = Pick<Delivery, 'id' | 'fence'>;

export interface Outcome {
  status: DeliveryStatus;
  reason: string | null;
  orderId: string | null;
}

export interface RecordDeps {
  transaction: Transaction;
  orders: OrderStore;
  deliveries: DeliveryStore;
  outbox: OutboxWriter;
  metrics: IngestMetrics;
  /**
   * Inserts the order unless it is known and, when it is new, returns it as it goes on Kafka: the buyer's personal data
   * sealed under its subject's key (crypto-shredding), with that key when it was issued for this order (it goes on the
   * subject-keys topic before the order's event). Undefined when the order was known: nothing was written.
   */
  receiveOrder: (trx: Tx, row: { orderId: string; sellerId: string; deliveryId: string; payload: OrderReceived }) => Promise<{ sealed: OrderReceived; issuedKey: SubjectKey | null } | undefined>;
}

/** An emitted event as the delivery's decision records it (order_events), in the decision's own statement. */
type Emitted = NonNullable<DecisionFields['event']>;
const recorded = (event: OrderEvent, cause: string): Emitted => ({ orderId: event.orderId, eventId: event.eventId, type: event.type, cause });

/**
 * Commits what a marketplace said about an order: the order row, its outbox event and the delivery's outcome in ONE
 * transaction, so a 2xx (given after this returns) means the event will be published. The unique
 * (marketplace, external order id) makes duplicates, retries and per-line notifications collapse to one event.
 */
export function createOrderRecorder(deps: RecordDeps) {
  const emitted = deps.metrics.emitted;

  /** A refund's event, once per refund id: false (and nothing published) when that refund was recorded already. */
  async function publishRefund(trx: Tx, event: OrderEvent, cause: string, deliveryId: string, refund: { refundId: string; amountMinor: number }): Promise<boolean> {
    if (!(await deps.orders.addEvent(trx, { orderId: event.orderId, eventId: event.eventId, type: event.type, cause, deliveryId, ...refund }))) return false;
    await deps.outbox.publish(trx, Streams.orders, event);
    return true;
  }

  return {
    async commitVerdict(delivery: LeasedDelivery, marketplace: Marketplace, externalOrderId: string, sellerId: string, verdict: MarketplaceOrderVerdict): Promise<Outcome> {
      const deliveryId = delivery.id;
      const orderId = orderIdFor(marketplace, externalOrderId);
      const decide = (trx: Tx, status: DeliveryStatus, reason: string | null, detail?: string, event?: Emitted) =>
        deps.deliveries.decide(trx, deliveryId, status, { fence: delivery.fence, reason, detail: detail ?? null, orderId, externalOrderId, event }).then(() => ({ status, reason, orderId }));
      const counted: Array<() => void> = [];
      const outcome = await deps.transaction(async (trx): Promise<Outcome> => {
        switch (verdict.kind) {
          case 'paid': {
            // Three statements for a new order (issue 15): the order with its subject's key and link; the event's outbox
            // row, after the key's when it was issued here; the delivery's decision with the event's record.
            const received = await deps.receiveOrder(trx, { orderId, sellerId, deliveryId, payload: verdict.order });
            if (!received) return decide(trx, 'duplicate', 'ORDER_ALREADY_RECEIVED');
            const event = newEvent(Streams.orders, 'OrderReceived', received.sealed, { orderId, sellerId, causationId: deliveryId });
            await deps.outbox.publish(trx, Streams.orders, event, { subjectKey: received.issuedKey });
            counted.push(() => emitted.inc({ marketplace, type: 'OrderReceived' }));
            return decide(trx, 'accepted', null, undefined, recorded(event, 'received from marketplace'));
          }
          case 'cancelled': {
            const order = await deps.orders.get(orderId, trx, true);
            if (!order) return decide(trx, 'ignored', 'CANCELLED_BEFORE_RECEIPT');
            // a partially refunded order can still be cancelled (the rest of the money goes back)
            if (order.state !== 'RECEIVED' && order.state !== 'PARTIALLY_REFUNDED') return decide(trx, 'duplicate', `ORDER_ALREADY_${order.state}`);
            await deps.orders.update(trx, orderId, { state: 'CANCELLED' });
            const event = newEvent(Streams.orders, 'OrderCancelled', { marketplace, externalOrderId, reason: verdict.reason, cancelledAt: verdict.at }, {
              orderId, sellerId: order.sellerId, causationId: deliveryId,
            });
            await deps.outbox.publish(trx, Streams.orders, event);
            counted.push(() => emitted.inc({ marketplace, type: 'OrderCancelled' }));
            return decide(trx, 'accepted', 'CANCELLED', undefined, recorded(event, `cancelled: ${verdict.reason}`));
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
    async commitRefund(delivery: LeasedDelivery, orderId: string, facts: RefundFacts): Promise<Outcome> {
      const deliveryId = delivery.id;
      let emittedRefund: string | undefined;
      const outcome = await deps.transaction(async (trx): Promise<Outcome> => {
        const order = await deps.orders.get(orderId, trx, true);
        if (!order) throw new Error(`order ${orderId} vanished`);
        const decide = (status: DeliveryStatus, reason: string | null) => deps.deliveries.decide(trx, deliveryId, status, { fence: delivery.fence, reason, orderId, externalOrderId: order.externalOrderId }).then(() => ({ status, reason, orderId }));
        if (facts.amount.currency !== order.currency) return decide('parked', 'REFUND_CURRENCY_MISMATCH');
        const sale = order.saleAmountMinor;
        const before = order.refundedAmountMinor;
        const after = facts.totalRefunded && facts.totalRefunded.currency === order.currency ? Math.max(facts.totalRefunded.amountMinor, before + facts.amount.amountMinor) : before + facts.amount.amountMinor;
        const full = after >= sale;
        const event = newEvent(Streams.orders, 'OrderRefunded', {
          marketplace: order.marketplace, externalOrderId: order.externalOrderId, refundId: facts.refundId, amount: money(facts.amount.amountMinor, facts.amount.currency), full, reason: facts.reason, refundedAt: facts.at,
        }, { orderId, sellerId: order.sellerId, causationId: deliveryId });
        if (!(await publishRefund(trx, event, `refund ${facts.refundId}`, deliveryId, { refundId: facts.refundId, amountMinor: facts.amount.amountMinor }))) {
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
