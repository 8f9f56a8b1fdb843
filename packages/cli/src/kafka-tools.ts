import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface TopicMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: string;
}

/** Reads a topic from the beginning up to the end offsets it had when called (a snapshot), then stops. */
export async function readTopicToEnd(kafka: Kafka, topic: string, options: { timeoutMs?: number } = {}): Promise<TopicMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const remaining = new Map(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high) - 1n]));
  const messages: TopicMessage[] = [];
  if (remaining.size === 0) return messages;

  const consumer = kafka.consumer({ groupId: `postsale-cli-reader-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} timed out`)), options.timeoutMs ?? 30_000);
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const last = remaining.get(partition);
          if (last === undefined) return;
          if (BigInt(message.offset) <= last) messages.push(toTopicMessage(topic, partition, message));
          if (BigInt(message.offset) >= last) remaining.delete(partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

function toTopicMessage(topic: string, partition: number, message: KafkaMessage): TopicMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key?.toString() ?? null,
    value: message.value,
    headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
    timestamp: message.timestamp,
  };
}

export interface GroupLag {
  group: string;
  topic: string;
  lag: bigint;
  state: string;
}

/** Consumer-group lag per topic: end offsets minus committed offsets (uncommitted partitions count from the start). */
export async function groupLags(kafka: Kafka, topics: string[]): Promise<GroupLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.listGroups();
    const described = await admin.describeGroups(groups.map((g) => g.groupId));
    const lags: GroupLag[] = [];
    for (const group of described.groups) {
      const committed = await admin.fetchOffsets({ groupId: group.groupId, topics });
      for (const t of committed) {
        if (t.partitions.every((p) => p.offset === '-1')) continue;
        const ends = await admin.fetchTopicOffsets(t.topic);
        let lag = 0n;
        for (const end of ends) {
          const c = t.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
          const from = c === '-1' ? BigInt(end.low) : BigInt(c);
          lag += BigInt(end.high) - from;
        }
        lags.push({ group: group.groupId, topic: t.topic, lag, state: group.state });
      }
    }
    return lags;
  } finally {
    await admin.disconnect();
  }
}
