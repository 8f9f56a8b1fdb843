import { randomBytes } from 'node:crypto';
import { createDb, createSecretBox, migrate, type Db } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { CachedSellerSettings } from '../../src/db/seller-settings.cache';

/** The seller settings cache and the quota blocks, on real Postgres: what a job reads, what an admin write changes. */
describe('seller settings cache', () => {
  const key = randomBytes(32).toString('base64');
  const env = testEnv('fulfillment', { SUPPLIER_MODE: 'sandbox', CREDENTIALS_KEY: key });
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let clock = Date.UTC(2026, 0, 10, 4, 0, 0);
  const api = { appKey: 'app-key-a', appSecret: 'app-secret-a', accessToken: 'supplier-token-a' };
  const policy = { sellerId: 'seller-a', minMarginBps: 1000, maxCost: null, purchaseChannel: 'API' as const, fxRates: {}, ratePerSecond: null, dailyQuota: null };
  let statements = 0;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, migrations);
    db.on('query', () => {
      statements += 1;
    });
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });
  const cache = () => new CachedSellerSettings(db, createSecretBox({ key }), { ttlMs: 5_000, quotaBlock: 20, now: () => clock });

  it('reads are reused for the TTL; a write through this process is seen at once, one through another replica after the TTL', async () => {
    const here = cache();
    const otherReplica = cache();
    await here.putPolicy(policy);
    await here.putSupplierCredentials('seller-a', { api });

    expect((await here.policy('seller-a'))?.minMarginBps).toBe(1000);
    expect((await here.supplierSecrets('seller-a')).api).toEqual(api);
    const before = statements;
    expect((await here.policy('seller-a'))?.minMarginBps).toBe(1000);
    expect((await here.supplierSecrets('seller-a')).api).toEqual(api);
    expect(statements).toBe(before); // no round trip

    // written here: seen by the next read here
    await here.putPolicy({ ...policy, minMarginBps: 2000 });
    expect((await here.policy('seller-a'))?.minMarginBps).toBe(2000);
    const rotated = { ...api, accessToken: 'supplier-token-a2' };
    await here.putSupplierCredentials('seller-a', { api: rotated });
    expect((await here.supplierSecrets('seller-a')).api).toEqual(rotated);

    // written through another replica: this one still has its copy until the TTL has passed
    expect((await here.policy('seller-a'))?.minMarginBps).toBe(2000);
    await otherReplica.putPolicy({ ...policy, minMarginBps: 3000 });
    expect((await here.policy('seller-a'))?.minMarginBps).toBe(2000);
    clock += 5_000;
    expect((await here.policy('seller-a'))?.minMarginBps).toBe(3000);
  });

  it('a read that fails (a value that does not open) is not kept', async () => {
    const here = cache();
    await here.putMarketplaceToken('seller-b', 'EBAY', { accessToken: 'ebay-token-b', mlServiceId: null, ebayCarrierCode: null });
    const sealed = await db('marketplace_tokens').where({ seller_id: 'seller-b' }).first();
    await db('marketplace_tokens').where({ seller_id: 'seller-b' }).update({ access_token_sealed: 'v2:nope:broken' });
    await expect(here.marketplaceToken('seller-b', 'EBAY')).rejects.toThrow();
    await db('marketplace_tokens').where({ seller_id: 'seller-b' }).update({ access_token_sealed: sealed.access_token_sealed });
    expect((await here.marketplaceToken('seller-b', 'EBAY'))?.accessToken).toBe('ebay-token-b');
  });

  it('the daily quota is reserved in blocks, one write per block, and two replicas together never exceed it', async () => {
    const replicas = [cache(), cache()];
    const quota = 50;
    const before = statements;
    const taken = await Promise.all(Array.from({ length: 80 }, (_, i) => replicas[i % 2]!.takeDailyQuota('seller-q', quota)));
    expect(taken.filter(Boolean)).toHaveLength(quota);
    const row = await db('supplier_call_quota').where({ seller_id: 'seller-q' }).first();
    expect(row.calls).toBe(quota);
    // 20 + 20 by blocks, the last 10 one at a time (and the refusals), far fewer than one write per call
    expect(statements - before).toBeLessThan(80);

    // a small quota is one block of its own size; the next day starts again
    const small = cache();
    expect(await small.takeDailyQuota('seller-s', 2)).toBe(true);
    expect(await small.takeDailyQuota('seller-s', 2)).toBe(true);
    expect(await small.takeDailyQuota('seller-s', 2)).toBe(false);
    expect((await db('supplier_call_quota').where({ seller_id: 'seller-s' })).map((r) => r.calls)).toEqual([2]);
    clock += 86_400_000;
    expect(await small.takeDailyQuota('seller-s', 2)).toBe(true);
  });

  it('a busy seller\'s blocks grow while each is used up fast, up to eight times the configured size, and shrink back once one lasts', async () => {
    const here = cache();
    const quota = 100_000;
    const reserved = async () => Number((await db('supplier_call_quota').where({ seller_id: 'seller-busy' }).first())?.calls ?? 0);
    const take = async (n: number) => {
      for (let i = 0; i < n; i++) expect(await here.takeDailyQuota('seller-busy', quota)).toBe(true);
    };
    const before = statements;
    await take(300);
    // 20 + 40 + 80 + 160: four writes for 300 calls (fifteen at a fixed 20)
    expect(statements - before).toBe(4);
    expect(await reserved()).toBe(300);
    await take(161);
    expect(await reserved()).toBe(300 + 160 + 160); // never more than 8 × 20 at once
    // a block that lasted longer than 10 s: the next is the configured size again
    await take(159);
    clock += 11_000;
    await take(1);
    expect(await reserved()).toBe(620 + 20);
  });
});
