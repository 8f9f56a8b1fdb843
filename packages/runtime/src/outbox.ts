import type { Kafka, Producer } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { EventCodec, schemaErrors, Streams, SubjectKeys, type AnyStream, type EventOf, type StreamName, type SubjectKey } from '@postsale/contracts';
import { retryDelayMs } from './backoff';
import { afterCommit, type Db, type Knex, type Tx } from './db';
import { rideWithCommits, writeWithNext, type CommitRide } from './pg-client';
import { AppError, classifyError } from './errors';
import { producerConfig } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/**
 * Transactional outbox, writer side: a use case calls `publish` inside the same transaction as its state change, so
 * the event exists if and only if the change committed. The relay below delivers it to Kafka later; a relay in the same
 * process is told once the transaction committed (`onCommitted`), so it publishes at once without a pg_notify per
 * commit. Relays of other replicas find the rows by polling.
 */
export class OutboxWriter {
  private readonly listeners = new Set<() => void>();
  /** transactions already hooked: one wake-up per commit, however many events it wrote */
  private readonly hooked = new WeakSet<Tx>();

  constructor(private readonly codec: EventCodec) {}

  /** Calls `listener` after each commit of a transaction that published through this writer; returns the unsubscribe. */
  onCommitted(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * With `options.subjectKey` (the key of the data subject the event is sealed under, issued in this transaction), the
   * key's row is written by the same statement, before the event's, so it is published first.
   */
  async publish<S extends AnyStream>(trx: Tx, stream: S, event: EventOf<S>, options: { subjectKey?: SubjectKey | null } = {}): Promise<void> {
    const row = this.row(stream, event);
    // one multi-row insert (ids follow the rows' order), sent with the transaction's next statement or its COMMIT
    await writeWithNext(trx, trx('outbox').insert(options.subjectKey ? [this.subjectKeyRow(options.subjectKey), row] : [row]));
    this.wakeAfterCommit(trx);
  }

  /**
   * `event`'s outbox row, checked against its schema as `publish` checks it, for a state change that writes it in its
   * own statement (`insert into outbox … select … from changed`: the event exists iff the change happened) — one round
   * trip, and no transaction when that statement is the only one. Call `written` once it wrote the row.
   */
  row<S extends AnyStream>(stream: S, event: EventOf<S>): OutboxRow {
    const problems = schemaErrors(stream, event);
    if (problems.length > 0) {
      throw new AppError('EVENT_SCHEMA_VIOLATION', `${event.type} does not match ${stream.baseName}`, { details: problems });
    }
    return {
      event_id: event.eventId,
      topic: this.codec.topic(stream),
      stream: stream.stream,
      key: event.orderId,
      event_type: event.type,
      event: JSON.stringify(event),
    };
  }

  /**
   * A statement wrote a `row()`: the relay is woken once `trx` commits, or at once for a statement sent on its own
   * (autocommit: it has committed when it answered).
   */
  written(trx?: Tx): void {
    if (trx) this.wakeAfterCommit(trx);
    else this.wake();
  }

  /**
   * A data subject's key (or its erasure) for the compacted subject-keys topic, keyed by subject id, in the same
   * transaction as the order it seals (or the erasure). Written before the order's event, so it is published first.
   */
  async publishSubjectKey(trx: Tx, record: SubjectKey): Promise<void> {
    await trx('outbox').insert(this.subjectKeyRow(record));
    this.wakeAfterCommit(trx);
  }

  private subjectKeyRow(record: SubjectKey) {
    return {
      event_id: randomUUID(),
      topic: this.codec.subjectKeysTopic(),
      stream: SubjectKeys.stream,
      key: record.subjectId,
      event_type: 'SubjectKey',
      event: JSON.stringify(record),
    };
  }

  private wakeAfterCommit(trx: Tx): void {
    if (!this.hooked.has(trx)) {
      this.hooked.add(trx);
      // Only after COMMIT can the relay see the rows; a rollback means there is nothing to publish.
      afterCommit(trx, () => this.wake());
    }
  }

  private wake(): void {
    for (const listener of this.listeners) listener();
  }
}

/** An outbox row as `OutboxWriter.row` builds it: the columns a statement inserts into `outbox`. */
export interface OutboxRow {
  event_id: string;
  topic: string;
  stream: string;
  key: string;
  event_type: string;
  /** the event as JSON text (cast to jsonb by the statement) */
  event: string;
}

export interface OutboxRelayOptions {
  db: Db;
  schema: string;
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  metrics: Metrics;
  /** the writer of this process: its commits wake the relay at once */
  writer?: OutboxWriter;
  /** rows read and published per Kafka request; default 500 */
  batchSize?: number;
  /** the longest wait between polls when idle (rows of other replicas, missed wake-ups); default 1000 ms */
  pollIntervalMs?: number;
  /** the first wait after a poll found rows, doubling while polls find none; default 100 ms */
  minPollIntervalMs?: number;
  /**
   * How long a wake-up from a commit waits before draining, so commits that follow within it are published by the same
   * read and Kafka request; default 0. Adds up to this much to each hop.
   */
  lingerMs?: number;
  /**
   * Published rows are deleted together, in one statement, once this many wait for it or the oldest has waited
   * `deleteAfterMs` (and when the relay goes idle or stops); defaults 100 rows, 500 ms. A relay that dies before
   * deleting them leaves them to be published again (at-least-once; the consumers' inboxes drop the copies).
   */
  deleteAfterRows?: number;
  deleteAfterMs?: number;
  /** Fault-injection seam for tests: runs after Kafka acknowledged a batch and before the relay counts it published. */
  afterPublishBeforeMark?: () => Promise<void>;
}

/** a pg connection taken out of the service's pool (knex's raw connection) */
type PooledConnection = object;

interface UnsentRow {
  id: string;
  topic: string;
  stream: string;
  key: string;
  event_type: string;
  event: unknown;
  event_id: string;
}

/**
 * Outbox relay: publishes unsent rows in id order with an idempotent producer, and deletes them once Kafka acknowledged
 * (published rows are not kept: no table growing with history).
 *
 * One relay per schema publishes at a time, which keeps per-key order with several replicas: the one whose session
 * holds the schema's advisory lock. The relay keeps that session (a pooled connection) while it is busy and reads
 * through it, so reading is what proves the lock is still held: a session that died lost its lock and can read nothing.
 * Reads commit nothing; what a holder published is deleted by the COMMIT of its process's next writing transaction
 * (`rideAlong`: no commit of its own), or, when none comes, in one statement every `deleteAfterRows` rows or
 * `deleteAfterMs`. It gives the lock up (deleting
 * what it published first) when a poll rather than its own process's commit woke it, when it fails and when it stops,
 * so the replica whose commits keep coming holds it, and a failed relay's rows pass to the next. A crash between the
 * send and the deletion leaves rows that the next holder publishes again (at-least-once); consumers' inboxes make that
 * harmless. Woken by its own process's commits; polls adaptively for the rest.
 */
export class OutboxRelay {
  private producer: Producer;
  /** set when a send failed: the next send starts with a new producer (see `send`) */
  private producerSuspect = false;
  private timer?: NodeJS.Timeout;
  private running = false;
  private draining?: Promise<void>;
  private again = false;
  /** a wake-up's drain is scheduled: later wake-ups join it instead of pushing it back */
  private wakeUpPending = false;
  private consecutiveFailures = 0;
  private unsubscribe?: () => void;
  /** the wait before the next poll while nothing is found: grows from the minimum to the maximum */
  private idleDelayMs: number;
  /** the session holding the schema's relay lock, while this relay holds it */
  private session?: PooledConnection;
  /** ids this relay published and has not deleted yet (bigint as text), and when the first of them was published */
  private published: string[] = [];
  private publishedSince = 0;
  /** published ids whose deletion rides with a transaction's COMMIT that has not answered yet (see rideAlong) */
  private readonly riding = new Set<string>();
  private stopRiding?: () => void;
  private readonly lockKey: string;
  private readonly publishedTotal;
  private readonly failures;

