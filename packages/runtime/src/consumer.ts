import type { Batch, Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { dlqTopicName, type AnyStream, type EventCodec, type TypedEvent } from '@postsale/contracts';
import type { Db, Tx } from './db';
import { holdOpen, TransactionVoided, voidIfDuplicate, writeWithNext } from './pg-client';
import { retryDelayMs } from './backoff';
import { createBatcher, type Batcher } from './batcher';
import { classifyError } from './errors';
import { producerConfig } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface MessageContext {
  trx: Tx;
  topic: string;
  partition: number;
  offset: string;
}

export interface ConsumerSpec<E extends TypedEvent = TypedEvent> {
  /** `<service>.<purpose>`; the runner prefixes the topic namespace when one is set */
  group: string;
  streams: AnyStream[];
  /** runs inside the inbox transaction: write state and outbox rows through `ctx.trx`, call no outside system */
  handle(event: E, ctx: MessageContext): Promise<void>;
  maxAttempts?: number;
  /**
   * What an event's handler locks, such as its order's rows. A transaction that applies events of several keys first
   * takes a transaction-scoped advisory lock per key (named after the group, so other consumers and services never
   * share them), in one global order: two transactions that share keys then queue at the start instead of locking each
   * other's rows in opposite orders. Postgres finds such a deadlock only after deadlock_timeout (1 s), and the joint
   * transaction is then redone slice by slice.
   */
  lockKey?(event: E): string;
  /** partitions' batches taken at once (their ready slices share a transaction); default: the streams' partition count */
  partitionsConsumedConcurrently?: number;
  /** most events applied in one inbox transaction; default 100 */
  maxBatchSize?: number;
  /** how long an applied event's offset may wait to be committed together with later ones; default 500 ms */
  commitIntervalMs?: number;
  /**
   * Event types the handler does nothing with: a message whose `event-type` header (set by every outbox relay) names
   * one is skipped before any decoding or transaction. An event without effect needs no inbox row; its offset commits
   * with the rest. Named one by one, so a new event type reaches the handler until someone decides otherwise.
   */
  ignores?: readonly string[];
}

export const DLQ_HEADERS = {
  errorCode: 'x-dlq-error-code',
  errorMessage: 'x-dlq-error-message',
  topic: 'x-dlq-original-topic',
  partition: 'x-dlq-original-partition',
  offset: 'x-dlq-original-offset',
  group: 'x-dlq-consumer-group',
  attempts: 'x-dlq-attempts',
  failedAt: 'x-dlq-failed-at',
} as const;

/** the size a held fetch answers at before its wait is over (INBOX_FETCH_WAIT_MS): 1 MiB, far above a wait's events */
const FETCH_GATHER_BYTES = 1024 * 1024;

/**
 * Inbox consumer runner. Messages come in batches per partition; for each slice of up to `maxBatchSize`: decode; in ONE
 * DB transaction record every event id in the inbox with one multi-row insert (ids already there mean the effect
 * already happened: skipped) and run the handler of each new event in offset order. Slices of other partitions ready
 * at the same moment share that transaction (a group commit, see the constructor). The offsets of applied slices are
 * committed together, at most `commitIntervalMs` later (and at once when the runner stops): since the inbox makes a
 * redelivered event a no-op, an offset committed late costs a re-read after a crash or rebalance, never a second
 * effect, and one commit request per slice was a third of all Kafka requests. Failures are handled by `classifyError`: transient ones (database, broker or
 * registry unavailable, serialization failures, deadlocks) retry the whole slice in place with capped exponential
 * backoff for as long as they last, heartbeating meanwhile, so the partition waits (keeping per-key order) and nothing
 * is dead-lettered. Any other failure of the slice (an undecodable message, a handler error) falls back to one message
 * at a time, as below, so a poison message is isolated: messages caused failures (non-retriable AppError, undecodable
 * bytes) go to the stream's dead-letter topic at once; unknown failures (likely bugs) after `maxAttempts`. The reason
 * travels in the DLQ headers.
 */
export class InboxConsumer<E extends TypedEvent = TypedEvent> {
  private consumer: Consumer;
  /** the current consumer's applied offsets not yet committed */
  private commits?: OffsetCommits;
  private readonly dlqProducer: Producer;
  private stopping = false;
  private replacing?: Promise<void>;
  /** replacements since a message last finished: a consumer that keeps crashing on the same message backs off */
  private crashes = 0;
  private readonly groupId: string;
  private readonly m;
  private readonly ignored: ReadonlySet<string>;
  private readonly joint: Batcher<SlicePart<E>, boolean>;
  /** partitions' batches taken at once: by default every partition of the streams, so a whole fetch can go together */
  private readonly concurrency: number;

  constructor(
    private readonly spec: ConsumerSpec<E>,
    private readonly deps: {
      kafka: Kafka; db: Db; codec: EventCodec; logger: Logger; metrics: Metrics; namespace: string;
      /** how long a ready slice waits for other partitions' slices to share its transaction (default 0: none) */
      lingerMs?: number;
      /** how long the broker may hold a fetch to gather events (INBOX_FETCH_WAIT_MS; default 0: answer at once) */
      fetchWaitMs?: number;
    },
  ) {
    this.groupId = deps.namespace ? `${deps.namespace}.${spec.group}` : spec.group;
    this.consumer = this.createConsumer();
    this.dlqProducer = deps.kafka.producer(producerConfig());
    const { metrics } = deps;
    this.m = {
      consumed: metrics.counter('events_consumed_total', 'Events processed with their effect committed', ['group', 'topic', 'type']),
      duplicates: metrics.counter('events_duplicate_total', 'Events skipped because their id was already in the inbox', ['group', 'topic']),
      retried: metrics.counter('events_retried_total', 'Handler attempts that failed and were retried', ['group', 'topic', 'code']),
      deadLettered: metrics.counter('events_dead_lettered_total', 'Events sent to a dead-letter topic', ['group', 'topic', 'code']),
      duration: metrics.histogram('event_handler_duration_seconds', 'Time to process one event, or one batch of events applied together, retries included', ['group', 'topic']),
      replaced: metrics.counter('kafka_consumer_replacements_total', 'Kafka consumers that stopped for good after an error and were replaced', ['group']),
      ignored: metrics.counter('events_ignored_total', 'Events skipped unread: their type is not one the handler acts on', ['group', 'topic', 'type']),
    };
    this.ignored = new Set(spec.ignores ?? []);
    // Slices of other partitions ready at the same moment share one inbox transaction (group commit). A fetch brings
    // every assigned partition's messages and kafkajs hands their batches to its workers at once; at the rates a shop
    // sees each holds one or two events, so each slice was a commit of its own. A slice alone, and every slice of a
    // joint transaction that failed for any reason, goes its own way (the per-slice path: transient retries, poison
    // isolation): sharing changes how many commits the events take, never what happens to any of them. Per-partition
    // order holds: kafkajs gives a partition's next batch only once this one is done, and a slice waits for its joint.
    this.concurrency = spec.partitionsConsumedConcurrently ?? Math.max(...spec.streams.map((s) => s.partitions));
    this.joint = createBatcher<SlicePart<E>, boolean>({
      name: `inbox:${this.groupId}`,
      maxBatch: this.concurrency,
      maxInFlight: this.concurrency,
      lingerMs: deps.lingerMs ?? 0,
      run: async (parts) => {
        if (parts.length === 1) return [false];
        await this.applyTogether(parts);
        return parts.map(() => true);
      },
      runOne: async () => false,
      logger: deps.logger,
      metrics,
    });
  }

  get group(): string {
    return this.groupId;
  }

  private createConsumer(): Consumer {
    // A crashed member holds its partitions until its session expires: keep that short (handlers are short DB
    // transactions, and the retry loop heartbeats), so a killed process's orders move on within seconds.
    const consumer = this.deps.kafka.consumer({
      groupId: this.groupId, allowAutoTopicCreation: false, sessionTimeout: 10_000, heartbeatInterval: 1_000,
      // the broker answers once the wait is over or this much has gathered, which these small events never reach
      ...(this.deps.fetchWaitMs ? { maxWaitTimeInMs: this.deps.fetchWaitMs, minBytes: FETCH_GATHER_BYTES } : {}),
    });
    // kafkajs stops for good after errors it calls non-retriable (e.g. group coordinator not found while a broker
    // restarts, or a dead-letter topic refusing a message). Replace such a consumer instead of going silent.
    consumer.on(consumer.events.CRASH, (event) => {
      if (event.payload.restart || this.stopping || this.consumer !== consumer) return;
      this.deps.logger.warn({ err: event.payload.error, group: this.groupId }, 'kafka consumer crashed without restarting; replacing it');
      this.replacing ??= this.replaceConsumer().finally(() => {
        this.replacing = undefined;
      });
    });
    return consumer;
  }

  private async replaceConsumer(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      this.crashes++;
      this.m.replaced.inc({ group: this.groupId });
      await new Promise((r) => setTimeout(r, backoffMs(this.crashes)));
      if (this.stopping) return;
      await this.consumer.disconnect().catch(() => undefined);
      this.consumer = this.createConsumer();
      try {
        await this.runConsumer(this.consumer);
        return;
      } catch (error) {
        this.deps.logger.warn({ err: error, group: this.groupId, attempt }, 'kafka consumer could not start yet; will try again');
      }
    }
  }

  /**
   * Starts consuming. A transient failure while joining (e.g. a topic another process created a moment ago is not
   * yet served: UNKNOWN_TOPIC_OR_PARTITION) is retried with backoff for up to a minute instead of failing the start.
   */
  /** how many times start() has tried to join (visible to tests and logs) */
  startAttempts = 0;

  async start(): Promise<void> {
    await this.dlqProducer.connect();
    const deadline = Date.now() + START_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      this.startAttempts = attempt;
      try {
        await this.runConsumer(this.consumer);
        return;
      } catch (error) {
        if (classifyError(error).kind !== 'transient' || Date.now() > deadline) throw error;
        this.deps.logger.warn({ err: error, group: this.groupId, attempt }, 'kafka consumer could not start yet; will try again');
        await this.consumer.disconnect().catch(() => undefined);
        this.consumer = this.createConsumer();
        await new Promise((r) => setTimeout(r, backoffMs(attempt)));
      }
    }
  }

  private async runConsumer(consumer: Consumer): Promise<void> {
    const commits = new OffsetCommits(this.spec.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS, (offsets) => consumer.commitOffsets(offsets), (error) => {
      // a member thrown out of its group: the partitions' next owner re-reads from the last commit (inbox: no-ops)
      if (!isRebalance(error)) this.deps.logger.warn({ err: error, group: this.groupId }, 'offset commit failed; the events are re-read and skipped by the inbox');
    });
    this.commits = commits;
    // before the group moves partitions elsewhere, hand over what was applied here
    consumer.on(consumer.events.REBALANCING, () => void commits.flush());
    await consumer.connect();
    for (const stream of this.spec.streams) {
      // New groups read history from the start: an order published before a service first started is still processed.
      await consumer.subscribe({ topic: this.deps.codec.topic(stream), fromBeginning: true });
    }
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.concurrency,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
        const size = Math.max(1, this.spec.maxBatchSize ?? DEFAULT_MAX_BATCH);
        for (let from = 0; from < batch.messages.length; from += size) {
          // After a rebalance or stop, the rest of the fetched batch belongs to the next owner or the next start.
          if (!isRunning() || isStale() || this.stopping) break;
          const slice = batch.messages.slice(from, from + size);
          const done = await this.processSlice(batch, slice, heartbeat, resolveOffset);
          if (!done) break;
          // a fetch may hold many slices: stay in the group meanwhile (kafkajs sends one only when it is due)
          await heartbeat().catch((error: unknown) => {
            if (isRebalance(error)) throw error;
          });
        }
        // stopping: commit what was applied while this member still owns the partitions (stop() cannot, kafkajs
        // leaves the group as soon as the batches in flight return)
        if (this.stopping || !isRunning()) await commits.flush();
      },
    });
  }

  /**
   * Done with `message`: kafkajs is told at once (or its next fetch would start before it again); the offset past it is
   * committed with the next flush, or now when `now` (after a dead letter: a DLQ send is not deduplicated by the inbox).
   */
  private async commit(topic: string, partition: number, message: KafkaMessage, resolveOffset: (offset: string) => void, now = false): Promise<void> {
    resolveOffset(message.offset);
    this.commits!.applied(topic, partition, (BigInt(message.offset) + 1n).toString());
    if (now) await this.commits!.flush();
  }

  /**
   * Applies a slice of one partition's messages in one transaction and marks its offset for commit. Returns false when the
   * runner is stopping (the rest stays uncommitted: redelivered after restart, where the inbox skips what was applied).
   */
  private async processSlice(
    batch: Batch, slice: KafkaMessage[], heartbeat: () => Promise<void>, resolveOffset: (offset: string) => void,
  ): Promise<boolean> {
    const { topic, partition } = batch;
    const last = slice[slice.length - 1]!;
    const relevant = this.ignored.size > 0 ? slice.filter((message) => this.wants(topic, message)) : slice;
    if (relevant.length === 0) {
      await this.commit(topic, partition, last, resolveOffset);
      return true;
    }
    const endTimer = this.m.duration.startTimer({ group: this.groupId, topic });
    let outcome: SliceOutcome;
    try {
      // other partitions' slices ready now commit with this one; alone (or if that transaction failed), its own way
      // (any decode failure: the slice's own path decodes again and tells a transient one from poison)
      const events = await this.decodeAll(relevant).catch(() => undefined);
      // The linger counts from when the slice's first event was written: events that arrived while the previous slices
      // lingered (a broker is fetched from again once those are applied) have waited already and go at once.
      const waited = Date.now() - Number(relevant[0]!.timestamp);
      const lingerMs = Number.isFinite(waited) ? Math.max(0, (this.deps.lingerMs ?? 0) - waited) : undefined;
      const joined = events !== undefined && (await this.joint.submit({ topic, partition, messages: relevant, events, heartbeat }, { lingerMs }));
      outcome = joined ? 'applied' : await this.applySliceWithRetries(topic, partition, relevant, heartbeat, events);
    } finally {
      endTimer();
    }
    if (outcome === 'stopping') return false;
    if (outcome === 'applied') {
      await this.commit(topic, partition, last, resolveOffset);
      this.crashes = 0;
      return true;
    }
    // The slice failed for a reason other than the moment: one at a time, so only the culprit is dead-lettered.
    for (const message of relevant) {
      const outcome = await this.process(topic, partition, message, heartbeat);
      if (outcome === 'stopping') return false;
      await this.commit(topic, partition, message, resolveOffset, outcome === 'dead-lettered');
      this.crashes = 0;
    }
    await this.commit(topic, partition, last, resolveOffset);
    return true;
  }

  /**
   * The parts' events in ONE transaction: every event id goes into the inbox with one multi-row insert (ids already
   * there mean the effect already happened: skipped), then each new event's handler runs, part by part in offset
   * order. Throws what failed; nothing of it committed then.
   */
  private async applyTogether(parts: SlicePart<E>[]): Promise<void> {
    const entries = parts.flatMap((part) => part.events.map((event, i) => ({ part, event, offset: part.messages[i]!.offset })));
    const lockKeys = this.spec.lockKey ? [...new Set(entries.map(({ event }) => `${this.groupId}:${this.spec.lockKey!(event)}`))] : [];
    const applied = await this.deps.db.transaction(async (trx) => {
      // sent with the inbox insert, in its round trip; one key alone cannot be half of a cycle
      if (lockKeys.length > 1) await writeWithNext(trx, trx.raw(LOCK_KEYS_IN_ONE_ORDER, [lockKeys]));
      const inserted: Array<{ event_id: string }> = await trx('inbox')
        .insert(entries.map(({ part, event, offset }) => ({
          consumer_group: this.groupId, event_id: event.eventId, topic: part.topic, partition: part.partition, offset, event_type: event.type,
        })))
        .onConflict(['consumer_group', 'event_id'])
        .ignore()
        .returning('event_id');
      // The same event twice in one slice (a relay republished it) is applied for its first copy only.
      const fresh = new Set(inserted.map((r) => r.event_id));
      const toApply = entries.filter(({ event }) => fresh.delete(event.eventId));
      for (const [n, { part, event, offset }] of toApply.entries()) {
        const context = { trx, topic: part.topic, partition: part.partition, offset };
        // only the last event's handler may send the COMMIT with its last statement (commitWithNext)
        if (n === toApply.length - 1) await this.spec.handle(event, context);
        else await holdOpen(trx, () => this.spec.handle(event, context));
        // kafkajs heartbeats only when asked: a slice slower than the session timeout (a loaded machine, a large
        // backlog) would get this member thrown out, its offset commit refused and the slice redone, for ever
        await part.heartbeat().catch((beatError: unknown) => {
          if (isRebalance(beatError)) throw beatError;
        });
      }
      return toApply;
    });
    for (const { part, event } of applied) this.m.consumed.inc({ group: this.groupId, topic: part.topic, type: event.type });
    for (const part of parts) {
      const skipped = part.events.length - applied.filter((a) => a.part === part).length;
      if (skipped > 0) this.m.duplicates.inc({ group: this.groupId, topic: part.topic }, skipped);
    }
  }

  /** The slice's events; undefined when a message has no value (the one-at-a-time path dead-letters it). Throws decode failures. */
  private async decodeAll(slice: KafkaMessage[]): Promise<E[] | undefined> {
    const events: E[] = [];
    for (const message of slice) {
      if (!message.value) return undefined;
      events.push(await this.deps.codec.decode<E>(message.value));
    }
    return events;
  }

  /** False for a message whose `event-type` header names a type the handler ignores (counted). */
  private wants(topic: string, message: KafkaMessage): boolean {
    const type = message.headers?.['event-type']?.toString();
    if (type === undefined || !this.ignored.has(type)) return true;
    this.m.ignored.inc({ group: this.groupId, topic, type });
    return false;
  }

  /**
   * 'applied' when the slice's transaction committed; 'isolate' when it failed because of some message in it (decode
   * or handler error that is not transient): the caller then goes one message at a time; 'stopping' when the runner
   * stops during a transient retry. Throws when the group rebalances during a retry (see `processWithRetries`).
   */
  private async applySliceWithRetries(
    topic: string, partition: number, slice: KafkaMessage[], heartbeat: () => Promise<void>, decoded?: E[],
  ): Promise<SliceOutcome> {
    // A single message gains nothing from the batch path and its failure would be retried twice: go straight to it.
    if (slice.length === 1) return 'isolate';
    const { logger } = this.deps;
    let events = decoded;
    for (let attempt = 1; ; attempt++) {
      try {
        events ??= await this.decodeAll(slice);
        if (!events) return 'isolate';
        await this.applyTogether([{ topic, partition, messages: slice, events, heartbeat }]);
        return 'applied';
      } catch (error) {
        if (isRebalance(error)) throw error; // rolled back; the partition's next owner applies the slice
        const { kind, code } = classifyError(error);
        if (kind !== 'transient') return 'isolate';
        this.m.retried.inc({ group: this.groupId, topic, code });
        logger.warn(
          { err: error, code, kind, attempt, topic, partition, fromOffset: slice[0]!.offset, size: slice.length },
          'event batch failed transiently; retrying until it passes',
        );
        if (!(await this.backoff(attempt, heartbeat))) return 'stopping';
      }
    }
  }

  /** Waits before a retry, heartbeating; false when the runner stops meanwhile; throws on a rebalance. */
  private async backoff(attempt: number, heartbeat: () => Promise<void>): Promise<boolean> {
    const deadline = Date.now() + backoffMs(attempt);
    while (Date.now() < deadline) {
      if (this.stopping) return false;
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
      try {
        await heartbeat();
      } catch (beatError) {
        if (isRebalance(beatError)) throw beatError;
        // broker unreachable: keep retrying the handler; the session outlives short outages
      }
    }
    return !this.stopping;
  }

  /**
   * 'applied' (processed or a duplicate) or 'dead-lettered' when the message is finished with and its offset may
   * commit; 'stopping' when the runner stops first (left uncommitted: redelivered after restart). Throws when the group rebalances
   * during a retry, so kafkajs rejoins and the partition's next owner processes the message.
   */
  private async process(topic: string, partition: number, message: KafkaMessage, heartbeat: () => Promise<void>): Promise<MessageOutcome> {
    const endTimer = this.m.duration.startTimer({ group: this.groupId, topic });
    try {
      return await this.processWithRetries(topic, partition, message, heartbeat);
    } finally {
      endTimer();
    }
  }

  private async processWithRetries(topic: string, partition: number, message: KafkaMessage, heartbeat: () => Promise<void>): Promise<MessageOutcome> {
    const { db, codec, logger } = this.deps;
    const maxAttempts = this.spec.maxAttempts ?? 6;
    let event: E | undefined;
    let unknownFailures = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!event) {
          try {
            if (!message.value) throw new Error('message has no value');
            event = await codec.decode<E>(message.value);
          } catch (error) {
            // A registry that cannot be reached says nothing about the message: only other decode failures are poison.
            if (classifyError(error).kind === 'transient') throw error;
            await this.deadLetter(topic, partition, message, 'UNDECODABLE', error, attempt);
            return 'dead-lettered';
          }
        }
        const decoded: E = event;
        // The inbox row travels with the handler's first statement, and the COMMIT with its last when the handler
        // says which one that is (commitWithNext): a handler of one statement is one round trip. When the event is
        // already in the inbox the transaction is void, so the handler's statements take no effect.
        const fresh = await db.transaction(async (trx) => {
          await voidIfDuplicate(trx, INBOX_INSERT, [this.groupId, decoded.eventId, topic, partition, message.offset, decoded.type]);
          await this.spec.handle(decoded, { trx, topic, partition, offset: message.offset });
        }).then(() => true, (error: unknown) => {
          if (error instanceof TransactionVoided) return false;
          throw error;
        });
        if (fresh) this.m.consumed.inc({ group: this.groupId, topic, type: decoded.type });
        else this.m.duplicates.inc({ group: this.groupId, topic });
        return 'applied';
      } catch (error) {
        const { kind, code } = classifyError(error);
        if (kind === 'unknown') unknownFailures++;
        if (kind === 'permanent' || (kind === 'unknown' && unknownFailures >= maxAttempts)) {
          await this.deadLetter(topic, partition, message, code, error, attempt, event);
          return 'dead-lettered';
        }
        this.m.retried.inc({ group: this.groupId, topic, code });
        logger.warn(
          { err: error, code, kind, attempt, topic, partition, offset: message.offset, eventId: event?.eventId },
          kind === 'transient' ? 'event handling failed transiently; retrying until it passes' : 'event handler failed; retrying',
        );
        if (!(await this.backoff(attempt, heartbeat))) return 'stopping';
      }
    }
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, code: string, error: unknown, attempts: number, event?: E) {
    const stream = this.spec.streams.find((s) => this.deps.codec.topic(s) === topic);
    const dlq = stream ? dlqTopicName(stream, this.deps.namespace) : `${topic}.dlq`;
    const reason = error instanceof Error ? error.message : String(error);
    const headers: IHeaders = {
      ...(message.headers ?? {}),
      [DLQ_HEADERS.errorCode]: code,
      [DLQ_HEADERS.errorMessage]: reason.slice(0, 2000),
      [DLQ_HEADERS.topic]: topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: message.offset,
      [DLQ_HEADERS.group]: this.groupId,
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.failedAt]: new Date().toISOString(),
    };
    await this.dlqProducer.send({ topic: dlq, acks: -1, messages: [{ key: message.key, value: message.value, headers }] });
    this.m.deadLettered.inc({ group: this.groupId, topic, code });
    this.deps.logger.error(
      { err: error, code, topic, partition, offset: message.offset, eventId: event?.eventId, eventType: event?.type, dlq },
      'event dead-lettered',
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.replacing;
    await this.commits?.flush(); // an idle consumer's last applied offsets (a batch in flight flushes its own)
    await this.consumer.disconnect(); // waits for in-flight eachBatch calls to finish
    await this.dlqProducer.disconnect();
  }
}

