import net from 'node:net';
import knex, { type Knex } from 'knex';
import { Kafka, logLevel } from 'kafkajs';
import { DatabaseError } from 'pg';
import { EventCodec } from '@postsale/contracts';
import { AppError, classifyError, isRetriable, kafkaClientSecurity, localInfraEnv } from '../src';
import { uniqueId } from '../src/testing';

/**
 * The one classification of failures, on real error objects: produced against the real Postgres, Kafka and registry
 * wherever a real one can be provoked, hand-made only for server states a test cannot cause (e.g. 57P03).
 */
const DATABASE_URL = localInfraEnv().DATABASE_URL!;
const BROKERS = localInfraEnv().KAFKA_BROKERS!.split(',');

async function caught(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, got none');
}

async function server(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    onConnection(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}

async function closedPort(): Promise<number> {
  const s = await server(() => undefined);
  await s.close();
  return s.port;
}

const quiet = { warn: () => undefined, error: () => undefined, debug: () => undefined, deprecate: () => undefined };
const pgAt = (port: number, extra: Partial<Knex.Config> = {}, connection: Record<string, unknown> = {}) =>
  knex({ client: 'pg', connection: { connectionString: `postgres://postgres@127.0.0.1:${port}/postsale`, ...connection }, pool: { min: 0, max: 1 }, log: quiet, ...extra });

describe('classifyError on real failures', () => {
  let db: Knex;
  let table: string;
  beforeAll(async () => {
    db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 6 } });
    table = uniqueId('classify_');
    await db.raw('create table public.?? (id int primary key, v int not null)', [table]);
    await db(`public.${table}`).insert([{ id: 1, v: 0 }, { id: 2, v: 0 }]);
  });
  afterAll(async () => {
    await db.raw('drop table if exists public.??', [table]);
    await db.destroy();
  });

  describe('transient: retried for as long as it lasts', () => {
    it('Postgres refusing connections (ECONNREFUSED)', async () => {
      const k = pgAt(await closedPort());
      const error = await caught(() => k.raw('select 1'));
      await k.destroy();
      expect(error).toMatchObject({ code: 'ECONNREFUSED' });
      expect(classifyError(error)).toEqual({ kind: 'transient', code: 'CONNECTION_FAILED' });
    });

    it('a connection reset while connecting (ECONNRESET)', async () => {
      const s = await server((socket) => socket.resetAndDestroy());
      const k = pgAt(s.port);
      const error = await caught(() => k.raw('select 1'));
      await k.destroy();
      await s.close();
      expect(error).toMatchObject({ code: 'ECONNRESET' });
      expect(classifyError(error).kind).toBe('transient');
    });

    it('a server that closes the connection ("Connection terminated unexpectedly")', async () => {
      const s = await server((socket) => socket.end());
      const k = pgAt(s.port);
      const error = await caught(() => k.raw('select 1'));
      await k.destroy();
      await s.close();
      expect((error as Error).message).toMatch(/Connection terminated/);
      expect(classifyError(error)).toEqual({ kind: 'transient', code: 'DB_UNAVAILABLE' });
    });

    it('a server that never answers: connect timeout, and knex pool acquire timeout', async () => {
      const s = await server(() => undefined);
      const withConnectTimeout = pgAt(s.port, {}, { connectionTimeoutMillis: 200 });
      const connectTimeout = await caught(() => withConnectTimeout.raw('select 1'));
      await withConnectTimeout.destroy();
      const withAcquireTimeout = pgAt(s.port, { acquireConnectionTimeout: 300 });
      const acquireTimeout = await caught(() => withAcquireTimeout.raw('select 1'));
      await s.close(); // ends the connect still pending in the pool, so destroy() need not wait for it
      await withAcquireTimeout.destroy();
      expect((connectTimeout as Error).message).toMatch(/timeout/i);
      expect(classifyError(connectTimeout).kind).toBe('transient');
      expect(acquireTimeout).toMatchObject({ name: 'KnexTimeoutError' });
      expect(classifyError(acquireTimeout)).toEqual({ kind: 'transient', code: 'DB_TIMEOUT' });
    });

    it('a pool exhausted by other work (knex acquire timeout on the real server)', async () => {
      const k = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 200, log: quiet });
      const held = await k.transaction();
      const error = await caught(() => k.raw('select 1'));
      await held.rollback();
      await k.destroy();
      expect(error).toMatchObject({ name: 'KnexTimeoutError' });
      expect(classifyError(error).kind).toBe('transient');
    });

    it('a backend terminated by an administrator (57P01), and the dead connection afterwards', async () => {
      const k = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
      const pid = (await k.raw('select pg_backend_pid() as pid')).rows[0].pid;
      const inFlight = caught(() => k.raw('select pg_sleep(10)'));
      await waitUntilActive(pid);
      await db.raw('select pg_terminate_backend(?)', [pid]);
      const terminated = await inFlight;
      const next = await k.raw('select 1').then(() => undefined, (e: unknown) => e);
      await k.destroy();
      expect(terminated).toMatchObject({ code: '57P01' });
      expect(classifyError(terminated)).toEqual({ kind: 'transient', code: 'DB_UNAVAILABLE' });
      // pg may or may not hand out the dead connection again; if it does, that failure is transient too
      if (next) expect(classifyError(next).kind).toBe('transient');
    });

    it('a serialization failure (40001) between two serializable transactions', async () => {
      const t1 = await db.transaction({ isolationLevel: 'serializable' });
      const t2 = await db.transaction({ isolationLevel: 'serializable' });
      await t1(`public.${table}`).sum('v');
      await t2(`public.${table}`).sum('v');
      await t1(`public.${table}`).where({ id: 1 }).increment('v', 1);
      await t2(`public.${table}`).where({ id: 2 }).increment('v', 1);
      await t1.commit();
      // knex reports a failed COMMIT through the transaction's promise, not commit()'s
      const error = await caught(async () => {
        await t2.commit();
        await t2.executionPromise;
      });
      expect(error).toMatchObject({ code: '40001' });
      expect(classifyError(error)).toEqual({ kind: 'transient', code: 'DB_CONFLICT' });
    });

    it('a deadlock (40P01)', async () => {
      const t1 = await db.transaction();
      const t2 = await db.transaction();
      await t1(`public.${table}`).where({ id: 1 }).update({ v: 5 });
      await t2(`public.${table}`).where({ id: 2 }).update({ v: 5 });
      const outcomes = await Promise.allSettled([
        t1(`public.${table}`).where({ id: 2 }).update({ v: 6 }),
        t2(`public.${table}`).where({ id: 1 }).update({ v: 6 }),
      ]);
      await t1.rollback().catch(() => undefined);
      await t2.rollback().catch(() => undefined);
      const errors = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: '40P01' });
      expect(classifyError(errors[0])).toEqual({ kind: 'transient', code: 'DB_CONFLICT' });
    });

    it('a statement timeout (57014)', async () => {
      const error = await caught(() => db.transaction(async (trx) => {
        await trx.raw('set local statement_timeout = 50');
        await trx.raw('select pg_sleep(2)');
      }));
      expect(error).toMatchObject({ code: '57014' });
      expect(classifyError(error).kind).toBe('transient');
    });

    it('server states a test cannot cause: shutdown, cannot connect now, connection failure, too many connections', () => {
      for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300']) {
        const error = Object.assign(new DatabaseError('server says no', 0, 'error'), { code });
        expect([code, classifyError(error).kind]).toEqual([code, 'transient']);
      }
    });

    it('Kafka unreachable (kafkajs connection error after its retries)', async () => {
      const kafka = new Kafka({ clientId: 'classify', brokers: [`127.0.0.1:${await closedPort()}`], logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 50 } });
      const producer = kafka.producer();
      const error = await caught(() => producer.connect());
      await producer.disconnect().catch(() => undefined);
      expect((error as Error).name).toMatch(/^KafkaJS/);
      expect(classifyError(error)).toEqual({ kind: 'transient', code: 'KAFKA_UNAVAILABLE' });
    });

    it('the schema registry unreachable (its client flattens ECONNREFUSED into a status 400)', async () => {
      const codec = EventCodec.connect(`http://127.0.0.1:${await closedPort()}/apis/ccompat/v7`);
      const error = await caught(() => codec.decode(Buffer.from([0, 0, 0, 0, 1, 2])));
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
      expect(classifyError(error)).toEqual({ kind: 'transient', code: 'REGISTRY_UNAVAILABLE' });
    });

    it('an HTTP call to a host that is down (fetch failed)', async () => {
      const port = await closedPort();
      const error = await caught(() => fetch(`http://127.0.0.1:${port}/`));
      expect(classifyError(error).kind).toBe('transient');
    });

    it('a retriable AppError, and a non-retriable one whose cause is a real connection refusal', async () => {
      expect(classifyError(new AppError('SUPPLIER_DOWN', 'later', { retriable: true }))).toEqual({ kind: 'transient', code: 'SUPPLIER_DOWN' });
      const k = pgAt(await closedPort());
      const refused = await caught(() => k.raw('select 1'));
      await k.destroy();
      const wrapped = new AppError('LOAD_FAILED', 'could not load the order', { cause: refused });
      expect(classifyError(wrapped)).toEqual({ kind: 'transient', code: 'LOAD_FAILED' });
    });
  });

  describe('caused by the message: dead-lettered', () => {
    it('a non-retriable AppError', () => {
      expect(classifyError(new AppError('IMPOSSIBLE_STATE', 'refund before sale'))).toEqual({ kind: 'permanent', code: 'IMPOSSIBLE_STATE' });
      expect(isRetriable(new AppError('IMPOSSIBLE_STATE', 'x'))).toBe(false);
    });

    it('bytes the registry has no schema for (404 from the real registry)', async () => {
      const codec = EventCodec.connect(localInfraEnv().SCHEMA_REGISTRY_URL!);
      const error = await caught(() => codec.decode(Buffer.from([0, 0x7f, 0x7f, 0x7f, 0x7f, 1, 2])));
      expect(classifyError(error).kind).not.toBe('transient');
    });
  });

  describe('unknown (bounded retries, then dead letter)', () => {
    it('bad data and constraint violations from the real server, and plain bugs', async () => {
      const badInput = await caught(() => db.raw("select 'x'::int"));
      const duplicate = await caught(() => db(`public.${table}`).insert({ id: 1, v: 0 }));
      expect(badInput).toMatchObject({ code: '22P02' });
      expect(duplicate).toMatchObject({ code: '23505' });
      for (const error of [badInput, duplicate, new TypeError("Cannot read properties of undefined (reading 'id')")]) {
        expect(classifyError(error)).toEqual({ kind: 'unknown', code: 'INTERNAL' });
        expect(isRetriable(error)).toBe(true);
      }
    });

    it('a message the real broker refuses as too large (kafkajs non-retriable protocol error)', async () => {
      const kafka = new Kafka({ clientId: 'classify', brokers: BROKERS, ...kafkaClientSecurity(localInfraEnv()), logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      const topic = uniqueId('t-classify-');
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, configEntries: [{ name: 'max.message.bytes', value: '1024' }] }], waitForLeaders: true });
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        const error = await caught(() => producer.send({ topic, messages: [{ value: Buffer.alloc(4096, 1) }] }));
        expect(error).toMatchObject({ name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE' });
        expect(classifyError(error).kind).toBe('unknown');
      } finally {
        await producer.disconnect();
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.disconnect();
      }
    });
  });

  async function waitUntilActive(pid: number): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const row = (await db.raw("select state from pg_stat_activity where pid = ? and state = 'active'", [pid])).rows[0];
      if (row) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`backend ${pid} never became active`);
  }
});