  constructor(private readonly options: OutboxRelayOptions) {
    this.producer = options.kafka.producer(producerConfig());
    this.idleDelayMs = this.minPollMs;
    this.lockKey = `outbox:${options.schema}`;
    this.publishedTotal = options.metrics.counter('outbox_events_published_total', 'Events the outbox relay delivered to Kafka', ['topic']);
    this.failures = options.metrics.counter('outbox_publish_failures_total', 'Outbox relay batches that failed to publish');
    const { db } = options;
    // Rows this relay published and has not deleted yet are not backlog. (Another replica's gauges count them until
    // they are deleted, at most `deleteAfterMs` later.)
    const unsent = () => db('outbox').whereNull('published_at').whereRaw('id <> all(?::bigint[])', [this.notBacklog()]);
    options.metrics.gauge('outbox_lag_seconds', 'Age of the oldest unpublished outbox row (0 when none)', [], async function () {
      const row = await unsent().min('created_at as oldest').first();
      const oldest = row?.oldest ? new Date(row.oldest as string).getTime() : undefined;
      this.set(oldest ? Math.max(0, (Date.now() - oldest) / 1000) : 0);
    });
    options.metrics.gauge('outbox_unpublished_events', 'Outbox rows not yet published', [], async function () {
      const row = await unsent().count<{ count: string }[]>('* as count').first();
      this.set(Number(row?.count ?? 0));
    });
  }

