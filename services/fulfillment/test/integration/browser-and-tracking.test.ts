import { dropSchema, requireSystemProgram, waitFor } from '@postsale/runtime/testing';
import { buildMlOrder, buildMlShipment } from '@postsale/sandbox';
import { outOrderIdFor } from '../../src/domain/out-order-id';
import { admin, eventsFor, orderReceived, orderState, publishOrders, setUpSeller, startHarness, waitForState, type Harness } from './harness';

describe('fulfillment: browser fallback and MercadoLibre tracking', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  it('when the seller buys through the browser, then real Chromium places the order in the web checkout with our out_order_id as memo, and it is PURCHASED', async () => {
    requireSystemProgram('chromium', 'chromium');
    const s = await setUpSeller(h, { channel: 'BROWSER' });
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    const apiCreates = h.ali.callCount('aliexpress.ds.order.create');
    await publishOrders(h, event);
    const purchased = await waitForState(h, event.orderId, 'PURCHASED', 60_000);
    const orders = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ channel: 'web', memo: outOrderIdFor(event.orderId), account: s.creds.account, items: [expect.objectContaining({ skuAttr: s.skuAttr, quantity: 1 })] });
    expect(h.ali.callCount('aliexpress.ds.order.create')).toBe(apiCreates);
    expect(purchased).toMatchObject({ channel: 'BROWSER', supplierOrderId: orders[0]!.orderId, supplierCost: { amountMinor: 1200, currency: 'USD' } });
    await waitFor(() => eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseCompleted'), { description: 'PurchaseCompleted' });
    expect(eventsFor(h, event.orderId)[0]!.payload).toMatchObject({ channel: 'BROWSER', supplierOrderId: orders[0]!.orderId });
  });

  it('when the web checkout declines the payment, then no order number is shown, nothing is purchased and the order goes to review', async () => {
    requireSystemProgram('chromium', 'chromium');
    const s = await setUpSeller(h, { channel: 'BROWSER' });
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    h.ali.setWebCheckout({ paymentDeclined: true });
    try {
      await publishOrders(h, event);
      const review = await waitForState(h, event.orderId, 'NEEDS_REVIEW', 60_000);
      expect(review.reason).toMatchObject({ code: 'BROWSER_CHECKOUT_FAILED', details: { supplierCode: 'PAYMENT_DECLINED' } });
    } finally {
      h.ali.setWebCheckout({});
    }
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(0);
    expect(eventsFor(h, event.orderId).some((e) => e.type === 'PurchaseCompleted')).toBe(false);
  });

  it('when a MercadoLibre order ships, then the tracking reaches MercadoLibre (shipment PUT + seller notification), priced for the order\'s own country', async () => {
    const s = await setUpSeller(h, { policy: { minMarginBps: 1000, fxRates: { 'USD:CLP': '950' } } });
    const mlSeller = 700000 + Math.floor(Math.random() * 100000);
    const mlOrderId = Number(`2${Math.floor(Math.random() * 1e9)}`);
    const shipmentId = Number(`4${Math.floor(Math.random() * 1e9)}`);
    h.ml.registerSeller({ userId: mlSeller, accessToken: `APP_USR-${mlSeller}` });
    h.ml.seedOrder(buildMlOrder({ id: mlOrderId, sellerId: mlSeller, items: [{ id: 'MLC123', title: 'Thing', quantity: 1, unitPrice: 30000 }], currencyId: 'CLP', shipmentId }));
    h.ml.seedShipment(buildMlShipment({ id: shipmentId, sellerId: mlSeller, orderId: mlOrderId, mode: 'me1', status: 'handling' }));
    expect((await admin(h, 'PUT', `/admin/sellers/${s.sellerId}/marketplace-tokens/MERCADOLIBRE`, { accessToken: `APP_USR-${mlSeller}`, mlServiceId: 11 })).status).toBe(200);

    const event = orderReceived({
      sellerId: s.sellerId, listingId: s.listingId, marketplace: 'MERCADOLIBRE', externalOrderId: String(mlOrderId), sale: { amountMinor: 30000, currency: 'CLP' },
      shipTo: { fullName: 'Juan Pérez', line1: 'Avenida Providencia 1234', line2: null, city: 'Santiago', region: 'RM', postalCode: '7500000', countryCode: 'CL', phone: null },
    });
    await publishOrders(h, event);
    const purchased = await waitForState(h, event.orderId, 'PURCHASED');
    // Chile's price (14.00) + freight (2.00), not the default 10.00: the guard and the purchase used the order's country
    expect(purchased).toMatchObject({ supplierCost: { amountMinor: 1600, currency: 'USD' } });
    const [order] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.shipOrder(order!.orderId, { carrier: 'CORREOS_CHILE', trackingNumber: 'CC123456789CL' });
    await waitFor(() => h.ml.trackingReports(shipmentId).length >= 2, { description: 'tracking reported to MercadoLibre' });
    expect(h.ml.trackingReports(shipmentId).map((r) => r.kind)).toEqual(['tracking_update', 'seller_notification']);
    expect(h.ml.trackingReports(shipmentId)[0]!.body).toMatchObject({ service_id: 11, tracking_number: 'CC123456789CL' });
    expect(h.ml.shipment(shipmentId)).toMatchObject({ status: 'shipped', tracking_number: 'CC123456789CL' });
    await waitFor(async () => (await orderState(h, event.orderId))?.push?.status === 'DONE', { description: 'push DONE' });
  });

  it('when the marketplace token is missing, then the tracking push is retried (recorded) instead of being dropped', async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED');
    const [order] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    h.ali.shipOrder(order!.orderId, { carrier: 'CAINIAO', trackingNumber: 'LP99' });
    const retried = await waitFor(async () => {
      const o = await orderState(h, event.orderId);
      return (o?.push?.attempts ?? 0) >= 2 ? o : undefined;
    }, { description: 'push retried' });
    expect(retried.push).toMatchObject({ status: 'PENDING', last_error: expect.stringContaining('MARKETPLACE_TOKEN_MISSING') });
  });
});
