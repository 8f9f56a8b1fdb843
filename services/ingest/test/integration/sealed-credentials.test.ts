import { randomBytes } from 'node:crypto';
import { createDb, createSecretBox, migrate, sealLegacyV1, type Db } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { sealedAccountField, SellersRepository, type AccountRow } from '../../src/db/sellers.repository';
import { rotateCredentials } from '../../src/rotate-credentials';

/** Marketplace tokens and storefront capture secrets at rest: bound to seller and account, rotatable, on real Postgres. */
describe('sealed account credentials', () => {
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  const env = testEnv('ingest', { CREDENTIALS_KEY: oldKey });
  const schema = env.DB_SCHEMA!;
  let db: Db;
  const repo = () => new SellersRepository(db);
  const account = async (marketplace: string, accountId: string) => (await repo().account(marketplace as AccountRow['marketplace'], accountId))!;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, migrations);
    const box = createSecretBox(oldKey);
    const sealFor = (sellerId: string, marketplace: 'EBAY' | 'PAYPAL_STOREFRONT', accountId: string, token: string | null, secret: string | null) => ({
      marketplace, accountId,
      tokenSealed: token ? box.seal(token, sealedAccountField.token({ sellerId, marketplace, accountId })) : null,
      secretSealed: secret ? box.seal(secret, sealedAccountField.secret({ sellerId, marketplace, accountId })) : null,
    });
    await repo().put('seller-a', 'A', [sealFor('seller-a', 'EBAY', 'ebay-a', 'ebay-token-a', null), sealFor('seller-a', 'PAYPAL_STOREFRONT', 'shop-a', null, 'capture-secret-a'.padEnd(32, 'x'))]);
    await repo().put('seller-b', 'B', [sealFor('seller-b', 'EBAY', 'ebay-b', 'ebay-token-b', null)]);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  it('a token moved to another seller\'s account, or into the secret column, does not open', async () => {
    const box = createSecretBox(oldKey);
    const a = await account('EBAY', 'ebay-a');
    expect(repo().openToken(a, box)).toBe('ebay-token-a');
    const b = await account('EBAY', 'ebay-b');
    expect(() => repo().openToken({ ...b, token_sealed: a.token_sealed }, box)).toThrow();
    expect(() => repo().openSecret({ ...a, secret_sealed: a.token_sealed }, box)).toThrow();
    // same seller, another account: bound to the account too
    const shop = await account('PAYPAL_STOREFRONT', 'shop-a');
    expect(() => repo().openSecret({ ...shop, account_id: 'shop-z' }, box)).toThrow();
    expect(repo().openSecret(shop, box)).toBe('capture-secret-a'.padEnd(32, 'x'));
  });

  it('v1 values still open; rotation re-seals every one with the new key in one go, and the old key can be removed', async () => {
    await db('marketplace_accounts').where({ marketplace: 'EBAY', account_id: 'ebay-b' }).update({ token_sealed: sealLegacyV1(oldKey, 'legacy-token-b') });
    expect(repo().openToken(await account('EBAY', 'ebay-b'), createSecretBox(oldKey))).toBe('legacy-token-b');

    const rotationEnv = { ...env, CREDENTIALS_KEY: newKey, CREDENTIALS_KEY_ID: 'k2', CREDENTIALS_PREVIOUS_KEYS: oldKey };
    expect(await rotateCredentials(rotationEnv)).toEqual({ keyId: 'k2', checked: 3, resealed: 3 });
    expect(await rotateCredentials(rotationEnv)).toEqual({ keyId: 'k2', checked: 3, resealed: 0 });
    const rows: AccountRow[] = await db('marketplace_accounts');
    expect(rows.flatMap((r) => [r.token_sealed, r.secret_sealed]).filter(Boolean).every((v) => v!.startsWith('v2:k2:'))).toBe(true);

    const onlyNew = createSecretBox({ key: newKey, keyId: 'k2' });
    expect(repo().openToken(await account('EBAY', 'ebay-a'), onlyNew)).toBe('ebay-token-a');
    expect(repo().openToken(await account('EBAY', 'ebay-b'), onlyNew)).toBe('legacy-token-b');
    expect(repo().openSecret(await account('PAYPAL_STOREFRONT', 'shop-a'), onlyNew)).toBe('capture-secret-a'.padEnd(32, 'x'));
    const resealedA = await account('EBAY', 'ebay-a');
    expect(() => repo().openToken(resealedA, createSecretBox(oldKey))).toThrow(/k2 is not configured/);
  });

  it('production refuses to start without CREDENTIALS_KEY', async () => {
    await expect(rotateCredentials({ ...env, NODE_ENV: 'production', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', CREDENTIALS_KEY: undefined }))
      .rejects.toThrow(/CREDENTIALS_KEY: required outside development/);
  });
});
