import { createHash, createPublicKey, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEbayFake, type EbayFake } from '../src/ebay/ebay-fake';
import { buildEbayOrder } from '../src/ebay/ebay-order';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read provider JSON freely

const SELLER_TOKEN = 'v^1.1#i^1#user-token-seller-a';
const OTHER_TOKEN = 'v^1.1#i^1#user-token-seller-b';

describe('eBay fake', () => {
  let fake: EbayFake;

  beforeEach(async () => {
    fake = await startEbayFake({ clientId: 'app-id', clientSecret: 'cert-id' });
    fake.registerSellerToken(SELLER_TOKEN, 'seller_a');
    fake.registerSellerToken(OTHER_TOKEN, 'seller_b');
  });
  afterEach(() => fake.stop());

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

  async function appToken(): Promise<string> {
    const res = await fetch(`${fake.url}/identity/v1/oauth2/token`, {
      method: 'POST',
      headers: { Authorization: basic('app-id', 'cert-id'), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; expires_in: number; token_type: string };
    expect(body.token_type).toBe('Application Access Token');
    expect(body.expires_in).toBe(7200);
    return body.access_token;
  }

  function sampleOrder() {
    return buildEbayOrder({
      orderId: '12-34567-89012',
      sellerUsername: 'seller_a',
      currency: 'USD',
      deliveryCost: '4.99',
      lineItems: [
        { lineItemId: '10000000000001', legacyItemId: '110000000001', sku: 'SKU-1', title: 'Mug', quantity: 2, unitValue: '12.50' },
        { lineItemId: '10000000000002', legacyItemId: '110000000002', sku: 'SKU-2', title: 'Lamp', quantity: 1, unitValue: '10.87' },
      ],
    });
  }

  test('client credentials yield an application token; wrong credentials get invalid_client', async () => {
    expect(await appToken()).toMatch(/^v\^1\.1#/);
    const res = await fetch(`${fake.url}/identity/v1/oauth2/token`, {
      method: 'POST',
      headers: { Authorization: basic('app-id', 'wrong'), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  test('eBay notification signature verifies with the published public key (and fails after tampering)', async () => {
    const order = fake.seedOrder(sampleOrder());
    const signed = fake.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username: 'seller_a', userId: 'u-1' });
    const header = JSON.parse(Buffer.from(signed.headers['X-EBAY-SIGNATURE']!, 'base64').toString('utf8')) as {
      alg: string; kid: string; signature: string; digest: string;
    };
    expect(header).toMatchObject({ alg: 'ecdsa', digest: 'SHA1', kid: fake.kid });

    const res = await fetch(`${fake.url}/commerce/notification/v1/public_key/${header.kid}`, {
      headers: { Authorization: `Bearer ${await appToken()}` },
    });
    const published = (await res.json()) as { algorithm: string; digest: string; key: string };
    expect(published.algorithm).toBe('ECDSA');
    expect(published.digest).toBe('SHA1');
    expect(published.key).toMatch(/^-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=]+-----END PUBLIC KEY-----$/);

    // What a client must do: put line breaks back, then verify DER ECDSA-SHA1 over the compact JSON.
    const pem = published.key
      .replace('-----BEGIN PUBLIC KEY-----', '-----BEGIN PUBLIC KEY-----\n')
      .replace('-----END PUBLIC KEY-----', '\n-----END PUBLIC KEY-----');
    const key = createPublicKey(pem);
    const sig = Buffer.from(header.signature, 'base64');
    // Round-trip through the wire form, as a receiver parses it.
    const parsed: unknown = JSON.parse(JSON.stringify(signed.body));
    expect(verify('sha1', Buffer.from(JSON.stringify(parsed)), key, sig)).toBe(true);

    const tampered = structuredClone(signed.body);
    tampered.notification.data.order.orderId = '99-99999-99999';
    expect(verify('sha1', Buffer.from(JSON.stringify(tampered)), key, sig)).toBe(false);
  });

  test('notification body has the ORDER_CONFIRMATION shape, one message per line item', () => {
    const order = fake.seedOrder(sampleOrder());
    const messages = fake.signedNotificationsPerLineItem({
      orderId: order.orderId, lineItems: order.lineItems, username: 'seller_a', userId: 'u-1',
    });
    expect(messages).toHaveLength(2);
    const [first, second] = messages.map((m) => m.body);
    expect(first!.metadata).toEqual({ topic: 'ORDER_CONFIRMATION', schemaVersion: '1.0', deprecated: false });
    expect(first!.notification.data).toEqual({
      user: { userId: 'u-1', username: 'seller_a' },
      order: { orderId: '12-34567-89012', orderLineItems: [{ orderLineItemId: '10000000000001', listingId: '110000000001', quantity: 2 }] },
    });
    expect(second!.notification.data.order.orderLineItems[0]!.orderLineItemId).toBe('10000000000002');
    expect(first!.notification.notificationId).not.toBe(second!.notification.notificationId);
  });

  test('public key needs a bearer token; an unknown kid is a 404 in eBay error shape; rotated keys stay published', async () => {
    const noAuth = await fetch(`${fake.url}/commerce/notification/v1/public_key/${fake.kid}`);
    expect(noAuth.status).toBe(401);
    const token = await appToken();
    const unknown = await fetch(`${fake.url}/commerce/notification/v1/public_key/nope`, { headers: { Authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(404);
    const body = (await unknown.json()) as { errors: Array<Record<string, unknown>> };
    expect(body.errors[0]).toEqual(expect.objectContaining({ errorId: expect.any(Number), domain: expect.any(String), category: 'REQUEST', message: expect.any(String) }));

    const oldKid = fake.kid;
    const newKid = fake.rotateKey('kid-2');
    expect(newKid).toBe('kid-2');
    for (const kid of [oldKid, newKid]) {
      const res = await fetch(`${fake.url}/commerce/notification/v1/public_key/${kid}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
    }
  });

  test('deliver POSTs the JSON body with the signature header to an endpoint', async () => {
    const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    const endpoint: Server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: data });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (endpoint.address() as AddressInfo).port;
      const signed = fake.signedNotification({ orderId: 'o-1', lineItems: [{ lineItemId: 'l1', listingId: 'x', quantity: 1 }], username: 's', userId: 'u' });
      const result = await fake.deliver(`http://127.0.0.1:${port}/ebay`, signed);
      expect(result.status).toBe(204);
      expect(received).toHaveLength(1);
      expect(received[0]!.headers['content-type']).toBe('application/json');
      expect(received[0]!.headers['x-ebay-signature']).toBe(signed.headers['X-EBAY-SIGNATURE']);
      expect(JSON.parse(received[0]!.body)).toEqual(signed.body);
    } finally {
      await new Promise<void>((r) => endpoint.close(() => r()));
    }
  });

  test('a discounted order shows the discount in pricingSummary; refunds and cancellations after confirmation change the order (Corrections)', async () => {
    const order = fake.seedOrder(buildEbayOrder({ orderId: '12-00000-00001', sellerUsername: 'seller-a', currency: 'JPY', deliveryCost: '0', discount: '500', lineItems: [{ title: 'x', quantity: 1, unitValue: '4585' }] }));
    expect(order.pricingSummary).toEqual({
      priceSubtotal: { value: '4585.0', currency: 'JPY' }, priceDiscount: { value: '-500.0', currency: 'JPY' },
      deliveryCost: { value: '0.0', currency: 'JPY' }, total: { value: '4085.0', currency: 'JPY' },
    });
    expect(order.lineItems[0]!.lineItemCost.value).toBe('4585.0');
    fake.refundOrder(order.orderId, '1000');
    let read = fake.order(order.orderId)!;
    expect([read.orderPaymentStatus, read.paymentSummary.refunds.map((r) => [r.refundStatus, r.amount.value])]).toEqual(['PARTIALLY_REFUNDED', [['REFUNDED', '1000.0']]]);
    fake.cancelOrder(order.orderId);
    read = fake.order(order.orderId)!;
    expect([read.cancelStatus.cancelState, read.orderPaymentStatus, read.paymentSummary.refunds.map((r) => r.amount.value)]).toEqual(['CANCELED', 'FULLY_REFUNDED', ['1000.0', '3085.0']]);
  });

  test('an order is readable only with its seller\'s token, in the Fulfillment API shape', async () => {
    fake.seedOrder(sampleOrder());
    const url = `${fake.url}/sell/fulfillment/v1/order/12-34567-89012`;
    const own = await fetch(url, { headers: { Authorization: `Bearer ${SELLER_TOKEN}` } });
    expect(own.status).toBe(200);
    const order = (await own.json()) as Json;
    expect(Array.isArray(order.fulfillmentStartInstructions)).toBe(true);
    expect(order.fulfillmentStartInstructions[0].shippingStep.shipTo.contactAddress.countryCode).toBe('US');
    expect(order.pricingSummary).toEqual({
      priceSubtotal: { value: '35.87', currency: 'USD' },
      deliveryCost: { value: '4.99', currency: 'USD' },
      total: { value: '40.86', currency: 'USD' },
    });
    expect(order.totalMarketplaceFee).toEqual({ value: '5.41', currency: 'USD' });
    expect(order.orderPaymentStatus).toBe('PAID');
    // Corrections: eBay's amount strings are not always two decimals
    expect(order.lineItems[0]).toMatchObject({ lineItemId: '10000000000001', legacyItemId: '110000000001', sku: 'SKU-1', quantity: 2, lineItemCost: { value: '25.0', currency: 'USD' } });
    // Corrections: totalDueSeller and payments[].amount are net of eBay's fees
    expect(order.paymentSummary.totalDueSeller).toEqual({ value: '35.45', currency: 'USD' });
    expect(order.paymentSummary.payments[0].amount).toEqual({ value: '35.45', currency: 'USD' });

    const other = await fetch(url, { headers: { Authorization: `Bearer ${OTHER_TOKEN}` } });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { errors: Array<{ errorId: number }> }).errors[0]!.errorId).toBe(32100);
    expect((await fetch(url, { headers: { Authorization: 'Bearer unknown' } })).status).toBe(401);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { Authorization: `Bearer ${await appToken()}` } })).status).toBe(403);
  });

  test('shipping_fulfillment is validated, answered 201 with Location, recorded and reflected in the order', async () => {
    fake.seedOrder(sampleOrder());
    const url = `${fake.url}/sell/fulfillment/v1/order/12-34567-89012/shipping_fulfillment`;
    const post = (body: unknown, token = SELLER_TOKEN) =>
      fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

    const bad = await post({ lineItems: [{ lineItemId: 'nope', quantity: 1 }], shippingCarrierCode: 'USPS', trackingNumber: '94 00-1' });
    expect(bad.status).toBe(400);
    const errors = ((await bad.json()) as { errors: Array<{ errorId: number; domain: string; category: string; message: string }> }).errors;
    expect(errors.map((e) => e.message)).toEqual(['Invalid line item id', 'Invalid tracking number']);
    expect(fake.shippingFulfillments('12-34567-89012')).toHaveLength(0);

    expect((await post({ lineItems: [{ lineItemId: '10000000000001', quantity: 2 }], shippingCarrierCode: 'USPS', trackingNumber: '9400111' }, OTHER_TOKEN)).status).toBe(404);

    const ok = await post({
      lineItems: [{ lineItemId: '10000000000001', quantity: 2 }, { lineItemId: '10000000000002', quantity: 1 }],
      shippedDate: '2024-05-01T10:00:00.000Z',
      shippingCarrierCode: 'USPS',
      trackingNumber: '9400111899223344556677',
    });
    expect(ok.status).toBe(201);
    const location = ok.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^${fake.url}/sell/fulfillment/v1/order/12-34567-89012/shipping_fulfillment/\\d+$`));
    const recorded = fake.shippingFulfillments('12-34567-89012');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ trackingNumber: '9400111899223344556677', shippingCarrierCode: 'USPS', pushedBy: 'seller_a' });

    const read = await fetch(location, { headers: { Authorization: `Bearer ${SELLER_TOKEN}` } });
    expect(await read.json()).toMatchObject({ shipmentTrackingNumber: '9400111899223344556677' });
    expect(fake.order('12-34567-89012')!.orderFulfillmentStatus).toBe('FULFILLED');
  });

  test('challengeResponseFor is hex sha256 of code + token + endpoint', () => {
    const expected = createHash('sha256').update('abcverify-tokenhttps://x.example/ebay').digest('hex');
    expect(fake.challengeResponseFor('abc', 'verify-token', 'https://x.example/ebay')).toBe(expected);
  });

  test('an injected 503 on the order route is served instead of the order (shared failure injection)', async () => {
    fake.seedOrder(sampleOrder());
    fake.fail({ match: /^GET \/sell\/fulfillment/, mode: { kind: 'status', status: 503 }, times: 1 });
    const url = `${fake.url}/sell/fulfillment/v1/order/12-34567-89012`;
    expect((await fetch(url, { headers: { Authorization: `Bearer ${SELLER_TOKEN}` } })).status).toBe(503);
    expect((await fetch(url, { headers: { Authorization: `Bearer ${SELLER_TOKEN}` } })).status).toBe(200);
  });
});
