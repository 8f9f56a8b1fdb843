import { Client } from 'pg';
import type { Kafka, Producer } from 'kafkajs';
import { EventCodec, schemaErrors, Streams, type AnyStream, type EventOf, type StreamName } from '@postsale/contracts';
import type { Db, Tx } from './db';
import { AppError, classifyError } from './errors';
import { producerConfig } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/**
 * Transactional outbox, writer side: a use case calls `publish` inside the same transaction as its state change, so
 * the event exists if and only if the change committed. The relay below delivers it to Kafka later.
 */
export class OutboxWriter {
  constructor(
    private readonly codec: EventCodec,
    private readonly notifyChannel: string,
  ) {}

  async publish<S extends AnyStream>(trx: Tx, stream: S, event: EventOf<S>): Promise<void> {
    const problems = schemaErrors(stream, event);
    if (problems.length > 0) {
      throw new AppError('EVENT_SCHEMA_VIOLATION', `${event.type} does not match ${stream.baseName}`, { details: problems });
    }
    await trx('outbox').insert({
      event_id: event.eventId,
      topic: this.codec.topic(stream),
      stream: stream.stream,
      key: event.orderId,
      event_type: event.type,
      event: JSON.stringify(event),
    });
    // Delivered on commit only: wakes the relay without polling delay.
    await trx.raw('select pg_notify(?, ?)', [this.notifyChannel, '']);
  }
}

export interface OutboxRelayOptions {
  db: Db;
  databaseUrl: string;
  schema: string;
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  metrics: Metrics;
  batchSize?: number;
  pollIntervalMs?: number;
  /** Fault-injection seam for tests: runs after Kafka acknowledged a batch and before the rows are marked sent. */
  afterPublishBeforeMark?: () => Promise<void>;
}

/**
 * Outbox relay: publishes unsent rows in id order with an idempotent producer, then marks them sent. A crash between
 * the two republishes the batch on restart (at-least-once); consumers' inboxes make that harmless. One relay per
 * schema publishes at a time (advisory lock), which keeps per-key order even with several replicas.
 */
export class OutboxRelay {
  private producer: Producer;
  /** set when a send failed: the next drain starts with a new producer (see `drainOnce`) */
  private producerSuspect = false;
  private listener?: Client;
  private timer?: NodeJS.Timeout;
  private running = false;
  private draining?: Promise<void>;
  private again = false;
  private consecutiveFailures = 0;
  private listenerRetry?: NodeJS.Timeout;
  private readonly published;
  private readonly failures;

  constructor(private readonly options: OutboxRelayOptions) {
    this.producer = options.kafka.producer(producerConfig());
    this.published = options.metrics.counter('outbox_events_published_total', 'Events the outbox relay delivered to Kafka', ['topic']);
    this.failures = options.metrics.counter('outbox_publish_failures_total', 'Outbox relay batches that failed to publish');
    const { db } = options;
    options.metrics.gauge('outbox_lag_seconds', 'Age of the oldest unpublished outbox row (0 when none)', [], async function () {
      const row = await db('outbox').whereNull('published_at').min('created_at as oldest').first();
      const oldest = row?.oldest ? new Date(row.oldest as string).getTime() : undefined;
      this.set(oldest ? Math.max(0, (Date.now() - oldest) / 1000) : 0);
    });
    options.metrics.gauge('outbox_unpublished_events', 'Outbox rows not yet published', [], async function () {
      const row = await db('outbox').whereNull('published_at').count<{ count: string }[]>('* as count').first();
      this.set(Number(row?.count ?? 0));
    });
  }

  static channel(schema: string): string {
    return `outbox_${schema}`;
  }

  /** Connects the producer only; `start` also begins publishing. */
  async connect(): Promise<void> {
    await this.producer.connect();
  }

  async start(): Promise<void> {
    await this.connect();
    this.running = true;
    await this.listen();
    this.schedule(0);
  }

