import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { Streams, type EventCodec, type FulfillmentEvent, type Money, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import type { RunningService } from '@postsale/runtime';

export const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
export const m = (amountMinor: number, currency: string): Money => ({ amountMinor, currency });

/** Publishes events to the test namespace's input topics the way ingest and fulfillment would: Avro via the registry, keyed by order. */
export class TestPublisher {
  private constructor(private readonly producer: Producer, private readonly codec: EventCodec) {}

  static async connect(service: RunningService): Promise<TestPublisher> {
    const producer = service.ctx.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    return new TestPublisher(producer, service.ctx.codec);
  }

  async orders(...events: OrderEvent[]): Promise<void> {
    const messages = [];
    // one at a time: concurrent first registrations of a subject race in the registry
    for (const e of events) messages.push({ key: e.orderId, value: await this.codec.encode(Streams.orders, e) });
    await this.producer.send({ topic: this.codec.topic(Streams.orders), acks: -1, messages });
  }

  async fulfillment(...events: FulfillmentEvent[]): Promise<void> {
    const messages = [];
    // one at a time: concurrent first registrations of a subject race in the registry
    for (const e of events) messages.push({ key: e.orderId, value: await this.codec.encode(Streams.fulfillment, e) });
    await this.producer.send({ topic: this.codec.topic(Streams.fulfillment), acks: -1, messages });
  }

  async payouts(...events: PayoutEvent[]): Promise<void> {
    const messages = [];
    for (const e of events) messages.push({ key: e.orderId, value: await this.codec.encode(Streams.payouts, e) });
    await this.producer.send({ topic: this.codec.topic(Streams.payouts), acks: -1, messages });
  }

  stop(): Promise<void> {
    return this.producer.disconnect();
  }
}

/** What the payouts service publishes when PayPal reports an item SUCCESS. */
export function payoutSent(o: {
  orderId: string; sellerId: string; payoutId: string; recipient: 'PLATFORM' | 'SELLER'; paid: Money; attempt?: number;
  owed?: Money | null; fxRate?: string | null; fxRateDate?: string | null;
}): PayoutEvent {
  const senderItemId = `${o.payoutId}-a${o.attempt ?? 1}`;
  return {
    ...envelope(o.orderId, o.sellerId), type: 'PayoutSent',
    payload: {
      payoutId: o.payoutId, recipient: o.recipient, amount: o.paid, senderItemId, payoutBatchId: 'BATCH1', payoutItemId: `ITEM-${senderItemId}`, sentAt: Date.now(),
      owedAmount: o.owed ?? null, fxRate: o.fxRate ?? null, fxRateDate: o.fxRateDate ?? null,
    },
  };
}

export function payoutReturned(o: { orderId: string; sellerId: string; payoutId: string; recipient: 'PLATFORM' | 'SELLER'; amount: Money }): PayoutEvent {
  return {
    ...envelope(o.orderId, o.sellerId), type: 'PayoutReturned',
    payload: { payoutId: o.payoutId, recipient: o.recipient, amount: o.amount, status: 'RETURNED', reason: 'RECEIVER_UNREGISTERED', returnedAt: Date.now() },
  };
}

const envelope = (orderId: string, sellerId: string) => ({ eventId: randomUUID(), orderId, sellerId, occurredAt: Date.now(), causationId: null });

export function orderReceived(o: {
  orderId: string; sellerId: string; sale: Money; marketplaceFee?: Money | null; paymentFee?: Money | null; marketplace?: 'EBAY' | 'MERCADOLIBRE' | 'PAYPAL_STOREFRONT';
}): OrderEvent {
  return {
    ...envelope(o.orderId, o.sellerId),
    type: 'OrderReceived',
    payload: {
      marketplace: o.marketplace ?? 'EBAY', externalOrderId: `ext-${o.orderId}`, marketplaceAccountId: 'acct-1',
      lines: [{ lineId: 'l1', listingId: 'lst-1', sku: null, title: 'Widget', quantity: 1, unitPrice: o.sale }],
      buyer: null, shipTo: null, shipToIssue: 'NOT_NEEDED_FOR_SALES_TESTS',
      itemsAmount: o.sale, shippingAmount: m(0, o.sale.currency), saleAmount: o.sale,
      marketplaceFee: o.marketplaceFee ?? null, paymentFee: o.paymentFee ?? null, paymentReference: null, receivedAt: Date.now(),
    },
  };
}

export function purchaseCompleted(o: { orderId: string; sellerId: string; cost: Money; purchasedAt?: number }): FulfillmentEvent {
  return {
    ...envelope(o.orderId, o.sellerId),
    type: 'PurchaseCompleted',
    payload: { supplier: 'ALIEXPRESS', supplierOrderId: `ae-${o.orderId}`, supplierCost: o.cost, channel: 'API', purchasedAt: o.purchasedAt ?? Date.now() },
  };
}

export function orderCancelled(o: { orderId: string; sellerId: string }): OrderEvent {
  return { ...envelope(o.orderId, o.sellerId), type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: `ext-${o.orderId}`, reason: 'buyer asked', cancelledAt: Date.now() } };
}

export function orderRefunded(o: { orderId: string; sellerId: string; refundId: string; amount: Money; full?: boolean }): OrderEvent {
  return {
    ...envelope(o.orderId, o.sellerId), type: 'OrderRefunded',
    payload: { marketplace: 'EBAY', externalOrderId: `ext-${o.orderId}`, refundId: o.refundId, amount: o.amount, full: o.full ?? false, reason: null, refundedAt: Date.now() },
  };
}

/** A copy of an event with a new event id: the same fact delivered again by a producer (not an inbox duplicate). */
export function redelivered<E extends { eventId: string }>(event: E): E {
  return { ...event, eventId: randomUUID() };
}
