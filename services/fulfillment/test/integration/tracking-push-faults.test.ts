import { dropSchema, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { outOrderIdFor } from '../../src/domain/out-order-id';
import { admin, orderReceived, orderState, publishOrders, setUpSeller, startHarness, waitForState, type Harness } from './harness';

describe('fulfillment: the marketplace tracking push under transient failures and lost answers', () => {
  let h: Harness;
  beforeAll(async () => {
    // two attempts allowed for refusals an operator must fix; transient failures are not counted against it
    h = await startHarness({ PUSH_MAX_ATTEMPTS: '2', PUSH_RETRY_BASE_MS: '50' });
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  it('when eBay answers 503 more often than PUSH_MAX_ATTEMPTS and then acts but loses its answer, then the push keeps going and ends DONE with exactly one shipping fulfillment at eBay', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const { externalOrderId, lines } = (event as Extract<typeof event, { type: 'OrderReceived' }>).payload;
    h.ebay.seedOrder(buildEbayOrder({ orderId: externalOrderId, sellerUsername: 'ebay-seller-faults', lineItems: [{ lineItemId: lines[0]!.lineId, title: 'Thing', quantity: 1, unitValue: '20.00' }] }));
    h.ebay.registerSellerToken(`tok-${s.sellerId}`, 'ebay-seller-faults');
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/marketplace-tokens/EBAY`, { accessToken: `tok-${s.sellerId}` })).status).toBe(200);
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED');

    const push = new RegExp(`^POST /sell/fulfillment/v1/order/${externalOrderId}/shipping_fulfillment$`);
    h.ebay.fail({ match: push, mode: { kind: 'status', status: 503, body: { errors: [{ errorId: 2003, domain: 'API_FULFILLMENT', category: 'APPLICATION', message: 'Internal error' }] } }, times: 3 });
    h.ebay.fail({ match: push, mode: { kind: 'drop-after-handling' }, times: 1 });
    // the push worker's claims from here on: woken by the queued push and by each retry's due time, it looks for due
    // pushes on its own only every TRACKING_PUSH_IDLE_MS (it was every WORKER_INTERVAL_MS, 100 ms here: an empty claim each)
    const pushClaims: string[] = [];
    const countClaims = (q: { sql: string }) => {
      if (/^update "tracking_pushes" set "next_attempt_at"/.test(q.sql)) pushClaims.push(q.sql);
    };
    h.service.ctx.db.on('query', countClaims);
    const [supplierOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.shipOrder(supplierOrder!.orderId, { carrier: 'CAINIAO', trackingNumber: 'LP00777777777CN' });

    const done = await waitFor(async () => {
      const o = await orderState(h, event.orderId);
      return o?.push?.status === 'DONE' ? o.push : undefined;
    }, { timeoutMs: 30_000, description: 'push DONE' });
    // 3 × 503, the lost answer, then the read-back that finds our tracking: more attempts than PUSH_MAX_ATTEMPTS
    expect(done.attempts).toBeGreaterThanOrEqual(5);
    h.service.ctx.db.off('query', countClaims);
    // one claim per attempt (a nudge that lands while a claim is running may add one)
    expect(pushClaims.length).toBeGreaterThanOrEqual(done.attempts);
    expect(pushClaims.length).toBeLessThanOrEqual(done.attempts + 1);
    expect(h.ebay.shippingFulfillments(externalOrderId)).toHaveLength(1);
    expect(h.ebay.shippingFulfillments(externalOrderId)[0]).toMatchObject({ trackingNumber: 'LP00777777777CN' });
  });
});
