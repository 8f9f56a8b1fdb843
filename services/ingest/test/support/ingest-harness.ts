import { randomBytes } from 'node:crypto';
import { Streams, type OrderEvent } from '@postsale/contracts';
import { keyEncryptionKey, openPersonalData, startService, type RunningService } from '@postsale/runtime';
import { collectTopic, dropSchema, outboxEventCount, testEnv, uniqueId, waitFor, type CollectedMessage } from '@postsale/runtime/testing';
import { startEbayFake, startMercadoLibreFake, startPayPalFake, type EbayFake, type MercadoLibreFake, type PayPalFake } from '@postsale/sandbox';
import { storefrontSignature } from '../../src/http/checkout.routes';
import { ingestService } from '../../src/service';

export const ADMIN = 'test-admin-token-0123456789';
export const WEBHOOK_ID = 'WH-INGEST-TEST';
export const EBAY_VERIFICATION_TOKEN = 'verification-token-0123456789-abcdefghijklmnop';
export const EBAY_ENDPOINT_URL = 'https://ingest.example.com/webhooks/ebay';

type Collector = Awaited<ReturnType<typeof collectTopic<OrderEvent>>>;
export type SellerAccountBody = { marketplace: string; accountId: string; accessToken?: string; captureSecret?: string };

/**
 * One ingest for a test file: started in `beforeAll` on the real Postgres, Kafka and registry (own schema and topics)
 * against the eBay, MercadoLibre and PayPal fakes, stopped and dropped in `afterAll`. Call it at the top of a
 * `describe`; `env` adds to (or, with '', blanks) the defaults. With `collect`, the orders topic is read from the start.
 */
