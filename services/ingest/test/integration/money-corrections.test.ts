import { randomBytes } from 'node:crypto';
import { uniqueId } from '@postsale/runtime/testing';
import { buildEbayOrder, buildMlOrder, buildMlShipment } from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { useIngest, WEBHOOK_ID } from '../support/ingest-harness';

/**
 * The marketplaces' real answers (external-apis.md "Corrections") on real Kafka, registry and Postgres: storefront
 * captures that answer 201 without paid money, eBay discounts and whole-order notifications, MercadoLibre refunds on
 * an order that stays paid.
 */
describe('ingest on the marketplaces\' real answers', () => {
  const h = useIngest({ collect: true, env: {
    DELIVERY_POLL_INTERVAL_MS: '200',
    EBAY_RECHECK_MIN_MS: '200', EBAY_RECHECK_MAX_MS: '800', EBAY_RECHECK_POLL_INTERVAL_MS: '100', EBAY_RECHECK_WINDOW_SECONDS: String(30 * 24 * 3600),
    REQUEUE_PARKED_ON_REGISTRATION: 'false',
  } });
  const { registerSeller, signedCapture, eventsFor, waitForEvents, settle } = h;

  describe('PayPal storefront', () => {
    const storefrontId = uniqueId('shop-');
    const captureSecret = randomBytes(32).toString('hex');
    beforeAll(async () => {
      await registerSeller(uniqueId('seller-pp-'), [{ marketplace: 'PAYPAL_STOREFRONT', accountId: storefrontId, captureSecret }]);
    });
    const capture = (paypalOrderId: string) => signedCapture(storefrontId, captureSecret, paypalOrderId);

    it('when the capture answers 201 but the capture itself is DECLINED (or FAILED), then it is refused as a declined payment and no order exists', async () => {
      for (const outcome of ['CAPTURE_DECLINED', 'CAPTURE_FAILED'] as const) {
        const seeded = h.paypal.seedCheckoutOrder({ amount: '30.00', customId: storefrontId, captureOutcome: outcome });
        const res = await capture(seeded.id);
        expect(res.status).toBe(422);
        expect(await res.json()).toMatchObject({ error: { code: 'PAYMENT_DECLINED', details: { paypalIssue: outcome } } });
        expect(h.paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1); // PayPal did answer 201
        await settle();
        expect(eventsFor(orderIdFor('PAYPAL_STOREFRONT', seeded.id))).toHaveLength(0);
        expect(await h.service.ctx.db('orders').where({ external_order_id: seeded.id })).toHaveLength(0);
      }
    });

    it('when the capture answer is lost, then the retry with the same PayPal-Request-Id gets PayPal\'s 200 replay and the order is received once', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '35.00', fee: '1.71', customId: storefrontId });
      h.paypal.fail({ match: new RegExp(`^POST /v2/checkout/orders/${seeded.id}/capture$`), mode: { kind: 'drop-after-handling' }, times: 1 });
      const first = await capture(seeded.id);
      // outcome unknown: the client re-sends with the same PayPal-Request-Id at once (PayPal answers the replay 200), or
      // the delivery is kept and retried — never a lost order, never a second capture
      expect([201, 202, 500, 502, 503]).toContain(first.status);
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 3500, currency: 'USD' }, paymentFee: { amountMinor: 171 } });
      expect(h.paypal.captures().filter((c) => c.orderId === seeded.id)).toHaveLength(1);
      const captureCalls = h.paypal.requests.filter((r) => r.method === 'POST' && r.path === `/v2/checkout/orders/${seeded.id}/capture`);
      expect(captureCalls.length).toBeGreaterThanOrEqual(2);
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
    });

    it('when the capture is PENDING, then the storefront hears "awaiting payment" and the order waits for PAYMENT.CAPTURE.COMPLETED', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '40.00', fee: '1.89', customId: storefrontId, captureOutcome: 'PENDING' });
      const res = await capture(seeded.id);
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ status: 'awaiting_payment' });
      await settle();
      const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
      expect(eventsFor(orderId)).toHaveLength(0);
      const captureId = h.paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      const completed = h.paypal.signedWebhook(h.paypal.captureCompletedEvent({ orderId: seeded.id, captureId, amount: '40.00', fee: '1.89', customId: storefrontId }), { webhookId: WEBHOOK_ID });
      expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, completed)).status).toBe(200);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(e!.event.payload).toMatchObject({ saleAmount: { amountMinor: 4000, currency: 'USD' }, paymentFee: { amountMinor: 189 } });
    });
  });

  describe('PayPal capture webhooks', () => {
    const storefrontId = uniqueId('shop-');
    const captureSecret = randomBytes(32).toString('hex');
    beforeAll(async () => {
      await registerSeller(uniqueId('seller-pp-'), [{ marketplace: 'PAYPAL_STOREFRONT', accountId: storefrontId, captureSecret }]);
    });

    it('when a PENDING capture is later DENIED (PAYMENT.CAPTURE.PENDING then .DENIED), then both are acknowledged and no order ever exists', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '25.00', customId: storefrontId, captureOutcome: 'PENDING' });
      const pendingAnswer = await signedCapture(storefrontId, captureSecret, seeded.id);
      expect(pendingAnswer.status).toBe(202);
      const captureId = h.paypal.captures().find((c) => c.orderId === seeded.id)!.captureId;
      for (const type of ['PENDING', 'DENIED'] as const) {
        const hook = h.paypal.signedWebhook(h.paypal.captureStatusEvent(type, { orderId: seeded.id, captureId, amount: '25.00', customId: storefrontId }), { webhookId: WEBHOOK_ID });
        expect((await h.paypal.deliverWebhook(`${h.service.url}/webhooks/paypal`, hook)).status).toBe(200);
      }
      await settle();
      expect(eventsFor(orderIdFor('PAYPAL_STOREFRONT', seeded.id))).toHaveLength(0);
      expect(await h.service.ctx.db('orders').where({ external_order_id: seeded.id })).toHaveLength(0);
    });
  });

  describe('eBay', () => {
    const username = uniqueId('ebayuser');
    const token = uniqueId('ebay-user-token-');
    beforeAll(async () => {
      await h.registerEbaySeller(username, token);
    });
    const url = () => `${h.service.url}/webhooks/ebay`;

    it('when the order carries a discount and eBay\'s amount strings ("39.0"), then the sale amount is what the buyer paid after it', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, deliveryCost: '4.00', discount: '5.00', lineItems: [{ title: 'Mug', quantity: 2, unitValue: '20.00' }] }));
      expect(order.pricingSummary.total.value).toBe('39.0');
      await h.ebay.deliver(url(), h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      const orderId = orderIdFor('EBAY', order.orderId);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      expect(e!.event.payload).toMatchObject({
        itemsAmount: { amountMinor: 4000, currency: 'USD' }, shippingAmount: { amountMinor: 400, currency: 'USD' }, saleAmount: { amountMinor: 3900, currency: 'USD' },
      });
    });

    it('when the line items and the total disagree, then the order is parked with both numbers and never booked', async () => {
      const order = buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'Lamp', quantity: 1, unitValue: '50.00' }] });
      order.pricingSummary.total = { value: '45.0', currency: 'USD' }; // a total lower than the lines, no discount stated
      h.ebay.seedOrder(order);
      await h.ebay.deliver(url(), h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      const row = await h.deliveryDecided({ external_order_id: order.orderId });
      expect(row).toMatchObject({ status: 'parked', reason: 'EBAY_AMOUNTS_DISAGREE' });
      expect(row.detail).toContain('50.00');
      expect(row.detail).toContain('45.00');
      await settle();
      expect(eventsFor(orderIdFor('EBAY', order.orderId))).toHaveLength(0);
    });

    it('when one ORDER_CONFIRMATION lists every line and is re-sent (and a per-line one follows), then the order is received once with all lines', async () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'A', quantity: 1, unitValue: '10.00' }, { title: 'B', quantity: 3, unitValue: '2.50' }] }));
      const whole = h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      const resent = h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      const perLine = h.ebay.signedNotificationsPerLineItem({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' });
      for (const n of [whole, resent, whole, ...perLine]) expect((await h.ebay.deliver(url(), n)).status).toBe(200);
      const orderId = orderIdFor('EBAY', order.orderId);
      const [e] = await waitForEvents(orderId, 1, 'OrderReceived');
      await settle();
      expect(eventsFor(orderId)).toHaveLength(1);
      if (e!.event.type !== 'OrderReceived') throw new Error('unexpected');
      expect(e!.event.payload.lines.map((l) => [l.quantity, l.unitPrice.amountMinor])).toEqual([[1, 1000], [3, 250]]);
      expect(e!.event.payload.saleAmount.amountMinor).toBe(1750);
    });
  });

  describe('eBay cancellations and refunds (no notification exists: open orders are re-read)', () => {
    const username = uniqueId('ebayuser');
    const token = uniqueId('ebay-user-token-');
    beforeAll(async () => {
      await h.registerEbaySeller(username, token);
    });
    const receive = async (unitValue: string) => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'Kettle', quantity: 1, unitValue }] }));
      await h.ebay.deliver(`${h.service.url}/webhooks/ebay`, h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }));
      const orderId = orderIdFor('EBAY', order.orderId);
      await waitForEvents(orderId, 1, 'OrderReceived');
      return { order, orderId };
    };

    it('when eBay refunds part of an order and later cancels it, then the re-reads find an exact OrderRefunded and then OrderCancelled, once each', async () => {
      const { order, orderId } = await receive('60.00');
      h.ebay.refundOrder(order.orderId, '12.5');
      const [refund] = await waitForEvents(orderId, 1, 'OrderRefunded');
      expect(refund!.event.payload).toMatchObject({ amount: { amountMinor: 1250, currency: 'USD' }, full: false, reason: 'REFUNDED_ON_EBAY' });
      h.ebay.cancelOrder(order.orderId);
      await waitForEvents(orderId, 1, 'OrderCancelled');
      // later re-reads (the order is now closed: none happen) and the refund already known change nothing
      const rechecks = await h.service.ctx.db('orders').where({ order_id: orderId }).first();
      await settle();
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderRefunded', 'OrderCancelled']);
      expect((await h.service.ctx.db('orders').where({ order_id: orderId }).first()).recheck_count).toBe(rechecks.recheck_count);
    });

    it('when an order is older than the return window, then it is no longer re-read', async () => {
      const old = await receive('30.00');
      await h.service.ctx.db('orders').where({ order_id: old.orderId }).update({ received_at: h.service.ctx.db.raw(`now() - interval '31 days'`) });
      const before = (await h.service.ctx.db('orders').where({ order_id: old.orderId }).first()).recheck_count;
      h.ebay.refundOrder(old.order.orderId, '30.0');
      const fresh = await receive('20.00'); // proves the re-reader is running: this one's refund is found
      h.ebay.refundOrder(fresh.order.orderId, '5.0');
      await waitForEvents(fresh.orderId, 1, 'OrderRefunded');
      await settle();
      expect(eventsFor(old.orderId).map((m) => m.event.type)).toEqual(['OrderReceived']);
      expect((await h.service.ctx.db('orders').where({ order_id: old.orderId }).first()).recheck_count).toBe(before);
    });
  });

  describe('MercadoLibre', () => {
    const userId = Number(`8${Date.now() % 1e8}`);
    const token = uniqueId('APP_USR-');
    beforeAll(async () => {
      await h.registerMlSeller(userId, token);
    });
    const seedPaid = () => {
      const shipment = h.ml.seedShipment(buildMlShipment({ sellerId: userId }));
      return h.ml.seedOrder(buildMlOrder({ sellerId: userId, shipmentId: shipment.id, currencyId: 'CLP', items: [{ id: 'MLC7', title: 'Audífonos', quantity: 2, unitPrice: 15990 }] }));
    };
    const notify = (id: number) => h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: id, userId });

    it('when money is returned on an order that stays paid, then each new refunded total is one OrderRefunded for the exact difference; repeats change nothing', async () => {
      const order = seedPaid();
      await notify(order.id);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      h.ml.refundPayment(order.id, 5990);
      await notify(order.id);
      await notify(order.id); // a second notification for the same change
      await waitForEvents(orderId, 1, 'OrderRefunded');
      h.ml.refundPayment(order.id, 25990);
      await notify(order.id);
      const refunds = await waitForEvents(orderId, 2, 'OrderRefunded');
      await notify(order.id);
      await settle();
      expect(refunds.map((r) => r.event.type === 'OrderRefunded' && [r.event.payload.amount.amountMinor, r.event.payload.amount.currency, r.event.payload.full])).toEqual([[5990, 'CLP', false], [25990, 'CLP', true]]);
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderRefunded', 'OrderRefunded']);
      expect(h.ml.order(order.id)!.status).toBe('paid');
    });

    it('when a paid order is charged back, then one full OrderRefunded says CHARGED_BACK', async () => {
      const order = seedPaid();
      await notify(order.id);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      h.ml.chargeBack(order.id);
      await notify(order.id);
      const [r] = await waitForEvents(orderId, 1, 'OrderRefunded');
      expect(r!.event.payload).toMatchObject({ amount: { amountMinor: 31980, currency: 'CLP' }, full: true, reason: 'CHARGED_BACK' });
    });

    it('when a received order turns invalid, then it is cancelled (OrderCancelled) once', async () => {
      const order = seedPaid();
      await notify(order.id);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      h.ml.setOrderStatus(order.id, 'invalid');
      await notify(order.id);
      await notify(order.id);
      const [c] = await waitForEvents(orderId, 1, 'OrderCancelled');
      expect(c!.event.payload).toMatchObject({ reason: 'INVALIDATED_ON_MERCADOLIBRE' });
      await settle();
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderCancelled']);
    });

    it('when a partially refunded order is then cancelled, then OrderCancelled still follows', async () => {
      const order = seedPaid();
      await notify(order.id);
      const orderId = orderIdFor('MERCADOLIBRE', String(order.id));
      await waitForEvents(orderId, 1, 'OrderReceived');
      h.ml.refundPayment(order.id, 1000);
      await notify(order.id);
      await waitForEvents(orderId, 1, 'OrderRefunded');
      h.ml.setOrderStatus(order.id, 'cancelled');
      await notify(order.id);
      await notify(order.id);
      await waitForEvents(orderId, 1, 'OrderCancelled');
      await settle();
      expect(eventsFor(orderId).map((m) => m.event.type)).toEqual(['OrderReceived', 'OrderRefunded', 'OrderCancelled']);
    });
  });
});
