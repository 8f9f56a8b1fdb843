import { ensureTopics, EventCodec, Streams, type OrderEvent } from '@postsale/contracts';
import { createDb, createKafka, createLogger, InboxConsumer, localInfraEnv, Metrics, migrate } from '../src';
import { dropSchema, uniqueId, waitFor, testNamespace } from '../src/testing';

/**
 * Services and replicas start side by side; one may subscribe to a topic another is still creating. Joining then
 * fails with UNKNOWN_TOPIC_OR_PARTITION, which must delay the start, not fail it.
 */
describe('inbox consumer start', () => {
  const infra = localInfraEnv();
  const logger = createLogger('consumer-start', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  const kafka = createKafka({ clientId: 'consumer-start', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });

  it('when its topic does not exist yet, start waits and succeeds once the topic is created', async () => {
    const namespace = testNamespace();
    const schema = uniqueId('t_cstart_');
    const db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 2 });
    await migrate(db, schema, []);
    const consumer = new InboxConsumer<OrderEvent>(
      { group: 'runtime.start-test', streams: [Streams.orders], handle: async () => undefined },
      { kafka, db, codec: EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace), logger, metrics: new Metrics('consumer-start', { defaultMetrics: false }), namespace },
    );
    let settled: 'started' | Error | undefined;
    const starting = consumer.start().then(() => { settled = 'started'; }, (error: Error) => { settled = error; });
    try {
      // the first join fails (the topic is missing); the start must still be pending, not rejected
      await waitFor(() => consumer.startAttempts >= 2, { description: 'a second attempt to join', timeoutMs: 30_000 });
      expect(settled).toBeUndefined();
      await ensureTopics(kafka, { namespace, streams: [Streams.orders] });
      await starting;
      expect(settled).toBe('started');
    } finally {
      await consumer.stop();
      await db.destroy();
      await dropSchema(schema);
    }
  });
});
