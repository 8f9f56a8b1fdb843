import type { Kafka } from 'kafkajs';
import { allStreams, ensureTopics } from '../src';

/** A Kafka whose admin lists no topics and whose createTopics fails with the given errors first. */
function kafkaFailing(...failures: Error[]) {
  const calls = { createTopics: 0 };
  const kafka = {
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      listTopics: async () => [],
      createTopics: async () => {
        calls.createTopics += 1;
        const failure = failures.shift();
        if (failure) throw failure;
        return true;
      },
      // once created, every partition has a leader
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({ topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 1 }] })) }),
    }),
  } as unknown as Kafka;
  return { kafka, calls };
}

const retriable = (message: string) => Object.assign(new Error(message), { name: 'KafkaJSProtocolError', retriable: true, type: 'UNKNOWN_TOPIC_OR_PARTITION' });

describe('ensureTopics when the broker is still settling', () => {
  it('when the leader wait answers UNKNOWN_TOPIC_OR_PARTITION (retriable), then it is tried again and the service starts', async () => {
    const { kafka, calls } = kafkaFailing(retriable('This server does not host this topic-partition'), retriable('again'));
    await ensureTopics(kafka, { namespace: 'ns', streams: allStreams() });
    expect(calls.createTopics).toBe(3);
  });

  it('when the error is not retriable, or a retriable one outlasts the deadline, then it is thrown', async () => {
    const denied = Object.assign(new Error('Topic authorization failed'), { retriable: false });
    await expect(ensureTopics(kafkaFailing(denied).kafka, { namespace: 'ns' })).rejects.toThrow('Topic authorization failed');
    const endless = kafkaFailing(...Array.from({ length: 100 }, () => retriable('still settling')));
    await expect(ensureTopics(endless.kafka, { namespace: 'ns', retryForMs: 300 })).rejects.toThrow('still settling');
    expect(endless.calls.createTopics).toBeGreaterThan(1);
  });
});