export function useIngest(options: { env?: Record<string, string>; collect?: boolean } = {}) {
  let env: Record<string, string> | undefined;
  let service: RunningService | undefined;
  let fakes: { ebay: EbayFake; ml: MercadoLibreFake; paypal: PayPalFake } | undefined;
  let collector: Collector | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`ingest harness: ${what} is not started (use it inside a test or a beforeAll after useIngest)`);
    return value;
  };

  beforeAll(async () => {
    const [ebay, ml, paypal] = await Promise.all([startEbayFake({ clientId: 'ebay-app', clientSecret: 'ebay-secret' }), startMercadoLibreFake(), startPayPalFake()]);
    fakes = { ebay, ml, paypal };
    paypal.registerWebhook(WEBHOOK_ID);
    env = testEnv('ingest', {
      CREDENTIALS_KEY: randomBytes(32).toString('base64'),
      EBAY_API_BASE_URL: ebay.url, EBAY_CLIENT_ID: 'ebay-app', EBAY_CLIENT_SECRET: 'ebay-secret',
      EBAY_VERIFICATION_TOKEN, EBAY_ENDPOINT_URL,
      MERCADOLIBRE_API_BASE_URL: ml.url,
      PAYPAL_BASE_URL: paypal.url, PAYPAL_CLIENT_ID: paypal.clientId, PAYPAL_CLIENT_SECRET: paypal.clientSecret,
      PAYPAL_WEBHOOK_ID: WEBHOOK_ID, PAYPAL_CERT_HOSTS: '127.0.0.1',
      ...options.env,
    });
    service = await startService(ingestService, env);
    if (options.collect) collector = await collectTopic<OrderEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.orders));
  });
  afterAll(async () => {
    await collector?.stop();
    await service?.stop();
    await Promise.all([fakes?.ebay.stop(), fakes?.ml.stop(), fakes?.paypal.stop()]);
    if (env) await dropSchema(env.DB_SCHEMA!);
  });

  const h = {
    get env() { return started(env, 'the environment'); },
    get service() { return started(service, 'the service'); },
    get url() { return started(service, 'the service').url; },
    get ebay() { return started(fakes, 'the fakes').ebay; },
    get ml() { return started(fakes, 'the fakes').ml; },
    get paypal() { return started(fakes, 'the fakes').paypal; },
    get collector() { return started(collector, 'the orders collector (useIngest({ collect: true }))'); },

    /** An admin API call with a bearer token (the admin one unless another is given). */
    admin(path: string, init: RequestInit = {}, bearer = ADMIN): Promise<Response> {
      return fetch(`${h.url}${path}`, { ...init, headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
    },
    async registerSeller(sellerId: string, accounts: SellerAccountBody[]): Promise<void> {
      const res = await h.admin(`/admin/sellers/${sellerId}`, { method: 'PUT', body: JSON.stringify({ accounts }) });
      expect(res.status).toBe(200);
    },
    /** an eBay seller: its user token known to the eBay fake, its account registered with ingest */
    async registerEbaySeller(username: string, token: string): Promise<void> {
      h.ebay.registerSellerToken(token, username);
      await h.registerSeller(uniqueId('seller-eb-'), [{ marketplace: 'EBAY', accountId: username, accessToken: token }]);
    },
    /** a MercadoLibre seller: its access token known to the MercadoLibre fake, its account registered with ingest */
    async registerMlSeller(userId: number, token: string): Promise<void> {
      h.ml.registerSeller({ userId, accessToken: token });
      await h.registerSeller(uniqueId('seller-ml-'), [{ marketplace: 'MERCADOLIBRE', accountId: String(userId), accessToken: token }]);
    },
    /** the storefront's server signs each capture call with its secret, as a registered storefront does */
    signedCapture(storefrontId: string, secret: string, paypalOrderId: string, body: unknown = { storefrontId }): Promise<Response> {
      const raw = JSON.stringify(body);
      const ts = String(Math.floor(Date.now() / 1000));
      return fetch(`${h.url}/checkout/paypal/orders/${paypalOrderId}/capture`, {
        method: 'POST', body: raw,
        headers: { 'Content-Type': 'application/json', 'X-Storefront-Timestamp': ts, 'X-Storefront-Signature': `sha256=${storefrontSignature(secret, ts, paypalOrderId, raw)}` },
      });
    },

    eventsFor(orderId: string): Array<CollectedMessage<OrderEvent>> {
      return h.collector.messages.filter((m) => m.event.orderId === orderId);
    },
    /** The events as a reader holding the subject's key sees them (OrderReceived's buyer and ship-to opened). */
    async waitForEvents(orderId: string, n: number, type?: OrderEvent['type'], timeoutMs?: number): Promise<Array<CollectedMessage<OrderEvent>>> {
      const found = await waitFor(() => {
        const matching = h.eventsFor(orderId).filter((m) => !type || m.event.type === type);
        return matching.length >= n ? matching : undefined;
      }, { description: `${n} ${type ?? ''} events for ${orderId}`, ...(timeoutMs ? { timeoutMs } : {}) });
      return Promise.all(found.map((m) => h.opened(m)));
    },
    /**
     * An OrderReceived as a reader with the subject's key sees it: the buyer and ship-to travel only sealed (null in
     * clear), so they are opened with ingest's copy of the key (the development key-encryption key, as in every test).
     */
    async opened(m: CollectedMessage<OrderEvent>): Promise<CollectedMessage<OrderEvent>> {
      if (m.event.type !== 'OrderReceived' || !m.event.payload.sealedPersonal) return m;
      const { subjectId, ciphertext } = m.event.payload.sealedPersonal;
      expect(m.event.payload).toMatchObject({ buyer: null, shipTo: null });
      const row = await h.service.ctx.db('subject_keys').where({ subject_id: subjectId }).first();
      const personal = openPersonalData(keyEncryptionKey({ NODE_ENV: 'test' }).unwrap(row.sealed_key, subjectId), { orderId: m.event.orderId, subjectId }, ciphertext);
      return { ...m, event: { ...m.event, payload: { ...m.event.payload, ...personal } } };
    },
    /** Proves "nothing more": the outbox is drained and the collector has seen every event the service published. */
    async settle(): Promise<void> {
      await waitFor(async () => Number((await h.service.ctx.db('outbox').whereNull('published_at').count<{ c: string }[]>('* as c'))[0]!.c) === 0, { description: 'outbox drained' });
      const published = await outboxEventCount(h.service);
      await waitFor(() => h.collector.messages.length >= published, { description: 'collector caught up' });
    },
    async deliveryCount(): Promise<number> {
      return Number((await h.service.ctx.db('deliveries').count<{ c: string }[]>('* as c'))[0]!.c);
    },
    /** The first delivery matching `where` once it is no longer pending (decided or parked). */
    deliveryDecided(where: Record<string, string>, description = 'delivery decided'): Promise<Record<string, unknown> & { status: string; reason: string | null; detail: string | null }> {
      return waitFor(async () => {
        const d = await h.service.ctx.db('deliveries').where(where).first();
        return d && d.status !== 'pending' ? d : undefined;
      }, { description });
    },
  };
  return h;
}
export type IngestHarness = ReturnType<typeof useIngest>;
