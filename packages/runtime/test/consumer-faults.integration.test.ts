import { randomUUID } from 'node:crypto';
import { ConfigResourceTypes, type Admin, type Producer } from 'kafkajs';
import { dlqTopicName, ensureTopics, EventCodec, Streams, type OrderEvent } from '@postsale/contracts';
import { AppError, createDb, createKafka, createLogger, InboxConsumer, localInfraEnv, Metrics, migrate, type Db } from '../src';
import { dropSchema, uniqueId, waitFor, startTcpProxy, type TcpProxy, testNamespace } from '../src/testing';

/** Sum of a counter's samples whose labels match. */
async function counter(metrics: Metrics, name: string, labels: RegExp = /.*/): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  return text.split('\n').filter((l) => l.startsWith(name) && labels.test(l)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The inbox consumer runner alone, on the real broker, registry and Postgres, with faults put between them. */
describe('inbox consumer under infrastructure faults', () => {
  const infra = localInfraEnv();
  const logger = createLogger('consumer-faults', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  const kafka = createKafka({ clientId: 'consumer-faults', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
  let namespace: string;
  let schema: string;
  let db: Db;
  let codec: EventCodec;
  let producer: Producer;
  let admin: Admin;
  let consumers: Array<InboxConsumer<OrderEvent>> = [];
  let proxy: TcpProxy | undefined;
  let metrics: Metrics;

  beforeEach(async () => {
    namespace = testNamespace();
    schema = uniqueId('t_cfaults_');
    await ensureTopics(kafka, { namespace, streams: [Streams.orders] });
    db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 4 });
    await migrate(db, schema, [{
      name: '0001_effects',
      up: (k) => k.schema.createTable('effects', (t) => {
        t.increments('id');
        t.string('event_id').notNullable(); // not unique on purpose: the inbox alone prevents duplicates
        t.string('order_id').notNullable();
      }),
    }]);
    codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    producer = kafka.producer();
    await producer.connect();
    admin = kafka.admin();
    await admin.connect();
    metrics = new Metrics('consumer-faults', { defaultMetrics: false });
  });
  afterEach(async () => {
    await Promise.all(consumers.map((c) => c.stop()));
    consumers = [];
    await proxy?.close();
    proxy = undefined;
    await producer.disconnect();
    await admin.disconnect();
    await db.destroy();
    await dropSchema(schema);
  });

  async function send(reason: string, key = 'same-partition'): Promise<string> {
    const orderId = `o-${randomUUID()}`;
    const event: OrderEvent = {
      eventId: randomUUID(), orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
      type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason, cancelledAt: Date.now() },
    } as OrderEvent;
    // One key for every event, so they share a partition and the second waits behind the first.
    await producer.send({ topic: codec.topic(Streams.orders), acks: -1, messages: [{ key, value: await codec.encode(Streams.orders, event) }] });
    return orderId;
  }

  async function startConsumer(consumerCodec: EventCodec, using: { db?: Db; metrics?: Metrics } = {}): Promise<void> {
    const consumer = new InboxConsumer<OrderEvent>({
      group: 'faults.effects',
      streams: [Streams.orders],
      maxAttempts: 3,
      async handle(event, { trx }) {
        if (event.type === 'OrderCancelled' && event.payload.reason === 'poison') throw new AppError('POISON', 'never processable');
        await trx('effects').insert({ event_id: event.eventId, order_id: event.orderId });
      },
    }, { kafka, db: using.db ?? db, codec: consumerCodec, logger, metrics: using.metrics ?? metrics, namespace });
    consumers.push(consumer);
    await consumer.start();
  }

  const effectsOf = (orderId: string) => db('effects').where({ order_id: orderId });
  const dlqCount = async () => {
    const offsets = await admin.fetchTopicOffsets(dlqTopicName(Streams.orders, namespace));
    return offsets.reduce((sum, o) => sum + Number(o.high), 0);
  };

  it('when the schema registry cannot be reached, messages wait (not dead-lettered) and are applied once it is back', async () => {
    const registry = new URL(infra.SCHEMA_REGISTRY_URL!);
    proxy = await startTcpProxy({ host: registry.hostname, port: Number(registry.port || 80) });
    const viaProxy = new URL(registry);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const orderId = await send('test');
    await proxy.cut();
    await startConsumer(EventCodec.connect(viaProxy.toString(), namespace));

    await waitFor(async () => (await counter(metrics, 'events_retried_total', /code="REGISTRY_UNAVAILABLE"/)) >= 4, {
      timeoutMs: 20_000, description: 'retries while the registry is away (more than maxAttempts)',
    });
    expect(await dlqCount()).toBe(0);
    expect(await effectsOf(orderId)).toHaveLength(0);

    await proxy.restore();
    await waitFor(async () => (await effectsOf(orderId)).length === 1, { timeoutMs: 20_000, description: 'effect once the registry is back' });
    expect(await dlqCount()).toBe(0);
    expect(await counter(metrics, 'events_dead_lettered_total')).toBe(0);
  });

  it('when the dead-letter topic refuses a poison message, the consumer keeps trying instead of dying, and goes on once it is accepted', async () => {
    const dlq = dlqTopicName(Streams.orders, namespace);
    const setDlqMaxBytes = (value: string) => admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: dlq, configEntries: [{ name: 'max.message.bytes', value }] }],
    });
    await setDlqMaxBytes('100'); // smaller than any dead letter with its reason headers: MESSAGE_TOO_LARGE, non-retriable
    const poisonId = await send('poison');
    const nextId = await send('test');
    await startConsumer(codec);
    // kafkajs itself would stop this consumer for good after the non-retriable error; the runner must replace it.
    await waitFor(async () => (await counter(metrics, 'kafka_consumer_replacements_total')) >= 2, {
      timeoutMs: 30_000, description: 'the consumer crashing on the refused dead letter and being replaced',
    });
    expect(await counter(metrics, 'events_dead_lettered_total')).toBe(0);
    expect(await effectsOf(nextId)).toHaveLength(0); // order within the partition is kept: nothing skips the poison

    await setDlqMaxBytes('1048588');
    await waitFor(async () => (await effectsOf(nextId)).length === 1, { timeoutMs: 30_000, description: 'the next message applied' });
    expect(await dlqCount()).toBe(1);
    expect(await effectsOf(poisonId)).toHaveLength(0);
  });

  it('a replica retrying through a database outage does not hold up a rebalance: a new replica that can reach the database takes over its share at once', async () => {
    const real = new URL(infra.DATABASE_URL!);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const proxied = new URL(real);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const cutOff = createDb({ url: proxied.toString(), schema, poolMax: 4, logger });
    try {
      await proxy.cut();
      const orderIds: string[] = [];
      for (let i = 0; i < 12; i++) orderIds.push(await send('test', `key-${i}`));
      // Replica A owns every partition and is stuck retrying against the unreachable database.
      await startConsumer(codec, { db: cutOff });
      await waitFor(async () => (await counter(metrics, 'events_retried_total', /code="(CONNECTION_FAILED|DB_UNAVAILABLE)"/)) >= 3, {
        timeoutMs: 20_000, description: 'replica A retrying',
      });
      // Replica B joins. A must give its in-flight messages back at the rebalance rather than keep the group waiting
      // (kafkajs waits up to the 60 s rebalance timeout for a member stuck in eachMessage).
      const joinedAt = Date.now();
      await startConsumer(codec, { metrics: new Metrics('replica-b', { defaultMetrics: false }) });
      await waitFor(async () => Number((await db('effects').count<{ n: string }[]>('* as n'))[0]!.n) > 0, {
        timeoutMs: 25_000, description: 'replica B applying events from its share of the partitions',
      });
      expect(Date.now() - joinedAt).toBeLessThan(25_000);
      expect(await dlqCount()).toBe(0);

      await proxy.restore();
      await waitFor(async () => Number((await db('effects').count<{ n: string }[]>('* as n'))[0]!.n) >= 12, { timeoutMs: 30_000, description: 'every event applied' });
      const perOrder = await db('effects').select('order_id').count<{ order_id: string; n: string }[]>('* as n').groupBy('order_id');
      expect(perOrder.map((r) => r.order_id).sort()).toEqual([...orderIds].sort());
      expect(perOrder.every((r) => Number(r.n) === 1)).toBe(true);
      expect(await dlqCount()).toBe(0);
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
      consumers = [];
      await cutOff.destroy();
    }
  }, 90_000);
});
