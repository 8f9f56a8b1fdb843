import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { ensureTopics, EventCodec, Streams, type OrderEvent } from '@postsale/contracts';
import { createDb, createKafka, createLogger, instrumentDb, localInfraEnv, Metrics, migrate, OutboxRelay, OutboxWriter, type Db } from '../src';
import { collectTopic, dropSchema, uniqueId, waitFor, testNamespace } from '../src/testing';

/** Sum of a counter's samples. */
async function counter(metrics: Metrics, name: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The relay's cost per event (the performance budget) without giving up what it guarantees. */
describe('outbox relay: woken by commits, polling adaptively, deleting what it published', () => {
  const infra = localInfraEnv();
  const logger = createLogger('outbox-relay', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  let schema: string;
  let db: Db;
  let kafka: Kafka;
  let codec: EventCodec;
  let relay: OutboxRelay | undefined;
  let topic: Awaited<ReturnType<typeof collectTopic<OrderEvent>>>;

  beforeEach(async () => {
    schema = uniqueId('t_relay_');
    db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 4 });
    await migrate(db, schema, []);
    const namespace = testNamespace();
    kafka = createKafka({ clientId: 'outbox-relay', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
    await ensureTopics(kafka, { namespace, streams: [Streams.orders] });
    codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    await codec.register(Streams.orders);
    topic = await collectTopic<OrderEvent>(kafka, codec, codec.topic(Streams.orders));
  });
  afterEach(async () => {
    await relay?.stop(0);
    relay = undefined;
    await topic.stop();
    await db.destroy();
    await dropSchema(schema);
  });

  const event = (orderId = `o-${randomUUID()}`): OrderEvent => {
    return {
      eventId: randomUUID(), orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
      type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason: 'test', cancelledAt: Date.now() },
    } as OrderEvent;
  };
  const onTopic = (ids: string[]) => ids.every((id) => topic.messages.some((m) => m.event.eventId === id));
  const outboxRows = async () => Number((await db('outbox').count<{ n: string }[]>('* as n'))[0]!.n);

  it('when a transaction of this process commits events, then the relay publishes them at once in batches of the configured size and deletes them together, in one commit', async () => {
    const writer = new OutboxWriter(codec);
    const relayMetrics = new Metrics('relay', { defaultMetrics: false });
    const relayDb = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 2 });
    instrumentDb(relayDb, relayMetrics);
    try {
      // Polls once a minute: only the wake-up after commit can make it publish within this test.
      relay = new OutboxRelay({ db: relayDb, schema, kafka, codec, logger, metrics: relayMetrics, writer, batchSize: 3, pollIntervalMs: 60_000, minPollIntervalMs: 60_000 });
      await relay.start();
      const commitsBefore = await counter(relayMetrics, 'db_commits_total');

      // The writer's transaction carries nothing for the relay (no pg_notify): BEGIN, the insert per event and the COMMIT
      // go to Postgres in one exchange (outbox rows ride with the next statement or the COMMIT).
      const writerMetrics = new Metrics('writer', { defaultMetrics: false });
      const writerDb = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 1 });
      instrumentDb(writerDb, writerMetrics);
      const orderId = `o-${randomUUID()}`; // one key, one partition: their order on the topic is defined
      const events = Array.from({ length: 7 }, () => event(orderId));
      try {
        await writerDb.transaction(async (trx) => {
          for (const e of events) await writer.publish(trx, Streams.orders, e);
        });
        expect(await counter(writerMetrics, 'db_round_trips_total')).toBe(1);
      } finally {
        await writerDb.destroy();
      }

      const ids = events.map((e) => e.eventId);
      await waitFor(() => onTopic(ids), { timeoutMs: 10_000, description: 'all seven on the topic' });
      await waitFor(async () => (await outboxRows()) === 0, { timeoutMs: 10_000, description: 'published rows deleted' });
      expect(topic.messages.map((m) => m.event.eventId)).toEqual(ids); // in commit order
      expect(await counter(relayMetrics, 'outbox_events_published_total')).toBe(7);
      // three batches read (reads commit nothing), their rows deleted by one statement when the relay went idle
      expect(await counter(relayMetrics, 'db_commits_total')).toBe(commitsBefore + 1);
    } finally {
      await relay?.stop(0);
      relay = undefined;
      await relayDb.destroy();
    }
  });

  it('when commits follow one another within the linger, then one read and one Kafka request publish them all', async () => {
    const writer = new OutboxWriter(codec);
    const relayMetrics = new Metrics('relay', { defaultMetrics: false });
    const relayDb = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 2 });
    instrumentDb(relayDb, relayMetrics);
    try {
      // a linger far longer than three commits take; polls once a minute, so only the wake-ups can publish
      relay = new OutboxRelay({ db: relayDb, schema, kafka, codec, logger, metrics: relayMetrics, writer, lingerMs: 1500, pollIntervalMs: 60_000, minPollIntervalMs: 60_000 });
      await relay.start();
      await waitFor(async () => (await counter(relayMetrics, 'db_round_trips_total')) > 0 && !relay!.busy, { description: 'the first poll done' });
      const commitsBefore = await counter(relayMetrics, 'db_commits_total');
      const events = [event(), event(), event()];
      for (const e of events) await db.transaction((trx) => writer.publish(trx, Streams.orders, e)); // three commits, three wake-ups

      await waitFor(() => onTopic(events.map((e) => e.eventId)), { timeoutMs: 10_000, description: 'all three on the topic' });
      await waitFor(async () => (await outboxRows()) === 0, { timeoutMs: 10_000, description: 'published rows deleted' });
      expect(await counter(relayMetrics, 'db_commits_total')).toBe(commitsBefore + 1);
    } finally {
      await relay?.stop(0);
      relay = undefined;
      await relayDb.destroy();
    }
  });

  it('when a transaction of this process writes after the relay published, then the deletion rides with its COMMIT (no commit of the relay\'s own); a rolled-back ride leaves the rows to the relay', async () => {
    const writer = new OutboxWriter(codec);
    const metrics = new Metrics('relay', { defaultMetrics: false });
    // the process's one pool: the relay and the use cases' transactions share it, as in a service
    const serviceDb = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 3 });
    instrumentDb(serviceDb, metrics);
    try {
      // polls once a minute and deletes on its own only after a minute: only rides can delete within this test
      relay = new OutboxRelay({ db: serviceDb, schema, kafka, codec, logger, metrics, writer, pollIntervalMs: 60_000, minPollIntervalMs: 60_000, deleteAfterMs: 60_000 });
      await relay.start();
      await waitFor(async () => (await counter(metrics, 'db_round_trips_total')) > 0 && !relay!.busy, { description: 'the first poll done' });
      const exists = async (e: OrderEvent) => (await db('outbox').where({ event_id: e.eventId }).first()) !== undefined;
      const [e1, e2, e3] = [event(), event(), event()];

      await serviceDb.transaction((trx) => writer.publish(trx, Streams.orders, e1));
      await waitFor(() => onTopic([e1.eventId]) && relay!.awaitingDeletion.length === 1, { timeoutMs: 10_000, description: 'e1 published, awaiting deletion' });
      expect(await exists(e1)).toBe(true);
      const [commits, roundTrips] = [await counter(metrics, 'db_commits_total'), await counter(metrics, 'db_round_trips_total')];

      // the next writing transaction deletes e1's row with its own COMMIT: one exchange, one commit, e1 gone
      await serviceDb.transaction((trx) => writer.publish(trx, Streams.orders, e2));
      expect(await counter(metrics, 'db_round_trips_total')).toBe(roundTrips + 1);
      expect(await exists(e1)).toBe(false);
      await waitFor(() => onTopic([e2.eventId]) && relay!.awaitingDeletion.length === 1 && !relay!.busy, { timeoutMs: 10_000, description: 'e2 published, awaiting deletion' });
      expect(await counter(metrics, 'db_commits_total')).toBe(commits + 1); // the relay's read of e2 committed nothing

      // a transaction that rolls back takes its ride with it: e2's row stays, the relay still has it to delete
      await expect(serviceDb.transaction(async (trx) => {
        await trx('outbox').where({ id: -1 }).update({ key: 'nothing' }); // a write, so the COMMIT would carry the ride
        throw new Error('use case failed');
      })).rejects.toThrow('use case failed');
      // (a failed COMMIT carrying it rolls back too)
      await expect(serviceDb.transaction(async (trx) => {
        await trx.raw("insert into outbox (event_id, topic, stream, key, event_type, event) values (?, 't', 'orders', 'k', 'X', '{}'::jsonb)", [e2.eventId]);
      })).rejects.toThrow(/duplicate key|unique/);
      expect(await exists(e2)).toBe(true);
      expect(relay.awaitingDeletion).toHaveLength(1);

      // a read-only transaction carries nothing; the next one that writes does
      await serviceDb.transaction((trx) => trx('outbox').count('* as n'));
      expect(await exists(e2)).toBe(true);
      await serviceDb.transaction((trx) => writer.publish(trx, Streams.orders, e3));
      expect(await exists(e2)).toBe(false);
      await waitFor(() => onTopic([e3.eventId]), { timeoutMs: 10_000, description: 'e3 published' });
      expect(topic.messages.filter((m) => [e1, e2, e3].some((e) => e.eventId === m.event.eventId))).toHaveLength(3); // each once
    } finally {
      await relay?.stop(0);
      relay = undefined;
      await serviceDb.destroy();
    }
  });

  it('when another process commits events (no wake-up), then polling publishes them; idle polls back off to the maximum and come back after rows are found', async () => {
    relay = new OutboxRelay({ db, schema, kafka, codec, logger, metrics: new Metrics('relay', { defaultMetrics: false }), minPollIntervalMs: 20, pollIntervalMs: 400 });
    await relay.start();
    await waitFor(() => relay!.pollDelayMs === 400, { description: 'idle polls backed off to the maximum' });

    // right after finding rows it looks again soon (more may follow), then backs off again: sampled meanwhile
    const delays = new Set<number>();
    const sampler = setInterval(() => delays.add(relay!.pollDelayMs), 2);
    try {
      const other = new OutboxWriter(codec); // not wired to this relay, as in another replica
      const e = event();
      await db.transaction((trx) => other.publish(trx, Streams.orders, e));
      await waitFor(() => onTopic([e.eventId]), { timeoutMs: 10_000, description: 'published by a poll' });
      await waitFor(async () => (await outboxRows()) === 0, { timeoutMs: 10_000, description: 'its row deleted' });
      await waitFor(() => delays.has(20) && relay!.pollDelayMs === 400, { timeoutMs: 10_000, description: 'a short poll after rows were found, then backed off' });
    } finally {
      clearInterval(sampler);
    }
  });
  describe('with two replicas', () => {
    const relays: OutboxRelay[] = [];
    const relayOf = (writer?: OutboxWriter) => {
      // polls once a minute and is driven by drainOnce below: which relay publishes is the test's to decide
      const r = new OutboxRelay({ db, schema, kafka, codec, logger, metrics: new Metrics('relay', { defaultMetrics: false }), writer, pollIntervalMs: 60_000, minPollIntervalMs: 60_000 });
      relays.push(r);
      return r;
    };
    afterEach(async () => {
      for (const r of relays.splice(0)) await r.stop(0);
    });
    const commit = async (writer: OutboxWriter, e: OrderEvent) => db.transaction((trx) => writer.publish(trx, Streams.orders, e));
    const copies = (e: OrderEvent) => topic.messages.filter((m) => m.event.eventId === e.eventId).length;

    it('when one relay holds the lock, then the other publishes nothing, the holder publishes both replicas\' events, and the lock passes once it is given up', async () => {
      const [writerA, writerB] = [new OutboxWriter(codec), new OutboxWriter(codec)];
      const [a, b] = [relayOf(writerA), relayOf(writerB)];
      await Promise.all([a.connect(), b.connect()]);
      const orderId = `o-${randomUUID()}`; // one key: its order on the topic is what the lock protects
      const [e1, e2, e3] = [event(orderId), event(orderId), event(orderId)];

      await commit(writerA, e1);
      expect(await a.drainOnce()).toBe(1); // A takes the lock
      await commit(writerB, e2);
      expect(await b.drainOnce()).toBe(0); // B may not publish while A holds it
      expect(await a.drainOnce()).toBe(1); // A publishes B's row too
      expect(await outboxRows()).toBe(2); // published, not yet deleted (no commit per batch)
      expect(a.awaitingDeletion).toHaveLength(2);

      await a.stop(0); // gives the lock up, deleting what it published in the same statement
      expect(await outboxRows()).toBe(0);
      await commit(writerB, e3);
      expect(await b.drainOnce()).toBe(1);
      await waitFor(() => onTopic([e1.eventId, e2.eventId, e3.eventId]), { timeoutMs: 10_000, description: 'all three on the topic' });
      expect(topic.messages.filter((m) => m.event.orderId === orderId).map((m) => m.event.eventId)).toEqual([e1.eventId, e2.eventId, e3.eventId]);
    });

    it('when the holder\'s session dies after it published and before it deleted, then the lock passes, the rows are published again (at-least-once) and the dead relay recovers', async () => {
      const writer = new OutboxWriter(codec);
      const [a, b] = [relayOf(writer), relayOf()];
      await Promise.all([a.connect(), b.connect()]);
      const e1 = event();
      await commit(writer, e1);
      expect(await a.drainOnce()).toBe(1);
      await waitFor(() => copies(e1) === 1, { timeoutMs: 10_000, description: 'published once' });

      // what a crash of A's process or a cut connection does to its session: Postgres releases the lock with it
      const { rows } = await db.raw(
        `select pg_terminate_backend(pid) as killed from pg_locks
          where locktype = 'advisory' and objsubid = 1 and objid = (hashtext(?)::bigint & 4294967295)::oid`, [`outbox:${schema}`]);
      expect(rows).toEqual([{ killed: true }]);

      await waitFor(async () => (await b.drainOnce()) === 1, { description: 'B takes the lock and publishes the row again' });
      await waitFor(() => copies(e1) === 2, { timeoutMs: 10_000, description: 'the second copy on the topic' });
      await expect(a.drainOnce()).rejects.toThrow(); // A learns its session is gone...
      expect(await a.drainOnce()).toBe(0); // ...and, B holding the lock now, publishes nothing

      await b.stop(0);
      const e2 = event();
      await commit(writer, e2);
      expect(await a.drainOnce()).toBe(1); // A takes the lock again on a new session
      await a.stop(0);
      expect(await outboxRows()).toBe(0);
    });
  });
});
