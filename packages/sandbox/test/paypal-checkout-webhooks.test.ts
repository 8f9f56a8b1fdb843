import { X509Certificate, verify } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { startPayPalFake, type PayPalFake } from '../src/paypal/paypal-fake';
import { accessToken, call } from './paypal-helpers';

describe('PayPal fake: checkout capture and webhooks', () => {
  let fake: PayPalFake;
  let token: string;
  beforeEach(async () => {
    fake = await startPayPalFake();
    token = await accessToken(fake);
  });
  afterEach(() => fake.stop());

  test('capture returns the documented shape with gross, PayPal fee and net as strings', async () => {
    fake.seedCheckoutOrder({ id: '5O190127TN364715T', amount: '100.00', currency: 'USD', fee: '3.98', payer: { email_address: 'jane@example.com' } });
    const res = await call(fake, token, 'POST', '/v2/checkout/orders/5O190127TN364715T/capture', {});
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      id: '5O190127TN364715T',
      status: 'COMPLETED',
      payer: { name: { given_name: expect.any(String), surname: expect.any(String) }, email_address: 'jane@example.com', payer_id: expect.any(String) },
    });
    const unit = res.body.purchase_units[0];
    expect(unit.shipping).toMatchObject({
      name: { full_name: expect.any(String) },
      address: { address_line_1: expect.any(String), admin_area_2: expect.any(String), admin_area_1: expect.any(String), postal_code: expect.any(String), country_code: 'US' },
    });
    const capture = unit.payments.captures[0];
    expect(capture).toMatchObject({
      status: 'COMPLETED',
      amount: { currency_code: 'USD', value: '100.00' },
      final_capture: true,
      seller_receivable_breakdown: {
        gross_amount: { currency_code: 'USD', value: '100.00' },
        paypal_fee: { currency_code: 'USD', value: '3.98' },
        net_amount: { currency_code: 'USD', value: '96.02' },
      },
      create_time: expect.any(String),
    });
  });

  test('capture twice with the same PayPal-Request-Id captures once and replays the same response', async () => {
    fake.seedCheckoutOrder({ id: 'ORDER-IDEMP', amount: '25.00' });
    const headers = { 'PayPal-Request-Id': 'capture-ORDER-IDEMP-1' };
    const first = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-IDEMP/capture', {}, headers);
    const second = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-IDEMP/capture', {}, headers);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200); // Corrections: a replay within the key's life answers 200
    expect(second.body).toEqual(first.body);
    expect(fake.captures()).toHaveLength(1);
  });

  test('a second capture without the same request id is refused with 422 ORDER_ALREADY_CAPTURED', async () => {
    fake.seedCheckoutOrder({ id: 'ORDER-TWICE' });
    expect((await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-TWICE/capture', {})).status).toBe(201);
    const again = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-TWICE/capture', {}, { 'PayPal-Request-Id': 'other' });
    expect(again.status).toBe(422);
    expect(again.body).toMatchObject({ name: 'UNPROCESSABLE_ENTITY', message: expect.any(String), debug_id: expect.any(String), details: [{ issue: 'ORDER_ALREADY_CAPTURED' }] });
    expect(fake.captures()).toHaveLength(1);
  });

  test('a capture can answer 201 with a DECLINED or FAILED capture while the order reads COMPLETED (Corrections)', async () => {
    for (const [outcome, status] of [['CAPTURE_DECLINED', 'DECLINED'], ['CAPTURE_FAILED', 'FAILED']] as const) {
      fake.seedCheckoutOrder({ id: `ORDER-${outcome}`, captureOutcome: outcome });
      const res = await call(fake, token, 'POST', `/v2/checkout/orders/ORDER-${outcome}/capture`, {});
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('COMPLETED');
      expect(res.body.purchase_units[0].payments.captures[0].status).toBe(status);
      expect(res.body.purchase_units[0].payments.captures[0].seller_receivable_breakdown).toBeUndefined();
    }
    fake.seedCheckoutOrder({ id: 'ORDER-INSTRUMENT', captureOutcome: 'DECLINED' });
    const declined = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-INSTRUMENT/capture', {});
    expect(declined.status).toBe(422);
    expect(declined.body.details[0].issue).toBe('INSTRUMENT_DECLINED');
    expect(declined.body.links).toContainEqual(expect.objectContaining({ rel: 'redirect' }));
  });

  test('a PENDING capture has no fee breakdown; unknown and unapproved orders fail like PayPal', async () => {
    fake.seedCheckoutOrder({ id: 'ORDER-PENDING', captureOutcome: 'PENDING' });
    const pending = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-PENDING/capture', {});
    const capture = pending.body.purchase_units[0].payments.captures[0];
    expect(capture.status).toBe('PENDING');
    expect(capture.status_details).toEqual({ reason: 'PENDING_REVIEW' });
    expect(capture.seller_receivable_breakdown).toBeUndefined();

    const missing = await call(fake, token, 'POST', '/v2/checkout/orders/NOPE/capture', {});
    expect(missing.status).toBe(404);
    expect(missing.body.details[0].issue).toBe('INVALID_RESOURCE_ID');
    fake.seedCheckoutOrder({ id: 'ORDER-CREATED', status: 'CREATED' });
    const unapproved = await call(fake, token, 'POST', '/v2/checkout/orders/ORDER-CREATED/capture', {});
    expect(unapproved.status).toBe(422);
    expect(unapproved.body.details[0].issue).toBe('ORDER_NOT_APPROVED');
    expect((await call(fake, 'bad-token', 'POST', '/v2/checkout/orders/ORDER-CREATED/capture', {})).status).toBe(401);
  });

  test('webhook signature verifies offline with the certificate, and fails after tampering', async () => {
    const event = fake.captureCompletedEvent({ captureId: 'CAP-1', orderId: 'ORDER-1', amount: '100.00', currency: 'USD', fee: '3.98' });
    expect(event).toMatchObject({ id: expect.stringMatching(/^WH-/), event_version: '1.0', resource_type: 'capture', event_type: 'PAYMENT.CAPTURE.COMPLETED', summary: expect.any(String) });
    expect(event.resource).toMatchObject({ id: 'CAP-1', status: 'COMPLETED', seller_receivable_breakdown: { net_amount: { value: '96.02' } }, supplementary_data: { related_ids: { order_id: 'ORDER-1' } } });

    const signed = fake.signedWebhook(event, { webhookId: 'WH-CONFIGURED' });
    const h = signed.headers;
    expect(h['PAYPAL-AUTH-ALGO']).toBe('SHA256withRSA');
    expect(h['PAYPAL-CERT-URL']).toBe(fake.certUrl);

    // What an offline verifier does: fetch the certificate, rebuild the signed string, check RSA-SHA256.
    const pem = await (await fetch(h['PAYPAL-CERT-URL']!)).text();
    const cert = new X509Certificate(pem);
    const signedString = (raw: string) =>
      `${h['PAYPAL-TRANSMISSION-ID']}|${h['PAYPAL-TRANSMISSION-TIME']}|WH-CONFIGURED|${crc32(Buffer.from(raw, 'utf8')) >>> 0}`;
    const sig = Buffer.from(h['PAYPAL-TRANSMISSION-SIG']!, 'base64');
    expect(verify('sha256', Buffer.from(signedString(signed.rawBody)), cert.publicKey, sig)).toBe(true);

    const tampered = signed.rawBody.replace('"100.00"', '"900.00"');
    expect(tampered).not.toBe(signed.rawBody);
    expect(verify('sha256', Buffer.from(signedString(tampered)), cert.publicKey, sig)).toBe(false);
  });

  test('verify-webhook-signature answers SUCCESS for a genuine event and FAILURE when anything is off', async () => {
    fake.registerWebhook('WH-REGISTERED');
    const event = fake.captureRefundedEvent({ captureId: 'CAP-9', amount: '10.00' });
    expect(event).toMatchObject({ event_type: 'PAYMENT.CAPTURE.REFUNDED', resource_type: 'refund' });
    const signed = fake.signedWebhook(event, { webhookId: 'WH-REGISTERED' });
    const h = signed.headers;
    const request = (overrides: Record<string, unknown> = {}) => ({
      auth_algo: h['PAYPAL-AUTH-ALGO'],
      cert_url: h['PAYPAL-CERT-URL'],
      transmission_id: h['PAYPAL-TRANSMISSION-ID'],
      transmission_sig: h['PAYPAL-TRANSMISSION-SIG'],
      transmission_time: h['PAYPAL-TRANSMISSION-TIME'],
      webhook_id: 'WH-REGISTERED',
      webhook_event: JSON.parse(signed.rawBody),
      ...overrides,
    });
    const verifyOnline = async (body: unknown) => (await call(fake, token, 'POST', '/v1/notifications/verify-webhook-signature', body)).body;

    expect(await verifyOnline(request())).toEqual({ verification_status: 'SUCCESS' });
    const tamperedEvent = { ...event, resource: { ...event.resource, amount: { currency_code: 'USD', value: '99.00' } } };
    expect(await verifyOnline(request({ webhook_event: tamperedEvent }))).toEqual({ verification_status: 'FAILURE' });
    expect(await verifyOnline(request({ webhook_id: 'WH-OTHER' }))).toEqual({ verification_status: 'FAILURE' });
    expect(await verifyOnline(request({ cert_url: 'https://evil.example/cert.pem' }))).toEqual({ verification_status: 'FAILURE' });

    const missing = await call(fake, token, 'POST', '/v1/notifications/verify-webhook-signature', { webhook_id: 'WH-REGISTERED' });
    expect(missing.status).toBe(400);
    expect(missing.body.name).toBe('VALIDATION_ERROR');
  });

  test('a pretty-printed raw body is signed over its exact bytes and still verifies online', async () => {
    fake.registerWebhook('WH-PRETTY');
    const event = fake.payoutItemEvent('SUCCEEDED', { payout_item_id: 'ITEM1', transaction_status: 'SUCCESS' });
    expect(event).toMatchObject({ event_type: 'PAYMENT.PAYOUTS-ITEM.SUCCEEDED', resource_type: 'payouts_item', resource: { payout_item_id: 'ITEM1' } });
    const rawBody = JSON.stringify(event, null, 2);
    const signed = fake.signedWebhook(event, { webhookId: 'WH-PRETTY', rawBody });
    expect(signed.rawBody).toBe(rawBody);
    const h = signed.headers;
    const res = await call(fake, token, 'POST', '/v1/notifications/verify-webhook-signature', {
      auth_algo: h['PAYPAL-AUTH-ALGO'], cert_url: h['PAYPAL-CERT-URL'], transmission_id: h['PAYPAL-TRANSMISSION-ID'],
      transmission_sig: h['PAYPAL-TRANSMISSION-SIG'], transmission_time: h['PAYPAL-TRANSMISSION-TIME'],
      webhook_id: 'WH-PRETTY', webhook_event: JSON.parse(rawBody),
    });
    expect(res.body.verification_status).toBe('SUCCESS');
  });
});
