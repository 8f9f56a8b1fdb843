import type { Admin, Kafka } from 'kafkajs';
import { SubjectKeys, subjectKeysTopic } from './subject-keys';
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
    const wanted: Array<{ topic: string; numPartitions: number; configEntries: Array<{ name: string; value: string }> }> = streams.flatMap((s) => [
      { topic: topicName(s, namespace), numPartitions: s.partitions, configEntries: [{ name: 'retention.ms', value: String(s.retentionMs) }] },
      { topic: dlqTopicName(s, namespace), numPartitions: 1, configEntries: [{ name: 'retention.ms', value: String(DLQ_RETENTION_MS) }] },
    ]);
    // the data subjects' keys (crypto-shredding): compacted, kept for ever but for superseded keys
    wanted.push({
      topic: subjectKeysTopic(namespace), numPartitions: SubjectKeys.partitions,
      configEntries: Object.entries(SubjectKeys.topicConfig).map(([name, value]) => ({ name, value })),
    });
    const missing = wanted.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      await admin
        .createTopics({
          // kafkajs's own wait gives up on UNKNOWN_TOPIC_OR_PARTITION, which a just-created topic can briefly answer
          // on a busy broker; waitForLeaders below tolerates it
          waitForLeaders: false,
          topics: missing.map((t) => ({
            topic: t.topic,
            numPartitions: t.numPartitions,
            replicationFactor: 1,
            configEntries: t.configEntries,
          })),
        })
        .catch((error: unknown) => {
          // another replica or service created them a moment ago: fine, they exist
          if (!/already exists/i.test(String((error as Error).message))) throw error;
        });
    }
    await waitForLeaders(admin, wanted.map((t) => t.topic));
  } finally {
    await admin.disconnect();
  }
}

/**
 * A just-created topic (by this process or another one starting beside it) can be listed before its partitions have
 * leaders, and metadata requests for it can answer UNKNOWN_TOPIC_OR_PARTITION for a moment; producing or subscribing
 * then fails. Starting services wait here until every partition has a leader.
 */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
      if (metadata.length === topics.length && metadata.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`topics without partition leaders after ${timeoutMs} ms: ${topics.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
