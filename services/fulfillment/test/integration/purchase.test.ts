import { Streams } from '@postsale/contracts';
import { dropSchema, outboxEventCount, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { outOrderIdFor } from '../../src/domain/out-order-id';
import { admin, eventsFor, orderReceived, orderState, publishOrders, setUpSeller, startHarness, waitForState, type Harness } from './harness';

describe('fulfillment: buying from the supplier through the Dropshipping API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ DEADLINE_AWAITING_PAYMENT_S: '1' });
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  const createCalls = () => h.ali.callCount('aliexpress.ds.order.create');

  it('happy path: an order is bought once, paid, shipped (tracking pushed to eBay) and delivered, with every event published', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const { externalOrderId, lines } = (event as Extract<typeof event, { type: 'OrderReceived' }>).payload;
    h.ebay.seedOrder(buildEbayOrder({ orderId: externalOrderId, sellerUsername: 'ebay-seller-1', lineItems: [{ lineItemId: lines[0]!.lineId, title: 'Thing', quantity: 1, unitValue: '20.00' }] }));
    h.ebay.registerSellerToken(`tok-${s.sellerId}`, 'ebay-seller-1');
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/marketplace-tokens/EBAY`, { accessToken: `tok-${s.sellerId}` })).status).toBe(200);

    // the follow-up worker's claims of this order while it waited for payment: none, the purchase worker checks an
    // accepted order's payment itself, under its own lease (a claim of its own was a round trip and a commit)
    const claimedAwaitingPayment: unknown[] = [];
    const onResponse = (rows: unknown, q: { sql: string }) => {
      if (!/^update "fulfillments" set "next_run_at"/.test(q.sql) || !Array.isArray(rows)) return;
      for (const r of rows as Array<{ order_id: string; state: string }>) if (r.order_id === event.orderId && r.state === 'AWAITING_PAYMENT') claimedAwaitingPayment.push(r);
    };
    // The order's own statements until it is PURCHASED (a transaction counts whole, BEGIN and COMMIT included, when one of
    // its statements names the order; the claims, the relay's and the seller's settings are not the order's): the inbox
    // transaction (4), the intent (1) and the outcome with the first payment check's answer (5: the attempt under the
    // row lock, the move to AWAITING_PAYMENT, the move to PURCHASED with its PurchaseCompleted). The payment check was a
    // commit of its own (4 commits).
    const byTx = new Map<string, string[]>();
    const own: string[] = [];
    const onQuery = (q: { sql: string; bindings?: unknown[]; __knexTxId?: string }) => {
      const names = (q.bindings ?? []).includes(event.orderId);
      if (q.__knexTxId) {
        const tx = byTx.get(q.__knexTxId) ?? [];
        byTx.set(q.__knexTxId, [...tx, q.sql]);
        if (names && !own.includes(`tx:${q.__knexTxId}`)) own.push(`tx:${q.__knexTxId}`);
      } else if (names && !/^\s*select/i.test(q.sql)) own.push(q.sql); // reads on their own: the test's polling of the order
    };
    h.service.ctx.db.on('query', onQuery);
    h.service.ctx.db.on('query-response', onResponse);
    await publishOrders(h, event);
    const purchased = await waitForState(h, event.orderId, 'PURCHASED');
    h.service.ctx.db.off('query-response', onResponse);
    h.service.ctx.db.off('query', onQuery);
    expect(claimedAwaitingPayment).toEqual([]);
    const statements = own.flatMap((o) => (o.startsWith('tx:') ? byTx.get(o.slice(3))! : [o]));
    const commits = own.length; // a transaction's COMMIT, or a write sent on its own
    expect({ statements: statements.length, commits }).toEqual({ statements: 10, commits: 3 });
    const supplierOrders = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    expect(supplierOrders).toHaveLength(1);
    expect(supplierOrders[0]).toMatchObject({ account: s.creds.account, channel: 'api', address: { country: 'US', city: 'San Jose' } });
    expect(purchased).toMatchObject({ supplierOrderId: supplierOrders[0]!.orderId, supplierCost: { amountMinor: 1200, currency: 'USD' }, channel: 'API' });
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseCompleted'), { description: 'PurchaseCompleted' });
    expect(eventsFor(h, event.orderId).find((e) => e.type === 'PurchaseCompleted')?.payload).toMatchObject({
      supplier: 'ALIEXPRESS', supplierOrderId: supplierOrders[0]!.orderId, supplierCost: { amountMinor: 1200, currency: 'USD' }, channel: 'API',
    });

    h.ali.shipOrder(supplierOrders[0]!.orderId, { carrier: 'CAINIAO', trackingNumber: 'LP00123456789CN' });
    await waitForState(h, event.orderId, 'SHIPPED');
    await waitFor(() => h.ebay.shippingFulfillments(externalOrderId).length > 0, { description: 'tracking pushed to eBay' });
    expect(h.ebay.shippingFulfillments(externalOrderId)).toEqual([
      expect.objectContaining({ trackingNumber: 'LP00123456789CN', shippingCarrierCode: 'CAINIAO', lineItems: [{ lineItemId: lines[0]!.lineId, quantity: 1 }] }),
    ]);
    await waitFor(async () => (await orderState(h, event.orderId))?.push?.status === 'DONE', { description: 'push recorded DONE' });

    h.ali.deliverOrder(supplierOrders[0]!.orderId);
    const delivered = await waitForState(h, event.orderId, 'DELIVERED');
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'OrderDelivered'), { description: 'OrderDelivered' });
    expect(eventsFor(h, event.orderId).map((e) => e.type)).toEqual(['PurchaseCompleted', 'OrderShipped', 'OrderDelivered']);
    expect(eventsFor(h, event.orderId)[1]!.payload).toMatchObject({ carrier: 'CAINIAO', trackingNumber: 'LP00123456789CN' });
    expect((delivered.transitions as Array<{ to_state: string }>).map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASING', 'AWAITING_PAYMENT', 'PURCHASED', 'SHIPPED', 'DELIVERED']);
    expect(h.ebay.shippingFulfillments(externalOrderId)).toHaveLength(1);

    // credentials are sealed at rest: the secret never appears in the table
    const row = await h.service.ctx.db('supplier_credentials').where({ seller_id: s.sellerId }).first();
    expect(JSON.stringify(row)).not.toContain(s.creds.appSecret);
    expect(JSON.stringify(row)).not.toContain(s.creds.accessToken);
  });

  it('when the supplier cost is above the seller\'s maximum, then the order goes to review with the numbers and nothing is bought; an operator approval with a limit then buys it', async () => {
    const s = await setUpSeller(h, { policy: { maxCost: { amount: '11.00', currency: 'USD' } } });
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 5000, currency: 'USD' } });
    const before = createCalls();
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'PRICE_ABOVE_MAX', details: { supplierCost: '12.00 USD', maxCost: '11.00 USD', saleAmount: '50.00 USD' } });
    expect(createCalls()).toBe(before);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseFailed'), { description: 'PurchaseFailed' });
    expect(eventsFor(h, event.orderId)[0]!.payload).toMatchObject({ reasonCode: 'PRICE_ABOVE_MAX', needsReview: true });
    const queue = await admin(h, 'GET', '/admin/review-queue');
    expect(queue.body.orders.map((o: { orderId: string }) => o.orderId)).toContain(event.orderId);

    // an approval below the actual cost is not enough: back to review, still nothing bought
    expect((await admin(h, 'POST', `/admin/orders/${event.orderId}/approve`, { maxSupplierCost: { amount: '11.99', currency: 'USD' } })).status).toBe(200);
    await waitFor(async () => {
      const o = await orderState(h, event.orderId);
      return o?.state === 'NEEDS_REVIEW' && (o.transitions as unknown[]).length >= 4 ? o : undefined;
    }, { description: 'back in review' });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);

    expect((await admin(h, 'POST', `/admin/orders/${event.orderId}/approve`, { maxSupplierCost: { amount: '12.00', currency: 'USD' } })).status).toBe(200);
    await waitForState(h, event.orderId, 'PURCHASED');
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
  });

  it('when the create answer is lost and AliExpress answers the re-send with REPEATED_ORDER_ERROR (no id) and the seller has no web login, then the order is never bought twice, never marked not placed, and goes to review until linked', async () => {
    const s = await setUpSeller(h, { webLogin: false });
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    h.ali.failMethod('aliexpress.ds.order.create', { kind: 'drop-after-handling' }, 1);
    const before = createCalls();
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'SUPPLIER_ORDER_ID_UNKNOWN', details: { outOrderId: outOrderIdFor(event.orderId), supplierCode: 'REPEATED_ORDER_ERROR', placedAtSupplier: true } });
    const attempts = review.attempts as Array<{ kind: string; outcome: string; supplier_code: string | null }>;
    expect(attempts.map((a) => [a.kind, a.outcome])).toEqual([['CREATE', 'UNKNOWN'], ['RESOLVE', 'PLACED']]);
    expect(createCalls() - before).toBe(2);
    const supplierOrders = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    expect(supplierOrders).toHaveLength(1);
    // not a failure: nothing says "not placed"
    expect(eventsFor(h, event.orderId).filter((e) => e.type === 'PurchaseFailed')).toHaveLength(0);
    // an operator retry would re-place it: refused
    expect((await admin(h, 'POST', `/admin/orders/${event.orderId}/retry`)).status).toBe(409);
    expect(createCalls() - before).toBe(2);
    // the operator finds it in the seller's AliExpress orders and links it
    const linked = await admin(h, 'POST', `/admin/orders/${event.orderId}/mark-purchased`, { supplierOrderId: supplierOrders[0]!.orderId, supplierCost: { amount: '12.00', currency: 'USD' } });
    expect(linked.status).toBe(200);
    await waitForState(h, event.orderId, 'PURCHASED');
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
  });

  it('when a shipped supplier order ends FINISH with a close end_reason, then it is not delivered: review SUPPLIER_ORDER_CLOSED and no OrderDelivered', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED');
    const [supplierOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.shipOrder(supplierOrder!.orderId, { carrier: 'CAINIAO', trackingNumber: 'LP00999999999CN' });
    await waitForState(h, event.orderId, 'SHIPPED');
    h.ali.closeOrder(supplierOrder!.orderId, 'cancel_order_close_trade');
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'SUPPLIER_ORDER_CLOSED', details: { endReason: 'cancel_order_close_trade' } });
    expect(eventsFor(h, event.orderId).filter((e) => e.type === 'OrderDelivered')).toHaveLength(0);
  });

  it.each([
    ['closed FINISH seller_send_goods_timeout', 'SUPPLIER_ORDER_CLOSED', 'seller_send_goods_timeout'],
    ['cancelled IN_CANCEL', 'SUPPLIER_ORDER_CANCELLED', 'IN_CANCEL'],
  ] as const)('when a PURCHASED supplier order is %s before any tracking appears, then tracking polling stops and it goes to review with the reason', async (how, code, supplierCode) => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED');
    const [supplierOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    if (how.startsWith('closed')) h.ali.closeOrder(supplierOrder!.orderId, 'seller_send_goods_timeout');
    else h.ali.cancelOrder(supplierOrder!.orderId);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code, details: { supplierCode, supplierOrderId: supplierOrder!.orderId } });
    expect(String((review.reason as { details: { message: string } }).details.message)).toMatch(/before any tracking appeared/);
    expect(eventsFor(h, event.orderId).map((e) => e.type)).not.toContain('OrderShipped');
    expect(eventsFor(h, event.orderId).map((e) => e.type)).not.toContain('OrderDelivered');
  });

  it('when the supplier creates the order but the connection drops before the answer, then REPEATED_ORDER_ERROR on the re-send is resolved on the seller\'s orders page: exactly one supplier order, PURCHASED', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    h.ali.failMethod('aliexpress.ds.order.create', { kind: 'drop-after-handling' }, 1);
    const before = createCalls();
    await publishOrders(h, event);
    const purchased = await waitForState(h, event.orderId, 'PURCHASED');
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    expect(createCalls() - before).toBe(2); // the lost answer, then the re-send with the same out_order_id (REPEATED_ORDER_ERROR)
    const attempts = purchased.attempts as Array<{ kind: string; outcome: string; out_order_id: string; response: unknown }>;
    expect(attempts.map((a) => [a.kind, a.outcome])).toEqual([['CREATE', 'UNKNOWN'], ['RESOLVE', 'CREATED']]);
    expect(JSON.stringify(attempts[1]!.response)).toContain('orders page after REPEATED_ORDER_ERROR');
    expect(new Set(attempts.map((a) => a.out_order_id))).toEqual(new Set([outOrderIdFor(event.orderId)]));
    await waitFor(() => eventsFor(h, event.orderId).length > 0, { description: 'event' });
    expect(eventsFor(h, event.orderId).filter((e) => e.type === 'PurchaseCompleted')).toHaveLength(1);
  });

  it('when the supplier cost leaves a margin before fees but a loss after them, then the default policy refuses to buy (margin after fees)', async () => {
    const s = await setUpSeller(h, { policy: { minMarginBps: null } }); // the service default: 0 bps after fees
    // sale 15.00, eBay fee 1.99 + payment fee 3.60, cost 10.00 + 2.00 freight = 12.00: 3.00 of margin before fees, 2.59 short after
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 1500, currency: 'USD' }, marketplaceFee: { amountMinor: 199, currency: 'USD' }, paymentFee: { amountMinor: 360, currency: 'USD' } });
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'PRICE_ABOVE_MAX', details: { fees: '5.59 USD', margin: '-2.59 USD' } });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);
  });

  it('when a policy PUT omits fields, then they keep their stored values (never a permissive default); null clears one', async () => {
    const s = await setUpSeller(h, { policy: { minMarginBps: 2500, maxCost: { amount: '30.00', currency: 'USD' }, fxRates: { 'USD:CLP': '950' }, dailyQuota: 50 } });
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/policy`, { ratePerSecond: 5 })).status).toBe(200);
    const after = (await admin(h, 'GET', `/admin/sellers/${s.sellerId}`)).body.policy;
    expect(after).toMatchObject({ minMarginBps: 2500, maxCost: expect.objectContaining({ currency: 'USD' }), purchaseChannel: 'API', fxRates: { 'USD:CLP': '950' }, ratePerSecond: 5, dailyQuota: 50 });
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/policy`, { maxCost: null })).status).toBe(200);
    expect((await admin(h, 'GET', `/admin/sellers/${s.sellerId}`)).body.policy).toMatchObject({ minMarginBps: 2500, maxCost: null, dailyQuota: 50 });
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/policy`, { minMarginBps: 'lots' })).status).toBe(400);
  });

  it('when the address has no state/province (AliExpress requires one; zip is optional), then the order goes to review before any supplier call', async () => {
    const s = await setUpSeller(h);
    const before = createCalls();
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' }, shipTo: { fullName: 'Ana', line1: 'Calle 1', line2: null, city: 'Santiago', region: null, postalCode: null, countryCode: 'CL', phone: null } });
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'INCOMPLETE_ADDRESS', details: { missing: 'province' } });
    expect(createCalls()).toBe(before);
  });

  it('when the supplier holds the order (RISK_CONTROL_HOLD waits; WAIT_COMPLETE_ADDRESS needs a person), then it is not purchased and the address hold goes to review', async () => {
    const s = await setUpSeller(h);
    const held = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const address = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    h.ali.setPaymentOutcome('stay-unpaid');
    try {
      await publishOrders(h, held); // one at a time: concurrent first registrations of a subject race in the registry
      await publishOrders(h, address);
      await waitForState(h, held.orderId, 'AWAITING_PAYMENT');
      await waitForState(h, address.orderId, 'AWAITING_PAYMENT');
    } finally {
      h.ali.setPaymentOutcome('settle');
    }
    const [heldOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(held.orderId));
    const [addressOrder] = h.ali.ordersByOutOrderId(outOrderIdFor(address.orderId));
    h.ali.holdOrder(heldOrder!.orderId, 'RISK_CONTROL_HOLD');
    h.ali.holdOrder(addressOrder!.orderId, 'WAIT_COMPLETE_ADDRESS');
    const review = await waitForState(h, address.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'INCOMPLETE_ADDRESS', details: { supplierCode: 'WAIT_COMPLETE_ADDRESS' } });
    expect((await orderState(h, held.orderId))?.state).toBe('AWAITING_PAYMENT');
    h.ali.settlePayment(heldOrder!.orderId); // the hold is lifted and the order paid
    await waitForState(h, held.orderId, 'PURCHASED');
  });

  it('when no delivery service reaches the address (freight answers 505 DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS), then the order goes to review with that code and nothing is bought', async () => {
    const s = await setUpSeller(h, { undeliverableTo: ['US'] });
    const before = createCalls();
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'PRODUCT_UNAVAILABLE', details: { supplierCode: 'DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS' } });
    expect(createCalls()).toBe(before);
  });

  it('when the same OrderReceived arrives twice (and once more re-ingested under a new event id), then one purchase happens', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const reingested = { ...event, eventId: crypto.randomUUID() };
    await publishOrders(h, event, event, reingested);
    await waitForState(h, event.orderId, 'PURCHASED');
    await waitFor(async () => {
      const rows = await h.service.ctx.db('inbox').whereIn('event_id', [event.eventId, reingested.eventId]);
      return rows.length === 2;
    }, { description: 'all copies consumed' });
    await waitFor(() => eventsFor(h, event.orderId).length > 0, { description: 'event' });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    expect(eventsFor(h, event.orderId).filter((e) => e.type === 'PurchaseCompleted')).toHaveLength(1);
    const detail = await orderState(h, event.orderId);
    expect((detail!.transitions as Array<{ to_state: string }>).filter((t) => t.to_state === 'RECEIVED')).toHaveLength(1);
  });

  it('when the supplier order awaits payment, then it is not PURCHASED (and shows in the integrity report) until the payment settles', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    h.ali.setPaymentOutcome('stay-unpaid');
    try {
      await publishOrders(h, event);
      await waitForState(h, event.orderId, 'AWAITING_PAYMENT');
      // several status checks see PLACE_ORDER_SUCCESS and leave it alone
      const waiting = await waitFor(async () => {
        const o = await orderState(h, event.orderId);
        const checks = (o?.responses as Array<{ outcome: string }> | undefined)?.filter((r) => r.outcome === 'PLACE_ORDER_SUCCESS') ?? [];
        return checks.length >= 2 ? o : undefined;
      }, { description: 'two payment checks' });
      expect(waiting.state).toBe('AWAITING_PAYMENT');
      expect(eventsFor(h, event.orderId)).toEqual([]);
      const integrity = await waitFor(async () => {
        const r = await admin(h, 'GET', '/admin/integrity');
        return r.body.violations.some((v: { orderId: string }) => v.orderId === event.orderId) ? r.body : undefined;
      }, { description: 'integrity violation' });
      expect(integrity).toMatchObject({ service: 'fulfillment', generatedAt: expect.any(String) });
      expect(integrity.violations.find((v: { orderId: string }) => v.orderId === event.orderId)).toMatchObject({ state: 'AWAITING_PAYMENT', deadlineSeconds: 1, sellerId: s.sellerId });
    } finally {
      h.ali.setPaymentOutcome('settle');
    }
    const [order] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.settlePayment(order!.orderId);
    await waitForState(h, event.orderId, 'PURCHASED');
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseCompleted'), { description: 'PurchaseCompleted' });
  });

  it('when the payment check right after the purchase fails, then the acceptance is recorded all the same and a later check makes it PURCHASED', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const restore = h.ali.failMethod('aliexpress.trade.ds.order.get', { kind: 'status', status: 503 });
    let waiting;
    try {
      await publishOrders(h, event);
      waiting = await waitForState(h, event.orderId, 'AWAITING_PAYMENT');
    } finally {
      restore();
    }
    // the supplier's acceptance is not lost with the check: recorded without a payment answer
    expect(waiting).toMatchObject({ supplierOrderId: expect.any(String) });
    expect((waiting.responses as Array<{ method: string }>).map((r) => r.method)).not.toContain('aliexpress.trade.ds.order.get');
    const purchased = await waitForState(h, event.orderId, 'PURCHASED');
    expect((purchased.transitions as Array<{ to_state: string }>).map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASING', 'AWAITING_PAYMENT', 'PURCHASED']);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseCompleted'), { description: 'PurchaseCompleted' });
  });

  it('when the order is cancelled before it is bought, then nothing is bought and it ends CANCELLED', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const cancelled = { ...event, eventId: crypto.randomUUID(), type: 'OrderCancelled' as const, payload: { marketplace: 'EBAY' as const, externalOrderId: `ext-${event.orderId}`, reason: 'buyer asked', cancelledAt: Date.now() } };
    await publishOrders(h, event, cancelled);
    await waitForState(h, event.orderId, 'CANCELLED');
    // a later order of the same seller gets bought: the purchase worker has had every chance to touch the first one
    const sentinel = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, sentinel);
    await waitForState(h, sentinel.orderId, 'PURCHASED');
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);
    expect((await orderState(h, event.orderId))!.state).toBe('CANCELLED');
    expect(eventsFor(h, event.orderId)).toEqual([]);
  });

  it('when the address is incomplete or the listing is unmapped, then the order goes to review with that reason; mark-purchased completes one by hand', async () => {
    const s = await setUpSeller(h);
    const noAddress = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' }, shipTo: 'none' });
    const unmapped = orderReceived({ sellerId: s.sellerId, listingId: 'not-mapped', sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, noAddress, unmapped);
    expect((await waitForState(h, noAddress.orderId, 'NEEDS_REVIEW')).reason).toMatchObject({ code: 'INCOMPLETE_ADDRESS' });
    expect((await waitForState(h, unmapped.orderId, 'NEEDS_REVIEW')).reason).toMatchObject({ code: 'UNMAPPED_LISTING' });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(noAddress.orderId))).toHaveLength(0);

    const marked = await admin(h, 'POST', `/admin/orders/${unmapped.orderId}/mark-purchased`, { supplierOrderId: '3000000000000123', supplierCost: { amount: '12.34', currency: 'USD' } });
    expect(marked.status).toBe(200);
    expect(marked.body).toMatchObject({ state: 'PURCHASED', channel: 'MANUAL', supplierCost: { amountMinor: 1234, currency: 'USD' } });
    await waitFor(() => eventsFor(h, unmapped.orderId).some((e) => e.type === 'PurchaseCompleted'), { description: 'manual PurchaseCompleted' });
    expect(eventsFor(h, unmapped.orderId).find((e) => e.type === 'PurchaseCompleted')!.payload).toMatchObject({ channel: 'MANUAL', supplierOrderId: '3000000000000123' });
    // once purchased it cannot be marked again
    expect((await admin(h, 'POST', `/admin/orders/${unmapped.orderId}/mark-purchased`, { supplierOrderId: '3000000000000123', supplierCost: { amount: '12.34', currency: 'USD' } })).status).toBe(409);
  });

  it('when the supplier refuses permanently (blacklisted buyer), then the order goes to review with the supplier\'s code and PurchaseFailed says so', async () => {
    const s = await setUpSeller(h);
    h.ali.blacklistBuyer('Mallory Blocked');
    const event = orderReceived({
      sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' },
      shipTo: { fullName: 'Mallory Blocked', line1: '1 Main St', line2: null, city: 'Austin', region: 'TX', postalCode: '73301', countryCode: 'US', phone: null },
    });
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'SUPPLIER_REJECTED', details: { supplierCode: 'BLACKLIST_BUYER_IN_LIST' } });
    await waitFor(() => eventsFor(h, event.orderId).length > 0, { description: 'PurchaseFailed' });
    expect(eventsFor(h, event.orderId)[0]).toMatchObject({ type: 'PurchaseFailed', payload: { supplierErrorCode: 'BLACKLIST_BUYER_IN_LIST', needsReview: true } });
  });

  it.each([
    ['flat {type, code, message} (the /rest shape)', 'A002', { kind: 'flat-error', code: 'A002', message: 'Order placement failed', type: 'ISP' }],
    ['the gateway error_response with type ISP', 'A004', { kind: 'gateway-error', code: 'A004', msg: 'Order placement failed', type: 'ISP' }],
    ['is_success:false', 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH', { kind: 'business-error', errorCode: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH' }],
  ] as const)('when order.create refuses with a business code as %s, then the order goes to review with the supplier\'s code (%s), not retried as transient', async (_shape, code, mode) => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const before = createCalls();
    h.ali.failMethod('aliexpress.ds.order.create', mode, 1);
    await publishOrders(h, event);
    const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    expect(review.reason).toMatchObject({ code: 'SUPPLIER_REJECTED', details: { supplierCode: code } });
    expect(createCalls() - before).toBe(1);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseFailed'), { description: 'PurchaseFailed' });
    expect(eventsFor(h, event.orderId).find((e) => e.type === 'PurchaseFailed')).toMatchObject({ payload: { supplierErrorCode: code, needsReview: true } });
  });

  it('admin routes refuse callers without the token and refuse bad input without writing anything', async () => {
    const s = await setUpSeller(h);
    expect((await admin(h, 'GET', '/admin/review-queue', undefined, {})).status).toBe(401);
    expect((await admin(h, 'GET', '/admin/integrity', undefined, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
    expect((await admin(h, 'GET', `/admin/orders/nope`, undefined, {})).status).toBe(401);
    expect((await admin(h, 'GET', '/admin/integrity')).status).toBe(200);
    const bad = await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/policy`, { minMarginBps: -20000, maxCost: { amount: '1.234', currency: 'USD' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_REQUEST');
    const badMoney = await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/policy`, { maxCost: { amount: '1.234', currency: 'USD' } });
    expect(badMoney.status).toBe(400);
    const seller = await admin(h, 'GET', `/admin/sellers/${s.sellerId}`);
    expect(seller.body.policy).toMatchObject({ minMarginBps: 1000, maxCost: null });
    expect(JSON.stringify(seller.body)).not.toContain(s.creds.appSecret);
    expect((await admin(h, 'GET', '/admin/orders/does-not-exist')).status).toBe(404);
  });

  it('when a seller has used up its daily supplier quota, then its orders wait without calling the supplier while other sellers still buy', async () => {
    const limited = await setUpSeller(h, { policy: { dailyQuota: 2 } });
    const other = await setUpSeller(h);
    const blocked = orderReceived({ sellerId: limited.sellerId, listingId: limited.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const free = orderReceived({ sellerId: other.sellerId, listingId: other.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, blocked, free);
    await waitForState(h, free.orderId, 'PURCHASED');
    // product.get + freight.query use the two calls; order.create is refused by our own counter, before any request
    await waitFor(async () => {
      const row = await h.service.ctx.db('fulfillments').where({ order_id: blocked.orderId }).first();
      return row && Number(row.status_checks) >= 2;
    }, { description: 'quota-deferred retries' });
    const quota = await h.service.ctx.db('supplier_call_quota').where({ seller_id: limited.sellerId });
    expect(quota.map((q) => q.calls)).toEqual([2]);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(blocked.orderId))).toHaveLength(0);
    expect(['RECEIVED', 'PURCHASING']).toContain((await orderState(h, blocked.orderId))!.state);
  });

  it('when the orders topic is replayed from the beginning, then no new purchase happens', async () => {
    const ordersBefore = h.ali.orders().length;
    // rows still waiting now may be published after the restart: they count in the restarted service's figure
    const outboxBefore = Number((await h.service.ctx.db('outbox').count<{ count: string }[]>('* as count'))[0]!.count);
    const group = `${h.env.TOPIC_NAMESPACE}.fulfillment.orders`;
    const topic = h.service.ctx.codec.topic(Streams.orders);
    await h.service.stop();
    const kafkaAdmin = h.service.ctx.kafka.admin();
    await kafkaAdmin.connect();
    try {
      await kafkaAdmin.resetOffsets({ groupId: group, topic, earliest: true });
      await h.restart();
      const ends = await kafkaAdmin.fetchTopicOffsets(topic);
      await waitFor(async () => {
        const [committed] = await kafkaAdmin.fetchOffsets({ groupId: group, topics: [topic] });
        // an empty partition has nothing to commit; every other one must be consumed to its end
        return ends.every((end) => end.high === end.low || committed!.partitions.find((p) => p.partition === end.partition)?.offset === end.high);
      }, { description: 'the whole topic re-consumed', timeoutMs: 30_000 });
    } finally {
      await kafkaAdmin.disconnect();
    }
    const s = await setUpSeller(h);
    const sentinel = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, sentinel);
    await waitForState(h, sentinel.orderId, 'PURCHASED');
    expect(h.ali.orders().length).toBe(ordersBefore + 1); // the sentinel only
    const outboxAfter = await outboxEventCount(h.service); // published since the restart, plus waiting
    expect(outboxAfter).toBeLessThanOrEqual(outboxBefore + 3); // the sentinel's events only, no replayed ones
    expect(await h.service.ctx.metrics.registry.getSingleMetricAsString('events_duplicate_total')).toMatch(/events_duplicate_total\{[^}]*\} [1-9]/);
  });
});