  private get minPollMs(): number {
    return Math.min(this.options.minPollIntervalMs ?? 100, this.maxPollMs);
  }

  private get maxPollMs(): number {
    return this.options.pollIntervalMs ?? 1000;
  }

  private get deleteAfterMs(): number {
    return this.options.deleteAfterMs ?? 500;
  }

  /** True while a drain is in flight: its rows may be published before its counter moves. */
  get busy(): boolean {
    return this.draining !== undefined;
  }

  /** Rows this relay published whose deletion is still to come (ids): not backlog. */
  get awaitingDeletion(): readonly string[] {
    return this.notBacklog();
  }

  /** what this relay published and has not seen deleted yet, riding deletions included */
  private notBacklog(): string[] {
    return [...this.published, ...this.riding];
  }

  /**
   * The deletion of what this relay published, handed to the COMMIT of the next transaction of this process that writes
   * (rideWithCommits): it commits with that transaction instead of in a commit of its own. Those ids stay out of the
   * relay's reads until the COMMIT answered; when the transaction did not commit they are the relay's to delete again —
   * or, once it has given up the lock (and deleted the rest), deleted on their own at once, so the next holder does not
   * publish them a second time.
   */
  private rideAlong(): CommitRide | undefined {
    if (this.published.length === 0) return undefined;
    const ids = this.published;
    this.published = [];
    for (const id of ids) this.riding.add(id);
    return {
      sql: 'delete from outbox where id = any($1::bigint[])',
      bindings: [ids],
      settle: (committed) => {
        for (const id of ids) this.riding.delete(id);
        if (committed) return;
        if (this.session) {
          this.deleteLater(ids);
          return;
        }
        this.options.db.raw('delete from outbox where id = any(?::bigint[])', [ids]).catch((error: unknown) => {
          // left for the next holder, which publishes them again (at-least-once; the inboxes drop the copies)
          this.options.logger.warn({ err: error, rows: ids.length }, 'outbox relay could not delete published rows after their ride rolled back');
        });
      },
    };
  }

  /** Published ids whose deletion did not happen: this relay deletes them with the rest (or a ride carries them). */
  private deleteLater(ids: string[]): void {
    if (this.published.length === 0) this.publishedSince = Date.now();
    this.published.push(...ids);
  }

  /** The current wait between idle polls (visible to tests). */
  get pollDelayMs(): number {
    return this.idleDelayMs;
  }

  /** Connects the producer only; `start` also begins publishing. */
  async connect(): Promise<void> {
    await this.producer.connect();
  }

