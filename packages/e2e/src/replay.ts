import type { Kafka } from 'kafkajs';
import { allStreams, dlqTopicName, subjectKeysTopic, topicName, type EventCodec } from '@postsale/contracts';
import { uniqueId, waitFor } from '@postsale/runtime/testing';

export interface ReplayedMessage {
  topic: string;
  key: string | null;
  /** the value decoded with the registry (events, dead letters and subject keys); null for a Kafka tombstone */
  decoded: unknown;
  /** the raw value bytes as text, to find anything the decoding might not show */
  raw: string;
}

/**
 * A full replay from the earliest offset: every message of every topic of the namespace (each stream, its dead-letter
 * topic and the subject-keys topic), decoded with the registry as `postsale replay` would. Reads each topic up to the
 * end offsets taken when it starts.
 */
export async function replayEverything(kafka: Kafka, codec: EventCodec, namespace: string): Promise<ReplayedMessage[]> {
  const topics = [...allStreams().flatMap((s) => [topicName(s, namespace), dlqTopicName(s, namespace)]), subjectKeysTopic(namespace)];
  const admin = kafka.admin();
  await admin.connect();
  const remaining = new Map<string, bigint>();
  try {
    for (const topic of topics) {
      for (const o of await admin.fetchTopicOffsets(topic)) {
        if (BigInt(o.high) > BigInt(o.low)) remaining.set(`${topic}:${o.partition}`, BigInt(o.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const out: ReplayedMessage[] = [];
  if (remaining.size === 0) return out;
  const consumer = kafka.consumer({ groupId: uniqueId('e2e-replay-') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const end = remaining.get(`${topic}:${partition}`);
        if (end === undefined || BigInt(message.offset) >= end) return;
        const value = message.value;
        const decoded = value === null ? null : topic === subjectKeysTopic(namespace) ? await codec.decodeSubjectKey(value) : await codec.decode(value);
        out.push({ topic, key: message.key?.toString() ?? null, decoded, raw: value?.toString('latin1') ?? '' });
        if (BigInt(message.offset) + 1n >= end) remaining.delete(`${topic}:${partition}`);
      },
    });
    await waitFor(() => remaining.size === 0, { timeoutMs: 60_000, description: `replay reached the end of every topic (${[...remaining.keys()].join(', ')})` });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
