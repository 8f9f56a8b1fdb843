import { randomUUID } from 'node:crypto';
import type { Admin, Producer } from 'kafkajs';
import { dlqTopicName, ensureTopics, EventCodec, Streams, type OrderEvent } from '@postsale/contracts';
import { AppError, createDb, createKafka, createLogger, InboxConsumer, instrumentDb, instrumentKafka, localInfraEnv, Metrics, migrate, type Db } from '../src';
import { dropSchema, uniqueId, waitFor, testNamespace } from '../src/testing';

/** Sum of a counter's samples whose labels match (a histogram's by `<name>_count` or `<name>_sum`). */
async function counter(metrics: Metrics, name: string, labels: RegExp = /.*/): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name.replace(/_(count|sum)$/, ''));
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) && labels.test(l)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/**
 * The inbox runner applies what one fetch brought in one transaction with one offset commit (the performance budget's
 * "consumers process in batches"), without giving up isolation of poison messages or exactly-once effects.
 */
describe('inbox consumer in batches', () => {
  const infra = localInfraEnv();
  const logger = createLogger('consumer-batch', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  let namespace: string;
  let schema: string;
  let db: Db;
  let codec: EventCodec;
  let producer: Producer;
  let admin: Admin;
  let consumers: Array<InboxConsumer<OrderEvent>> = [];
  let metrics: Metrics;

  beforeEach(async () => {
    namespace = testNamespace();
    schema = uniqueId('t_cbatch_');
    metrics = new Metrics('consumer-batch', { defaultMetrics: false });
    const setupKafka = createKafka({ clientId: 'consumer-batch-setup', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
    await ensureTopics(setupKafka, { namespace, streams: [Streams.orders] });
    db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 4 });
    await migrate(db, schema, [{
      name: '0001_effects',
      up: (k) => k.schema.createTable('effects', (t) => {
        t.increments('id');
        t.string('event_id').notNullable(); // not unique on purpose: the inbox alone prevents duplicates
        t.string('order_id').notNullable();
        t.bigInteger('txid').notNullable(); // which transaction applied it
      }),
    }]);
    instrumentDb(db, metrics); // after the migrations: only the consumer's statements are counted
    codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    producer = setupKafka.producer();
    await producer.connect();
    admin = setupKafka.admin();
    await admin.connect();
  });
  afterEach(async () => {
    await Promise.all(consumers.map((c) => c.stop()));
    consumers = [];
    await producer.disconnect();
    await admin.disconnect();
    await db.destroy();
    await dropSchema(schema);
  });

  const cancellation = (orderId: string, reason: string) => ({
    eventId: randomUUID(), orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
    type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason, cancelledAt: Date.now() },
  }) as OrderEvent;

  /**
   * Sends an OrderCancelled event with each reason in one request, so one fetch brings them all: to one partition, or
   * with `acrossPartitions` each to its own (the first to partition 0, and so on). Returns their order ids.
   */
  async function sendAll(reasons: string[], options: { eventTypeHeader?: (reason: string) => string; acrossPartitions?: boolean } = {}): Promise<string[]> {
    const orderIds = reasons.map(() => `o-${randomUUID()}`);
    const messages = [];
    // one at a time: the first encode registers the schema, and concurrent registrations of it conflict
    for (const [i, reason] of reasons.entries()) {
      const orderId = orderIds[i]!;
      const event = cancellation(orderId, reason);
      const headers = options.eventTypeHeader ? { 'event-type': options.eventTypeHeader(reason) } : undefined;
      const where = options.acrossPartitions ? { partition: i, key: orderId } : { key: 'one-partition' };
      messages.push({ ...where, value: await codec.encode(Streams.orders, event), headers });
    }
    await producer.send({ topic: codec.topic(Streams.orders), acks: -1, messages });
    return orderIds;
  }

  /** Sends one OrderCancelled event to each of `partitions`, each in a produce request of its own, one after another. */
  async function sendEach(partitions: number[]): Promise<string[]> {
    const orderIds: string[] = [];
    for (const partition of partitions) {
      const orderId = `o-${randomUUID()}`;
      await producer.send({ topic: codec.topic(Streams.orders), acks: -1, messages: [{ partition, key: orderId, value: await codec.encode(Streams.orders, cancellation(orderId, 'test')) }] });
      orderIds.push(orderId);
    }
    return orderIds;
  }

  async function startConsumer(options: {
    commitIntervalMs?: number; ignores?: string[]; partitionsConsumedConcurrently?: number; lingerMs?: number; fetchWaitMs?: number;
    lockKey?: (event: OrderEvent) => string;
    /** runs first in every handler call, inside the transaction (to look at it from another session) */
    beforeEffect?: (event: OrderEvent) => Promise<void>;
  } = {}): Promise<InboxConsumer<OrderEvent>> {
    const { lingerMs, fetchWaitMs, beforeEffect, ...spec } = options;
    // its own Kafka client, counted, so offset commits can be told apart from the test's own requests
    const kafka = createKafka({ clientId: 'consumer-batch', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
    instrumentKafka(kafka, metrics);
    const flaky = new Set<string>();
    const consumer = new InboxConsumer<OrderEvent>({
      group: 'batch.effects',
      streams: [Streams.orders],
      maxAttempts: 3,
      ...spec,
      async handle(event, { trx }) {
        await beforeEffect?.(event);
        if (event.type === 'OrderCancelled' && event.payload.reason === 'poison') throw new AppError('POISON', 'never processable');
        // fails once, as a database blip would
        if (event.type === 'OrderCancelled' && event.payload.reason === 'flaky' && !flaky.has(event.eventId)) {
          flaky.add(event.eventId);
          throw new AppError('TRANSIENT', 'try again', { retriable: true });
        }
        // a slow effect, as on a loaded machine: a slice of these takes longer than the group's session timeout (10 s)
        if (event.type === 'OrderCancelled' && event.payload.reason === 'slow') await new Promise((r) => setTimeout(r, 1_200));
        await trx('effects').insert({ event_id: event.eventId, order_id: event.orderId, txid: trx.raw('txid_current()') });
      },
    }, { kafka, db, codec, logger, metrics, namespace, lingerMs, fetchWaitMs });
    consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  const appliedInOrder = async () => (await db('effects').orderBy('id')).map((r: { order_id: string }) => r.order_id);
  const committedOffset = async () => {
    const [offsets] = await admin.fetchOffsets({ groupId: `${namespace}.batch.effects`, topics: [codec.topic(Streams.orders)] });
    return offsets!.partitions.map((p) => p.offset).filter((o) => o !== '-1');
  };
  // the broker holds the commit before kafkajs has read its answer and reported the request: the count can lag the offset
  const offsetCommitCounted = () => waitFor(async () => (await counter(metrics, 'kafka_requests_total', /api="OffsetCommit"/)) >= 1, {
    timeoutMs: 10_000, description: 'the offset commit counted',
  });
  const dlqCount = async () => (await admin.fetchTopicOffsets(dlqTopicName(Streams.orders, namespace))).reduce((sum, o) => sum + Number(o.high), 0);

  it('when 20 events arrive in one fetch, then they are applied once each in one inbox transaction and one offset commit', async () => {
    const orderIds = await sendAll(Array.from({ length: 20 }, () => 'test'));
    await startConsumer();
    await waitFor(async () => (await appliedInOrder()).length === 20, { timeoutMs: 30_000, description: 'all 20 applied' });
    await waitFor(async () => (await committedOffset())[0] === '20', { timeoutMs: 10_000, description: 'offset committed past them' });
    await offsetCommitCounted();
    expect(await appliedInOrder()).toEqual(orderIds); // partition order kept
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
    expect(await counter(metrics, 'kafka_requests_total', /api="OffsetCommit"/)).toBe(1);
    expect(await counter(metrics, 'events_consumed_total')).toBe(20);
  });

  it('when a poison message sits in the middle of a batch, then only it is dead-lettered and the others are applied once, in order', async () => {
    const orderIds = await sendAll(['test', 'test', 'poison', 'test', 'test']);
    await startConsumer();
    await waitFor(async () => (await appliedInOrder()).length === 4 && (await dlqCount()) === 1, {
      timeoutMs: 30_000, description: 'four applied and one dead letter',
    });
    expect(await appliedInOrder()).toEqual([orderIds[0], orderIds[1], orderIds[3], orderIds[4]]);
    expect(await counter(metrics, 'events_dead_lettered_total', /code="POISON"/)).toBe(1);
    // nothing more comes: the rest of the batch is committed, the poison is not retried
    await waitFor(async () => (await committedOffset())[0] === '5', { timeoutMs: 10_000, description: 'offset committed past the batch' });
    expect(await dlqCount()).toBe(1);
    expect(await appliedInOrder()).toHaveLength(4);
  });

  it('when a batch takes longer to apply than the session timeout, then the consumer stays in the group: applied once, one transaction, one offset commit', async () => {
    const orderIds = await sendAll(Array.from({ length: 10 }, () => 'slow')); // 12 s in one slice
    await startConsumer();
    await waitFor(async () => (await committedOffset())[0] === '10', { timeoutMs: 60_000, description: 'offset committed past the slow batch' });
    await offsetCommitCounted();
    expect(await appliedInOrder()).toEqual(orderIds);
    // thrown out of the group, the member's commit would be refused and the slice redone (a second transaction)
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
    expect(await counter(metrics, 'kafka_requests_total', /api="OffsetCommit"/)).toBe(1);
  }, 90_000);

  it('when one event of a batch fails transiently, then the whole batch is retried and applied in one transaction, nothing dead-lettered', async () => {
    const orderIds = await sendAll(['test', 'test', 'flaky', 'test', 'test']);
    await startConsumer();
    await waitFor(async () => (await appliedInOrder()).length === 5, { timeoutMs: 30_000, description: 'all five applied' });
    await waitFor(async () => (await committedOffset())[0] === '5', { timeoutMs: 10_000, description: 'offset committed past them' });
    expect(await appliedInOrder()).toEqual(orderIds);
    expect(await counter(metrics, 'events_retried_total', /code="TRANSIENT"/)).toBe(1);
    expect(await counter(metrics, 'db_commits_total')).toBe(1); // the retry, after the first attempt rolled back
    expect(await counter(metrics, 'events_dead_lettered_total')).toBe(0);
  });

  it('when a whole batch is delivered again, then nothing changes: every event is skipped as a duplicate', async () => {
    const orderIds = await sendAll(Array.from({ length: 10 }, () => 'test'));
    const first = await startConsumer();
    await waitFor(async () => (await appliedInOrder()).length === 10, { timeoutMs: 30_000, description: 'first delivery applied' });
    await first.stop();
    consumers = [];
    // Redelivery of the same offsets, as after a crash before the offset commit, or a replay from offset 0.
    await admin.resetOffsets({ groupId: `${namespace}.batch.effects`, topic: codec.topic(Streams.orders), earliest: true });
    const commitsBefore = await counter(metrics, 'db_commits_total');
    await startConsumer();
    await waitFor(async () => (await counter(metrics, 'events_duplicate_total')) === 10, { timeoutMs: 30_000, description: 'ten duplicates skipped' });
    expect(await appliedInOrder()).toEqual(orderIds);
    expect(await db('inbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '10' }]);
    expect(await counter(metrics, 'events_consumed_total')).toBe(10);
    expect(await counter(metrics, 'db_commits_total')).toBe(commitsBefore + 1); // the skipped batch in one transaction
  });

  it('when events arrive one fetch at a time, then their offsets go to Kafka together, not one commit request per event', async () => {
    await startConsumer({ commitIntervalMs: 5_000 });
    for (let i = 1; i <= 5; i++) {
      await sendAll(['test']); // each its own fetch and slice: the next is sent once this one is applied
      await waitFor(async () => (await appliedInOrder()).length === i, { timeoutMs: 30_000, description: `event ${i} applied` });
    }
    await waitFor(async () => (await committedOffset())[0] === '5', { timeoutMs: 30_000, description: 'offset committed past all five' });
    expect(await counter(metrics, 'db_commits_total')).toBe(5);
    expect(await counter(metrics, 'kafka_requests_total', /api="OffsetCommit"/)).toBeLessThan(5);
  });

  it('when the consumer stops, then the offsets it applied are committed before it leaves the group: nothing is re-read on restart', async () => {
    const first = await startConsumer({ commitIntervalMs: 600_000 }); // would never commit on its own within the test
    await sendAll(['test', 'test', 'test']);
    await waitFor(async () => (await appliedInOrder()).length === 3, { timeoutMs: 30_000, description: 'three applied' });
    expect(await committedOffset()).toEqual([]);
    await first.stop();
    consumers = [];
    expect(await committedOffset()).toEqual(['3']);
    await startConsumer();
    await sendAll(['test']);
    await waitFor(async () => (await appliedInOrder()).length === 4, { timeoutMs: 30_000, description: 'the next event applied after the restart' });
    expect(await counter(metrics, 'events_duplicate_total')).toBe(0);
  });

  it('when events of six partitions arrive in one fetch, then they are applied once each in ONE inbox transaction', async () => {
    const orderIds = await sendAll(['test', 'test', 'test', 'test', 'test', 'test'], { acrossPartitions: true });
    await startConsumer({ partitionsConsumedConcurrently: 6 });
    await waitFor(async () => (await appliedInOrder()).length === 6, { timeoutMs: 30_000, description: 'all six applied' });
    await waitFor(async () => (await committedOffset()).length === 6, { timeoutMs: 10_000, description: 'every partition\'s offset committed' });
    expect((await appliedInOrder()).sort()).toEqual([...orderIds].sort());
    expect(await db('effects').countDistinct<{ n: string }[]>('txid as n')).toEqual([{ n: '1' }]);
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
    // the group commit's own figures: one batch carrying the six slices
    expect(await counter(metrics, 'batch_size_count', /batcher="inbox:/)).toBe(1);
    expect(await counter(metrics, 'batch_size_sum', /batcher="inbox:/)).toBe(6);
    expect(await counter(metrics, 'events_consumed_total')).toBe(6);
  });

  it('when a joint transaction applies events of several keys, then it holds an advisory lock per key, named after its group, before any handler runs', async () => {
    // Sales' joint transactions locked orders' rows in the order their slices came, and two of them sharing orders in
    // opposite orders deadlocked: Postgres finds that after deadlock_timeout (1 s). With the keys locked first, in one
    // order, such transactions queue at the start instead.
    const orderIds = await sendAll(['test', 'test', 'test', 'test', 'test', 'test'], { acrossPartitions: true });
    const group = `${namespace}.batch.effects`;
    const seen: Array<{ free: boolean[]; otherGroupFree: boolean[] }> = [];
    await startConsumer({
      partitionsConsumedConcurrently: 6,
      lockKey: (event) => event.orderId,
      // from another session: a transaction-scoped try-lock is given up when its statement ends
      beforeEffect: async () => {
        const tryLocks = async (prefix: string) => (await db.raw(
          'select pg_try_advisory_xact_lock(hashtextextended(k, 0)) as free from unnest(?::text[]) with ordinality as l(k, n) order by n',
          [orderIds.map((id) => `${prefix}:${id}`)],
        )).rows.map((r: { free: boolean }) => r.free);
        seen.push({ free: await tryLocks(group), otherGroupFree: await tryLocks(`${namespace}.other.group`) });
      },
    });
    await waitFor(async () => (await appliedInOrder()).length === 6, { timeoutMs: 30_000, description: 'all six applied' });
    expect(await db('effects').countDistinct<{ n: string }[]>('txid as n')).toEqual([{ n: '1' }]);
    expect(seen).toHaveLength(6);
    // every handler ran with all six keys held, and only this group's names
    for (const look of seen) {
      expect(look.free).toEqual([false, false, false, false, false, false]);
      expect(look.otherGroupFree).toEqual([true, true, true, true, true, true]);
    }
    // the transaction ended and took its locks with it
    const after = await db.raw('select count(*)::int as n from pg_locks where locktype = \'advisory\'  and objid in (select (hashtextextended(k, 0) & 4294967295)::oid from unnest(?::text[]) as k)', [orderIds.map((id) => `${group}:${id}`)]);
    expect(after.rows[0].n).toBe(0);
    // the locks rode with the inbox insert: still one commit
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
  });

  it('when a joint transaction applies events of one key only, then it takes no advisory lock', async () => {
    const orderIds = await sendAll(['test', 'test'], { acrossPartitions: true });
    const held: number[] = [];
    await startConsumer({
      partitionsConsumedConcurrently: 6,
      lockKey: () => 'one-key-for-all',
      beforeEffect: async () => {
        const { rows } = await db.raw('select count(*)::int as n from pg_locks where locktype = \'advisory\' and granted and objid = (hashtextextended(?, 0) & 4294967295)::oid', [`${namespace}.batch.effects:one-key-for-all`]);
        held.push(rows[0].n);
      },
    });
    await waitFor(async () => (await appliedInOrder()).length === 2, { timeoutMs: 30_000, description: 'both applied' });
    expect((await appliedInOrder()).sort()).toEqual([...orderIds].sort());
    expect(held).toEqual([0, 0]);
  });

  it('when a linger is set, then a ready event waits before its transaction, and the events of other partitions that arrived meanwhile share the next one', async () => {
    await startConsumer({ partitionsConsumedConcurrently: 6, lingerMs: 1_500 });
    const fetches = await counter(metrics, 'kafka_requests_total', /api="Fetch"/);
    const [first] = await sendAll(['test'], { acrossPartitions: true }); // partition 0
    // the fetch that brought it has answered (a new one went out): the event waits in the linger, not applied yet
    await waitFor(async () => (await counter(metrics, 'kafka_requests_total', /api="Fetch"/)) > fetches, { timeoutMs: 10_000, description: 'the first event fetched' });
    // two events of two other partitions, sent one at a time while the first waits
    const later = await sendEach([1, 2]);
    expect(await appliedInOrder()).toEqual([]);
    await waitFor(async () => (await appliedInOrder()).length === 3, { timeoutMs: 30_000, description: 'all three applied' });
    const txOf = new Map((await db('effects').select('order_id', 'txid')).map((r: { order_id: string; txid: string }) => [r.order_id, r.txid]));
    // the first alone (its fetch brought only it), the two later ones together: two commits for three events
    expect(txOf.get(later[0]!)).toBe(txOf.get(later[1]!));
    expect(txOf.get(first!)).not.toBe(txOf.get(later[0]!));
    expect(await counter(metrics, 'db_commits_total')).toBe(2);
  });

  it('when the broker may hold a fetch, then events sent apart during one wait come in one fetch and share one transaction', async () => {
    await startConsumer({ partitionsConsumedConcurrently: 6, fetchWaitMs: 3_000 });
    // a held fetch has just answered (empty: nothing was sent yet), so the next one is held for the whole wait
    const fetches = await counter(metrics, 'kafka_requests_total', /api="Fetch"/);
    await waitFor(async () => (await counter(metrics, 'kafka_requests_total', /api="Fetch"/)) > fetches, { timeoutMs: 15_000, description: 'a held fetch answered' });
    // three events of three partitions, each its own produce request, one after another
    const sent = await sendEach([0, 1, 2]);
    await waitFor(async () => (await appliedInOrder()).length === 3, { timeoutMs: 30_000, description: 'all three applied' });
    // no linger in the service: the broker's wait gathered them, so one fetch brought all three and one commit applied them
    const txids = new Set((await db('effects').select('txid')).map((r: { txid: string }) => r.txid));
    expect(txids.size).toBe(1);
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
    expect((await appliedInOrder()).sort()).toEqual([...sent].sort());
  });

  it('when a poison message shares a joint transaction with other partitions\' events, then the others are applied once and only it is dead-lettered', async () => {
    const orderIds = await sendAll(['test', 'poison', 'test', 'flaky'], { acrossPartitions: true });
    await startConsumer({ partitionsConsumedConcurrently: 6 });
    await waitFor(async () => (await appliedInOrder()).length === 3 && (await dlqCount()) === 1, {
      timeoutMs: 30_000, description: 'three applied and one dead letter',
    });
    await waitFor(async () => (await committedOffset()).length === 4, { timeoutMs: 10_000, description: 'every partition\'s offset committed' });
    expect((await appliedInOrder()).sort()).toEqual([orderIds[0], orderIds[2], orderIds[3]].sort());
    expect(await counter(metrics, 'batch_fallbacks_total', /batcher="inbox:/)).toBeGreaterThanOrEqual(1);
    expect(await counter(metrics, 'events_dead_lettered_total', /code="POISON"/)).toBe(1);
    expect(await counter(metrics, 'events_consumed_total')).toBe(3);
    expect(await db('inbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '3' }]);
  });

  it('when several partitions are delivered again, then their joint transaction applies nothing: every event is skipped as a duplicate', async () => {
    const orderIds = await sendAll(['test', 'test', 'test'], { acrossPartitions: true });
    const first = await startConsumer({ partitionsConsumedConcurrently: 6 });
    await waitFor(async () => (await appliedInOrder()).length === 3, { timeoutMs: 30_000, description: 'first delivery applied' });
    await first.stop();
    consumers = [];
    await admin.resetOffsets({ groupId: `${namespace}.batch.effects`, topic: codec.topic(Streams.orders), earliest: true });
    const commitsBefore = await counter(metrics, 'db_commits_total');
    await startConsumer({ partitionsConsumedConcurrently: 6 });
    await waitFor(async () => (await counter(metrics, 'events_duplicate_total')) === 3, { timeoutMs: 30_000, description: 'three duplicates skipped' });
    expect((await appliedInOrder()).sort()).toEqual([...orderIds].sort());
    expect(await counter(metrics, 'events_consumed_total')).toBe(3);
    expect(await counter(metrics, 'db_commits_total')).toBe(commitsBefore + 1);
  });

  it('when events of types the handler ignores arrive among others, then they are skipped without a transaction or inbox row and their offsets commit', async () => {
    // the header is what the relay sets; the events themselves are all OrderCancelled (the handler would apply them)
    const orderIds = await sendAll(['ignored', 'test', 'ignored', 'ignored'], { eventTypeHeader: (reason) => (reason === 'ignored' ? 'OrderShipped' : 'OrderCancelled') });
    await startConsumer({ ignores: ['OrderShipped'] });
    await waitFor(async () => (await committedOffset())[0] === '4', { timeoutMs: 30_000, description: 'offset committed past all four' });
    expect(await appliedInOrder()).toEqual([orderIds[1]]);
    expect(await db('inbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '1' }]);
    expect(await counter(metrics, 'events_ignored_total', /type="OrderShipped"/)).toBe(3);
    expect(await counter(metrics, 'db_commits_total')).toBe(1);
  });
});
