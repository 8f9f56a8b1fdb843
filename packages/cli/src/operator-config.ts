import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { kafkaSecurityShape, localInfraEnv } from '@postsale/runtime';

/**
 * Where the operator's tools find the pipeline: the environment, else .local/stack/operator.env (`npm start` writes it),
 * else the local stack (its broker, registry and Kafka dev credentials, see localInfraEnv).
 */
export const STACK_DIR = join(__dirname, '..', '..', '..', '.local', 'stack');

const schema = z.object({
  KAFKA_BROKERS: z.string().default('127.0.0.1:9092').transform((s) => s.split(',')),
  /** how the CLI authenticates to Kafka (KAFKA_SASL_MECHANISM/USERNAME/PASSWORD, KAFKA_SSL, KAFKA_SSL_CA_FILE) */
  ...kafkaSecurityShape,
  SCHEMA_REGISTRY_URL: z.string().url().default('http://127.0.0.1:8081/apis/ccompat/v7'),
  TOPIC_NAMESPACE: z.string().default(''),
  INGEST_URL: z.string().url().default('http://127.0.0.1:3001'),
  FULFILLMENT_URL: z.string().url().default('http://127.0.0.1:3002'),
  SALES_URL: z.string().url().default('http://127.0.0.1:3003'),
  PAYOUTS_URL: z.string().url().default('http://127.0.0.1:3004'),
  /** the operator's credential for the services' /admin routes; no default */
  POSTSALE_ADMIN_TOKEN: z.string().min(1).optional(),
});
export type OperatorConfig = z.infer<typeof schema>;

export function loadOperatorConfig(env: Record<string, string | undefined> = process.env): OperatorConfig {
  const given = { ...readEnvFile(join(STACK_DIR, 'operator.env')), ...env };
  return schema.parse({ ...localInfraEnv(given), ...given });
}

export function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

export function serviceUrls(config: OperatorConfig): Record<'ingest' | 'fulfillment' | 'sales' | 'payouts', string> {
  return { ingest: config.INGEST_URL, fulfillment: config.FULFILLMENT_URL, sales: config.SALES_URL, payouts: config.PAYOUTS_URL };
}
