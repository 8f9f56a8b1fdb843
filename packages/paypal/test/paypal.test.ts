import { startPayPalFake, type PayPalFake } from '../../sandbox/src/paypal/paypal-fake';
import { createPayPalTokenClient, createPayPalWebhookVerifier, paypalRequest, PayPalApiError, type PayPalWebhookVerifier } from '../src';

describe('@postsale/paypal against the PayPal fake', () => {
  let fake: PayPalFake;
  const webhookId = 'WH-TEST-0001';
  beforeAll(async () => {
    fake = await startPayPalFake();
    fake.registerWebhook(webhookId);
  });
  afterAll(() => fake.stop());
  afterEach(() => fake.clearFailures());

  const tokenClient = () => createPayPalTokenClient({ baseUrl: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret });
  const offline = (allowedCertHosts: string[] = ['127.0.0.1']) => createPayPalWebhookVerifier({ mode: 'offline', environment: 'sandbox', webhookId, allowedCertHosts });
  const event = () => fake.captureCompletedEvent({ amount: '25.00', fee: '1.36' });
  const input = (w: { rawBody: string; headers: Record<string, string> }) => ({ headers: w.headers, rawBody: Buffer.from(w.rawBody), parsedBody: JSON.parse(w.rawBody) });

  describe('token client', () => {
    it('when called repeatedly, then one token is fetched and reused until it is invalidated', async () => {
      const client = tokenClient();
      const before = fake.requests.filter((r) => r.path === '/v1/oauth2/token').length;
      const [a, b] = await Promise.all([client.getToken(), client.getToken()]);
      expect(a).toBe(b);
      expect(await client.getToken()).toBe(a);
      expect(fake.requests.filter((r) => r.path === '/v1/oauth2/token').length - before).toBe(1);
      client.invalidate();
      expect(await client.getToken()).not.toBe(a);
    });

    it('when the token is about to expire, then a new one is fetched', async () => {
      let now = 1_000_000;
      const client = createPayPalTokenClient({ baseUrl: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret, now: () => now });
      const first = await client.getToken();
      now += (32_400 - 30) * 1000; // inside the 60 s refresh margin
      expect(await client.getToken()).not.toBe(first);
    });

    it('when the credentials are wrong, then a non-retriable PAYPAL_AUTH_FAILED error is thrown', async () => {
      const client = createPayPalTokenClient({ baseUrl: fake.url, clientId: 'nope', clientSecret: 'nope' });
      await expect(client.getToken()).rejects.toMatchObject({ code: 'PAYPAL_AUTH_FAILED', retriable: false });
    });

    it('when an API answers 401 for a stale token, then paypalRequest refreshes once and succeeds', async () => {
      const client = tokenClient();
      const seeded = fake.seedCheckoutOrder({ amount: '10.00' });
      await client.getToken();
      fake.expireTokens();
      const { body } = await paypalRequest<{ id: string }>(fake.url, client, { method: 'GET', path: `/v2/checkout/orders/${seeded.id}` });
      expect(body.id).toBe(seeded.id);
    });

    it('when PayPal rejects a request, then PayPalApiError carries the issue codes', async () => {
      const client = tokenClient();
      const seeded = fake.seedCheckoutOrder({ amount: '10.00' });
      await paypalRequest(fake.url, client, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} });
      const error = await paypalRequest(fake.url, client, { method: 'POST', path: `/v2/checkout/orders/${seeded.id}/capture`, body: {} }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayPalApiError);
      expect((error as PayPalApiError).hasIssue('ORDER_ALREADY_CAPTURED')).toBe(true);
      expect((error as PayPalApiError).retriable).toBe(false);
    });
  });

  describe('offline webhook verification', () => {
    let verifier: PayPalWebhookVerifier;
    beforeAll(() => {
      verifier = offline();
    });

    it('when the fake signs a delivery, then it verifies (also for pretty-printed raw bytes)', async () => {
      expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId })))).toBe(true);
      const e = event();
      expect(await verifier.verify(input(fake.signedWebhook(e, { webhookId, rawBody: JSON.stringify(e, null, 2) })))).toBe(true);
    });

    it('when one byte of the body changes, then it does not verify', async () => {
      const signed = fake.signedWebhook(event(), { webhookId });
      const tampered = signed.rawBody.replace('"25.00"', '"95.00"');
      expect(tampered).not.toBe(signed.rawBody);
      expect(await verifier.verify({ headers: signed.headers, rawBody: Buffer.from(tampered), parsedBody: JSON.parse(tampered) })).toBe(false);
    });

    it('when the delivery was signed for another webhook id, then it does not verify', async () => {
      expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId: 'WH-SOMEONE-ELSE' })))).toBe(false);
    });

    it('when a header is missing or the signature is garbage, then it does not verify', async () => {
      const signed = fake.signedWebhook(event(), { webhookId });
      const { 'PAYPAL-TRANSMISSION-SIG': _sig, ...withoutSig } = signed.headers;
      expect(await verifier.verify({ ...input(signed), headers: withoutSig })).toBe(false);
      expect(await verifier.verify({ ...input(signed), headers: { ...signed.headers, 'PAYPAL-TRANSMISSION-SIG': 'AAAA' } })).toBe(false);
      expect(await verifier.verify({ ...input(signed), headers: { ...signed.headers, 'PAYPAL-AUTH-ALGO': 'SHA1withRSA' } })).toBe(false);
    });

    it('when the certificate URL is not on the allow-list (the default list is PayPal only), then it is never fetched', async () => {
      const before = fake.requests.filter((r) => r.path.startsWith('/v1/notifications/certs/')).length;
      const strict = offline([]);
      const paypalOnly = createPayPalWebhookVerifier({ mode: 'offline', webhookId });
      const signed = fake.signedWebhook(event(), { webhookId });
      expect(await strict.verify(input(signed))).toBe(false);
      expect(await paypalOnly.verify(input(signed))).toBe(false);
      expect(fake.requests.filter((r) => r.path.startsWith('/v1/notifications/certs/')).length).toBe(before);
    });

    it('when many deliveries arrive, then the certificate is downloaded once per URL', async () => {
      const fresh = offline();
      const before = fake.requests.filter((r) => r.path.startsWith('/v1/notifications/certs/')).length;
      const results = await Promise.all([1, 2, 3, 4].map(() => fresh.verify(input(fake.signedWebhook(event(), { webhookId })))));
      expect(results).toEqual([true, true, true, true]);
      expect(fake.requests.filter((r) => r.path.startsWith('/v1/notifications/certs/')).length - before).toBe(1);
    });

    it('when the certificate host fails with 5xx, then verify throws a retriable error instead of answering false', async () => {
      const fresh = offline();
      fake.fail({ match: /^GET \/v1\/notifications\/certs\//, mode: { kind: 'status', status: 503 }, times: 1 });
      await expect(fresh.verify(input(fake.signedWebhook(event(), { webhookId })))).rejects.toMatchObject({ retriable: true });
      expect(await fresh.verify(input(fake.signedWebhook(event(), { webhookId })))).toBe(true);
    });
  });

  describe('online webhook verification', () => {
    it('when PayPal says SUCCESS or FAILURE, then verify answers true or false', async () => {
      const verifier = createPayPalWebhookVerifier({ mode: 'online', webhookId, baseUrl: fake.url, tokenClient: tokenClient() });
      expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId })))).toBe(true);
      expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId: 'WH-OTHER' })))).toBe(false);
      const signed = fake.signedWebhook(event(), { webhookId });
      const tampered = JSON.parse(signed.rawBody) as { resource: { amount: { value: string } } };
      tampered.resource.amount.value = '1.00';
      expect(await verifier.verify({ headers: signed.headers, rawBody: JSON.stringify(tampered), parsedBody: tampered })).toBe(false);
    });

    it('when PayPal is down, then verify throws a retriable error', async () => {
      const verifier = createPayPalWebhookVerifier({ mode: 'online', webhookId, baseUrl: fake.url, tokenClient: tokenClient() });
      fake.fail({ match: /verify-webhook-signature/, mode: { kind: 'status', status: 500 } });
      await expect(verifier.verify(input(fake.signedWebhook(event(), { webhookId })))).rejects.toMatchObject({ retriable: true });
    });
  });
});
