import { randomBytes, randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { Streams, type FulfillmentEvent, type OrderEvent, type OrderReceived } from '@postsale/contracts';
import { startService, type RunningService } from '@postsale/runtime';
import { collectTopic, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { startAliExpressFake, startEbayFake, startMercadoLibreFake, type AliExpressFake, type EbayFake, type MercadoLibreFake } from '@postsale/sandbox';
import { fulfillmentService } from '../../src/service';

/**
 * One started fulfillment service on the real infrastructure, the three fakes it talks to, a producer feeding the
 * orders topic of the test's namespace (as ingest would) and a collector of what fulfillment published.
 */
export const ADMIN = { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' };

export interface Harness {
  env: Record<string, string>;
  service: RunningService;
  ali: AliExpressFake;
  ebay: EbayFake;
  ml: MercadoLibreFake;
  producer: Producer;
  published: Awaited<ReturnType<typeof collectTopic<FulfillmentEvent>>>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(overrides: Record<string, string> = {}): Promise<Harness> {
  const ali = await startAliExpressFake();
  const ebay = await startEbayFake();
  const ml = await startMercadoLibreFake();
  const env = testEnv('fulfillment', {
    SUPPLIER_MODE: 'sandbox',
    CREDENTIALS_KEY: randomBytes(32).toString('base64'),
    ALIEXPRESS_GATEWAY_URL: ali.gatewayUrl,
    ALIEXPRESS_WEB_URL: ali.url,
    EBAY_API_BASE_URL: ebay.url,
    MERCADOLIBRE_API_BASE_URL: ml.url,
    SUPPLIER_TIMEOUT_MS: '3000',
    BROWSER_TIMEOUT_MS: '20000',
    WORKER_INTERVAL_MS: '100',
    PURCHASE_RETRY_BASE_MS: '100',
    PURCHASE_RETRY_MAX_MS: '400',
    STATUS_POLL_MIN_MS: '100',
    STATUS_POLL_MAX_MS: '300',
    TRACKING_POLL_MIN_MS: '100',
    TRACKING_POLL_MAX_MS: '300',
    PUSH_RETRY_BASE_MS: '100',
    ...overrides,
  });
  const harness = {
    env,
    ali,
    ebay,
    ml,
  } as Harness;
  harness.service = await startService(fulfillmentService, env);
  harness.producer = harness.service.ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await harness.producer.connect();
  harness.published = await collectTopic<FulfillmentEvent>(harness.service.ctx.kafka, harness.service.ctx.codec, harness.service.ctx.codec.topic(Streams.fulfillment));
  harness.restart = async () => {
    await harness.service.stop();
    harness.service = await startService(fulfillmentService, env);
  };
  harness.stop = async () => {
    await harness.published.stop().catch(() => undefined);
    await harness.producer.disconnect().catch(() => undefined);
    await harness.service.stop();
    await Promise.all([ali.stop(), ebay.stop(), ml.stop()]);
  };
  return harness;
}

export function orderReceived(input: { orderId?: string; sellerId: string; listingId: string; sku?: string | null; quantity?: number; sale: { amountMinor: number; currency: string }; marketplace?: OrderReceived['marketplace']; externalOrderId?: string; country?: string; shipTo?: OrderReceived['shipTo'] | 'none'; lineId?: string; marketplaceFee?: { amountMinor: number; currency: string } | null; paymentFee?: { amountMinor: number; currency: string } | null }): OrderEvent {
  const orderId = input.orderId ?? uniqueId('ord-');
  const currency = input.sale.currency;
  const quantity = input.quantity ?? 1;
  return {
    eventId: randomUUID(),
    orderId,
    sellerId: input.sellerId,
    occurredAt: Date.now(),
    causationId: null,
    type: 'OrderReceived',
    payload: {
      marketplace: input.marketplace ?? 'EBAY',
      externalOrderId: input.externalOrderId ?? `ext-${orderId}`,
      marketplaceAccountId: `acct-${input.sellerId}`,
      lines: [{ lineId: input.lineId ?? `line-${orderId}`, listingId: input.listingId, sku: input.sku ?? null, title: 'Thing', quantity, unitPrice: { amountMinor: input.sale.amountMinor, currency } }],
      buyer: { externalId: 'b1', name: 'Jane Buyer', email: 'jane@example.com' },
      shipTo:
        input.shipTo === 'none'
          ? null
          : (input.shipTo ?? { fullName: 'Jane Buyer', line1: '2145 Hamilton Ave', line2: null, city: 'San Jose', region: 'CA', postalCode: '95125', countryCode: input.country ?? 'US', phone: '4085551234' }),
      shipToIssue: input.shipTo === 'none' ? 'MISSING_CITY' : null,
      itemsAmount: input.sale,
      shippingAmount: { amountMinor: 0, currency },
      saleAmount: input.sale,
      marketplaceFee: input.marketplaceFee ?? null,
      paymentFee: input.paymentFee ?? null,
      paymentReference: null,
      receivedAt: Date.now(),
    },
  };
}

export async function publishOrders(h: Harness, ...events: OrderEvent[]): Promise<void> {
  const codec = h.service.ctx.codec;
  const messages = await Promise.all(events.map(async (e) => ({ key: e.orderId, value: await codec.encode(Streams.orders, e) })));
  await h.producer.send({ topic: codec.topic(Streams.orders), acks: -1, messages });
}

export async function admin(h: Harness, method: string, path: string, body?: unknown, headers: Record<string, string> = ADMIN) {
  const response = await fetch(`${h.service.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

export interface OrderDetail {
  state: string;
  push?: { status: string; attempts: number; last_error: string | null } | null;
  [k: string]: unknown;
}

export async function orderState(h: Harness, orderId: string): Promise<OrderDetail | undefined> {
  const r = await admin(h, 'GET', `/admin/orders/${orderId}`);
  return r.status === 200 ? r.body : undefined;
}

export async function waitForState(h: Harness, orderId: string, state: string, timeoutMs = 20_000) {
  return waitFor(
    async () => {
      const o = await orderState(h, orderId);
      return o?.state === state ? o : undefined;
    },
    { timeoutMs, intervalMs: 100, description: `order ${orderId} to reach ${state}` },
  );
}

export function eventsFor(h: Harness, orderId: string): FulfillmentEvent[] {
  return h.published.messages.filter((m) => m.event.orderId === orderId).map((m) => m.event);
}

/** A seller set up at the supplier fake and in fulfillment: API credentials, web login, a policy and one mapping. */
export async function setUpSeller(h: Harness, options: { sellerId?: string; productId?: string; price?: string; skuAttr?: string; policy?: Record<string, unknown>; shippingCost?: string; channel?: 'API' | 'BROWSER'; webLogin?: boolean; undeliverableTo?: string[] } = {}) {
  const sellerId = options.sellerId ?? uniqueId('seller-');
  const productId = options.productId ?? String(1005000000000 + Math.floor(Math.random() * 1e9));
  const skuAttr = options.skuAttr ?? '14:193#Black';
  const creds = h.ali.registerSeller({ account: `${sellerId}-buyer` });
  const web = { email: `${sellerId}@example.com`, password: `pw-${sellerId}`, account: creds.account };
  h.ali.registerWebAccount(web);
  h.ali.seedProduct({
    productId,
    subject: 'Sandbox gadget',
    ...(options.undeliverableTo ? { undeliverableTo: options.undeliverableTo } : {}),
    skus: [
      { skuId: `${productId}1`, skuAttr, prices: { default: options.price ?? '10.00', CL: '14.00' }, stock: 100, shippingCost: { default: options.shippingCost ?? '2.00' } },
      { skuId: `${productId}2`, skuAttr: '14:175#White', prices: { default: '99.00' }, stock: 100 },
    ],
  });
  const listingId = uniqueId('listing-');
  expect((await admin(h, 'PUT', `/admin/sellers/${sellerId}/credentials`, { api: { appKey: creds.appKey, appSecret: creds.appSecret, accessToken: creds.accessToken }, ...(options.webLogin === false ? {} : { web: { email: web.email, password: web.password } }) })).status).toBe(200);
  expect((await admin(h, 'PUT', `/admin/sellers/${sellerId}/policy`, { minMarginBps: 1000, purchaseChannel: options.channel ?? 'API', ...(options.policy ?? {}) })).status).toBe(200);
  expect((await admin(h, 'PUT', `/admin/sellers/${sellerId}/mappings`, { mappings: [{ listingId, productId, skuAttr }] })).status).toBe(200);
  return { sellerId, productId, skuAttr, listingId, creds, web };
}
