import type { Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { dlqTopicName, type AnyStream, type EventCodec, type TypedEvent } from '@postsale/contracts';
import type { Db, Tx } from './db';
import { errorCode, isRetriable } from './errors';
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
  partitionsConsumedConcurrently?: number;
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

/**
 * Inbox consumer runner. For each message: decode; in one DB transaction record the event id in the inbox and run the
 * handler (a duplicate id means the effect already happened: skip); commit the Kafka offset only after the
 * transaction committed. Retriable failures are retried in place with exponential backoff (which keeps per-key order);
 * the rest, and messages that cannot be decoded, go to the stream's dead-letter topic with the reason in headers.
 */
export class InboxConsumer<E extends TypedEvent = TypedEvent> {
  private readonly consumer: Consumer;
  private readonly dlqProducer: Producer;
  private stopping = false;
  private readonly groupId: string;
  private readonly m;

  constructor(
    private readonly spec: ConsumerSpec<E>,
    private readonly deps: { kafka: Kafka; db: Db; codec: EventCodec; logger: Logger; metrics: Metrics; namespace: string },
  ) {
    this.groupId = deps.namespace ? `${deps.namespace}.${spec.group}` : spec.group;
    // A crashed member holds its partitions until its session expires: keep that short (handlers are short DB
    // transactions, and the retry loop heartbeats), so a killed process's orders move on within seconds.
    this.consumer = deps.kafka.consumer({ groupId: this.groupId, allowAutoTopicCreation: false, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    this.dlqProducer = deps.kafka.producer(producerConfig());
    const { metrics } = deps;
    this.m = {
      consumed: metrics.counter('events_consumed_total', 'Events processed with their effect committed', ['group', 'topic', 'type']),
      duplicates: metrics.counter('events_duplicate_total', 'Events skipped because their id was already in the inbox', ['group', 'topic']),
      retried: metrics.counter('events_retried_total', 'Handler attempts that failed and were retried', ['group', 'topic', 'code']),
      deadLettered: metrics.counter('events_dead_lettered_total', 'Events sent to a dead-letter topic', ['group', 'topic', 'code']),
      duration: metrics.histogram('event_handler_duration_seconds', 'Time to process one event, retries included', ['group', 'topic']),
    };
  }

  get group(): string {
    return this.groupId;
  }

  async start(): Promise<void> {
    await this.dlqProducer.connect();
    await this.consumer.connect();
    for (const stream of this.spec.streams) {
      // New groups read history from the start: an order published before a service first started is still processed.
      await this.consumer.subscribe({ topic: this.deps.codec.topic(stream), fromBeginning: true });
    }
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.spec.partitionsConsumedConcurrently ?? 3,
      eachMessage: async ({ topic, partition, message, heartbeat }) => {
        const done = await this.process(topic, partition, message, heartbeat);
        if (done) {
          await this.consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        }
      },
    });
  }

  /** Returns true when the message is finished with (processed, duplicate or dead-lettered) and its offset may commit. */
  private async process(topic: string, partition: number, message: KafkaMessage, heartbeat: () => Promise<void>): Promise<boolean> {
    const { db, codec, logger } = this.deps;
    const endTimer = this.m.duration.startTimer({ group: this.groupId, topic });
    let event: E;
    try {
      if (!message.value) throw new Error('message has no value');
      event = await codec.decode<E>(message.value);
    } catch (error) {
      await this.deadLetter(topic, partition, message, 'UNDECODABLE', error, 1);
      endTimer();
      return true;
    }
    const maxAttempts = this.spec.maxAttempts ?? 6;
    for (let attempt = 1; ; attempt++) {
      try {
        const fresh = await db.transaction(async (trx) => {
          const inserted = await trx('inbox')
            .insert({ consumer_group: this.groupId, event_id: event.eventId, topic, partition, offset: message.offset, event_type: event.type })
            .onConflict(['consumer_group', 'event_id'])
            .ignore()
            .returning('event_id');
          if (inserted.length === 0) return false;
          await this.spec.handle(event, { trx, topic, partition, offset: message.offset });
          return true;
        });
        if (fresh) this.m.consumed.inc({ group: this.groupId, topic, type: event.type });
        else this.m.duplicates.inc({ group: this.groupId, topic });
        endTimer();
        return true;
      } catch (error) {
        const code = errorCode(error);
        if (!isRetriable(error) || attempt >= maxAttempts) {
          await this.deadLetter(topic, partition, message, code, error, attempt, event);
          endTimer();
          return true;
        }
        this.m.retried.inc({ group: this.groupId, topic, code });
        logger.warn({ err: error, code, attempt, topic, partition, offset: message.offset, eventId: event.eventId }, 'event handler failed; retrying');
        const delay = Math.min(10_000, 200 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        const deadline = Date.now() + delay;
        while (Date.now() < deadline) {
          if (this.stopping) return false; // leave it uncommitted: redelivered after restart
          await new Promise((r) => setTimeout(r, Math.min(500, deadline - Date.now())));
          await heartbeat().catch(() => undefined);
        }
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
    await this.consumer.disconnect(); // waits for in-flight eachMessage calls to finish
    await this.dlqProducer.disconnect();
  }
}
