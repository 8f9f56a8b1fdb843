import { randomBytes } from 'node:crypto';
import { createDb, createSecretBox, migrate, sealLegacyV1, type Db } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { SellersRepository } from '../../src/db/sellers.repository';
import { openSecret, openToken, sealedAccountField } from '../../src/domain/credentials';
import type { SellerAccount } from '../../src/domain/records';
import { rotateCredentials } from '../../src/rotate-credentials';

/** Marketplace tokens and storefront capture secrets at rest: bound to seller and account, rotatable, on real Postgres. */
describe('sealed account credentials', () => {
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  const env = testEnv('ingest', { CREDENTIALS_KEY: oldKey });
  const schema = env.DB_SCHEMA!;
  let db: Db;
  const repo = () => new SellersRepository(db);
  const account = async (marketplace: string, accountId: string) => (await repo().account(marketplace as SellerAccount['marketplace'], accountId))!;

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
    expect(openToken(box, a)).toBe('ebay-token-a');
    const b = await account('EBAY', 'ebay-b');
    expect(() => openToken(box, { ...b, tokenSealed: a.tokenSealed })).toThrow();
    expect(() => openSecret(box, { ...a, secretSealed: a.tokenSealed })).toThrow();
    // same seller, another account: bound to the account too
    const shop = await account('PAYPAL_STOREFRONT', 'shop-a');
    expect(() => openSecret(box, { ...shop, accountId: 'shop-z' })).toThrow();
    expect(openSecret(box, shop)).toBe('capture-secret-a'.padEnd(32, 'x'));
  });

  it('v1 values still open; rotation re-seals every one with the new key in one go, and the old key can be removed', async () => {
    await db('marketplace_accounts').where({ marketplace: 'EBAY', account_id: 'ebay-b' }).update({ token_sealed: sealLegacyV1(oldKey, 'legacy-token-b') });
    expect(openToken(createSecretBox(oldKey), await account('EBAY', 'ebay-b'))).toBe('legacy-token-b');

    const rotationEnv = { ...env, CREDENTIALS_KEY: newKey, CREDENTIALS_KEY_ID: 'k2', CREDENTIALS_PREVIOUS_KEYS: oldKey };
    expect(await rotateCredentials(rotationEnv)).toEqual({ keyId: 'k2', checked: 3, resealed: 3 });
    expect(await rotateCredentials(rotationEnv)).toEqual({ keyId: 'k2', checked: 3, resealed: 0 });
    const rows: Array<{ token_sealed: string | null; secret_sealed: string | null }> = await db('marketplace_accounts');
    expect(rows.flatMap((r) => [r.token_sealed, r.secret_sealed]).filter(Boolean).every((v) => v!.startsWith('v2:k2:'))).toBe(true);

    const onlyNew = createSecretBox({ key: newKey, keyId: 'k2' });
    expect(openToken(onlyNew, await account('EBAY', 'ebay-a'))).toBe('ebay-token-a');
    expect(openToken(onlyNew, await account('EBAY', 'ebay-b'))).toBe('legacy-token-b');
    expect(openSecret(onlyNew, await account('PAYPAL_STOREFRONT', 'shop-a'))).toBe('capture-secret-a'.padEnd(32, 'x'));
    const resealedA = await account('EBAY', 'ebay-a');
    expect(() => openToken(createSecretBox(oldKey), resealedA)).toThrow(/k2 is not configured/);
  });

  it('production refuses to start without CREDENTIALS_KEY', async () => {
    await expect(rotateCredentials({ ...env, NODE_ENV: 'production', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', CREDENTIALS_KEY: undefined }))
      .rejects.toThrow(/CREDENTIALS_KEY: required outside development/);
  });
});
