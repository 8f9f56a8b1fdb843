import { randomBytes } from 'node:crypto';
import { Streams, type OrderEvent } from '@postsale/contracts';
import { createPayPalTokenClient, paypalRequest } from '@postsale/paypal';
import { keyEncryptionKey, openPersonalData, startService, type RunningService } from '@postsale/runtime';
import { collectTopic, dropSchema, outboxEventCount, testEnv, uniqueId, waitFor, type CollectedMessage } from '@postsale/runtime/testing';
import {
  buildEbayOrder, buildMlOrder, buildMlShipment, ebayChallengeResponseFor, startEbayFake, startMercadoLibreFake, startPayPalFake,
  type EbayFake, type MercadoLibreFake, type PayPalFake,
} from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { storefrontSignature } from '../../src/http/checkout.routes';
import { ingestService } from '../../src/service';

const ADMIN = 'test-admin-token-0123456789';
const WEBHOOK_ID = 'WH-INGEST-TEST';
const EBAY_VERIFICATION_TOKEN = 'verification-token-0123456789-abcdefghijklmnop';

describe('ingest webhooks on real Kafka, registry and Postgres, against the marketplace fakes', () => {
  let env: Record<string, string>;
  let service: RunningService;
  let ebay: EbayFake;
  let ml: MercadoLibreFake;
  let paypal: PayPalFake;
  let collector: Awaited<ReturnType<typeof collectTopic<OrderEvent>>>;

  beforeAll(async () => {
    [ebay, ml, paypal] = await Promise.all([startEbayFake({ clientId: 'ebay-app', clientSecret: 'ebay-secret' }), startMercadoLibreFake(), startPayPalFake()]);
    paypal.registerWebhook(WEBHOOK_ID);
    env = testEnv('ingest', {
      CREDENTIALS_KEY: randomBytes(32).toString('base64'),
      EBAY_API_BASE_URL: ebay.url, EBAY_CLIENT_ID: 'ebay-app', EBAY_CLIENT_SECRET: 'ebay-secret',
      EBAY_VERIFICATION_TOKEN, EBAY_ENDPOINT_URL: 'https://ingest.example.com/webhooks/ebay',
      MERCADOLIBRE_API_BASE_URL: ml.url,
      PAYPAL_BASE_URL: paypal.url, PAYPAL_CLIENT_ID: paypal.clientId, PAYPAL_CLIENT_SECRET: paypal.clientSecret,
      PAYPAL_WEBHOOK_ID: WEBHOOK_ID, PAYPAL_CERT_HOSTS: '127.0.0.1',
      DELIVERY_POLL_INTERVAL_MS: '200',
      REQUEUE_PARKED_ON_REGISTRATION: 'false',
    });
    service = await startService(ingestService, env);
    collector = await collectTopic<OrderEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.orders));
  });
  afterAll(async () => {
    await collector?.stop();
    await service?.stop();
    await Promise.all([ebay?.stop(), ml?.stop(), paypal?.stop()]);
    await dropSchema(env.DB_SCHEMA!);
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, { ...init, headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
  const registerSeller = async (sellerId: string, accounts: Array<{ marketplace: string; accountId: string; accessToken?: string; captureSecret?: string }>) => {
    const res = await admin(`/admin/sellers/${sellerId}`, { method: 'PUT', body: JSON.stringify({ accounts }) });
    expect(res.status).toBe(200);
  };
  const eventsFor = (orderId: string): Array<CollectedMessage<OrderEvent>> => collector.messages.filter((m) => m.event.orderId === orderId);
  /**
   * An OrderReceived as a reader with the subject's key sees it: the buyer and ship-to travel only sealed (null in
   * clear), so they are opened with ingest's copy of the key (the development key-encryption key, as in every test).
   */
  const opened = async (m: CollectedMessage<OrderEvent>): Promise<CollectedMessage<OrderEvent>> => {
    if (m.event.type !== 'OrderReceived' || !m.event.payload.sealedPersonal) return m;
    const { subjectId, ciphertext } = m.event.payload.sealedPersonal;
    expect(m.event.payload).toMatchObject({ buyer: null, shipTo: null });
    const row = await service.ctx.db('subject_keys').where({ subject_id: subjectId }).first();
    const personal = openPersonalData(keyEncryptionKey({ NODE_ENV: 'test' }).unwrap(row.sealed_key, subjectId), { orderId: m.event.orderId, subjectId }, ciphertext);
    return { ...m, event: { ...m.event, payload: { ...m.event.payload, ...personal } } };
  };
  const waitForEvents = async (orderId: string, n: number, type?: OrderEvent['type']) =>
    Promise.all((await waitFor(() => {
      const found = eventsFor(orderId).filter((m) => !type || m.event.type === type);
      return found.length >= n ? found : undefined;
    }, { description: `${n} ${type ?? ''} events for ${orderId}` })).map(opened));
  /** Proves "nothing more": the outbox is drained and a later marker event for another order has been seen. */
  const settle = async () => {
    await waitFor(async () => Number((await service.ctx.db('outbox').whereNull('published_at').count<{ c: string }[]>('* as c'))[0]!.c) === 0, { description: 'outbox drained' });
    const published = await outboxEventCount(service);
    await waitFor(() => collector.messages.length >= published, { description: 'collector caught up' });
  };
  const deliveryCount = async () => Number((await service.ctx.db('deliveries').count<{ c: string }[]>('* as c'))[0]!.c);

  describe('eBay', () => {
    const username = uniqueId('ebayuser');
    const token = uniqueId('ebay-user-token-');
    beforeAll(async () => {
      ebay.registerSellerToken(token, username);
      await registerSeller(uniqueId('seller-eb-'), [{ marketplace: 'EBAY', accountId: username, accessToken: token }]);
    });

    it('when the same notification arrives five times and one per line item, then one OrderReceived with exact fields exists', async () => {
      const order = ebay.seedOrder(buildEbayOrder({
        sellerUsername: username, deliveryCost: '4.99',
        lineItems: [{ title: 'Mug', quantity: 2, unitValue: '12.50', sku: 'MUG-1' }, { title: 'Lamp', quantity: 1, unitValue: '10.86' }],
        shipTo: { fullName: 'Ana Buyer', contactAddress: { addressLine1: '1 Main St', addressLine2: 'Apt 2', city: 'Austin', stateOrProvince: 'TX', postalCode: '73301', countryCode: 'US' } },
      }));
      const perLine = ebay.signedNotificationsPerLineItem({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      expect(perLine).toHaveLength(2);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await ebay.deliver(`${service.url}/webhooks/ebay`, perLine[0]!)).status);
      statuses.push((await ebay.deliver(`${service.url}/webhooks/ebay`, perLine[1]!)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);

      const orderId = orderIdFor('EBAY', order.orderId);
      const [received] = await waitForEvents(orderId, 1);
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
      expect(received!.key).toBe(orderId);
      expect(received!.event.type).toBe('OrderReceived');
      if (received!.event.type !== 'OrderReceived') throw new Error('unexpected');
      const p = received!.event.payload;
      expect(p).toMatchObject({
        marketplace: 'EBAY', externalOrderId: order.orderId, marketplaceAccountId: username,
        itemsAmount: { amountMinor: 3586, currency: 'USD' }, shippingAmount: { amountMinor: 499, currency: 'USD' }, saleAmount: { amountMinor: 4085, currency: 'USD' },
        marketplaceFee: { amountMinor: Math.round(4085 * 0.1325), currency: 'USD' },
        shipTo: { fullName: 'Ana Buyer', line1: '1 Main St', line2: 'Apt 2', city: 'Austin', region: 'TX', postalCode: '73301', countryCode: 'US' },
        shipToIssue: null,
      });
      expect(p.lines.map((l) => [l.lineId, l.quantity, l.unitPrice.amountMinor, l.sku])).toEqual([
        [order.lineItems[0]!.lineItemId, 2, 1250, 'MUG-1'], [order.lineItems[1]!.lineItemId, 1, 1086, null],
      ]);
      expect(await service.ctx.db('orders').where({ marketplace: 'EBAY', external_order_id: order.orderId }).count<{ c: string }[]>('* as c')).toEqual([{ c: '1' }]);
    });

    it('when a notification is not signed by eBay, then 412 and nothing is stored or published', async () => {
      const order = ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '5.00' }] }));
      const signed = ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      signed.body.notification.data.order.orderId = `${order.orderId}9`; // tampered after signing
      const before = await deliveryCount();
      const res = await ebay.deliver(`${service.url}/webhooks/ebay`, signed);
      expect(res.status).toBe(412);
      expect(JSON.parse(res.body).error.code).toBe('INVALID_SIGNATURE');
      const unsigned = await fetch(`${service.url}/webhooks/ebay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(signed.body) });
      expect(unsigned.status).toBe(412);
      expect(await deliveryCount()).toBe(before);
      await settle();
      expect(eventsFor(orderIdFor('EBAY', `${order.orderId}9`))).toHaveLength(0);
    });

    it('when the ship-to is incomplete, then the order travels with shipTo null and the issue (never an invented address)', async () => {
      const order = ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '5.00' }], shipTo: { contactAddress: { city: '' } } }));
      await ebay.deliver(`${service.url}/webhooks/ebay`, ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      const [e] = await waitForEvents(orderIdFor('EBAY', order.orderId), 1);
      expect(e!.event.payload).toMatchObject({ shipTo: null, shipToIssue: 'MISSING_CITY' });
    });

    it('when eBay validates the endpoint, then the challenge response is the documented hash', async () => {
      const res = await fetch(`${service.url}/webhooks/ebay?challenge_code=abc123`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ challengeResponse: ebayChallengeResponseFor('abc123', EBAY_VERIFICATION_TOKEN, 'https://ingest.example.com/webhooks/ebay') });
    });

    it('when the Fulfillment API fails transiently, then the delivery is kept (202) and the poller completes it', async () => {
      const order = ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '7.00' }] }));
      ebay.fail({ match: /^GET \/sell\/fulfillment\/v1\/order\//, mode: { kind: 'status', status: 503 }, times: 1 });
      const res = await ebay.deliver(`${service.url}/webhooks/ebay`, ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      expect(res.status).toBe(202);
      expect(JSON.parse(res.body).status).toBe('pending');
      await waitForEvents(orderIdFor('EBAY', order.orderId), 1);
    });
  });

  describe('MercadoLibre', () => {
    const userId = Number(`7${Date.now() % 1e8}`);
    const token = uniqueId('APP_USR-');
    beforeAll(async () => {
      ml.registerSeller({ userId, accessToken: token });
      await registerSeller(uniqueId('seller-ml-'), [{ marketplace: 'MERCADOLIBRE', accountId: String(userId), accessToken: token }]);
    });
    const seedPaid = (overrides: Partial<Parameters<typeof buildMlOrder>[0]> = {}) => {
      const shipment = ml.seedShipment(buildMlShipment({ sellerId: overrides.sellerId ?? userId }));
      return ml.seedOrder(buildMlOrder({ sellerId: userId, shipmentId: shipment.id, items: [{ id: 'MLC123', title: 'Audífonos', quantity: 2, unitPrice: 15990 }], ...overrides }));
    };

    it('when a paid CLP order is notified five times, then each ack is under 500 ms and one OrderReceived has exact CLP amounts and an ISO country', async () => {
      const order = seedPaid();
      const notification = ml.notification({ orderId: order.id, userId });
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const res = await ml.deliver(`${service.url}/webhooks/mercadolibre`, notification);
        expect(res.status).toBe(200);
        expect(Date.now() - started).toBeLessThan(500);
      }
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      const [e] = await waitForEvents(orderId, 1);
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
      expect(e!.event.payload).toMatchObject({
        marketplace: 'MERCADOLIBRE', externalOrderId: String(order.id), marketplaceAccountId: String(userId),
        lines: [{ lineId: 'MLC123', listingId: 'MLC123', quantity: 2, unitPrice: { amountMinor: 15990, currency: 'CLP' } }],
        saleAmount: { amountMinor: 31980, currency: 'CLP' },
        marketplaceFee: { amountMinor: order.payments[0]!.marketplace_fee, currency: 'CLP' },
        paymentReference: String(order.payments[0]!.id),
        shipTo: { countryCode: 'CL', city: 'Providencia' },
      });
    });

    it('when the order is not paid, then nothing is produced and the delivery says why', async () => {
      const order = seedPaid({ status: 'payment_required' });
      await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      const row = await waitFor(async () => {
        const d = await service.ctx.db('deliveries').where({ external_order_id: String(order.id) }).first();
        return d && d.status !== 'pending' ? d : undefined;
      });
      expect(row).toMatchObject({ status: 'ignored', reason: 'NOT_PAID' });
      await settle();
      expect(eventsFor(orderIdFor('MERCADOLIBRE', String(order.id)))).toHaveLength(0);
    });

    it('when a received order is cancelled, then one OrderCancelled follows the OrderReceived', async () => {
      const order = seedPaid({ currencyId: 'ARS', items: [{ id: 'MLA9', title: 'x', quantity: 1, unitPrice: 1234.5 }] });
      await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      const [received] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(received!.event.payload).toMatchObject({ saleAmount: { amountMinor: 123450, currency: 'ARS' } });
      ml.setOrderStatus(order.id, 'cancelled');
      await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      await waitForEvents(orderId, 1, 'OrderCancelled');
      await settle();
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderCancelled']);
    });

    it('when the seller is unknown, then 200 and only a counted record; once registered, the next notification is processed', async () => {
      const strangerId = userId + 1;
      const strangerToken = uniqueId('APP_USR-');
      ml.registerSeller({ userId: strangerId, accessToken: strangerToken });
      const shipment = ml.seedShipment(buildMlShipment({ sellerId: strangerId }));
      const order = ml.seedOrder(buildMlOrder({ sellerId: strangerId, shipmentId: shipment.id, items: [{ id: 'MLC7', title: 'x', quantity: 1, unitPrice: 990 }] }));
      const dropped = async () => Number((await service.ctx.db('dropped_notifications').where({ marketplace: 'MERCADOLIBRE', reason: 'UNKNOWN_ACCOUNT' }).sum<{ s: string }[]>('count as s'))[0]!.s ?? 0);
      const droppedBefore = await dropped();
      const before = await deliveryCount();
      const mlCallsBefore = ml.requests.length;
      const res = await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: strangerId });
      expect(res.status).toBe(200);
      expect(await deliveryCount()).toBe(before);
      expect(await dropped()).toBe(droppedBefore + 1);
      expect(ml.requests.length).toBe(mlCallsBefore);

      await registerSeller(uniqueId('seller-ml-'), [{ marketplace: 'MERCADOLIBRE', accountId: String(strangerId), accessToken: strangerToken }]);
      expect((await ml.deliver(`${service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: strangerId })).status).toBe(200);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when the body is not a notification, then 400 with a code and nothing stored', async () => {
      const before = await deliveryCount();
      const res = await fetch(`${service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ hello: 1 }) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_NOTIFICATION');
      const bad = await fetch(`${service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"resource":' });
      expect(bad.status).toBe(400);
      const huge = await fetch(`${service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }) });
      expect(huge.status).toBe(413);
      expect(await deliveryCount()).toBe(before);
    });
  });

  describe('PayPal storefront', () => {
    const storefrontId = uniqueId('shop-');
    const captureSecret = randomBytes(32).toString('hex');
    beforeAll(async () => {
      await registerSeller(uniqueId('seller-pp-'), [{ marketplace: 'PAYPAL_STOREFRONT', accountId: storefrontId, captureSecret }]);
    });
    /** a capture call signed the way the storefront's server signs it */
    const capture = (paypalOrderId: string, body: unknown = { storefrontId }) => {
      const raw = JSON.stringify(body);
      const timestamp = String(Math.floor(Date.now() / 1000));
      return fetch(`${service.url}/checkout/paypal/orders/${paypalOrderId}/capture`, {
        method: 'POST', body: raw,
        headers: { 'Content-Type': 'application/json', 'X-Storefront-Timestamp': timestamp, 'X-Storefront-Signature': `sha256=${storefrontSignature(captureSecret, timestamp, paypalOrderId, raw)}` },
      });
    };

    it('when the storefront captures twice, then PayPal captures once and one OrderReceived carries the PayPal fee', async () => {
      const seeded = paypal.seedCheckoutOrder({ amount: '100.00', fee: '3.98', customId: storefrontId });
      const first = await capture(seeded.id);
      expect(first.status).toBe(201);
      const second = await capture(seeded.id);
      expect(second.status).toBe(200);
      expect(paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1);
      expect(e!.event.payload).toMatchObject({
        marketplace: 'PAYPAL_STOREFRONT', externalOrderId: seeded.id, marketplaceAccountId: storefrontId,
        saleAmount: { amountMinor: 10000, currency: 'USD' }, paymentFee: { amountMinor: 398, currency: 'USD' },
        buyer: { name: 'John Doe', email: 'buyer@example.com' },
        shipTo: { fullName: 'John Doe', line1: '2211 N First Street', city: 'San Jose', region: 'CA', postalCode: '95131', countryCode: 'US' },
      });
      // PayPal then sends the capture webhook for the same order: a duplicate, no second event.
      const capId = paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      const hook = paypal.signedWebhook(paypal.captureCompletedEvent({ orderId: seeded.id, captureId: capId, amount: '100.00', fee: '3.98', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, hook)).status).toBe(200);
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when PayPal captures but its answer is lost, then ingest resolves it by replaying the same PayPal-Request-Id: the storefront hears 2xx, PayPal captured once, one OrderReceived', async () => {
      const seeded = paypal.seedCheckoutOrder({ amount: '30.00', fee: '1.47', customId: storefrontId });
      paypal.fail({ match: new RegExp(`^POST /v2/checkout/orders/${seeded.id}/capture$`), mode: { kind: 'drop-after-handling' }, times: 1 });
      const first = await capture(seeded.id);
      expect([200, 201]).toContain(first.status);
      const captureCalls = paypal.requests.filter((r) => r.method === 'POST' && r.path === `/v2/checkout/orders/${seeded.id}/capture`);
      expect(captureCalls).toHaveLength(2); // the lost answer, then the replay with the same request id
      expect(paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1);
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 3000, currency: 'USD' }, paymentFee: { amountMinor: 147, currency: 'USD' } });
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when the order was already captured elsewhere (ORDER_ALREADY_CAPTURED), then it is looked up and emitted once', async () => {
      const seeded = paypal.seedCheckoutOrder({ amount: '20.00', fee: '1.19', customId: storefrontId });
      const tokens = createPayPalTokenClient({ baseUrl: paypal.url, clientId: paypal.clientId, clientSecret: paypal.clientSecret });
      await paypalRequest(paypal.url, tokens, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} });
      expect((await capture(seeded.id)).status).toBe(201);
      const [e] = await waitForEvents(orderIdFor('PAYPAL_STOREFRONT', seeded.id), 1);
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 2000 }, paymentFee: { amountMinor: 119 } });
    });

    it('when PAYMENT.CAPTURE.COMPLETED arrives for an order not captured here, then the order is read for its ship-to and emitted; refunds follow', async () => {
      const seeded = paypal.seedCheckoutOrder({ amount: '50.00', fee: '2.24', customId: storefrontId, shipping: { address: { country_code: 'CA', admin_area_2: 'Toronto', postal_code: 'M5V 2T6' } } });
      const tokens = createPayPalTokenClient({ baseUrl: paypal.url, clientId: paypal.clientId, clientSecret: paypal.clientSecret });
      await paypalRequest(paypal.url, tokens, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} });
      const captureId = paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      const completed = paypal.signedWebhook(paypal.captureCompletedEvent({ orderId: seeded.id, captureId, amount: '50.00', fee: '2.24', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      for (let i = 0; i < 5; i++) expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, completed)).status).toBe(200);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(e!.event.payload).toMatchObject({ paymentReference: captureId, paymentFee: { amountMinor: 224 }, shipTo: { countryCode: 'CA', city: 'Toronto' } });

      const partial = paypal.signedWebhook(paypal.captureRefundedEvent({ captureId, amount: '10.00' }), { webhookId: WEBHOOK_ID });
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, partial)).status).toBe(200);
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, partial)).status).toBe(200);
      const rest = paypal.signedWebhook(paypal.captureRefundedEvent({ captureId, amount: '40.00' }), { webhookId: WEBHOOK_ID });
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, rest)).status).toBe(200);
      const refunds = await waitForEvents(orderId, 2, 'OrderRefunded');
      await settle();
      expect(refunds.map((r) => r.event.type === 'OrderRefunded' && [r.event.payload.amount.amountMinor, r.event.payload.full])).toEqual([[1000, false], [4000, true]]);
      expect(eventsFor(orderId)).toHaveLength(3);
    });

    it('when the same PayPal transmission is replayed, then it is acknowledged as a duplicate and stored once', async () => {
      const hook = paypal.signedWebhook(paypal.captureRefundedEvent({ captureId: 'CAP-NOT-OURS', amount: '1.00' }), { webhookId: WEBHOOK_ID });
      const before = await deliveryCount();
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, hook)).status).toBeLessThan(300);
      const again = await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, hook);
      expect(again.status).toBe(200);
      expect(JSON.parse(again.body)).toEqual({ status: 'duplicate', reason: 'REPLAYED_TRANSMISSION' });
      expect(await deliveryCount()).toBe(before + 1);
    });

    it('when a PayPal webhook signature is invalid, then 401 and nothing is stored', async () => {
      const before = await deliveryCount();
      const hook = paypal.signedWebhook(paypal.captureCompletedEvent({ amount: '5.00', fee: '0.50', customId: storefrontId }), { webhookId: 'WH-SOMEONE-ELSE' });
      const res = await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, hook);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error.code).toBe('INVALID_SIGNATURE');
      const tampered = paypal.signedWebhook(paypal.captureCompletedEvent({ amount: '5.00', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      expect((await paypal.deliverWebhook(`${service.url}/webhooks/paypal`, { ...tampered, rawBody: tampered.rawBody.replace('5.00', '6.00') })).status).toBe(401);
      expect(await deliveryCount()).toBe(before);
      expect(await (await fetch(`${service.url}/metrics`)).text()).toMatch(/ingest_signature_failures_total\{[^}]*marketplace="PAYPAL_STOREFRONT"[^}]*\} 2/);
    });

    it('when the storefront is unknown or the body is not what was signed, then 401 and PayPal is not called', async () => {
      const seeded = paypal.seedCheckoutOrder({ amount: '9.00' });
      const before = await deliveryCount();
      expect((await capture(seeded.id, { storefrontId: 'nobody' })).status).toBe(401);
      expect((await capture(seeded.id, {})).status).toBe(401);
      expect(paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(0);
      expect(await deliveryCount()).toBe(before);
    });
  });

  describe('admin API', () => {
    it('when no or a wrong bearer token is given, then every admin route answers 401', async () => {
      for (const [method, path] of [['GET', '/admin/deliveries'], ['GET', '/admin/sellers/x'], ['PUT', '/admin/sellers/x'], ['GET', '/admin/orders/ord_x'], ['GET', '/admin/integrity'], ['POST', `/admin/deliveries/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/reprocess`]]) {
        expect((await fetch(`${service.url}${path}`, { method })).status).toBe(401);
        expect((await fetch(`${service.url}${path}`, { method, headers: { Authorization: 'Bearer wrong-token-000000000' } })).status).toBe(401);
      }
      expect((await admin('/admin/integrity')).status).toBe(200);
    });

    it('when a seller is read back, then its tokens are not in the answer and are sealed at rest', async () => {
      const sellerId = uniqueId('seller-');
      await registerSeller(sellerId, [{ marketplace: 'MERCADOLIBRE', accountId: uniqueId('9'), accessToken: 'APP_USR-very-secret-token' }]);
      const text = await (await admin(`/admin/sellers/${sellerId}`)).text();
      expect(text).not.toContain('very-secret');
      expect(JSON.parse(text).accounts[0]).toMatchObject({ marketplace: 'MERCADOLIBRE', hasAccessToken: true });
      const row = await service.ctx.db('marketplace_accounts').where({ seller_id: sellerId }).first();
      expect(row.token_sealed).toMatch(/^v2:[0-9a-f]{12}:/);
      expect(row.token_sealed).not.toContain('very-secret');
    });

    it('when an order is asked for, then its history and deliveries are shown', async () => {
      const order = collector.messages.find((m) => m.event.type === 'OrderReceived');
      expect(order).toBeDefined();
      const body = (await (await admin(`/admin/orders/${order!.event.orderId}`)).json()) as { state: string; history: unknown[]; deliveries: unknown[] };
      expect(body.state).toMatch(/RECEIVED|CANCELLED|REFUNDED/);
      expect(body.history.length).toBeGreaterThan(0);
      expect(body.deliveries.length).toBeGreaterThan(0);
    });
  });
});
