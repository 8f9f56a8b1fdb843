import type { Kafka } from 'kafkajs';
import { allStreams, dlqTopicName, topicName } from '@postsale/contracts';
import { groupLags } from '../kafka-tools';

export interface TopicSummary {
  topic: string;
  partitions: number;
  messages: bigint;
  groups: Array<{ group: string; lag: bigint; state: string }>;
}

/** The pipeline's topics with partitions, message counts (end - start offsets) and each consumer group's lag. */
export async function describeTopics(kafka: Kafka, namespace = ''): Promise<TopicSummary[]> {
  const topics = allStreams().flatMap((s) => [topicName(s, namespace), dlqTopicName(s, namespace)]);
  const admin = kafka.admin();
  await admin.connect();
  const summaries: TopicSummary[] = [];
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of topics.filter((t) => existing.has(t))) {
      const offsets = await admin.fetchTopicOffsets(topic);
      const messages = offsets.reduce((sum, o) => sum + BigInt(o.high) - BigInt(o.low), 0n);
      summaries.push({ topic, partitions: offsets.length, messages, groups: [] });
    }
  } finally {
    await admin.disconnect();
  }
  const lags = await groupLags(kafka, summaries.map((s) => s.topic));
  for (const lag of lags) summaries.find((s) => s.topic === lag.topic)?.groups.push({ group: lag.group, lag: lag.lag, state: lag.state });
  return summaries;
}