/** how long a consumer keeps trying to join before its service's start fails */
const START_RETRY_MS = 60_000;
/**
 * Transaction-scoped advisory locks on keys, in the order of their lock ids: the aggregate takes its rows in the
 * subquery's order (a subquery with ORDER BY is not merged into its parent), so every transaction asks in that order.
 */
const LOCK_KEYS_IN_ONE_ORDER = `select count(pg_advisory_xact_lock(id)) from (
  select distinct hashtextextended(key, 0) as id from unnest(?::text[]) as key order by id) as in_order`;
/** an event's inbox row; a unique violation (the event was applied before) voids the transaction (voidIfDuplicate) */
const INBOX_INSERT = 'insert into inbox (consumer_group, event_id, topic, partition, "offset", event_type) values (?, ?, ?, ?, ?, ?)';

/** events per inbox transaction unless the spec says otherwise */
const DEFAULT_MAX_BATCH = 100;
const DEFAULT_COMMIT_INTERVAL_MS = 500;

type CommitOffsets = Array<{ topic: string; partition: number; offset: string }>;

/**
 * Applied offsets waiting to be committed: the latest per partition, sent in one request at most `intervalMs` after
 * the first of them. A failed commit is not retried: a newer one supersedes it, and what it covered is re-read and
 * skipped by the inbox.
 */
