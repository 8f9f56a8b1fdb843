import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { EventCodec, Streams, type FulfillmentEvent, type SaleEvent, type SaleRecorded, type SaleReversed } from '@postsale/contracts';
import { kafkaClientSecurity, startService, type RunningService } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';
import { startPayPalFake, type PayPalFake, type PayPalFakeOptions } from '@postsale/sandbox';
import { payoutsService } from '../../src/service';

export const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
export const PLATFORM = 'platform-payouts@postsale.test';

/**
 * The environment of a payouts service paying through `fake` in sandbox mode, with fast pollers. A batch is checked at
 * PayPal right after its acceptance even where a test configures webhooks (PAYOUTS_WEBHOOK_GRACE_MS 0): the fake sends
 * none unless a test gives it the service's URL or delivers them itself. Tests of the grace set their own.
 */
export function sandboxEnv(fake: PayPalFake, extra: Record<string, string> = {}): Record<string, string> {
  return testEnv('payouts', {
    PAYOUTS_MODE: 'sandbox', PLATFORM_PAYEE_EMAIL: PLATFORM, PAYPAL_BASE_URL: fake.url, PAYPAL_CLIENT_ID: fake.clientId,
    PAYPAL_CLIENT_SECRET: fake.clientSecret, PAYPAL_TIMEOUT_MS: '2000', PAYOUTS_BATCH_INTERVAL_MS: '150', PAYOUTS_RECONCILE_INTERVAL_MS: '150',
    PAYOUTS_WEBHOOK_GRACE_MS: '0',
    ...extra,
  });
}

export interface PayoutsUnderTest {
  fake: PayPalFake;
  env: Record<string, string>;
  /** replace it when a test restarts the service, so stop() stops the running one */
  service: RunningService;
  publish: TopicPublisher;
  stop(): Promise<void>;
}

/** A PayPal fake, a payouts service paying through it (own topics and schema) and a publisher for its input topics. */
export async function startPayoutsUnderTest(options: { fake?: PayPalFakeOptions; env?: Record<string, string>; prepare?: (fake: PayPalFake) => void } = {}): Promise<PayoutsUnderTest> {
  const fake = await startPayPalFake(options.fake);
  options.prepare?.(fake);
  const env = sandboxEnv(fake, options.env);
  const under: PayoutsUnderTest = {
    fake,
    env,
    service: await startService(payoutsService, env),
    publish: await TopicPublisher.connect(env),
    async stop() {
      await under.publish.stop();
      await under.service.stop();
      await fake.stop();
      await dropSchema(env.DB_SCHEMA!);
    },
  };
  return under;
}

/** Publishes events into a test namespace's topics, the way the sales and fulfillment services do. */
export class TopicPublisher {
  private constructor(private readonly producer: Producer, private readonly codec: EventCodec) {}

  static async connect(env: Record<string, string>): Promise<TopicPublisher> {
    const kafka = new Kafka({ clientId: 'payouts-test', brokers: env.KAFKA_BROKERS!.split(','), ...kafkaClientSecurity(env), logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    return new TopicPublisher(producer, EventCodec.connect(env.SCHEMA_REGISTRY_URL!, env.TOPIC_NAMESPACE));
  }

  async sale(event: SaleEvent): Promise<void> {
    await this.producer.send({ topic: this.codec.topic(Streams.sales), acks: -1, messages: [{ key: event.orderId, value: await this.codec.encode(Streams.sales, event) }] });
  }

  async fulfillment(event: FulfillmentEvent): Promise<void> {
    await this.producer.send({ topic: this.codec.topic(Streams.fulfillment), acks: -1, messages: [{ key: event.orderId, value: await this.codec.encode(Streams.fulfillment, event) }] });
  }

  stop(): Promise<void> {
    return this.producer.disconnect();
  }
}

const m = (amountMinor: number, currency: string) => ({ amountMinor, currency });

/** A SaleRecorded whose breakdown adds up exactly: fees + supplier cost + commission + net = sale amount. */
export function saleRecorded(input: { orderId: string; sellerId: string; commissionMinor: number; netMinor: number; currency?: string; saleId?: string; eventId?: string }):
  SaleEvent & { type: 'SaleRecorded' } {
  const currency = input.currency ?? 'USD';
  const fee = 150;
  const supplier = 2000;
  const payload: SaleRecorded = {
    saleId: input.saleId ?? `sale-${input.orderId}`,
    saleAmount: m(fee + supplier + input.commissionMinor + input.netMinor, currency),
    marketplaceFee: m(fee, currency),
    paymentFee: m(0, currency),
    supplierCost: m(supplier, currency),
    supplierCostCharged: m(supplier, currency),
    fx: null,
    grossProfit: m(input.commissionMinor + input.netMinor, currency),
    commissionRateBps: 2000,
    platformCommission: m(input.commissionMinor, currency),
    sellerNetProfit: m(input.netMinor, currency),
    loss: m(0, currency),
    isLoss: input.commissionMinor + input.netMinor <= 0,
    recordedAt: Date.now(),
  };
  return { eventId: input.eventId ?? randomUUID(), orderId: input.orderId, sellerId: input.sellerId, occurredAt: Date.now(), causationId: null, type: 'SaleRecorded', payload };
}

export function saleReversed(sale: SaleEvent & { type: 'SaleRecorded' }, overrides: Partial<SaleReversed> = {}): SaleEvent & { type: 'SaleReversed' } {
  const p = sale.payload;
  const payload: SaleReversed = {
    saleId: p.saleId, reversalId: `rev-${sale.orderId}`, kind: 'FULL_REFUND', refundedAmount: p.saleAmount,
    commissionReversed: p.platformCommission, sellerNetReversed: p.sellerNetProfit, reversedAt: Date.now(), ...overrides,
  };
  return { eventId: randomUUID(), orderId: sale.orderId, sellerId: sale.sellerId, occurredAt: Date.now(), causationId: sale.eventId, type: 'SaleReversed', payload };
}

export function orderShipped(orderId: string, sellerId: string): FulfillmentEvent {
  return {
    eventId: randomUUID(), orderId, sellerId, occurredAt: Date.now(), causationId: null, type: 'OrderShipped',
    payload: { carrier: 'USPS', trackingNumber: `TRK${orderId}`, shippedAt: Date.now() },
  };
}

export interface PayoutView {
  id: string;
  recipient: 'PLATFORM' | 'SELLER';
  status: string;
  hold: { reason: string; until: string | null } | null;
  payable: { amountMinor: number; currency: string };
  attempt: number;
  items: Array<{ senderItemId: string; status: string; receiver: string; amount: { amountMinor: number; currency: string } }>;
}

export async function orderPayouts(service: RunningService, orderId: string): Promise<PayoutView[]> {
  const res = await fetch(`${service.url}/admin/orders/${orderId}/payouts`, { headers: ADMIN });
  if (res.status !== 200) throw new Error(`GET payouts answered ${res.status}`);
  return ((await res.json()) as { payouts: PayoutView[] }).payouts;
}

/** the order's payouts once every recipient's intent has one of the wanted statuses */
export function payoutsWithStatus(service: RunningService, orderId: string, wanted: Partial<Record<'PLATFORM' | 'SELLER', string>>) {
  return async () => {
    const payouts = await orderPayouts(service, orderId);
    const ok = Object.entries(wanted).every(([recipient, status]) => payouts.find((p) => p.recipient === recipient)?.status === status);
    return ok ? payouts : undefined;
  };
}

export async function putPayee(service: RunningService, sellerId: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${service.url}/admin/sellers/${sellerId}/payee`, {
    method: 'PUT', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
}
