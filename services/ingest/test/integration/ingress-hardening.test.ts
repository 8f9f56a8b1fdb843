import { randomBytes, randomUUID } from 'node:crypto';
import { uniqueId } from '@postsale/runtime/testing';
import { buildEbayOrder, buildMlOrder, buildMlShipment } from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { storefrontSignature } from '../../src/http/checkout.routes';
import { useIngest, type SellerAccountBody } from '../support/ingest-harness';

const OUR_ML_APP = '9187654321098765'; // the MercadoLibre fake's default application id (> 2^53)

describe('ingest ingress hardening on real Postgres and Kafka', () => {
  const h = useIngest({ collect: true, env: {
    EBAY_KEY_LOOKUPS_PER_MINUTE: '10', MERCADOLIBRE_APPLICATION_ID: OUR_ML_APP,
    RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000',
    DELIVERY_POLL_INTERVAL_MS: '100', DELIVERY_CLAIM_BATCH: '16', DELIVERY_CLAIM_PER_ACCOUNT: '4',
  } });
  const { admin, deliveryCount } = h;
  const register = (accounts: SellerAccountBody[]) => h.registerSeller(uniqueId('seller-'), accounts);
  const received = (orderId: string) => h.waitForEvents(orderId, 1, 'OrderReceived', 10_000);

  describe('eBay signature header and key lookups', () => {
    const keyCalls = () => h.ebay.requests.filter((r) => r.path.startsWith('/commerce/notification/v1/public_key/')).length;
    const post = (headers: Record<string, string>, body: unknown) => fetch(`${h.service.url}/webhooks/ebay`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const body = () => h.ebay.signedNotification({ orderId: buildEbayOrder({ sellerUsername: 'x', lineItems: [{ title: 'X', quantity: 1, unitValue: '1.00' }] }).orderId, lineItems: [], username: 'x', userId: 'u' }).body;

    it('when X-EBAY-SIGNATURE decodes to null, an array, a string or junk, then 412 INVALID_SIGNATURE and nothing is stored', async () => {
      const before = await deliveryCount();
      for (const header of ['bnVsbA==', 'W10=', 'InN0cmluZyI=', 'eyJraWQiOm51bGx9', '!!!', 'e30=', Buffer.from('{"kid":"../../oauth","signature":"AA=="}').toString('base64')]) {
        const res = await post({ 'X-EBAY-SIGNATURE': header }, body());
        expect(res.status).toBe(412);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_SIGNATURE');
      }
      expect(await deliveryCount()).toBe(before);
    });

    it('when unknown kids are sent again and again, then each is looked up once, and a flood of new kids is capped per minute', async () => {
      const forged = (kid: string) => Buffer.from(JSON.stringify({ alg: 'ecdsa', kid, signature: 'MEUCIQ==', digest: 'SHA1' })).toString('base64');
      const start = keyCalls();
      const kid = randomUUID();
      for (let i = 0; i < 5; i++) expect((await post({ 'X-EBAY-SIGNATURE': forged(kid) }, body())).status).toBe(412);
      expect(keyCalls() - start).toBe(1);
      for (let i = 0; i < 20; i++) expect((await post({ 'X-EBAY-SIGNATURE': forged(randomUUID()) }, body())).status).toBe(412);
      expect(keyCalls() - start).toBeLessThanOrEqual(10); // EBAY_KEY_LOOKUPS_PER_MINUTE
    });
  });

  describe('storefront capture authentication', () => {
    const shopA = uniqueId('shopA-');
    const shopB = uniqueId('shopB-');
    const secretA = randomBytes(32).toString('hex');
    const secretB = randomBytes(32).toString('hex');
    beforeAll(() => register([{ marketplace: 'PAYPAL_STOREFRONT', accountId: shopA, captureSecret: secretA }, { marketplace: 'PAYPAL_STOREFRONT', accountId: shopB, captureSecret: secretB }]));
    const call = (paypalOrderId: string, storefrontId: string, secret: string | null, skewSeconds = 0) => {
      const raw = JSON.stringify({ storefrontId });
      const ts = String(Math.floor(Date.now() / 1000) + skewSeconds);
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (secret) Object.assign(headers, { 'X-Storefront-Timestamp': ts, 'X-Storefront-Signature': `sha256=${storefrontSignature(secret, ts, paypalOrderId, raw)}` });
      return fetch(`${h.service.url}/checkout/paypal/orders/${paypalOrderId}/capture`, { method: 'POST', headers, body: raw });
    };
    const capturesOf = (id: string) => h.paypal.captures().filter((c) => c.orderId === id).length;

    it('when the call is unsigned, stale, signed with another secret, or names an unknown storefront, then the same 401, nothing written, PayPal not called', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '12.00', customId: shopA });
      const before = await deliveryCount();
      const paypalCalls = h.paypal.requests.length;
      const answers = [
        await call(seeded.id, shopA, null),
        await call(seeded.id, shopA, secretA, -3600),
        await call(seeded.id, shopA, secretB),
        await call(seeded.id, 'shop-nobody', secretA),
      ];
      for (const res of answers) {
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'the capture call is not signed by a registered storefront' } });
      }
      // a signature for another order id does not carry over
      const raw = JSON.stringify({ storefrontId: shopA });
      const ts = String(Math.floor(Date.now() / 1000));
      const replayed = await fetch(`${h.service.url}/checkout/paypal/orders/${seeded.id}/capture`, { method: 'POST', body: raw,
        headers: { 'Content-Type': 'application/json', 'X-Storefront-Timestamp': ts, 'X-Storefront-Signature': storefrontSignature(secretA, ts, 'SOME-OTHER-ORDER', raw) } });
      expect(replayed.status).toBe(401);
      expect(await deliveryCount()).toBe(before);
      expect(h.paypal.requests.length).toBe(paypalCalls);
      expect(capturesOf(seeded.id)).toBe(0);
    });

    it('when storefront A captures, then the dedupe key names A; storefront B is told nothing about A\'s order and captures nothing', async () => {
      const seeded = h.paypal.seedCheckoutOrder({ amount: '30.00', fee: '1.17', customId: shopA });
      // B first: the order is A's (custom_id), so B cannot capture it and learns only "not found"
      const early = await call(seeded.id, shopB, secretB);
      expect(early.status).toBe(404);
      expect(capturesOf(seeded.id)).toBe(0);
      expect((await call(seeded.id, shopA, secretA)).status).toBe(201);
      await received(orderIdFor('PAYPAL_STOREFRONT', seeded.id));
      const late = await call(seeded.id, shopB, secretB);
      expect(late.status).toBe(404);
      expect(((await late.json()) as { error: { code: string } }).error.code).toBe('PAYPAL_ORDER_NOT_FOUND');
      const unknown = await call('9XX99999XX999999X', shopB, secretB);
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('PAYPAL_ORDER_NOT_FOUND');
      expect(capturesOf(seeded.id)).toBe(1);
      const keys = (await h.service.ctx.db('deliveries').where({ kind: 'paypal.checkout_capture', external_order_id: seeded.id }).select('dedupe_key')).map((d) => d.dedupe_key);
      expect(keys).toContain(`checkout-capture:${shopA}:${seeded.id}`);
    });
  });

  describe('MercadoLibre flood-proofing', () => {
    const sellerA = Number(`61${Date.now() % 1e7}`);
    const sellerB = sellerA + 1;
    const tokenA = uniqueId('APP_USR-A-');
    const tokenB = uniqueId('APP_USR-B-');
    beforeAll(async () => {
      h.ml.registerSeller({ userId: sellerA, accessToken: tokenA });
      h.ml.registerSeller({ userId: sellerB, accessToken: tokenB });
      await register([{ marketplace: 'MERCADOLIBRE', accountId: String(sellerA), accessToken: tokenA }, { marketplace: 'MERCADOLIBRE', accountId: String(sellerB), accessToken: tokenB }]);
    });
    const paidOrderFor = (seller: number) => {
      const shipment = h.ml.seedShipment(buildMlShipment({ sellerId: seller }));
      return h.ml.seedOrder(buildMlOrder({ sellerId: seller, shipmentId: shipment.id, items: [{ id: 'MLC1', title: 'x', quantity: 1, unitPrice: 1990 }] }));
    };
    const dropped = async (reason: string) => Number((await h.service.ctx.db('dropped_notifications').where({ reason }).sum<{ s: string | null }[]>('count as s'))[0]!.s ?? 0);

    it('when 1,000 notifications of a foreign application name seller A, then they are answered 200 and only counted; B\'s order is received within seconds and A\'s quota is untouched', async () => {
      const before = await deliveryCount();
      const countedBefore = await dropped('FOREIGN_APPLICATION');
      const mlCallsBefore = h.ml.requests.length;
      for (let i = 0; i < 1000; i += 50) {
        const answers = await Promise.all(Array.from({ length: 50 }, (_, j) => h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: 1_000_000 + i + j, userId: sellerA, applicationId: '1234567890123456789' })));
        for (const a of answers) expect(a.status).toBe(200);
      }
      expect(await dropped('FOREIGN_APPLICATION')).toBe(countedBefore + 1000);
      expect(await deliveryCount()).toBe(before);
      const listed = (await (await admin('/admin/dropped-notifications')).json()) as { dropped: Array<{ reason: string; count: number }> };
      expect(listed.dropped.filter((d) => d.reason === 'FOREIGN_APPLICATION').reduce((n, d) => n + d.count, 0)).toBe(countedBefore + 1000);
      expect(await h.service.ctx.db('dropped_notifications').count<{ c: string }[]>('* as c')).toEqual([{ c: expect.stringMatching(/^[12]$/) }]); // bounded: a row per day and reason

      const order = paidOrderFor(sellerB);
      const started = Date.now();
      expect((await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: sellerB })).status).toBe(200);
      await received(orderIdFor('MERCADOLIBRE', String(order.id)));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(h.ml.requests.slice(mlCallsBefore).filter((r) => /^\/orders\/100\d{4}$/.test(r.path))).toEqual([]); // no call for A's junk
    });

    it('when a notification for a known seller carries padding beyond 4 KB, then 413 and nothing is kept', async () => {
      const before = await deliveryCount();
      const padded = { ...h.ml.notification({ orderId: 2000000001, userId: sellerB }), application_id: Number(OUR_ML_APP), pad: 'x'.repeat(5000) };
      const res = await fetch(`${h.service.url}/webhooks/mercadolibre`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(padded) });
      expect(res.status).toBe(413);
      expect(await deliveryCount()).toBe(before);
    });

    it('when seller A\'s backlog is 20,000 deliveries deep, then B\'s order is still claimed in the next round (accounts are found by a skip scan, not among the oldest rows)', async () => {
      // A's backlog: due, pending deliveries of a kind the worker parks at once (no marketplace calls), all older than B's
      await h.service.ctx.db.raw(
        `insert into deliveries (id, marketplace, kind, dedupe_key, account_id, status, headers, raw_body, received_at, next_attempt_at)
         select gen_random_uuid(), 'MERCADOLIBRE', 'test.backlog', 'backlog-' || g, ?, 'pending', '{}', '{}', now() - interval '1 hour', now() - interval '1 hour' + g * interval '1 millisecond'
           from generate_series(1, 20000) g`,
        [String(sellerA)],
      );
      const order = paidOrderFor(sellerB);
      const started = Date.now();
      expect((await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: sellerB })).status).toBe(200);
      await received(orderIdFor('MERCADOLIBRE', String(order.id)));
      expect(Date.now() - started).toBeLessThan(5000);
      const left = Number((await h.service.ctx.db('deliveries').where({ status: 'pending', kind: 'test.backlog' }).count<{ c: string }[]>('* as c'))[0]!.c);
      expect(left).toBeGreaterThan(2000); // B did not wait for A's backlog to shrink
      await h.service.ctx.db('deliveries').where({ kind: 'test.backlog' }).delete();
    });

    it('when seller A has a backlog of slow deliveries, then the worker claims in batches fair across accounts and B\'s order does not wait behind it', async () => {
      // A's notifications are genuine-looking (our application, A's user id) but their orders are slow to read
      const removeLatency = h.ml.fail({ match: /^GET \/orders\/3\d{8}$/, mode: { kind: 'latency', ms: 80 } });
      try {
        const answers = await Promise.all(Array.from({ length: 120 }, (_, i) => h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: 300_000_000 + i, userId: sellerA })));
        for (const a of answers) expect(a.status).toBe(200);
        const order = paidOrderFor(sellerB);
        expect((await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, { orderId: order.id, userId: sellerB })).status).toBe(200);
        await received(orderIdFor('MERCADOLIBRE', String(order.id)));
        // one at a time, B would have waited behind 120 × 80 ms; it got its turn while A's backlog was still there
        const pendingA = Number((await h.service.ctx.db('deliveries').where({ status: 'pending', account_id: String(sellerA) }).count<{ c: string }[]>('* as c'))[0]!.c);
        expect(pendingA).toBeGreaterThan(0);
      } finally {
        removeLatency();
      }
    });
  });
});