class OffsetCommits {
  private pending = new Map<string, CommitOffsets[number]>();
  private timer?: NodeJS.Timeout;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly intervalMs: number,
    private readonly send: (offsets: CommitOffsets) => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  applied(topic: string, partition: number, offset: string): void {
    this.pending.set(`${topic}\u0000${partition}`, { topic, partition, offset });
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Commits what is pending now (after any commit already on its way, so offsets never go backwards). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const offsets = [...this.pending.values()];
    this.pending.clear();
    if (offsets.length === 0) return this.inFlight;
    this.inFlight = this.inFlight.then(() => this.send(offsets)).catch(this.onError);
    return this.inFlight;
  }
}
type SliceOutcome = 'applied' | 'isolate' | 'stopping';

/** One partition's slice, decoded, with its member's heartbeat: what an inbox transaction applies. */
interface SlicePart<E> {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
  events: E[];
  heartbeat: () => Promise<void>;
}

type MessageOutcome = 'applied' | 'dead-lettered' | 'stopping';

/** 200 ms doubling to 5 s, with jitter: short blips recover fast, long outages cost a query every few seconds. */
function backoffMs(attempt: number): number {
  return retryDelayMs(attempt, 200, 5_000);
}

function isRebalance(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'ILLEGAL_GENERATION' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'UNKNOWN_MEMBER_ID';
}
