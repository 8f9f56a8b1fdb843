import net from 'node:net';
import { createDb, TransactionVoided, voidUnlessRow, type Db } from '../src';
import { dropSchema, testEnv } from '../src/testing';

/**
 * Counts what a client really asks of Postgres: every exchange ends with a Sync (extended protocol) or is one simple
 * Query message, each answered by one ReadyForQuery — so their number is the number of round trips on the wire.
 */
async function startExchangeCounter(target: { host: string; port: number }) {
  let exchanges = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let buffered = Buffer.alloc(0);
    let started = false; // the startup message has no type byte
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!started) {
          if (buffered.length < 4) break;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) break;
          buffered = buffered.subarray(length);
          started = true;
          continue;
        }
        if (buffered.length < 5) break;
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) break;
        const type = String.fromCharCode(buffered[0]!);
        if (type === 'S' || type === 'Q') exchanges++;
        buffered = buffered.subarray(1 + length);
      }
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get exchanges() {
      return exchanges;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A transaction's BEGIN and voidUnlessRow's statement ride with the next statement; the semantics stay a transaction's (real Postgres). */
describe('pipelined transactions', () => {
  const env = testEnv('runtime');
  const schema = env.DB_SCHEMA!;
  let counter: Awaited<ReturnType<typeof startExchangeCounter>>;
  let pipelined: Db;
  let plain: Db;
  let observer: Db;

  beforeAll(async () => {
    const real = new URL(env.DATABASE_URL!);
    counter = await startExchangeCounter({ host: real.hostname, port: Number(real.port || 5432) });
    const proxied = new URL(real);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(counter.port);
    // one connection each: a connection left inside a transaction would show in the next test
    pipelined = createDb({ url: proxied.toString(), schema, poolMax: 1 });
    plain = createDb({ url: real.toString(), schema, poolMax: 1, pipelining: false });
    observer = createDb({ url: real.toString(), schema, poolMax: 1 });
    await observer.raw('create schema if not exists ??', [schema]);
    await observer.raw('create table seen (id text primary key)');
    await observer.raw('create table effects (id serial primary key, note text not null)');
  });
  afterAll(async () => {
    await Promise.all([pipelined.destroy(), plain.destroy(), observer.destroy()]);
    await counter.close();
    await dropSchema(schema);
  });
  beforeEach(async () => {
    await observer.raw('truncate seen, effects');
  });

  const effects = async () => (await observer('effects').orderBy('id').pluck('note')) as string[];
  /** exchanges `work` causes on the pipelined pool (its connection already open) */
  const exchangesOf = async (work: () => Promise<unknown>) => {
    await pipelined.raw('select 1'); // connects first, so the startup exchange is not counted
    const before = counter.exchanges;
    await work().catch(() => undefined);
    return counter.exchanges - before;
  };
  const guardedInsert = (db: Db, id: string, note: string) =>
    db.transaction(async (trx) => {
      await voidUnlessRow(trx, 'insert into seen (id) values (?) on conflict (id) do nothing', [id]);
      await trx('effects').insert({ note });
    });

  it('a transaction of one statement costs two round trips (statement with BEGIN, COMMIT), an empty one none', async () => {
    expect(await exchangesOf(() => pipelined.transaction((trx) => trx('effects').insert({ note: 'one' })))).toBe(2);
    expect(await exchangesOf(() => pipelined.transaction(async () => undefined))).toBe(0);
    // the event's inbox row rides along too: guard + statement + BEGIN in one exchange, then COMMIT
    expect(await exchangesOf(() => guardedInsert(pipelined, 'e1', 'guarded'))).toBe(2);
    expect(await effects()).toEqual(['one', 'guarded']);
  });

  it.each([
    ['pipelined', () => pipelined],
    ['not pipelined', () => plain],
  ])('%s: a repeated guard voids the transaction, and nothing of it commits', async (_mode, db) => {
    await guardedInsert(db(), 'e2', 'first');
    await expect(guardedInsert(db(), 'e2', 'again')).rejects.toBeInstanceOf(TransactionVoided);
    // a handler that swallows the refusal and goes on still commits nothing
    await expect(db().transaction(async (trx) => {
      await voidUnlessRow(trx, 'insert into seen (id) values (?) on conflict (id) do nothing', ['e2']);
      await trx('effects').insert({ note: 'swallowed' }).catch(() => undefined);
      await trx('effects').insert({ note: 'later' }).catch(() => undefined);
    })).rejects.toBeInstanceOf(TransactionVoided);
    // a guard with nothing after it: voided too (sent with the COMMIT when pipelined)
    await expect(db().transaction(async (trx) => {
      await voidUnlessRow(trx, 'insert into seen (id) values (?) on conflict (id) do nothing', ['e2']);
    })).rejects.toBeInstanceOf(TransactionVoided);
    expect(await effects()).toEqual(['first']);
    // the connection is not left inside a transaction: a statement outside one is visible at once
    await db()('effects').insert({ note: 'autocommit' });
    expect(await effects()).toEqual(['first', 'autocommit']);
  });

  it('a statement that fails in the first exchange rolls the transaction back and leaves the connection usable', async () => {
    await observer('seen').insert({ id: 'taken' });
    await expect(pipelined.transaction(async (trx) => {
      await trx('seen').insert({ id: 'taken' });
      await trx('effects').insert({ note: 'never' });
    })).rejects.toMatchObject({ code: '23505' });
    // a guard that fails outright (not "no row") fails the statement sent with it, and COMMIT is never reached
    await expect(pipelined.transaction(async (trx) => {
      await voidUnlessRow(trx, 'insert into seen (id) values (?)', ['taken']);
      await trx('effects').insert({ note: 'never either' });
    })).rejects.toMatchObject({ code: '23505' });
    // and when the failing guard was sent with the COMMIT, the transaction is rolled back before the connection is reused
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'rolled back with the guard' });
      await voidUnlessRow(trx, 'insert into seen (id) values (?)', ['taken']);
    })).rejects.toMatchObject({ code: '23505' });
    await pipelined('effects').insert({ note: 'after' });
    expect(await effects()).toEqual(['after']);
  });

  it('rows come back from a pipelined first statement, prepared or not, and a rollback undoes it', async () => {
    for (const note of ['a', 'b', 'c']) {
      const rows = await pipelined.transaction((trx) => trx('effects').insert({ note }).returning(['note']));
      expect(rows).toEqual([{ note }]);
    }
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'undone' });
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    expect(await effects()).toEqual(['a', 'b', 'c']);
    const statements = (await pipelined.raw<{ rows: { statement: string }[] }>('select statement from pg_prepared_statements')).rows;
    expect(statements.filter((s) => s.statement.startsWith('insert into "effects"'))).not.toHaveLength(0);
  });
});
