import { z } from 'zod';

/** Raised when the environment does not satisfy a service's config schema; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Variables every service reads. Each service extends this with its own. */
export const baseConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535),
  DATABASE_URL: z.string().url(),
  /** the Postgres schema this service owns */
  DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case identifier'),
  KAFKA_BROKERS: z.string().min(1).transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean)),
  SCHEMA_REGISTRY_URL: z.string().url(),
  /** prefixes every topic and subject; empty in a deployment, unique per test run */
  TOPIC_NAMESPACE: z.string().regex(/^[A-Za-z0-9._-]*$/).default(''),
  /** bearer token for /admin routes; no default on purpose */
  ADMIN_TOKEN: z.string().min(16, 'at least 16 characters'),
  /** read-only bearer token for /admin routes (operators); optional, must differ from ADMIN_TOKEN */
  OPERATOR_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** max accepted request body, bytes */
  HTTP_BODY_LIMIT: z.coerce.number().int().positive().default(256 * 1024),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const missing = issue.code !== 'custom' && issue.path.length === 1 && env[String(issue.path[0])] === undefined;
    return missing ? `${name} is missing` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** Environment defaults for local runs and tests (the local infrastructure's addresses). Never secrets. */
export function localInfraEnv(): Record<string, string> {
  return {
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postsale',
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
  };
}
