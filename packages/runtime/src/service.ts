import type { Server } from 'node:http';
import type { Express } from 'express';
import type { Kafka } from 'kafkajs';
import type { z } from 'zod';
import { allStreams, ensureTopics, EventCodec, type AnyStream } from '@postsale/contracts';
import { loadConfig, type BaseConfig } from './config';
import { InboxConsumer, type ConsumerSpec } from './consumer';
import { createServiceDb, instrumentDb, migrate, type Db, type Migration } from './db';
import { createHttpApp, listen } from './http';
import { createInboxPruner, inboxRetentionMs } from './inbox-retention';
import { inboxAdminRoutes } from './inbox-admin';
import { createKafka, instrumentKafka } from './kafka';
import { createLogger, type Logger } from './logger';
import { Metrics } from './metrics';
import { OutboxRelay, OutboxWriter } from './outbox';
import type { Poller } from './poller';

export interface ServiceContext<C extends BaseConfig> {
  config: C;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  kafka: Kafka;
  codec: EventCodec;
  outbox: OutboxWriter;
}

export interface ServiceParts {
  routes?: (app: Express) => void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  consumers?: Array<ConsumerSpec<any>>;
  workers?: Poller[];
  /** extra readiness checks beyond database and Kafka */
  readiness?: Record<string, () => Promise<void>>;
  onStop?: () => Promise<void>;
}

export interface ServiceDefinition<S extends z.ZodType> {
  name: string;
  configSchema: S;
  migrations: Migration[];
  /** streams this service publishes: their schemas are registered at start */
  produces: AnyStream[];
  build(ctx: ServiceContext<z.infer<S> & BaseConfig>): Promise<ServiceParts> | ServiceParts;
}

export interface RunningService<C extends BaseConfig = BaseConfig> {
  port: number;
  url: string;
  ctx: ServiceContext<C>;
  relay: OutboxRelay;
  consumers: InboxConsumer[];
  /** the background workers this replica started (none with BACKGROUND_WORKERS=false) */
  workers: Poller[];
  stop(): Promise<void>;
}

/**
 * Starts a service: config (fails fast), logger, metrics, database + migrations, topics + schemas, outbox relay,
 * consumers, background workers and HTTP. `stop()` (also on SIGTERM/SIGINT when `handleSignals`) undoes it in reverse:
 * stop accepting, stop consuming, finish in-flight work, flush the outbox, close pools.
 */
export async function startService<S extends z.ZodType>(
  definition: ServiceDefinition<S>,
  env: Record<string, string | undefined> = process.env,
  options: { handleSignals?: boolean } = {},
): Promise<RunningService<z.infer<S> & BaseConfig>> {
  const config = loadConfig(definition.configSchema, env) as z.infer<S> & BaseConfig;
  const logger = createLogger(definition.name, config.LOG_LEVEL);
  const metrics = new Metrics(definition.name);
  const db = createServiceDb(config, { poolMax: config.DB_POOL_MAX, logger });
  // A start that fails half-way undoes what it started, in reverse, pool last: a caller that retries (or a test that
  // expects the failure) must not be left with open connections and running consumers.
  const undo: Array<() => Promise<unknown>> = [() => db.destroy()];
  const step = async <T>(run: () => Promise<T> | T): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      for (const fn of undo.splice(0).reverse()) await fn().catch(() => undefined);
      throw error;
    }
  };
  instrumentDb(db, metrics);
  await step(() => migrate(db, config.DB_SCHEMA, definition.migrations, { logger }));

  const kafka = createKafka({ clientId: definition.name, brokers: config.KAFKA_BROKERS, logger, security: config });
  instrumentKafka(kafka, metrics);
  const namespace = config.TOPIC_NAMESPACE;
  await step(() => ensureTopics(kafka, { namespace, streams: allStreams() }));
  const codec = EventCodec.connect(config.SCHEMA_REGISTRY_URL, namespace);
  for (const stream of definition.produces) await step(() => codec.register(stream));

  const outbox = new OutboxWriter(codec);
  const ctx: ServiceContext<typeof config> = { config, logger, metrics, db, kafka, codec, outbox };
  const parts = await step(() => definition.build(ctx));

  const relay = new OutboxRelay({ db, schema: config.DB_SCHEMA, kafka, codec, logger, metrics, writer: outbox, lingerMs: config.OUTBOX_LINGER_MS });
  undo.push(() => relay.stop());
  if (parts.onStop) undo.push(parts.onStop); // undone in stop()'s order: consumers, workers, onStop, relay, pool
  await step(() => relay.start());
  const consumers = (parts.consumers ?? []).map((spec) => new InboxConsumer(spec, { kafka, db, codec, logger, metrics, namespace, lingerMs: config.INBOX_LINGER_MS, fetchWaitMs: config.INBOX_FETCH_WAIT_MS }));
  for (const consumer of consumers) {
    undo.push(() => consumer.stop());
    await step(() => consumer.start());
  }
  const pruner = createInboxPruner({
    db, keepMs: inboxRetentionMs(allStreams()), batch: config.INBOX_PRUNE_BATCH, intervalMs: config.INBOX_PRUNE_INTERVAL_MS, logger, metrics,
  });
  // BACKGROUND_WORKERS=false: none started (nudging a worker that was never started does nothing)
  const workers = config.BACKGROUND_WORKERS ? [...(parts.workers ?? []), pruner] : [];
  for (const worker of workers) {
    worker.start();
    undo.push(() => worker.stop());
  }

  const admin = kafka.admin();
  let adminConnected: Promise<void> | undefined;
  const app = createHttpApp({
    logger,
    metrics,
    bodyLimitBytes: config.HTTP_BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    readiness: {
      database: async () => {
        await db.raw('select 1');
      },
      kafka: async () => {
        adminConnected ??= admin.connect();
        await adminConnected;
        await admin.describeCluster();
      },
      ...(parts.readiness ?? {}),
    },
    routes: (app) => {
      // shared by every service: what its inbox already holds (replay / redrive dry runs ask it)
      inboxAdminRoutes(db, { admin: config.ADMIN_TOKEN, operator: config.OPERATOR_TOKEN })(app);
      parts.routes?.(app);
    },
  });
  const { server, port } = await step(() => listen(app, config.PORT));
  logger.info({ port, namespace: namespace || undefined }, 'service started');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      logger.info('service stopping');
      await closeServer(server);
      await Promise.all(consumers.map((c) => c.stop()));
      await Promise.all(workers.map((w) => w.stop()));
      await parts.onStop?.();
      await relay.stop();
      if (adminConnected) await admin.disconnect().catch(() => undefined);
      await db.destroy();
      logger.info('service stopped');
    })());

  if (options.handleSignals) {
    const onSignal = (signal: string) => {
      logger.info({ signal }, 'signal received');
      stop().then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return { port, url: `http://127.0.0.1:${port}`, ctx, relay, consumers, workers, stop };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** Entry-point helper: start, or print the configuration problem and exit non-zero. */
export async function runMain<S extends z.ZodType>(definition: ServiceDefinition<S>): Promise<void> {
  try {
    await startService(definition, process.env, { handleSignals: true });
  } catch (error) {
    if (error instanceof Error && error.name === 'ConfigError') {
      console.error(`${definition.name}: ${error.message}`);
    } else {
      console.error(`${definition.name}: failed to start`, error);
    }
    process.exit(1);
  }
}
