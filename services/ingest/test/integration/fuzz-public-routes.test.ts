import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { uniqueId } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { storefrontSignature } from '../../src/http/checkout.routes';
import { fuzzParams, FUZZ_RUNS, mutated, nastyRawBody, nastyString } from '../support/fuzz';
import { useIngest, WEBHOOK_ID } from '../support/ingest-harness';

/**
 * Property: whatever a stranger (or a marketplace with a bug) sends to a public route, the answer is below 500, a
 * refusal carries a machine-readable code, and a refused request writes nothing. Real Postgres, real Kafka.
 * FUZZ_RUNS per route (150 in `npm test`; run with FUZZ_RUNS=2000 for the full campaign).
 */
describe(`public routes under fuzzing (${FUZZ_RUNS} runs per route)`, () => {
  const h = useIngest({ env: { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000', INLINE_PROCESSING_BUDGET_MS: '2000', DELIVERY_POLL_INTERVAL_MS: '500' } });
  const username = uniqueId('fuzzuser');
  const mlUser = Number(`8${Date.now() % 1e8}`);
  const storefrontId = uniqueId('shop-');
  const captureSecret = randomBytes(32).toString('hex');
  const fiveHundreds: string[] = [];

  beforeAll(async () => {
    const token = uniqueId('tok-');
    h.ebay.registerSellerToken(token, username);
    h.ml.registerSeller({ userId: mlUser, accessToken: 'APP_USR-fuzz' });
    await h.registerSeller(uniqueId('seller-'), [
      { marketplace: 'EBAY', accountId: username, accessToken: token },
      { marketplace: 'MERCADOLIBRE', accountId: String(mlUser), accessToken: 'APP_USR-fuzz' },
      { marketplace: 'PAYPAL_STOREFRONT', accountId: storefrontId, captureSecret },
    ]);
  });

  /** What request handlers write (the poller only updates deliveries it already has, or writes orders/outbox). */
  const written = async () => {
    const r = await h.service.ctx.db.raw(`select (select count(*) from deliveries) as d, (select coalesce(sum(count),0) from dropped_notifications) as n, (select count(*) from erasures) as e`);
    const row = r.rows[0] as { d: string; n: string; e: string };
    return `${row.d}/${row.n}/${row.e}`;
  };

  async function send(path: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number }> {
    const before = await written();
    const res = await fetch(`${h.service.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    const text = await res.text();
    if (res.status >= 500) fiveHundreds.push(`${res.status} ${path} ${text.slice(0, 200)} <- ${String(body).slice(0, 300)}`);
    expect(res.status).toBeLessThan(500);
    if (res.status >= 400) {
      const code = (JSON.parse(text) as { error: { code: string } }).error.code;
      expect(code).toMatch(/^[A-Z0-9_]+$/);
      // Refused input writes nothing. (An authenticated, well-formed capture that PayPal then refuses — 404/409/422
      // after the call — is an outcome, recorded as a delivery for the audit trail.)
      if (![404, 409, 422].includes(res.status) || code === 'NOT_FOUND') expect(await written()).toBe(before);
    }
    return { status: res.status };
  }
  afterAll(() => {
    if (fiveHundreds.length > 0) throw new Error(`5xx answers:\n${fiveHundreds.join('\n')}`);
  });

  const printableHeader = fc.string({ maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));

  it('eBay: signed mutations of a real notification (order and account deletion) and forged signature headers', async () => {
    const order = buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'X', quantity: 1, unitValue: '5.00' }] });
    const confirmation = h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u1' }).body;
    const deletion = { metadata: { topic: 'MARKETPLACE_ACCOUNT_DELETION', schemaVersion: '1.0', deprecated: false }, notification: { notificationId: 'n-1', eventDate: new Date().toISOString(), publishDate: new Date().toISOString(), publishAttemptCount: 1, data: { username: 'someone', userId: 'u-x', eiasToken: 'nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6w' } } };
    const signatureHeader = fc.oneof(
      printableHeader,
      fc.constantFrom('bnVsbA==', 'W10=', 'e30=', 'InN0cmluZyI=', 'eyJraWQiOm51bGx9', Buffer.from('{"kid":"../../x","signature":"AA=="}').toString('base64')),
      fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64')),
      fc.record({ alg: nastyString, kid: nastyString, signature: nastyString, digest: nastyString }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
    ).filter((h) => /^[\x20-\x7e]*$/.test(h) && h.length < 8000);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 3, arbitrary: mutated(confirmation).map((b) => ({ kind: 'signed' as const, b })) },
          { weight: 2, arbitrary: mutated(deletion).map((b) => ({ kind: 'signed' as const, b })) },
          { weight: 1, arbitrary: fc.tuple(mutated(confirmation), signatureHeader).map(([b, h]) => ({ kind: 'forged' as const, b, h })) },
          { weight: 1, arbitrary: nastyRawBody.map((raw) => ({ kind: 'raw' as const, raw })) },
        ),
        async (input) => {
          if (input.kind === 'raw') return void (await send('/webhooks/ebay', input.raw, {}));
          const body = JSON.stringify(input.b) ?? 'null';
          const headers = input.kind === 'signed' ? { 'X-EBAY-SIGNATURE': h.ebay.signBody(input.b).headers['X-EBAY-SIGNATURE']! } : { 'X-EBAY-SIGNATURE': input.h };
          const { status } = await send('/webhooks/ebay', body, headers);
          if (input.kind === 'forged') expect([400, 412, 413]).toContain(status);
        },
      ),
      fuzzParams(),
    );
  });

  it('eBay endpoint validation (GET): any query string answers below 500 and writes nothing', async () => {
    const pct = (x: string) => [...Buffer.from(x, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const query = fc.oneof(
      nastyString.map((v) => `challenge_code=${pct(v)}`),
      fc.tuple(nastyString, nastyString).map(([k, v]) => `${pct(k)}=${pct(v)}`),
      fc.constantFrom('challenge_code', 'challenge_code[]=a&challenge_code[]=b', 'challenge_code[a][b]=c', '%C3%28=1', 'challenge_code=%00', `challenge_code=${'x'.repeat(3000)}`),
    );
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const before = await written();
        const res = await fetch(`${h.service.url}/webhooks/ebay?${q}`);
        const text = await res.text();
        if (res.status >= 500) fiveHundreds.push(`${res.status} GET /webhooks/ebay?${q.slice(0, 200)} ${text.slice(0, 200)}`);
        expect(res.status).toBeLessThan(500);
        // 414/431: Node's HTTP parser refuses a request line or headers too large before any of our code runs
        if (res.status >= 400 && ![414, 431].includes(res.status)) expect((JSON.parse(text) as { error: { code: string } }).error.code).toMatch(/^[A-Z0-9_]+$/);
        expect(await written()).toBe(before);
      }),
      fuzzParams(),
    );
  });

  it('MercadoLibre: mutations of a real notification and raw bytes', async () => {
    const base = h.ml.notification({ orderId: 2000001234, userId: mlUser });
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 5, arbitrary: mutated(base).map((b) => JSON.stringify(b) ?? 'null') }, { weight: 1, arbitrary: nastyRawBody }), async (raw) => {
        await send('/webhooks/mercadolibre', raw, {});
      }),
      fuzzParams(),
    );
  });

  it('PayPal: signed mutations of capture and refund events, signed raw bytes, forged headers', async () => {
    const completed = h.paypal.captureCompletedEvent({ amount: '10.00', fee: '0.59', customId: storefrontId });
    const refunded = h.paypal.captureRefundedEvent({ captureId: 'CAP123', amount: '1.00' });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 4, arbitrary: fc.oneof(mutated(completed), mutated(refunded)).map((b) => ({ kind: 'signed' as const, raw: JSON.stringify(b) ?? 'null' })) },
          { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((raw) => ({ kind: 'signed' as const, raw })) },
          { weight: 1, arbitrary: fc.tuple(nastyRawBody, fc.dictionary(fc.constantFrom('PAYPAL-TRANSMISSION-ID', 'PAYPAL-TRANSMISSION-TIME', 'PAYPAL-TRANSMISSION-SIG', 'PAYPAL-CERT-URL', 'PAYPAL-AUTH-ALGO'), printableHeader)).map(([raw, h]) => ({ kind: 'forged' as const, raw, h })) },
        ),
        async (input) => {
          if (input.kind === 'forged') {
            const { status } = await send('/webhooks/paypal', input.raw, input.h);
            expect([400, 401, 413, 415]).toContain(status);
            return;
          }
          const signed = h.paypal.signedWebhook(JSON.parse('null'), { webhookId: WEBHOOK_ID, rawBody: input.raw });
          await send('/webhooks/paypal', Buffer.from(signed.rawBody, 'utf8'), signed.headers);
        },
      ),
      fuzzParams(),
    );
  });

  it('storefront capture: signed mutations, unsigned calls and strange order ids; PayPal is never called unauthenticated', async () => {
    const capturesBefore = h.paypal.captures().length;
    let signedCalls = 0;
    const orderIdArb = fc.oneof(fc.constantFrom('5O190127TN364715T', 'x'.repeat(65), '..', '%00', '%C3%28'), nastyString.map((s) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')).filter((s) => s.length > 0 && s.length < 2000));
    await fc.assert(
      fc.asyncProperty(orderIdArb, mutated({ storefrontId }), fc.boolean(), fc.integer({ min: -1000, max: 1000 }), async (orderId, body, sign, skew) => {
        const raw = JSON.stringify(body) ?? 'null';
        const timestamp = String(Math.floor(Date.now() / 1000) + skew);
        let pathId: string;
        try {
          pathId = decodeURIComponent(orderId);
        } catch {
          pathId = orderId;
        }
        const headers: Record<string, string> = sign ? { 'X-Storefront-Timestamp': timestamp, 'X-Storefront-Signature': `sha256=${storefrontSignature(captureSecret, timestamp, pathId, raw)}` } : {};
        if (sign) signedCalls += 1;
        const { status } = await send(`/checkout/paypal/orders/${orderId}/capture`, raw, headers);
        if (!sign) expect([400, 401, 404]).toContain(status);
      }),
      fuzzParams(),
    );
    expect(signedCalls).toBeGreaterThan(0);
    // none of the fuzzed ids is a PayPal order, so nothing was captured whatever was signed
    expect(h.paypal.captures().length).toBe(capturesBefore);
  });
});
