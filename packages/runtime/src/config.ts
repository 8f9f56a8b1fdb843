import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/** Raised when the environment does not satisfy a service's config schema; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** An on/off variable: "true" or "false" (or a boolean, from code), `fallback` when unset. */
export function envFlag(fallback: boolean) {
  return z.union([z.boolean(), z.enum(['true', 'false'])]).default(fallback).transform((v) => v === true || v === 'true');
}

/** An optional variable where an empty value (`${VAR:-}` in compose) means unset. */
const optionalText = z.string().optional().transform((s) => (s ? s : undefined));

/**
 * How a client authenticates to Kafka: SASL (SCRAM-SHA-512 by default in a deployment) and TLS where configured. Every
 * Kafka client the product makes (services, CLI, console, bench, e2e) reads these through `createKafka`.
 */
export const kafkaSecurityShape = {
  KAFKA_SASL_MECHANISM: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']).optional(),
  KAFKA_SASL_USERNAME: optionalText,
  KAFKA_SASL_PASSWORD: optionalText,
  /** TLS to the brokers; the server certificate is always verified (against KAFKA_SSL_CA_FILE, else the system roots) */
  KAFKA_SSL: envFlag(false),
  /** PEM file of the CA that signed the brokers' certificates */
  KAFKA_SSL_CA_FILE: optionalText,
};
export const kafkaSecuritySchema = z.object(kafkaSecurityShape);
export type KafkaSecurityConfig = z.infer<typeof kafkaSecuritySchema>;

/**
 * What is wrong with a Kafka security configuration, as `[variable, message]` pairs: half-configured SASL, a CA without
 * TLS, and, in production, no authentication at all.
 */
export function kafkaSecurityProblems(c: KafkaSecurityConfig, nodeEnv: string | undefined): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (c.KAFKA_SASL_MECHANISM) {
    if (!c.KAFKA_SASL_USERNAME) problems.push(['KAFKA_SASL_USERNAME', `required with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}`]);
    if (!c.KAFKA_SASL_PASSWORD) problems.push(['KAFKA_SASL_PASSWORD', `required with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}`]);
  } else if (c.KAFKA_SASL_USERNAME || c.KAFKA_SASL_PASSWORD) {
    problems.push(['KAFKA_SASL_MECHANISM', 'required when a Kafka SASL username or password is set']);
  }
  if (c.KAFKA_SSL_CA_FILE && !c.KAFKA_SSL) problems.push(['KAFKA_SSL_CA_FILE', 'set, but KAFKA_SSL is not true']);
  if (nodeEnv === 'production' && !c.KAFKA_SASL_MECHANISM) {
    problems.push(['KAFKA_SASL_MECHANISM', 'required in production: Kafka clients must authenticate (scram-sha-512)']);
  }
  if (nodeEnv === 'production' && c.KAFKA_SASL_MECHANISM === 'plain' && !c.KAFKA_SSL) {
    problems.push(['KAFKA_SSL', 'SASL/PLAIN sends the password in clear: production needs KAFKA_SSL=true with it']);
  }
  return problems;
}

