import { randomBytes } from 'node:crypto';
import { createDb, createSecretBox, migrate, sealLegacyV1, type Db } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { SellerSettingsRepository } from '../../src/db/seller-settings.repository';
import { rotateCredentials } from '../../src/rotate-credentials';

/** Supplier credentials and marketplace tokens at rest: bound to their seller and column, rotatable, on real Postgres. */
describe('sealed credentials', () => {
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  const env = testEnv('fulfillment', {
    SUPPLIER_MODE: 'sandbox', CREDENTIALS_KEY: oldKey, CREDENTIALS_KEY_ID: 'k-old',
    ALIEXPRESS_GATEWAY_URL: 'http://127.0.0.1:9/sync', ALIEXPRESS_WEB_URL: 'http://127.0.0.1:9', EBAY_API_BASE_URL: 'http://127.0.0.1:9', MERCADOLIBRE_API_BASE_URL: 'http://127.0.0.1:9',
  });
  const schema = env.DB_SCHEMA!;
  let db: Db;
  const api = { appKey: 'app-key-a', appSecret: 'app-secret-a', accessToken: 'supplier-token-a' };

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, migrations);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  it('a value moved to another seller\'s row, or to another column, does not open', async () => {
    const repo = new SellerSettingsRepository(db, createSecretBox({ key: oldKey, keyId: 'k-old' }));
    await repo.putSupplierCredentials('seller-a', { api, web: { email: 'a@example.org', password: 'pw-a' } });
    await repo.putSupplierCredentials('seller-b', { api: { appKey: 'app-key-b', appSecret: 'app-secret-b', accessToken: 'supplier-token-b' } });
    expect((await repo.supplierSecrets('seller-a')).api).toEqual(api);
    const raw = await db('supplier_credentials').where({ seller_id: 'seller-a' }).first();
    expect(JSON.stringify(raw)).not.toContain('app-secret-a');

    const b = await db('supplier_credentials').where({ seller_id: 'seller-b' }).first();
    await db('supplier_credentials').where({ seller_id: 'seller-b' }).update({ app_secret_sealed: raw.app_secret_sealed });
    await expect(repo.supplierSecrets('seller-b')).rejects.toThrow();
    await db('supplier_credentials').where({ seller_id: 'seller-b' }).update({ app_secret_sealed: b.app_secret_sealed });
    expect((await repo.supplierSecrets('seller-b')).api?.appSecret).toBe('app-secret-b');

    await db('supplier_credentials').where({ seller_id: 'seller-a' }).update({ app_secret_sealed: raw.access_token_sealed });
    await expect(repo.supplierSecrets('seller-a')).rejects.toThrow();
    await db('supplier_credentials').where({ seller_id: 'seller-a' }).update({ app_secret_sealed: raw.app_secret_sealed });

    await repo.putMarketplaceToken('seller-a', 'EBAY', { accessToken: 'ebay-token-a', mlServiceId: null, ebayCarrierCode: null });
    const token = await db('marketplace_tokens').where({ seller_id: 'seller-a', marketplace: 'EBAY' }).first();
    await repo.putMarketplaceToken('seller-b', 'EBAY', { accessToken: 'ebay-token-b', mlServiceId: null, ebayCarrierCode: null });
    await db('marketplace_tokens').where({ seller_id: 'seller-b', marketplace: 'EBAY' }).update({ access_token_sealed: token.access_token_sealed });
    await expect(repo.marketplaceToken('seller-b', 'EBAY')).rejects.toThrow();
    await repo.putMarketplaceToken('seller-b', 'EBAY', { accessToken: 'ebay-token-b', mlServiceId: null, ebayCarrierCode: null });
  });

  it('values sealed the old way (v1) still open; rotation re-seals everything with the new key, then the old key can go', async () => {
    await db('marketplace_tokens').insert({ seller_id: 'seller-c', marketplace: 'MERCADOLIBRE', access_token_sealed: sealLegacyV1(oldKey, 'ml-token-c') });
    const before = new SellerSettingsRepository(db, createSecretBox({ key: oldKey, keyId: 'k-old' }));
    expect((await before.marketplaceToken('seller-c', 'MERCADOLIBRE'))?.accessToken).toBe('ml-token-c');

    // the new key seals; the old one only opens, until the rotation has run
    const rotationEnv = { ...env, CREDENTIALS_KEY: newKey, CREDENTIALS_KEY_ID: 'k-new', CREDENTIALS_PREVIOUS_KEYS: `k-old:${oldKey}` };
    const result = await rotateCredentials(rotationEnv);
    expect(result).toEqual({ keyId: 'k-new', checked: 5, resealed: 4 + 2 + 3 });
    expect(await rotateCredentials(rotationEnv)).toEqual({ keyId: 'k-new', checked: 5, resealed: 0 });

    const sealed = [
      ...(await db('supplier_credentials').select('app_secret_sealed', 'access_token_sealed', 'web_email_sealed', 'web_password_sealed')).flatMap((r) => Object.values(r)),
      ...(await db('marketplace_tokens').pluck('access_token_sealed')),
    ].filter((v): v is string => typeof v === 'string');
    expect(sealed).toHaveLength(9);
    expect(sealed.every((v) => v.startsWith('v2:k-new:'))).toBe(true);

    const onlyNew = new SellerSettingsRepository(db, createSecretBox({ key: newKey, keyId: 'k-new' }));
    expect((await onlyNew.supplierSecrets('seller-a'))).toEqual({ api, web: { email: 'a@example.org', password: 'pw-a' } });
    expect((await onlyNew.supplierSecrets('seller-b')).api?.accessToken).toBe('supplier-token-b');
    expect((await onlyNew.marketplaceToken('seller-a', 'EBAY'))?.accessToken).toBe('ebay-token-a');
    expect((await onlyNew.marketplaceToken('seller-c', 'MERCADOLIBRE'))?.accessToken).toBe('ml-token-c');
    await expect(before.supplierSecrets('seller-a')).rejects.toThrow(/k-new is not configured/);
  });

  it('a rotation that meets a value it cannot open changes nothing (one transaction)', async () => {
    const third = randomBytes(32).toString('base64');
    const snapshot = await db('supplier_credentials').orderBy('seller_id').select('seller_id', 'app_secret_sealed');
    await db('marketplace_tokens').insert({ seller_id: 'seller-d', marketplace: 'EBAY', access_token_sealed: sealLegacyV1(randomBytes(32).toString('base64'), 'lost') });
    await expect(rotateCredentials({ ...env, CREDENTIALS_KEY: third, CREDENTIALS_KEY_ID: 'k-third', CREDENTIALS_PREVIOUS_KEYS: `k-new:${newKey}` })).rejects.toThrow(/does not open/);
    expect(await db('supplier_credentials').orderBy('seller_id').select('seller_id', 'app_secret_sealed')).toEqual(snapshot);
  });
});
