import type { Kafka } from 'kafkajs';
import { allStreams, DLQ_RETENTION_MS, dlqTopicName, topicName, type AnyStream } from './topics';

/**
 * Creates the pipeline's topics (and their dead-letter topics) with explicit partition counts. Broker auto-creation
 * is off, so this is the only way topics come to exist. Idempotent.
 */
export async function ensureTopics(kafka: Kafka, options: { namespace?: string; streams?: AnyStream[]; retryForMs?: number } = {}): Promise<void> {
  // Just-created topics can answer UNKNOWN_TOPIC_OR_PARTITION to the leader wait (retriable), more so when several
  // processes start at once: a retriable error is tried again, with backoff, for up to `retryForMs` (60 s).
  const deadline = Date.now() + (options.retryForMs ?? 60_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await ensureTopicsOnce(kafka, options);
    } catch (error) {
      const retriable = (error as { retriable?: unknown }).retriable === true;
      if (!retriable || Date.now() >= deadline) throw error;
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** (attempt - 1), 5000)));
    }
  }
}

async function ensureTopicsOnce(kafka: Kafka, options: { namespace?: string; streams?: AnyStream[] }): Promise<void> {
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