  async start(): Promise<void> {
    await this.connect();
    this.running = true;
    this.unsubscribe = this.options.writer?.onCommitted(() => this.nudge());
    this.stopRiding = rideWithCommits(this.options.db, () => this.rideAlong());
    this.schedule(0);
  }

  /** Asks for a drain soon; coalesces bursts of commits into one drain. */
  nudge(): void {
    if (!this.running) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    if (this.wakeUpPending) return;
    this.wakeUpPending = true;
    this.schedule(this.options.lingerMs ?? 0, true);
  }

  private schedule(delayMs: number, nudged = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(nudged), delayMs);
  }

  private async loop(nudged: boolean): Promise<void> {
    this.wakeUpPending = false;
    if (!this.running || this.draining) return;
    let found = 0;
    this.draining = (async () => {
      // A poll without the lock first asks whether there is anything, in one cheap statement; a wake-up from a
      // commit knows there is, and a holder's read is that question.
      if (!nudged && !this.session && !(await this.hasUnsent())) return;
      found = await this.drainAll();
      // Woken by a poll: this process's commits are not what keeps the relay busy, so the lock goes to whichever
      // replica's commits come next (their events are not left to wait for this relay's polls).
      if (!nudged) await this.giveUpLock();
    })()
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
    // Rows found: more may follow (from other replicas too), so look again soon; none: wait longer, up to the maximum.
    this.idleDelayMs = found > 0 ? this.minPollMs : Math.min(this.maxPollMs, this.idleDelayMs * 2);
    if (this.consecutiveFailures > 0) this.schedule(relayBackoffMs(this.consecutiveFailures, this.minPollMs));
    else if (this.again) this.schedule(0, true);
    // while the lock is held, the poll that gives it up (and deletes what was published) comes within deleteAfterMs
    else this.schedule(this.session ? Math.min(this.idleDelayMs, this.deleteAfterMs) : this.idleDelayMs);
    this.again = false;
  }

  private async hasUnsent(): Promise<boolean> {
    const row = await this.options.db('outbox').whereNull('published_at').select('id').first();
    return row !== undefined;
  }

  /** Publishes until a batch comes back short (nothing more was committed when it was read); returns the count. */
  async drainAll(): Promise<number> {
    const size = this.batchSize;
    let total = 0;
    for (;;) {
      const n = await this.drainOnce();
      total += n;
      if (n < size) return total;
    }
  }

  private get batchSize(): number {
    return Math.max(1, this.options.batchSize ?? 500);
  }

  /**
   * Publishes one batch when this relay holds the lock (taking it if it is free); returns how many rows it published.
   * A failure gives the lock up: the rows pass to the next holder (maybe this relay, after its backoff).
   */
  async drainOnce(): Promise<number> {
    const session = await this.takeLock();
    if (!session) return 0;
    try {
      return await this.publishBatch(session);
    } catch (error) {
      await this.giveUpLock();
      throw error;
    }
  }

  private async publishBatch(session: PooledConnection): Promise<number> {
    const { rows } = await this.query<{ rows: UnsentRow[] }>(session,
      `select id, topic, stream, key, event_type, event, event_id from outbox
        where published_at is null and id <> all(?::bigint[]) order by id limit ?`,
      [this.notBacklog(), this.batchSize]);
    if (rows.length === 0) return 0;
    const byTopic = await this.send(rows);
    await this.options.afterPublishBeforeMark?.();
    if (this.published.length === 0) this.publishedSince = Date.now();
    this.published.push(...rows.map((row) => row.id));
    for (const [topic, messages] of byTopic) this.publishedTotal.inc({ topic }, messages.length);
    if (this.published.length >= (this.options.deleteAfterRows ?? 100) || Date.now() - this.publishedSince >= this.deleteAfterMs) {
      // taken out of the list before the statement, so no COMMIT meanwhile carries them too (two deletions of the same
      // rows, each waiting for the other's locks)
      const ids = this.published;
      this.published = [];
      try {
        await this.query(session, 'delete from outbox where id = any(?::bigint[])', [ids]);
      } catch (error) {
        this.deleteLater(ids);
        throw error;
      }
    }
    return rows.length;
  }

