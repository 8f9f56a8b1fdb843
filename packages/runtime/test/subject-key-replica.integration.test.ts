import { randomBytes, randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { ensureTopics, EventCodec, type OrderReceived, type SubjectKey } from '@postsale/contracts';
import {
  createDb, createKafka, createLogger, keyEncryptionKey, localInfraEnv, Metrics, migrate, newDataKey, openOrderReceived, sealOrderReceived, SubjectKeyReplica,
  subjectKeysMigration, type Db,
} from '../src';
import { dropSchema, testNamespace, uniqueId, waitFor } from '../src/testing';

/**
 * A service's copy of the data subjects' keys (real Kafka, registry and Postgres): the keys of the partitions one fetch
 * brought are stored by one statement, and an erasure among them still wins.
 */
describe('subject-key replica', () => {
  const infra = localInfraEnv();
  const logger = createLogger('subject-key-replica', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  let namespace: string;
  let schema: string;
  let db: Db;
  let codec: EventCodec;
  let producer: Producer;
  let replica: SubjectKeyReplica | undefined;
  const kafka = createKafka({ clientId: 'subject-key-replica', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });

  beforeEach(async () => {
    namespace = testNamespace();
    schema = uniqueId('t_skr_');
    await ensureTopics(kafka, { namespace, streams: [] }); // the subject-keys topic only
    db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 4 });
    await migrate(db, schema, [subjectKeysMigration]);
    codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
    producer = kafka.producer();
    await producer.connect();
  });
  afterEach(async () => {
    await replica?.stop();
    replica = undefined;
    await producer.disconnect();
    await db.destroy();
    await dropSchema(schema);
  });

  /** One record to each partition (the first to partition 0, and so on), in one request. */
  async function sendAcrossPartitions(records: SubjectKey[]): Promise<void> {
    const messages = [];
    // one at a time: the first encode registers the schema, and concurrent registrations of it conflict
    for (const [i, record] of records.entries()) messages.push({ partition: i, key: record.subjectId, value: await codec.encodeSubjectKey(record) });
    await producer.send({ topic: codec.subjectKeysTopic(), acks: -1, messages });
  }

  const key = (subjectId = randomUUID()): SubjectKey => ({ subjectId, sealedKey: `sealed-${subjectId}`, erasedAt: null, occurredAt: Date.now() });

  it('when keys of six partitions arrive in one fetch, then one statement stores them all', async () => {
    const records = Array.from({ length: 6 }, () => key());
    await sendAcrossPartitions(records);
    const inserts: string[] = [];
    const countInserts = (q: { sql: string }) => {
      if (/^insert into subject_keys/.test(q.sql)) inserts.push(q.sql);
    };
    db.on('query', countInserts);
    const metrics = new Metrics('subject-key-replica', { defaultMetrics: false });
    replica = new SubjectKeyReplica({ kafka, db, codec, logger, metrics, namespace, group: uniqueId('skr.') });
    replica.start();
    await waitFor(async () => (await db('subject_keys').count<{ n: string }[]>('* as n'))[0]!.n === '6', { timeoutMs: 30_000, description: 'six keys stored' });
    db.off('query', countInserts);
    expect(inserts).toHaveLength(1);
    const stored = await db('subject_keys').select('subject_id', 'sealed_key');
    expect(stored.map((r: { subject_id: string; sealed_key: string }) => [r.subject_id, r.sealed_key]).sort())
      .toEqual(records.map((r) => [r.subjectId, r.sealedKey]).sort());
  });

  it('when one of the partitions brings a subject\'s erasure, then the erasure is stored beside the others\' keys and wins over the key', async () => {
    const erasedSubject = randomUUID();
    // the subject's key, then its erasure, in partition 0; other subjects' keys in partitions 1 and 2
    await producer.send({ topic: codec.subjectKeysTopic(), acks: -1, messages: [{ partition: 0, key: erasedSubject, value: await codec.encodeSubjectKey(key(erasedSubject)) }] });
    const erasure: SubjectKey = { subjectId: erasedSubject, sealedKey: null, erasedAt: Date.now(), occurredAt: Date.now() };
    const others = [key(), key()];
    await sendAcrossPartitions([erasure, ...others]);
    const metrics = new Metrics('subject-key-replica', { defaultMetrics: false });
    replica = new SubjectKeyReplica({ kafka, db, codec, logger, metrics, namespace, group: uniqueId('skr.') });
    replica.start();
    await waitFor(async () => (await db('subject_keys').count<{ n: string }[]>('* as n'))[0]!.n === '3', { timeoutMs: 30_000, description: 'three subjects stored' });
    expect(await db('subject_keys').where({ subject_id: erasedSubject }).first('sealed_key', 'erased_at')).toEqual({ sealed_key: null, erased_at: expect.any(Date) });
    for (const other of others) expect(await db('subject_keys').where({ subject_id: other.subjectId }).first('sealed_key')).toEqual({ sealed_key: other.sealedKey });
  });

  const kek = keyEncryptionKey({ NODE_ENV: 'test', PERSONAL_DATA_KEY: randomBytes(32).toString('base64') });
  const newSubject = () => ({ subjectId: randomUUID(), dataKey: newDataKey() });
  const record = (s: { subjectId: string; dataKey: Buffer }): SubjectKey => ({ subjectId: s.subjectId, sealedKey: kek.wrap(s.dataKey, s.subjectId), erasedAt: null, occurredAt: Date.now() });
  const order: OrderReceived = {
    marketplace: 'PAYPAL_STOREFRONT', externalOrderId: 'INV-1', marketplaceAccountId: 'shop',
    lines: [{ lineId: 'l1', listingId: 'p1', sku: null, title: 'Mug', quantity: 1, unitPrice: { amountMinor: 1200, currency: 'EUR' } }],
    buyer: { externalId: 'b1', name: 'Jo Doe', email: 'jo@example.com' },
    shipTo: { fullName: 'Jo Doe', line1: 'Hauptstr. 1', line2: null, city: 'Berlin', region: 'BE', postalCode: '10115', countryCode: 'DE', phone: null },
    shipToIssue: null, itemsAmount: { amountMinor: 1200, currency: 'EUR' }, shippingAmount: { amountMinor: 0, currency: 'EUR' },
    saleAmount: { amountMinor: 1200, currency: 'EUR' }, marketplaceFee: null, paymentFee: null, paymentReference: null, receivedAt: Date.now(),
  };
  /** an order of `subject`, opened in its own inbox-like transaction with the replica's held keys */
  const openOrderOf = (subject: { subjectId: string; dataKey: Buffer }, held: SubjectKeyReplica['held']) => {
    const orderId = `ord_${randomUUID()}`;
    return db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealOrderReceived(order, orderId, subject), { held }));
  };
  /** the group's committed offset of each partition, in partition order ('-1': none) */
  async function committedOffsets(group: string): Promise<string[]> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId: `${namespace}.${group}`, topics: [codec.subjectKeysTopic()] });
      return offsets!.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset);
    } finally {
      await admin.disconnect();
    }
  }

  it('when a key is held, then an order of this process stores it in its own transaction, the replica stores only the key nobody took, and both partitions\' offsets are committed', async () => {
    const [taken, untaken] = [newSubject(), newSubject()];
    await sendAcrossPartitions([record(taken), record(untaken)]);
    const replicaInserts: unknown[][] = [];
    const countInserts = (q: { sql: string; bindings?: unknown[] }) => {
      if (/^insert into subject_keys/.test(q.sql)) replicaInserts.push(q.bindings ?? []);
    };
    db.on('query', countInserts);
    const group = uniqueId('skr.');
    const metrics = new Metrics('subject-key-replica', { defaultMetrics: false });
    replica = new SubjectKeyReplica({ kafka, db, codec, logger, metrics, namespace, group, holdMs: 3_000 });
    replica.start();
    const held = replica.held;
    await waitFor(async () => held.sealedKeyOf(taken.subjectId) !== undefined, { timeoutMs: 30_000, description: 'the key read and held' });

    expect((await openOrderOf(taken, held)).shipTo).toEqual(order.shipTo);

    // committed: the taken key's partition once the order committed, the other's once the replica stored its key
    await waitFor(async () => (await committedOffsets(group)).slice(0, 2).every((o) => o === '1'), { timeoutMs: 30_000, description: 'both partitions committed' });
    db.off('query', countInserts);
    expect(await db('subject_keys').whereIn('subject_id', [taken.subjectId, untaken.subjectId]).count<{ n: string }[]>('* as n')).toEqual([{ n: '2' }]);
    // the replica's one statement stored the untaken key alone (the order's statement begins "with stored as")
    expect(replicaInserts).toEqual([[untaken.subjectId, expect.any(String), null]]);
    // and the metric says who stored them
    const stored = await metrics.registry.getSingleMetricAsString('subject_keys_stored_total');
    expect(stored).toMatch(/subject_keys_stored_total\{by="order"[^}]*\} 1$/m);
    expect(stored).toMatch(/subject_keys_stored_total\{by="replica"[^}]*\} 1$/m);
  });

  it('when a key is held, then the next batch of its partition is read meanwhile, and an offset is committed only once every earlier key of the partition is stored', async () => {
    const [first, second] = [newSubject(), newSubject()];
    const group = uniqueId('skr.');
    const metrics = new Metrics('subject-key-replica', { defaultMetrics: false });
    replica = new SubjectKeyReplica({ kafka, db, codec, logger, metrics, namespace, group, holdMs: 5_000 });
    replica.start();
    const held = replica.held;
    await producer.send({ topic: codec.subjectKeysTopic(), acks: -1, messages: [{ partition: 0, key: first.subjectId, value: await codec.encodeSubjectKey(record(first)) }] });
    await waitFor(async () => held.sealedKeyOf(first.subjectId) !== undefined, { timeoutMs: 30_000, description: 'the first key held' });
    await producer.send({ topic: codec.subjectKeysTopic(), acks: -1, messages: [{ partition: 0, key: second.subjectId, value: await codec.encodeSubjectKey(record(second)) }] });
    // read while the first batch is still held (its hold is 5 s)
    await waitFor(async () => held.sealedKeyOf(second.subjectId) !== undefined, { timeoutMs: 4_000, description: 'the second key held while the first still is' });
    await openOrderOf(second, held);
    // the second batch is stored (by its order) and released, the first still held: nothing may be committed past it
    await waitFor(async () => held.sealedKeyOf(second.subjectId) === undefined, { timeoutMs: 4_000, description: 'the second batch released' });
    expect(held.sealedKeyOf(first.subjectId)).toBeDefined();
    expect((await committedOffsets(group))[0]).toBe('-1');
    // the first hold ends: the replica stores that key, and the partition is committed past both
    await waitFor(async () => (await committedOffsets(group))[0] === '2', { timeoutMs: 30_000, description: 'partition 0 committed past both keys' });
    expect(await db('subject_keys').whereIn('subject_id', [first.subjectId, second.subjectId]).count<{ n: string }[]>('* as n')).toEqual([{ n: '2' }]);
  });
});