  /**
   * LISTEN on a dedicated connection so commits wake the relay at once. If that connection is lost (a database
   * restart or network blip), polling goes on and the listener reconnects with backoff.
   */
  private async listen(attempt = 0): Promise<void> {
    const { logger, databaseUrl, schema } = this.options;
    const listener = new Client({ connectionString: databaseUrl });
    this.listener = listener;
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      listener.end().catch(() => undefined);
      if (!this.running) return;
      logger.warn({ err: error }, 'outbox listener connection lost; polling continues while it reconnects');
      this.listenerRetry = setTimeout(() => void this.listen(attempt + 1), relayBackoffMs(attempt + 1, 500));
    };
    listener.on('notification', () => this.nudge());
    listener.on('error', onLost);
    listener.on('end', () => onLost());
    try {
      await listener.connect();
      await listener.query(`listen "${OutboxRelay.channel(schema)}"`);
      if (attempt > 0) {
        logger.info('outbox listener reconnected');
        this.nudge(); // rows committed while it was away
      }
    } catch (error) {
      if (attempt === 0 && classifyError(error).kind !== 'transient') throw error;
      onLost(error as Error);
    }
  }

  /** Asks for a drain soon; coalesces bursts of notifications into one drain. */
  nudge(): void {
    if (!this.running) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), delayMs);
  }

  private async loop(): Promise<void> {
    if (!this.running || this.draining) return;
    this.draining = this.drainAll()
      .then(() => {
        if (this.consecutiveFailures > 0) this.options.logger.info({ failures: this.consecutiveFailures }, 'outbox relay publishing again');
        this.consecutiveFailures = 0;
      })
      .catch((error) => {
        // Whatever failed (database, broker, registry), the rows stay unsent and are retried: never dropped.
        this.failures.inc();
        this.consecutiveFailures++;
        const { kind, code } = classifyError(error);
        const log = kind === 'transient' ? this.options.logger.warn : this.options.logger.error;
        log.call(this.options.logger, { err: error, code, failures: this.consecutiveFailures }, 'outbox relay failed to publish; will retry');
      })
      .finally(() => {
        this.draining = undefined;
      });
    await this.draining;
    if (!this.running) return;
    const poll = this.options.pollIntervalMs ?? 500;
    const next = this.consecutiveFailures > 0 ? relayBackoffMs(this.consecutiveFailures, poll) : this.again ? 0 : poll;
    this.again = false;
    this.schedule(next);
  }

  /** Publishes until nothing is left. */
  async drainAll(): Promise<void> {
    while ((await this.drainOnce()) > 0) {
      /* keep going */
    }
  }

  /** Publishes one batch; returns how many rows it published. */
  async drainOnce(): Promise<number> {
    const { db, codec, schema } = this.options;
    return db.transaction(async (trx) => {
      const lock = await trx.raw('select pg_try_advisory_xact_lock(hashtext(?)) as locked', [`outbox:${schema}`]);
      if (!lock.rows[0]?.locked) return 0;
      const rows: Array<{ id: string; topic: string; stream: string; key: string; event_type: string; event: unknown; event_id: string }> =
        await trx('outbox').whereNull('published_at').orderBy('id').limit(this.options.batchSize ?? 500);
      if (rows.length === 0) return 0;
      const byTopic = new Map<string, Array<{ key: string; value: Buffer; headers: Record<string, string> }>>();
      for (const row of rows) {
        const stream = Streams[row.stream as StreamName];
        if (!stream) throw new Error(`outbox row ${row.id} names unknown stream ${row.stream}`);
        const event = typeof row.event === 'string' ? JSON.parse(row.event) : row.event;
        const value = await codec.encode(stream, event);
        const messages = byTopic.get(row.topic) ?? [];
        messages.push({ key: row.key, value, headers: { 'event-type': row.event_type, 'event-id': row.event_id } });
        byTopic.set(row.topic, messages);
      }
      if (this.producerSuspect) await this.replaceProducer();
      try {
        await this.producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic.entries()].map(([topic, messages]) => ({ topic, messages })),
        });
      } catch (error) {
        // kafkajs rewinds its sequence numbers when a send fails, but the broker may have written the batch (answer
        // lost). Resending a different batch (new rows arrived) with those numbers is refused as out of order, for
        // ever. A new producer id starts a clean sequence; the inbox absorbs a resent copy.
        this.producerSuspect = true;
        throw error;
      }
      await this.options.afterPublishBeforeMark?.();
      await trx('outbox').whereIn('id', rows.map((r) => r.id)).update({ published_at: trx.fn.now() });
      for (const [topic, messages] of byTopic) this.published.inc({ topic }, messages.length);
      return rows.length;
    });
  }

  private async replaceProducer(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.options.kafka.producer(producerConfig());
    await this.producer.connect();
    this.producerSuspect = false;
    this.options.logger.info('outbox relay producer replaced after a failed send');
  }

  /** Stops polling after delivering what is already committed (bounded by `flushTimeoutMs`). */
  async stop(flushTimeoutMs = 5000): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.listenerRetry) clearTimeout(this.listenerRetry);
    await this.draining;
    const deadline = Date.now() + flushTimeoutMs;
    try {
      while (Date.now() < deadline && (await this.drainOnce()) > 0) {
        /* flush */
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'outbox flush on shutdown failed; rows stay for the next start');
    }
    await this.listener?.end().catch(() => undefined);
    await this.producer.disconnect();
  }
}

/** After failures: the poll interval doubling up to 5 s, with jitter. */
function relayBackoffMs(failures: number, base: number): number {
  return Math.min(5_000, Math.max(base, 100) * 2 ** Math.min(failures - 1, 10)) * (0.5 + Math.random() / 2);
}
