import { randomBytes } from 'node:crypto';
import { createPayPalTokenClient, paypalRequest } from '@postsale/paypal';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder, buildMlOrder, buildMlShipment, ebayChallengeResponseFor } from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { EBAY_ENDPOINT_URL, EBAY_VERIFICATION_TOKEN, useIngest, WEBHOOK_ID } from '../support/ingest-harness';

describe('ingest webhooks on real Kafka, registry and Postgres, against the marketplace fakes', () => {
  const h = useIngest({ collect: true, env: { DELIVERY_POLL_INTERVAL_MS: '200', REQUEUE_PARKED_ON_REGISTRATION: 'false' } });
  const { admin, registerSeller, eventsFor, waitForEvents, settle, deliveryCount, signedCapture } = h;

  describe('eBay', () => {
    const username = uniqueId('ebayuser');
    const token = uniqueId('ebay-user-token-');
    beforeAll(async () => {
      await h.registerEbaySeller(username, token);
    });

    it('when the same notification arrives five times and one per line item, then one OrderReceived with exact fields exists', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({
        sellerUsername: username, deliveryCost: '4.99',
        lineItems: [{ title: 'Mug', quantity: 2, unitValue: '12.50', sku: 'MUG-1' }, { title: 'Lamp', quantity: 1, unitValue: '10.86' }],
        shipTo: { fullName: 'Ana Buyer', contactAddress: { addressLine1: '1 Main St', addressLine2: 'Apt 2', city: 'Austin', stateOrProvince: 'TX', postalCode: '73301', countryCode: 'US' } },
      }));
      const perLine = h.ebay.signedNotificationsPerLineItem({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      expect(perLine).toHaveLength(2);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, perLine[0]!)).status);
      statuses.push((await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, perLine[1]!)).status);
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
      expect(await h.service.ctx.db('orders').where({ marketplace: 'EBAY', external_order_id: order.orderId }).count<{ c: string }[]>('* as c')).toEqual([{ c: '1' }]);
    });

    it('when a notification is not signed by eBay, then 412 and nothing is stored or published', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '5.00' }] }));
      const signed = h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      signed.body.notification.data.order.orderId = `${order.orderId}9`; // tampered after signing
      const before = await deliveryCount();
      const res = await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, signed);
      expect(res.status).toBe(412);
      expect(JSON.parse(res.body).error.code).toBe('INVALID_SIGNATURE');
      const unsigned = await fetch(`${h.service.url}/webhooks/ebay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(signed.body) });
      expect(unsigned.status).toBe(412);
      expect(await deliveryCount()).toBe(before);
      await settle();
      expect(eventsFor(orderIdFor('EBAY', `${order.orderId}9`))).toHaveLength(0);
    });

    it('when the ship-to is incomplete, then the order travels with shipTo null and the issue (never an invented address)', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '5.00' }], shipTo: { contactAddress: { city: '' } } }));
      await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      const [e] = await waitForEvents(orderIdFor('EBAY', order.orderId), 1);
      expect(e!.event.payload).toMatchObject({ shipTo: null, shipToIssue: 'MISSING_CITY' });
    });

    it('when eBay validates the endpoint, then the challenge response is the documented hash', async () => {
      const res = await fetch(`${h.service.url}/webhooks/ebay?challenge_code=abc123`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ challengeResponse: ebayChallengeResponseFor('abc123', EBAY_VERIFICATION_TOKEN, EBAY_ENDPOINT_URL) });
    });

    // eBay is acknowledged (200) as soon as the verified notification is stored (eBay retries anything but a quick
    // 200/201/202/204); the order is read by the worker, so a Fulfillment API outage no longer shows in the answer.
    it('when a notification is stored, then this replica\'s delivery worker takes it as it is stored (no claim of its own); a duplicate gives the slot back', async () => {
      const count = async (name: string) => {
        const { values } = await h.service.ctx.metrics.registry.getSingleMetric(name)!.get();
        return values.filter((v) => v.labels.worker === 'ingest.deliveries').reduce((sum, v) => sum + v.value, 0);
      };
      // the worker idle: every slot free, no account being worked
      const idle = () => waitFor(async () => (await count('jobs_in_flight')) === 0, { description: 'the delivery worker idle' });
      await settle();
      await idle();
      const atCreation = await count('jobs_claimed_at_creation_total');
      const claimed = await count('jobs_claimed_total');
      const deliver = async (orderId: string, lineItems: Parameters<typeof h.ebay.signedNotification>[0]['lineItems']) => {
        const notification = h.ebay.signedNotification({ orderId, lineItems, username, userId: 'u1' });
        const res = await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, notification);
        expect(res.status).toBe(200);
        return notification;
      };
      const first = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'Cup', quantity: 1, unitValue: '5.00' }] }));
      const notification = await deliver(first.orderId, first.lineItems);
      await waitForEvents(orderIdFor('EBAY', first.orderId), 1);
      await settle();
      expect(await count('jobs_claimed_at_creation_total')).toBe(atCreation + 1);
      expect(await count('jobs_claimed_total')).toBe(claimed + 1);
      // decided under the fence it was stored with: nobody claimed it after
      expect(await h.service.ctx.db('deliveries').where({ external_order_id: first.orderId, status: 'accepted' }).select('lease_fence')).toEqual([{ lease_fence: '0' }]);

      // the same notification again: stored as a duplicate, nothing to hand over, the slot and the account let go
      await idle();
      expect((await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, notification)).status).toBe(200);
      await settle();
      await idle();
      expect(await count('jobs_claimed_at_creation_total')).toBe(atCreation + 1);
      const second = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'Pot', quantity: 1, unitValue: '6.00' }] }));
      await deliver(second.orderId, second.lineItems);
      await waitForEvents(orderIdFor('EBAY', second.orderId), 1);
      await settle();
      expect(await count('jobs_claimed_at_creation_total')).toBe(atCreation + 2);
      expect(eventsFor(orderIdFor('EBAY', first.orderId))).toHaveLength(1);
    });

    it('when the Fulfillment API fails transiently, then the stored notification is acknowledged (200, pending) and the worker completes it', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '7.00' }] }));
      h.ebay.fail({ match: /^GET \/sell\/fulfillment\/v1\/order\//, mode: { kind: 'status', status: 503 }, times: 1 });
      const res = await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).status).toBe('pending');
      const stored = await h.service.ctx.db('deliveries').where({ external_order_id: order.orderId }).first();
      expect(stored).toBeDefined();
      await waitForEvents(orderIdFor('EBAY', order.orderId), 1);
    });
  });

  describe('MercadoLibre', () => {
    const userId = Number(`7${Date.now() % 1e8}`);
    const token = uniqueId('APP_USR-');
    beforeAll(async () => {
      await h.registerMlSeller(userId, token);
    });
    const seedPaid = (overrides: Partial<Parameters<typeof buildMlOrder>[0]> = {}) => {
      const shipment = h.ml.seedShipment(buildMlShipment({ sellerId: overrides.sellerId ?? userId }));
      return h.ml.seedOrder(buildMlOrder({ sellerId: userId, shipmentId: shipment.id, items: [{ id: 'MLC123', title: 'Audífonos', quantity: 2, unitPrice: 15990 }], ...overrides }));
    };

    it('when a paid CLP order is notified five times, then each ack is under 500 ms and one OrderReceived has exact CLP amounts and an ISO country', async () => {
      const order = seedPaid();
      const notification = h.ml.notification({ orderId: order.id, userId });
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const res = await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, notification);
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
      await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      const row = await h.deliveryDecided({ external_order_id: String(order.id) });
      expect(row).toMatchObject({ status: 'ignored', reason: 'NOT_PAID' });
      await settle();
      expect(eventsFor(orderIdFor('MERCADOLIBRE', String(order.id)))).toHaveLength(0);
    });

    it('when a received order is cancelled, then one OrderCancelled follows the OrderReceived', async () => {
      const order = seedPaid({ currencyId: 'ARS', items: [{ id: 'MLA9', title: 'x', quantity: 1, unitPrice: 1234.5 }] });
      await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      const [received] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(received!.event.payload).toMatchObject({ saleAmount: { amountMinor: 123450, currency: 'ARS' } });
      h.ml.setOrderStatus(order.id, 'cancelled');
      await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId });
      await waitForEvents(orderId, 1, 'OrderCancelled');
      await settle();
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderCancelled']);
    });

    it('when the seller is unknown, then 200 and only a counted record; once registered, the next notification is processed', async () => {
      const strangerId = userId + 1;
      const strangerToken = uniqueId('APP_USR-');
      h.ml.registerSeller({ userId: strangerId, accessToken: strangerToken });
      const shipment = h.ml.seedShipment(buildMlShipment({ sellerId: strangerId }));
      const order = h.ml.seedOrder(buildMlOrder({ sellerId: strangerId, shipmentId: shipment.id, items: [{ id: 'MLC7', title: 'x', quantity: 1, unitPrice: 990 }] }));
      const dropped = async () => Number((await h.service.ctx.db('dropped_notifications').where({ marketplace: 'MERCADOLIBRE', reason: 'UNKNOWN_ACCOUNT' }).sum<{ s: string }[]>('count as s'))[0]!.s ?? 0);
      const droppedBefore = await dropped();
      const before = await deliveryCount();
      const mlCallsBefore = h.ml.requests.length;
      const res = await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: strangerId });
      expect(res.status).toBe(200);
      expect(await deliveryCount()).toBe(before);
      expect(await dropped()).toBe(droppedBefore + 1);
      expect(h.ml.requests.length).toBe(mlCallsBefore);

      await registerSeller(uniqueId('seller-ml-'), [{ marketplace: 'MERCADOLIBRE', accountId: String(strangerId), accessToken: strangerToken }]);
      expect((await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: strangerId })).status).toBe(200);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when the body is not a notification, then 400 with a code and nothing stored', async () => {
      const before = await deliveryCount();
      const res = await fetch(`${h.service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ hello: 1 }) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_NOTIFICATION');
      const bad = await fetch(`${h.service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"resource":' });
      expect(bad.status).toBe(400);
      const huge = await fetch(`${h.service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }) });
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
    const capture = (paypalOrderId: string, body: unknown = { storefrontId }) => signedCapture(storefrontId, captureSecret, paypalOrderId, body);

    it('when the storefront captures twice, then PayPal captures once and one OrderReceived carries the PayPal fee', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '100.00', fee: '3.98', customId: storefrontId });
      const first = await capture(seeded.id);
      expect(first.status).toBe(201);
      const second = await capture(seeded.id);
      expect(second.status).toBe(200);
      expect(h.paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1);
      expect(e!.event.payload).toMatchObject({
        marketplace: 'PAYPAL_STOREFRONT', externalOrderId: seeded.id, marketplaceAccountId: storefrontId,
        saleAmount: { amountMinor: 10000, currency: 'USD' }, paymentFee: { amountMinor: 398, currency: 'USD' },
        buyer: { name: 'John Doe', email: 'buyer@example.com' },
        shipTo: { fullName: 'John Doe', line1: '2211 N First Street', city: 'San Jose', region: 'CA', postalCode: '95131', countryCode: 'US' },
      });
      // PayPal then sends the capture webhook for the same order: a duplicate, no second event.
      const capId = h.paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      const hook = h.paypal.signedWebhook(h.paypal.captureCompletedEvent({ orderId: seeded.id, captureId: capId, amount: '100.00', fee: '3.98', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, hook)).status).toBe(200);
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when PayPal captures but its answer is lost, then ingest resolves it by replaying the same PayPal-Request-Id: the storefront hears 2xx, PayPal captured once, one OrderReceived', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '30.00', fee: '1.47', customId: storefrontId });
      h.paypal.fail({ match: new RegExp(`^POST /v2/checkout/orders/${seeded.id}/capture$`), mode: { kind: 'drop-after-handling' }, times: 1 });
      const first = await capture(seeded.id);
      expect([200, 201]).toContain(first.status);
      const captureCalls = h.paypal.requests.filter((r) => r.method === 'POST' && r.path === `/v2/checkout/orders/${seeded.id}/capture`);
      expect(captureCalls).toHaveLength(2); // the lost answer, then the replay with the same request id
      expect(h.paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1);
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 3000, currency: 'USD' }, paymentFee: { amountMinor: 147, currency: 'USD' } });
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when the order was already captured elsewhere (ORDER_ALREADY_CAPTURED), then it is looked up and emitted once', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '20.00', fee: '1.19', customId: storefrontId });
      const tokens = createPayPalTokenClient({ baseUrl: h.paypal.url, clientId: h.paypal.clientId, clientSecret: h.paypal.clientSecret });
      await paypalRequest(h.paypal.url, tokens, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} });
      expect((await capture(seeded.id)).status).toBe(201);
      const [e] = await waitForEvents(orderIdFor('PAYPAL_STOREFRONT', seeded.id), 1);
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 2000 }, paymentFee: { amountMinor: 119 } });
    });

    it('when PAYMENT.CAPTURE.COMPLETED arrives for an order not captured here, then the order is read for its ship-to and emitted; refunds follow', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '50.00', fee: '2.24', customId: storefrontId, shipping: { address: { country_code: 'CA', admin_area_2: 'Toronto', postal_code: 'M5V 2T6' } } });
      const tokens = createPayPalTokenClient({ baseUrl: h.paypal.url, clientId: h.paypal.clientId, clientSecret: h.paypal.clientSecret });
      await paypalRequest(h.paypal.url, tokens, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} });
      const captureId = h.paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      const completed = h.paypal.signedWebhook(h.paypal.captureCompletedEvent({ orderId: seeded.id, captureId, amount: '50.00', fee: '2.24', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      for (let i = 0; i < 5; i++) expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, completed)).status).toBe(200);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(e!.event.payload).toMatchObject({ paymentReference: captureId, paymentFee: { amountMinor: 224 }, shipTo: { countryCode: 'CA', city: 'Toronto' } });

      const partial = h.paypal.signedWebhook(h.paypal.captureRefundedEvent({ captureId, amount: '10.00' }), { webhookId: WEBHOOK_ID });
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, partial)).status).toBe(200);
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, partial)).status).toBe(200);
      const rest = h.paypal.signedWebhook(h.paypal.captureRefundedEvent({ captureId, amount: '40.00' }), { webhookId: WEBHOOK_ID });
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, rest)).status).toBe(200);
      const refunds = await waitForEvents(orderId, 2, 'OrderRefunded');
      await settle();
      expect(refunds.map((r) => r.event.type === 'OrderRefunded' && [r.event.payload.amount.amountMinor, r.event.payload.full])).toEqual([[1000, false], [4000, true]]);
      expect(eventsFor(orderId)).toHaveLength(3);
    });

    it('when the same PayPal transmission is replayed, then it is acknowledged as a duplicate and stored once', async () => {
      const hook = h.paypal.signedWebhook(h.paypal.captureRefundedEvent({ captureId: 'CAP-NOT-OURS', amount: '1.00' }), { webhookId: WEBHOOK_ID });
      const before = await deliveryCount();
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, hook)).status).toBeLessThan(300);
      const again = await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, hook);
      expect(again.status).toBe(200);
      expect(JSON.parse(again.body)).toEqual({ status: 'duplicate', reason: 'REPLAYED_TRANSMISSION' });
      expect(await deliveryCount()).toBe(before + 1);
    });

    it('when a PayPal webhook signature is invalid, then 401 and nothing is stored', async () => {
      const before = await deliveryCount();
      const hook = h.paypal.signedWebhook(h.paypal.captureCompletedEvent({ amount: '5.00', fee: '0.50', customId: storefrontId }), { webhookId: 'WH-SOMEONE-ELSE' });
      const res = await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, hook);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error.code).toBe('INVALID_SIGNATURE');
      const tampered = h.paypal.signedWebhook(h.paypal.captureCompletedEvent({ amount: '5.00', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, { ...tampered, rawBody: tampered.rawBody.replace('5.00', '6.00') })).status).toBe(401);
      expect(await deliveryCount()).toBe(before);
      expect(await (await fetch(`${h.service.url}/metrics`)).text()).toMatch(/ingest_signature_failures_total\{[^}]*marketplace="PAYPAL_STOREFRONT"[^}]*\} 2/);
    });

    it('when the storefront is unknown or the body is not what was signed, then 401 and PayPal is not called', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '9.00' });
      const before = await deliveryCount();
      expect((await capture(seeded.id, { storefrontId: 'nobody' })).status).toBe(401);
      expect((await capture(seeded.id, {})).status).toBe(401);
      expect(h.paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(0);
      expect(await deliveryCount()).toBe(before);
    });
  });

  describe('admin API', () => {
    it('when no or a wrong bearer token is given, then every admin route answers 401', async () => {
      for (const [method, path] of [['GET', '/admin/deliveries'], ['GET', '/admin/sellers/x'], ['PUT', '/admin/sellers/x'], ['GET', '/admin/orders/ord_x'], ['GET', '/admin/integrity'], ['POST', `/admin/deliveries/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/reprocess`]]) {
        expect((await fetch(`${h.service.url}${path}`, { method })).status).toBe(401);
        expect((await fetch(`${h.service.url}${path}`, { method, headers: { Authorization: 'Bearer wrong-token-000000000' } })).status).toBe(401);
      }
      expect((await admin('/admin/integrity')).status).toBe(200);
    });

    it('when a seller is read back, then its tokens are not in the answer and are sealed at rest', async () => {
      const sellerId = uniqueId('seller-');
      await registerSeller(sellerId, [{ marketplace: 'MERCADOLIBRE', accountId: uniqueId('9'), accessToken: 'APP_USR-very-secret-token' }]);
      const text = await (await admin(`/admin/sellers/${sellerId}`)).text();
      expect(text).not.toContain('very-secret');
      expect(JSON.parse(text).accounts[0]).toMatchObject({ marketplace: 'MERCADOLIBRE', hasAccessToken: true });
      const row = await h.service.ctx.db('marketplace_accounts').where({ seller_id: sellerId }).first();
      expect(row.token_sealed).toMatch(/^v2:[0-9a-f]{12}:/);
      expect(row.token_sealed).not.toContain('very-secret');
    });

    it('when an order is asked for, then its history and deliveries are shown', async () => {
      const order = h.collector.messages.find((m) => m.event.type === 'OrderReceived');
      expect(order).toBeDefined();
      const body = (await (await admin(`/admin/orders/${order!.event.orderId}`)).json()) as { state: string; history: unknown[]; deliveries: unknown[] };
      expect(body.state).toMatch(/RECEIVED|CANCELLED|REFUNDED/);
      expect(body.history.length).toBeGreaterThan(0);
      expect(body.deliveries.length).toBeGreaterThan(0);
    });
  });
});
