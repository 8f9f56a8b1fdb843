import { randomUUID } from 'node:crypto';
import type { Kafka, Producer, ProducerBatch } from 'kafkajs';
import { ensureTopics, EventCodec, Streams } from '@postsale/contracts';
import { createDb, createKafka, createLogger, localInfraEnv, Metrics, migrate, OutboxRelay, OutboxWriter, type Db } from '../src';
import { collectTopic, dropSchema, uniqueId, waitFor, startTcpProxy, type TcpProxy, testNamespace } from '../src/testing';

describe('outbox relay under a database outage', () => {
  const infra = localInfraEnv();
  const logger = createLogger('relay-faults', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  let proxy: TcpProxy;
  let schema: string;
  let viaProxy: Db;
  let direct: Db;
  let proxiedUrl: string;
  let relay: OutboxRelay | undefined;

  beforeEach(async () => {
    const real = new URL(infra.DATABASE_URL!);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const proxied = new URL(real);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    schema = uniqueId('t_relayfaults_');
    direct = createDb({ url: real.toString(), schema, poolMax: 2 });
    await migrate(direct, schema, []);
    proxiedUrl = proxied.toString();
    viaProxy = createDb({ url: proxiedUrl, schema, poolMax: 2, logger });
  });
  afterEach(async () => {
    await proxy.restore().catch(() => undefined);
    await relay?.stop(0);
    await viaProxy.destroy();
    await direct.destroy();
    await proxy.close();
    await dropSchema(schema);
  });

  it('after the database comes back, a commit in this process is published at once, not at the next poll', async () => {
    const namespace = testNamespace();
    const kafka = createKafka({ clientId: 'relay-faults', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
    await ensureTopics(kafka, { namespace, streams: [Streams.orders] });
    const codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    const writer = new OutboxWriter(codec);
    const metrics = new Metrics('relay-faults', { defaultMetrics: false });
    // Polling once a minute: within this test only the writer's wake-up after commit can make it publish.
    relay = new OutboxRelay({
      db: viaProxy, schema, kafka, codec, logger, metrics, writer, pollIntervalMs: 60_000, minPollIntervalMs: 60_000,
    });
    await relay.start();
    const topic = await collectTopic(kafka, codec, codec.topic(Streams.orders));
    try {
      const record = async () => {
        const eventId = randomUUID();
        const orderId = `o-${randomUUID()}`;
        await direct.transaction((trx) => writer.publish(trx, Streams.orders, {
          eventId, orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
          type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason: 'test', cancelledAt: Date.now() },
        }));
        return eventId;
      };
      // published = on the topic, and its outbox row deleted (only a committed claim after Kafka's ack deletes it)
      const published = async (eventId: string) =>
        topic.messages.some((m) => m.event.eventId === eventId) && !(await direct('outbox').where({ event_id: eventId }).first());

      const before = await record();
      await waitFor(() => published(before), { timeoutMs: 10_000, description: 'published on the wake-up after commit' });

      await proxy.cut();
      await proxy.restore();
      // The relay's pooled connections died with the cut: the next claim fails once and is retried with backoff.
      const after = await record();
      await waitFor(() => published(after), { timeoutMs: 15_000, description: 'published after the outage without waiting for a poll' });
      expect(await direct('outbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '0' }]);
    } finally {
      await topic.stop();
    }
  });

  it('after a failed send the relay publishes with a new producer, so a producer that refuses for ever cannot stall it', async () => {
    // Stand-in for the kafkajs producer left with rewound sequence numbers after a lost answer: the broker refuses its
    // every later batch as out of order. Only a new producer (id) gets through.
    const producers: Array<{ sent: ProducerBatch[]; disconnected: boolean }> = [];
    const kafka = {
      producer: () => {
        const state = { sent: [] as ProducerBatch[], disconnected: false };
        const index = producers.push(state) - 1;
        return {
          connect: async () => undefined,
          disconnect: async () => { state.disconnected = true; },
          sendBatch: async (batch: ProducerBatch) => {
            if (index === 0) throw Object.assign(new Error('The broker received an out of order sequence number'), { name: 'KafkaJSProtocolError', type: 'OUT_OF_ORDER_SEQUENCE_NUMBER', retriable: false });
            state.sent.push(batch);
            return [];
          },
        } as unknown as Producer;
      },
    } as unknown as Kafka;
    const namespace = testNamespace();
    const codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    const writer = new OutboxWriter(codec);
    relay = new OutboxRelay({ db: direct, schema, kafka, codec, logger, metrics: new Metrics('relay-faults', { defaultMetrics: false }) });
    await relay.connect();
    const record = (orderId: string) => direct.transaction((trx) => writer.publish(trx, Streams.orders, {
      eventId: randomUUID(), orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
      type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason: 'test', cancelledAt: Date.now() },
    }));

    await record('o-first');
    await expect(relay.drainOnce()).rejects.toThrow(/out of order/);
    await record('o-second'); // the next batch differs from the failed one
    expect(await relay.drainOnce()).toBe(2);
    expect(producers).toHaveLength(2);
    expect(producers[0]!.disconnected).toBe(true);
    expect(producers[1]!.sent.flatMap((b) => b.topicMessages!.flatMap((t) => t.messages.map((m) => m.key)))).toEqual(['o-first', 'o-second']);
    await relay.stop(0); // deletes what it published as it gives its lock up
    relay = undefined;
    expect(await direct('outbox')).toEqual([]);
  });
});
