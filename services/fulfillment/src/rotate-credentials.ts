/**
 * `npm run rotate-credentials -w @postsale/fulfillment`: re-seals every supplier credential and marketplace token with
 * the current CREDENTIALS_KEY (id CREDENTIALS_KEY_ID), in one transaction. Run it after adding the new key with the old
 * one in CREDENTIALS_PREVIOUS_KEYS; when it reports, the old key can be removed. Prints counts, never a secret.
 */
import { createDb, createLogger, createSecretBox, loadConfig } from '@postsale/runtime';
import { configSchema } from './config';
import { SellerSettingsRepository } from './db/seller-settings.repository';

export async function rotateCredentials(env: Record<string, string | undefined> = process.env): Promise<{ keyId: string; checked: number; resealed: number }> {
  const config = loadConfig(configSchema, env);
  const box = createSecretBox({ key: config.CREDENTIALS_KEY, keyId: config.CREDENTIALS_KEY_ID, previousKeys: config.CREDENTIALS_PREVIOUS_KEYS });
  const db = createDb({ url: config.DATABASE_URL, schema: config.DB_SCHEMA, logger: createLogger('fulfillment.rotate-credentials', config.LOG_LEVEL) });
  try {
    return { keyId: box.keyId, ...(await new SellerSettingsRepository(db, box).resealAll()) };
  } finally {
    await db.destroy();
  }
}

if (typeof require !== 'undefined' && require.main === module) {
  rotateCredentials().then(
    (result) => console.log(`fulfillment: ${result.resealed} sealed values re-sealed with key ${result.keyId} (${result.checked} rows checked)`),
    (error: Error) => {
      console.error(`fulfillment: credential rotation failed, nothing changed: ${error.message}`);
      process.exit(1);
    },
  );
}
