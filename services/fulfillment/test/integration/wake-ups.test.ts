import { dropSchema, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { outOrderIdFor } from '../../src/domain/out-order-id';
import { admin, eventsFor, orderReceived, orderState, publishOrders, setUpSeller, startHarness, waitForState, type Harness } from './harness';

/**
 * The workers look for due work on their own only rarely (an hour here): every step of an order must come from a wake-up
 * — the purchase worker by the recorded order, its accepted order's first payment check done at once, the follow-up
 * worker by the checks it scheduled itself, the push worker by the queued push and its retry. A step that waited for a
 * worker's own look would not happen within the test.
 */
describe('fulfillment: workers woken by the work they are given, not by looking for it', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ WORKER_INTERVAL_MS: '3600000', FOLLOW_UP_IDLE_MS: '3600000', TRACKING_PUSH_IDLE_MS: '3600000', PUSH_RETRY_BASE_MS: '50' });
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  it('an order is bought, checked until paid, shipped, pushed to eBay after a failure, and delivered, each step woken', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const { externalOrderId, lines } = (event as Extract<typeof event, { type: 'OrderReceived' }>).payload;
    h.ebay.seedOrder(buildEbayOrder({ orderId: externalOrderId, sellerUsername: 'ebay-seller-wake', lineItems: [{ lineItemId: lines[0]!.lineId, title: 'Thing', quantity: 1, unitValue: '20.00' }] }));
    h.ebay.registerSellerToken(`tok-${s.sellerId}`, 'ebay-seller-wake');
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/marketplace-tokens/EBAY`, { accessToken: `tok-${s.sellerId}` })).status).toBe(200);

    h.ali.setPaymentOutcome('stay-unpaid');
    try {
      await publishOrders(h, event);
      // the purchase worker's own check, then the follow-up worker's, woken when the check it scheduled fell due
      await waitFor(async () => {
        const o = await orderState(h, event.orderId);
        return ((o?.responses as Array<{ outcome: string }> | undefined)?.filter((r) => r.outcome === 'PLACE_ORDER_SUCCESS').length ?? 0) >= 2;
      }, { timeoutMs: 10_000, description: 'two payment checks' });
    } finally {
      h.ali.setPaymentOutcome('settle');
    }
    const [supplierOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.settlePayment(supplierOrder!.orderId);
    await waitForState(h, event.orderId, 'PURCHASED', 10_000);

    const push = new RegExp(`^POST /sell/fulfillment/v1/order/${externalOrderId}/shipping_fulfillment$`);
    h.ebay.fail({ match: push, mode: { kind: 'status', status: 503, body: { errors: [{ errorId: 2003, domain: 'API_FULFILLMENT', category: 'APPLICATION', message: 'Internal error' }] } }, times: 1 });
    h.ali.shipOrder(supplierOrder!.orderId, { carrier: 'CAINIAO', trackingNumber: 'LP00555555555CN' });
    await waitForState(h, event.orderId, 'SHIPPED', 10_000);
    const done = await waitFor(async () => {
      const o = await orderState(h, event.orderId);
      return o?.push?.status === 'DONE' ? o.push : undefined;
    }, { timeoutMs: 10_000, description: 'push DONE after a retry' });
    expect(done.attempts).toBe(2);
    expect(h.ebay.shippingFulfillments(externalOrderId)).toHaveLength(1);

    h.ali.deliverOrder(supplierOrder!.orderId);
    await waitForState(h, event.orderId, 'DELIVERED', 10_000);
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'OrderDelivered'), { description: 'OrderDelivered' });
    expect(eventsFor(h, event.orderId).map((e) => e.type)).toEqual(['PurchaseCompleted', 'OrderShipped', 'OrderDelivered']);
  });

  it('a recorded order is bought by the purchase worker that took it as it was recorded: no claim of its own, its lease and first fence set by the insert', async () => {
    const purchaseCount = async (name: string) => {
      const { values } = await h.service.ctx.metrics.registry.getSingleMetric(name)!.get();
      return values.filter((v) => v.labels.worker === 'purchase').reduce((sum, v) => sum + v.value, 0);
    };
    const claimedBefore = await purchaseCount('jobs_claimed_total');
    const atCreationBefore = await purchaseCount('jobs_claimed_at_creation_total');
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED', 10_000);
    expect(await purchaseCount('jobs_claimed_at_creation_total')).toBe(atCreationBefore + 1);
    expect(await purchaseCount('jobs_claimed_total')).toBe(claimedBefore + 1);
    // the worker committed under the fence the insert gave it (1); the order was bought once
    const attempts = await h.service.ctx.db('purchase_attempts').where({ order_id: event.orderId }).select('kind', 'outcome');
    expect(attempts).toEqual([{ kind: 'CREATE', outcome: 'CREATED' }]);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
  });
});
