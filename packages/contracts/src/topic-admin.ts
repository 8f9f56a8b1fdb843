import type { Kafka } from 'kafkajs';
import { allStreams, DLQ_RETENTION_MS, dlqTopicName, topicName, type AnyStream } from './topics';

/**
 * Creates the pipeline's topics (and their dead-letter topics) with explicit partition counts. Broker auto-creation
 * is off, so this is the only way topics come to exist. Idempotent.
 */
export async function ensureTopics(kafka: Kafka, options: { namespace?: string; streams?: AnyStream[] } = {}): Promise<void> {
  const namespace = options.namespace ?? '';
  const streams = options.streams ?? allStreams();
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = streams.flatMap((s) => [
      { topic: topicName(s, namespace), numPartitions: s.partitions, retentionMs: s.retentionMs },
      { topic: dlqTopicName(s, namespace), numPartitions: 1, retentionMs: DLQ_RETENTION_MS },
    ]);
    const missing = wanted.filter((t) => !existing.has(t.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.topic,
        numPartitions: t.numPartitions,
        replicationFactor: 1,
        configEntries: [{ name: 'retention.ms', value: String(t.retentionMs) }],
      })),
    });
  } finally {
    await admin.disconnect();
  }
}
