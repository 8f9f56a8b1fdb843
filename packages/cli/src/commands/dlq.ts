import type { Kafka } from 'kafkajs';
import { allStreams, dlqTopicName, type EventCodec } from '@postsale/contracts';
import { producerConfig } from '@postsale/runtime';
import { readTopicToEnd, type TopicMessage } from '../kafka-tools';

// Header names written by the runtime's consumer runner (packages/runtime/src/consumer.ts).
const H = {
  code: 'x-dlq-error-code',
  message: 'x-dlq-error-message',
  topic: 'x-dlq-original-topic',
  partition: 'x-dlq-original-partition',
  offset: 'x-dlq-original-offset',
  group: 'x-dlq-consumer-group',
  failedAt: 'x-dlq-failed-at',
};
/** A redrive is recorded as a marker message in the same DLQ topic, so every operator sees it without a new store. */
const REDRIVE_OF = 'x-dlq-redrive-of';

export interface DeadLetter {
  id: string; // <dlq topic>:<partition>:<offset>
  dlqTopic: string;
  code: string;
  reason: string;
  originalTopic: string;
  originalPartition: string;
  originalOffset: string;
  group: string;
  failedAt: string;
  key: string | null;
  redriven: boolean;
  message: TopicMessage;
}

export async function listDeadLetters(kafka: Kafka, namespace = ''): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics().finally(() => admin.disconnect()));
  for (const stream of allStreams()) {
    const dlqTopic = dlqTopicName(stream, namespace);
    if (!existing.has(dlqTopic)) continue;
    const messages = await readTopicToEnd(kafka, dlqTopic);
    const redriven = new Set(messages.filter((m) => m.headers[REDRIVE_OF]).map((m) => m.headers[REDRIVE_OF]));
    for (const m of messages.filter((x) => !x.headers[REDRIVE_OF])) {
      const id = `${dlqTopic}:${m.partition}:${m.offset}`;
      letters.push({
        id,
        dlqTopic,
        code: m.headers[H.code] ?? 'UNKNOWN',
        reason: m.headers[H.message] ?? '',
        originalTopic: m.headers[H.topic] ?? '',
        originalPartition: m.headers[H.partition] ?? '',
        originalOffset: m.headers[H.offset] ?? '',
        group: m.headers[H.group] ?? '',
        failedAt: m.headers[H.failedAt] ?? '',
        key: m.key,
        redriven: redriven.has(id),
        message: m,
      });
    }
  }
  return letters;
}

/** Decodes a dead letter's value when it is a valid event (it may not be: UNDECODABLE letters are raw bytes). */
export async function describeDeadLetter(letter: DeadLetter, codec: EventCodec): Promise<unknown> {
  if (!letter.message.value) return null;
  try {
    return await codec.decode(letter.message.value);
  } catch {
    return { undecodable: letter.message.value.toString('base64') };
  }
}

/**
 * Publishes dead letters back to their original topic. Safe by construction: consumers dedupe by event id, so the
 * groups that already processed the event skip it and the one that failed tries again.
 */
export async function redrive(kafka: Kafka, letters: DeadLetter[]): Promise<number> {
  const producer = kafka.producer(producerConfig());
  await producer.connect();
  let count = 0;
  try {
    for (const letter of letters.filter((l) => !l.redriven && l.originalTopic)) {
      await producer.send({
        topic: letter.originalTopic,
        acks: -1,
        messages: [{ key: letter.key, value: letter.message.value, headers: { 'x-redriven-from': letter.id } }],
      });
      await producer.send({
        topic: letter.dlqTopic,
        acks: -1,
        messages: [{ key: letter.key, value: null, headers: { [REDRIVE_OF]: letter.id, 'x-redriven-at': new Date().toISOString() } }],
      });
      count++;
    }
  } finally {
    await producer.disconnect();
  }
  return count;
}
