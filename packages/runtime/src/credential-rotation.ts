import type { z } from 'zod';
import { loadConfig } from './config';
import { createDb, type Db } from './db';
import { createLogger } from './logger';
import { createSecretBox, type SecretBox } from './secret-box';

/** What a service's config must say for its sealed credentials to be re-sealed. */
interface RotationConfig {
  CREDENTIALS_KEY?: string;
  CREDENTIALS_KEY_ID?: string;
  CREDENTIALS_PREVIOUS_KEYS?: string;
  DATABASE_URL: string;
  DB_SCHEMA: string;
  LOG_LEVEL: string;
}

export interface RotationResult {
  keyId: string;
  checked: number;
  resealed: number;
}

/**
 * The `rotate-credentials` command of a service that seals credentials (ingest, fulfillment): re-seals every sealed
 * value with the current CREDENTIALS_KEY, in the one transaction `reseal` opens. Run it after adding the new key with
 * the old one in CREDENTIALS_PREVIOUS_KEYS; when it reports, the old key can be removed. Never prints a secret.
 */
export async function rotateSealedCredentials<S extends z.ZodType<RotationConfig>>(options: {
  service: string;
  configSchema: S;
  env: Record<string, string | undefined>;
  reseal(db: Db, box: SecretBox): Promise<{ checked: number; resealed: number }>;
}): Promise<RotationResult> {
  const config: RotationConfig = loadConfig(options.configSchema, options.env);
  if (!config.CREDENTIALS_KEY) throw new Error('CREDENTIALS_KEY is required to rotate credentials');
  const box = createSecretBox({ key: config.CREDENTIALS_KEY, keyId: config.CREDENTIALS_KEY_ID, previousKeys: config.CREDENTIALS_PREVIOUS_KEYS });
  const db = createDb({ url: config.DATABASE_URL, schema: config.DB_SCHEMA, logger: createLogger(`${options.service}.rotate-credentials`, config.LOG_LEVEL) });
  try {
    return { keyId: box.keyId, ...(await options.reseal(db, box)) };
  } finally {
    await db.destroy();
  }
}

/** Runs a rotation as a command: one line with the counts, or the reason and exit code 1 (nothing changed). */
export function runRotationCommand(service: string, rotate: () => Promise<RotationResult>, checkedWhat: string): void {
  rotate().then(
    (result) => console.log(`${service}: ${result.resealed} sealed values re-sealed with key ${result.keyId} (${result.checked} ${checkedWhat} checked)`),
    (error: Error) => {
      console.error(`${service}: credential rotation failed, nothing changed: ${error.message}`);
      process.exit(1);
    },
  );
}
