import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMercadoLibreFake, type MercadoLibreFake } from '../src/mercadolibre/mercadolibre-fake';
import { buildMlOrder, buildMlShipment } from '../src/mercadolibre/mercadolibre-order';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read provider JSON freely

const SELLER = { userId: 123456789, accessToken: 'APP_USR-seller-a' };
const OTHER = { userId: 987654321, accessToken: 'APP_USR-seller-b' };

describe('MercadoLibre fake', () => {
  let fake: MercadoLibreFake;

  beforeEach(async () => {
    fake = await startMercadoLibreFake();
    fake.registerSeller(SELLER);
    fake.registerSeller(OTHER);
  });
  afterEach(() => fake.stop());

  const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
    fetch(`${fake.url}${path}`, { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } });

  function seedPaidOrder() {
    return fake.seedOrder(
      buildMlOrder({
        id: 2000003508419013,
        sellerId: SELLER.userId,
        currencyId: 'CLP',
        packId: 2000000000000001,
        shipmentId: 40000000001,
        items: [
          { id: 'MLC100', title: 'Audífonos', variationId: 17500000001, sellerSku: 'AUD-1', quantity: 2, unitPrice: 15990 },
          { id: 'MLC200', title: 'Cable', quantity: 1, unitPrice: 4990 },
        ],
      }),
    );
  }

  test('an order is readable only with the owning seller\'s token, with JSON numbers and the real shape', async () => {
    seedPaidOrder();
    const res = await get('/orders/2000003508419013', SELLER.accessToken);
    expect(res.status).toBe(200);
    const text = await res.text();
    const order = JSON.parse(text) as Json;
    expect(text).toContain('"total_amount":36970');
    expect(order).toMatchObject({
      id: 2000003508419013,
      status: 'paid',
      total_amount: 36970,
      paid_amount: 36970,
      currency_id: 'CLP',
      seller: { id: SELLER.userId },
      shipping: { id: 40000000001 },
      pack_id: 2000000000000001,
    });
    expect(order.order_items[0]).toMatchObject({
      item: { id: 'MLC100', variation_id: 17500000001, seller_sku: 'AUD-1' },
      quantity: 2,
      unit_price: 15990,
      currency_id: 'CLP',
    });
    expect(order.payments[0]).toMatchObject({ status: 'approved', transaction_amount: 36970, marketplace_fee: 4807 });
    expect(Number.isInteger(order.payments[0].marketplace_fee)).toBe(true);

    const other = await get('/orders/2000003508419013', OTHER.accessToken);
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ message: expect.any(String), error: 'forbidden', status: 403, cause: [] });

    const missing = await get('/orders/2000000000000999', SELLER.accessToken);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ message: 'Order not found', error: 'not_found', status: 404, cause: [] });

    expect((await get('/orders/2000003508419013')).status).toBe(401);
    expect((await get('/orders/2000003508419013', 'APP_USR-unknown')).status).toBe(401);
  });

  test('USD amounts keep cents as JSON numbers', async () => {
    fake.seedOrder(buildMlOrder({ id: 2000000000000077, sellerId: SELLER.userId, currencyId: 'USD', items: [{ id: 'MLC1', title: 'X', quantity: 3, unitPrice: 10.1 }] }));
    const order = (await (await get('/orders/2000000000000077', SELLER.accessToken)).json()) as { total_amount: number };
    expect(order.total_amount).toBe(30.3);
  });

  test('setOrderStatus flips a paid order to cancelled with a refunded payment', async () => {
    seedPaidOrder();
    fake.setOrderStatus(2000003508419013, 'cancelled');
    const order = (await (await get('/orders/2000003508419013', SELLER.accessToken)).json()) as Json;
    expect(order.status).toBe('cancelled');
    expect(order.payments[0].status).toBe('refunded');
    expect(order.cancel_detail).toMatchObject({ requested_by: 'buyer' });
  });

  test('a refund leaves the order paid and shows only in payments[].transaction_amount_refunded; a chargeback turns the payment charged_back (Corrections)', async () => {
    seedPaidOrder();
    fake.refundPayment(2000003508419013, 4990);
    let order = (await (await get('/orders/2000003508419013', SELLER.accessToken)).json()) as Json;
    expect([order.status, order.payments[0].status, order.payments[0].transaction_amount_refunded]).toEqual(['paid', 'approved', 4990]);
    fake.refundPayment(2000003508419013, 31980);
    order = (await (await get('/orders/2000003508419013', SELLER.accessToken)).json()) as Json;
    expect([order.status, order.payments[0].status, order.payments[0].transaction_amount_refunded]).toEqual(['paid', 'refunded', 36970]);
    expect(() => fake.refundPayment(2000003508419013, 1)).toThrow();

    fake.seedOrder(buildMlOrder({ id: 2000003508419099, sellerId: SELLER.userId, currencyId: 'CLP', items: [{ id: 'MLC1', title: 'x', quantity: 1, unitPrice: 1000 }] }));
    fake.chargeBack(2000003508419099);
    order = (await (await get('/orders/2000003508419099', SELLER.accessToken)).json()) as Json;
    expect([order.status, order.payments[0].status]).toEqual(['paid', 'charged_back']);
    // each change is announced by a NEW notification for the same resource
    const [a, b] = [fake.notification({ orderId: 2000003508419099, userId: SELLER.userId }), fake.notification({ orderId: 2000003508419099, userId: SELLER.userId })];
    expect(a.resource).toBe(b.resource);
    expect(a._id).not.toBe(b._id);
  });

  test('a notification keeps application_id digits beyond 2^53 on the wire', async () => {
    const n = fake.notification({ orderId: 2000003508419013, userId: SELLER.userId });
    expect(n).toMatchObject({ resource: '/orders/2000003508419013', user_id: SELLER.userId, topic: 'orders_v2', attempts: 1 });
    expect(typeof n.application_id).toBe('string');
    expect(BigInt(n.application_id) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);

    const wire = fake.notificationJson(n);
    expect(wire).toContain(`"application_id":${n.application_id},`);
    // A naive parser loses digits: that is the trap ingest must avoid.
    expect(String((JSON.parse(wire) as { application_id: number }).application_id)).not.toBe(n.application_id);

    let received = '';
    const endpoint: Server = createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.toString()));
      req.on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', () => r()));
    try {
      const result = await fake.deliver(`http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/ml`, n);
      expect(result.status).toBe(200);
      expect(received).toBe(wire);
    } finally {
      await new Promise<void>((r) => endpoint.close(() => r()));
    }
  });

  test('a shipment is served with receiver_address (x-format-new) to its seller only', async () => {
    fake.seedShipment(buildMlShipment({ id: 40000000001, sellerId: SELLER.userId, orderId: 2000003508419013, mode: 'me2', trackingNumber: 'MEL123' }));
    const res = await get('/shipments/40000000001', SELLER.accessToken, { 'x-format-new': 'true' });
    expect(res.status).toBe(200);
    const s = (await res.json()) as Json;
    expect(s).toMatchObject({ id: 40000000001, status: 'ready_to_ship', substatus: 'ready_to_print', tracking_number: 'MEL123', mode: 'me2' });
    expect(s.receiver_address).toMatchObject({
      address_line: 'Avenida Providencia 1234',
      street_name: 'Avenida Providencia',
      street_number: '1234',
      zip_code: '7500000',
      city: { name: 'Providencia' },
      state: { id: 'CL-RM', name: 'RM (Santiago)' },
      country: { id: 'CL', name: 'Chile' },
      receiver_name: 'Juan Pérez',
      receiver_phone: '56912345678',
    });
    expect((await get('/shipments/40000000001', OTHER.accessToken)).status).toBe(403);
    expect((await get('/shipments/1', SELLER.accessToken)).status).toBe(404);
  });

  test('me1 tracking: PUT and seller_notifications are validated, recorded and mark the shipment shipped', async () => {
    fake.seedShipment(buildMlShipment({ id: 40000000002, sellerId: SELLER.userId, mode: 'me1' }));
    fake.seedShipment(buildMlShipment({ id: 40000000003, sellerId: SELLER.userId, mode: 'me2' }));
    const send = (method: string, path: string, body: unknown, token = SELLER.accessToken) =>
      fetch(`${fake.url}${path}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

    expect((await send('PUT', '/shipments/40000000003', { service_id: 1, tracking_number: 'X1' })).status).toBe(400);
    expect((await send('PUT', '/shipments/40000000002', { service_id: 1 })).status).toBe(400);
    expect((await send('PUT', '/shipments/40000000002', { service_id: 1, tracking_number: 'X1' }, OTHER.accessToken)).status).toBe(403);
    expect(fake.trackingReports(40000000002)).toEqual([]);

    const put = await send('PUT', '/shipments/40000000002', { service_id: 11, tracking_number: 'CX123456789CL' });
    expect(put.status).toBe(200);
    const notify = await send('POST', '/shipments/40000000002/seller_notifications', {
      payload: { service_id: 11, comment: 'Despachado por Chilexpress', date: '2024-05-01T10:00:00.000-04:00' },
      tracking_number: 'CX123456789CL',
      tracking_url: 'https://www.chilexpress.cl/track/CX123456789CL',
      status: 'shipped',
      substatus: 'null',
    });
    expect(notify.status).toBe(200);

    const reports = fake.trackingReports(40000000002);
    expect(reports.map((r) => r.kind)).toEqual(['tracking_update', 'seller_notification']);
    expect(reports[0]!.body).toEqual({ service_id: 11, tracking_number: 'CX123456789CL' });
    expect(fake.shipment(40000000002)).toMatchObject({ status: 'shipped', substatus: null, tracking_number: 'CX123456789CL' });
  });
});
