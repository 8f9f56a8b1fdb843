import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { ensureTopics, EventCodec, type SubjectKey } from '@postsale/contracts';
import { createDb, createKafka, createLogger, localInfraEnv, Metrics, migrate, SubjectKeyReplica, subjectKeysMigration, type Db } from '../src';
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
});