/** Variables every service reads. Each service extends this with its own. */
export const baseConfigSchema = z.object({
  /** no default: a process says which mode it runs in, and production is never assumed to be development */
  NODE_ENV: z.enum(['development', 'test', 'production']),
  ...kafkaSecurityShape,
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
  /**
   * Which proxies' X-Forwarded-For is believed for a request's address (express "trust proxy": presets such as
   * loopback / uniquelocal, addresses, CIDRs, comma-separated; or a hop count). Behind a load balancer or ingress it
   * must name it: otherwise every request seems to come from the balancer, and ingest's per-address limit becomes
   * one limit for the whole internet. Never "trust everything": the header is the sender's to forge.
   */
  TRUST_PROXY: z
    .string()
    .max(500)
    .regex(/^(\d{1,2}|[A-Za-z0-9.:/]+(\s*,\s*[A-Za-z0-9.:/]+)*)$/, 'a hop count, or presets / addresses / CIDRs separated by commas')
    .refine((v) => !/^(true|false)$/i.test(v), 'name the proxies (or a hop count), not true/false')
    .default('loopback')
    .transform((v) => (/^\d+$/.test(v) ? Number(v) : v.split(',').map((part) => part.trim()))),
  /** max accepted request body, bytes */
  HTTP_BODY_LIMIT: z.coerce.number().int().positive().default(256 * 1024),
  /**
   * Postgres connections this process may hold. Each service sets its own default from the concurrency its work uses
   * (consumers' concurrent partitions, the outbox relay, its workers, HTTP); the db_pool_in_use_peak and
   * db_pool_acquire_seconds metrics show whether it is right.
   */
  DB_POOL_MAX: z.coerce.number().int().min(2).max(200).default(10),
  /**
   * Repeated statements as named prepared statements (createDb): about a third less Postgres CPU per statement. Turn off
   * only behind a pooler that cannot keep them (PgBouncer before 1.21 in transaction mode).
   */
  DB_PREPARED_STATEMENTS: envFlag(true),
  /**
   * Pipelined transactions (createDb): a transaction's BEGIN, an event's inbox row and outbox rows ride with the next
   * statement, and a use case's known last statement carries the COMMIT. Off sends each statement on its own.
   */
  DB_PIPELINING: envFlag(true),
  /**
   * How long the outbox relay waits after a commit woke it, so the events of commits that follow are published by the
   * same claim and Kafka request. Saves a transaction per event once orders arrive faster than this; adds at most this
   * much to each hop.
   */
  OUTBOX_LINGER_MS: z.coerce.number().int().min(0).max(1000).default(5),
  /**
   * How long an inbox consumer's ready events wait before their transaction (group commit): events of other partitions
   * fetched meanwhile join it, and those a broker holds meanwhile come in one fetch for the next (kafkajs fetches from a
   * broker again once the last fetch's events are applied). 0: only the events fetched together share a transaction.
   * Saves commits once events arrive faster than this; adds at most this much to each hop.
   */
  INBOX_LINGER_MS: z.coerce.number().int().min(0).max(1000).default(0),
  /**
   * How long the broker may hold an inbox consumer's fetch to gather events before answering (Kafka's fetch max wait,
   * with a minimum size no fetch of these events reaches): every fetch then brings what arrived on all the consumer's
   * topics in that time, for one transaction, and an idle consumer asks this often. 0: the broker answers as soon as
   * one event is there (kafkajs's defaults), so events that arrive apart are fetched, and committed, apart.
   */
  INBOX_FETCH_WAIT_MS: z.coerce.number().int().min(0).max(1000).default(0),
  /**
   * false: this replica serves HTTP, consumes and publishes, but runs none of the service's background workers
   * (pollers, job workers, inbox pruning); replicas with the default run them. Lets one part scale apart from the
   * rest — e.g. ingest replicas that only store and answer webhooks, while fewer replicas process the deliveries.
   */
  BACKGROUND_WORKERS: envFlag(true),
  /** how often old inbox rows are looked for (they are kept longer than any copy of their event lives in Kafka) */
  INBOX_PRUNE_INTERVAL_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /** inbox rows deleted per statement */
  INBOX_PRUNE_BATCH: z.coerce.number().int().min(1).max(100_000).default(1000),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) {
    // Rules shared by every service whose schema extends the base one (zod cannot refine an object that is extended).
    const data = result.data as Partial<BaseConfig>;
    if (data && typeof data === 'object' && 'KAFKA_BROKERS' in data && 'NODE_ENV' in data) {
      const problems = kafkaSecurityProblems(data as KafkaSecurityConfig, data.NODE_ENV).map(([name, message]) => `${name}: ${message}`);
      if (problems.length > 0) throw new ConfigError(problems);
    }
    return result.data;
  }
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const missing = issue.code !== 'custom' && issue.path.length === 1 && env[String(issue.path[0])] === undefined;
    return missing ? `${name} is missing` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/**
 * Environment defaults for local runs and tests: the local stack's addresses (deploy/local/infra.sh; a second stack's
 * ports through POSTSALE_KAFKA_PORT and POSTSALE_REGISTRY_PORT, as infra.sh reads them) and its Kafka credentials. The
 * local broker accepts only SASL/SCRAM: its dev user comes from deploy/local/kafka-dev.env, unless the environment
 * sets any KAFKA_SASL_* / KAFKA_SSL* variable, in which case the environment's own ones are used instead.
 */
export function localInfraEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const fromEnv = Object.fromEntries(Object.keys(kafkaSecurityShape).flatMap((name) => (env[name] ? [[name, env[name]!]] : [])));
  return {
    DATABASE_URL: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postsale',
    KAFKA_BROKERS: env.KAFKA_BROKERS ?? `127.0.0.1:${env.POSTSALE_KAFKA_PORT || '9092'}`,
    SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL ?? `http://127.0.0.1:${env.POSTSALE_REGISTRY_PORT || '8081'}/apis/ccompat/v7`,
    ...(Object.keys(fromEnv).length > 0 ? fromEnv : localKafkaCredentials()),
  };
}

let devCredentials: Record<string, string> | undefined;
/**
 * The local broker's dev user, from deploy/local/kafka-dev.env (the file infra.sh creates the user from). Found by
 * walking up from this file, so it works from src/ and dist/; none where the checkout is absent (an image).
 */
export function localKafkaCredentials(): Record<string, string> {
  if (devCredentials) return { ...devCredentials };
  devCredentials = {};
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'deploy', 'local', 'kafka-dev.env');
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const match = /^(KAFKA_SASL_[A-Z]+)=(.*)$/.exec(line.trim());
        if (match) devCredentials[match[1]!] = match[2]!;
      }
      break;
    }
    if (dirname(dir) === dir) break;
  }
  return { ...devCredentials };
}
