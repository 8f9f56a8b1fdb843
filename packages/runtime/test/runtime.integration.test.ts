import { randomUUID } from 'node:crypto';
import { dlqTopicName, Streams } from '@postsale/contracts';
import { createKafka, createLogger, createServiceDb, DLQ_HEADERS, Metrics, OutboxRelay, startService, type RunningService } from '../src';
import { collectTopic, dropSchema, testEnv, waitFor } from '../src/testing';
import { fixtureService } from './fixture-service';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };

describe('shared runtime on real Kafka, registry and Postgres', () => {
  let env: Record<string, string>;
  let service: RunningService;

  beforeEach(async () => {
    env = testEnv('runtime');
    service = await startService(fixtureService, env);
  });
  afterEach(async () => {
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify(body) });
  const effects = (orderId: string) => service.ctx.db('effects').where({ order_id: orderId });

  it('when a state change commits, its event goes outbox -> Kafka -> inbox and the effect happens once', async () => {
    const orderId = `o-${randomUUID()}`;
    expect((await post('/things', { orderId })).status).toBe(201);
    await waitFor(async () => (await effects(orderId)).length === 1, { description: 'effect recorded' });
    // published rows are deleted by the relay: the inbox, keyed by event id, shows the one delivery
    await waitFor(async () => (await service.ctx.db('outbox').where({ key: orderId })).length === 0, { description: 'its outbox row deleted' });
    const [effect] = await effects(orderId);
    const inbox = await service.ctx.db('inbox').where({ event_id: effect.event_id });
    expect(inbox).toHaveLength(1);
  });

  it('when the relay dies after Kafka acknowledged but before deleting the row, the restart republishes and the effect still happens once', async () => {
    // Stop the service's own relay so only the crashing one below publishes.
    await service.relay.stop();
    const orderId = `o-${randomUUID()}`;
    expect((await post('/things', { orderId })).status).toBe(201);
    const { kafka, codec, db, logger } = service.ctx;
    const metrics = new Metrics('relay-test', { defaultMetrics: false });
    const base = { db, schema: env.DB_SCHEMA!, kafka, codec, logger, metrics };
    const crashing = new OutboxRelay({ ...base, afterPublishBeforeMark: async () => { throw new Error('simulated crash'); } });
    await crashing.connect();
    await expect(crashing.drainOnce()).rejects.toThrow('simulated crash');
    await crashing.stop(0); // dies: no flush
    expect((await db('outbox').where({ key: orderId }).first()).published_at).toBeNull();

    const restarted = new OutboxRelay(base);
    await restarted.start();
    try {
      await waitFor(async () => (await db('outbox').where({ key: orderId })).length === 0, { description: 'row deleted once sent' });
      const topic = collectTopic(kafka, codec, codec.topic(Streams.orders));
      const collected = await topic;
      // Published twice on the wire...
      await waitFor(() => collected.messages.filter((m) => m.event.orderId === orderId).length === 2, { description: 'two copies on the topic' });
      await collected.stop();
      // ...yet applied once.
      await waitFor(async () => (await effects(orderId)).length === 1, { description: 'effect recorded' });
      const skipped = await service.ctx.metrics.registry.getSingleMetricAsString('events_duplicate_total');
      expect(skipped).toMatch(/events_duplicate_total\{[^}]*\} 1/);
      expect(await effects(orderId)).toHaveLength(1);
    } finally {
      await restarted.stop();
    }
  });

  it('a poison message lands in the DLQ with its reason and the consumer goes on with the next message', async () => {
    const { kafka, codec } = service.ctx;
    const poisonId = `o-${randomUUID()}`;
    const nextId = `o-${randomUUID()}`;
    // An undecodable message (not Confluent wire format) and an event whose handler fails permanently.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: codec.topic(Streams.orders), messages: [{ key: 'garbage', value: Buffer.from('not avro at all') }] });
    await producer.disconnect();
    await post('/things', { orderId: poisonId, reason: 'poison' });
    await post('/things', { orderId: nextId });

    await waitFor(async () => (await effects(nextId)).length === 1, { description: 'the next message processed' });
    const dlq = await collectTopic(kafka, undefined, dlqTopicName(Streams.orders, env.TOPIC_NAMESPACE));
    await waitFor(() => dlq.raw.length === 2, { description: 'two dead letters' });
    await dlq.stop();
    const byCode = Object.fromEntries(dlq.raw.map((m) => [m.headers[DLQ_HEADERS.errorCode], m.headers]));
    expect(byCode.UNDECODABLE?.[DLQ_HEADERS.topic]).toBe(codec.topic(Streams.orders));
    expect(byCode.POISON?.[DLQ_HEADERS.errorMessage]).toBe('this event can never be processed');
    expect(byCode.POISON?.[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
    expect(byCode.POISON?.[DLQ_HEADERS.group]).toContain('fixture.effects');
    expect(await effects(poisonId)).toHaveLength(0);
  });

  it('a retriable failure is retried with backoff and then succeeds, once', async () => {
    const orderId = `o-${randomUUID()}`;
    await post('/things', { orderId, reason: 'flaky-2' });
    await waitFor(async () => (await effects(orderId)).length === 1, { description: 'effect after retries' });
    expect(await service.ctx.metrics.registry.getSingleMetricAsString('events_retried_total')).toMatch(/code="TRANSIENT"[^\n]* 2/);
  });

  it('answers /healthz, /readyz and /metrics, and bad input gets a JSON error with a code, never a 5xx', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${service.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: 'ok', kafka: 'ok' } });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain('http_requests_total');
    expect(metrics).toContain('outbox_lag_seconds');
    expect(metrics).toContain('process_resident_memory_bytes');

    const malformed = await fetch(`${service.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orderId":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: { code: 'MALFORMED_JSON', message: expect.any(String) } });
    const invalid = await post('/things', { orderId: 42 });
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.code).toBe('INVALID_REQUEST');
    const huge = await post('/things', { orderId: 'x'.repeat(300 * 1024) });
    expect(huge.status).toBe(413);
    expect((await huge.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await service.ctx.db('things')).toHaveLength(0);
    const missing = await fetch(`${service.url}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('NOT_FOUND');
  });

  it("names its Postgres sessions after its schema, so pg_stat_activity tells which service holds or waits for what", async () => {
    const sessionOf = async (db: typeof service.ctx.db) =>
      (await db.raw('select current_setting(\'application_name\') as name, pg_backend_pid() as pid')).rows[0] as { name: string; pid: number };
    const own = await sessionOf(service.ctx.db);
    expect(own.name).toBe(env.DB_SCHEMA);
    // what another session (an operator's, the benchmark's sampler) sees
    const seen = await service.ctx.db.raw('select application_name from pg_stat_activity where pid = ?', [own.pid]);
    expect(seen.rows).toEqual([{ application_name: env.DB_SCHEMA }]);
    // a second pool is told apart by its purpose; a name in the URL is the operator's and wins
    const acks = createServiceDb(service.ctx.config, { poolMax: 1, logger: createLogger('t', 'error'), purpose: 'acks' });
    const named = createServiceDb(
      { ...service.ctx.config, DATABASE_URL: `${env.DATABASE_URL}${env.DATABASE_URL!.includes('?') ? '&' : '?'}application_name=ops-console` },
      { poolMax: 1, logger: createLogger('t', 'error') },
    );
    try {
      expect((await sessionOf(acks)).name).toBe(`${env.DB_SCHEMA}/acks`);
      expect((await sessionOf(named)).name).toBe('ops-console');
    } finally {
      await Promise.all([acks.destroy(), named.destroy()]);
    }
  });

  it('with BACKGROUND_WORKERS=false a replica serves HTTP and consumes, but starts no background worker', async () => {
    expect(service.workers.map((w) => w.name)).toContain('inbox-retention');
    const webOnly = await startService(fixtureService, { ...env, PORT: '0', BACKGROUND_WORKERS: 'false' });
    try {
      expect(webOnly.workers).toEqual([]);
      const orderId = `o-${randomUUID()}`;
      const res = await fetch(`${webOnly.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ orderId }) });
      expect(res.status).toBe(201);
      await waitFor(async () => (await effects(orderId)).length === 1, { description: 'effect recorded by one of the two replicas' });
    } finally {
      await webOnly.stop();
    }
  });
});

describe('kafka client logging', () => {
  it('routes kafkajs logs through the redacting logger', () => {
    expect(createKafka({ clientId: 'x', brokers: ['127.0.0.1:9092'], logger: createLogger('x', 'silent') })).toBeDefined();
  });
});