  /** The session holding the schema's lock: this relay's own, or a new one when the lock was free (else undefined). */
  private async takeLock(): Promise<PooledConnection | undefined> {
    if (this.session) return this.session;
    const { db } = this.options;
    const connection = (await db.client.acquireConnection()) as PooledConnection;
    try {
      const { rows } = await this.query<{ rows: Array<{ locked: boolean }> }>(connection, 'select pg_try_advisory_lock(hashtext(?)) as locked', [this.lockKey]);
      if (rows[0]?.locked === true) return (this.session = connection);
    } catch (error) {
      await this.discard(connection);
      throw error;
    }
    await db.client.releaseConnection(connection);
    return undefined;
  }

  /** A statement on one connection of the pool (the lock's session, or the one that tries to take it). */
  private async query<T>(connection: PooledConnection, sql: string, bindings: readonly Knex.RawBinding[]): Promise<T> {
    return (await this.options.db.raw(sql, bindings).connection(connection)) as T;
  }

  /**
   * Deletes what this relay published and releases the lock, in one statement, and the session goes back to the pool.
   * When that fails the connection is closed instead: Postgres releases a closed session's lock, and a pooled
   * connection must never keep it.
   */
  private async giveUpLock(): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    const published = this.published;
    this.published = [];
    try {
      // (nothing to delete: a plain unlock, which commits nothing)
      if (published.length > 0) {
        await this.query(session, 'with deleted as (delete from outbox where id = any(?::bigint[])) select pg_advisory_unlock(hashtext(?))', [published, this.lockKey]);
      } else {
        await this.query(session, 'select pg_advisory_unlock(hashtext(?))', [this.lockKey]);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'outbox relay could not release its lock cleanly; closing its session');
      await this.discard(session);
      return;
    }
    await this.options.db.client.releaseConnection(session);
  }

  /** Closes a connection and gives it back to the pool, which drops it (knex marks an ended pg connection disposed). */
  private async discard(connection: PooledConnection): Promise<void> {
    await (connection as { end(): Promise<void> }).end().catch(() => undefined);
    await this.options.db.client.releaseConnection(connection);
  }

  /** Encodes the rows and sends them in one Kafka request, in id order; returns the messages sent by topic. */
  private async send(rows: UnsentRow[]): Promise<Map<string, unknown[]>> {
    const { codec } = this.options;
    const byTopic = new Map<string, Array<{ key: string; value: Buffer; headers: Record<string, string> }>>();
    for (const row of rows) {
      const event = typeof row.event === 'string' ? JSON.parse(row.event) : row.event;
      let value: Buffer;
      if (row.stream === SubjectKeys.stream) {
        value = await codec.encodeSubjectKey(event);
      } else {
        const stream = Streams[row.stream as StreamName];
        if (!stream) throw new Error(`outbox row ${row.id} names unknown stream ${row.stream}`);
        value = await codec.encode(stream, event);
      }
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
    return byTopic;
  }

  private async replaceProducer(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.options.kafka.producer(producerConfig());
    await this.producer.connect();
    this.producerSuspect = false;
    this.options.logger.info('outbox relay producer replaced after a failed send');
  }

  /** Stops polling after delivering what is already committed (bounded by `flushTimeoutMs`), then gives the lock up. */
  async stop(flushTimeoutMs = 5000): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.stopRiding?.();
    if (this.timer) clearTimeout(this.timer);
    await this.draining;
    const deadline = Date.now() + flushTimeoutMs;
    try {
      while (Date.now() < deadline && (await this.drainOnce()) > 0) {
        /* flush */
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'outbox flush on shutdown failed; rows stay for the next start');
    }
    await this.giveUpLock();
    await this.producer.disconnect();
  }
}

/** After failures: the poll interval doubling up to 5 s, with jitter. */
function relayBackoffMs(failures: number, base: number): number {
  return retryDelayMs(failures, Math.max(base, 100), 5_000);
}
