import { commitWithNext, createDb, holdOpen, TransactionVoided, voidIfDuplicate, writeWithNext, type Db } from '../src';
import { dropSchema, startTcpProxy, testEnv, type TcpProxy } from '../src/testing';

/**
 * Counts what a client really asks of Postgres, reading the bytes it sends on one connection: every exchange ends with
 * a Sync (extended protocol) or is one simple Query message, each answered by one ReadyForQuery — so their number is
 * the number of round trips on the wire.
 */
function exchangeReader(count: () => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  let started = false; // the startup message has no type byte
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (!started) {
        if (buffered.length < 4) return;
        const length = buffered.readInt32BE(0);
        if (buffered.length < length) return;
        buffered = buffered.subarray(length);
        started = true;
        continue;
      }
      if (buffered.length < 5) return;
      const length = buffered.readInt32BE(1);
      if (buffered.length < 1 + length) return;
      const type = String.fromCharCode(buffered[0]!);
      if (type === 'S' || type === 'Q') count();
      buffered = buffered.subarray(1 + length);
    }
  };
}

/**
 * A transaction's BEGIN and voidIfDuplicate's statement ride with the next statement, its COMMIT with the statement
 * after commitWithNext; the semantics stay a transaction's (real Postgres).
 */
describe('pipelined transactions', () => {
  const env = testEnv('runtime');
  const schema = env.DB_SCHEMA!;
  let proxy: TcpProxy;
  let exchanges = 0;
  let pipelined: Db;
  let plain: Db;
  let observer: Db;

  beforeAll(async () => {
    const real = new URL(env.DATABASE_URL!);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) }, { watchClient: () => exchangeReader(() => exchanges++) });
    const proxied = new URL(real);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
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
    await proxy.close();
    await dropSchema(schema);
  });
  beforeEach(async () => {
    await observer.raw('truncate seen, effects');
  });

  const effects = async () => (await observer('effects').orderBy('id').pluck('note')) as string[];
  /** exchanges `work` causes on the pipelined pool (its connection already open) */
  const exchangesOf = async (work: () => Promise<unknown>) => {
    await pipelined.raw('select 1'); // connects first, so the startup exchange is not counted
    const before = exchanges;
    await work().catch(() => undefined);
    return exchanges - before;
  };
  const guardedInsert = (db: Db, id: string, note: string) =>
    db.transaction(async (trx) => {
      await voidIfDuplicate(trx, 'insert into seen (id) values (?)', [id]);
      await trx('effects').insert({ note });
    });

  it('a transaction of one statement costs two round trips (statement with BEGIN, COMMIT), an empty one none', async () => {
    expect(await exchangesOf(() => pipelined.transaction((trx) => trx('effects').insert({ note: 'one' })))).toBe(2);
    expect(await exchangesOf(() => pipelined.transaction(async () => undefined))).toBe(0);
    // the event's inbox row rides along too: guard + statement + BEGIN in one exchange, then COMMIT
    expect(await exchangesOf(() => guardedInsert(pipelined, 'e1', 'guarded'))).toBe(2);
    expect(await effects()).toEqual(['one', 'guarded']);
  });

  it('after commitWithNext the last statement and the COMMIT go together: a guarded one-statement transaction is one round trip', async () => {
    const guardedLast = (db: Db, id: string, note: string) =>
      db.transaction(async (trx) => {
        await voidIfDuplicate(trx, 'insert into seen (id) values (?)', [id]);
        await commitWithNext(trx);
        return trx('effects').insert({ note }).returning(['note']);
      });
    expect(await exchangesOf(() => pipelined.transaction(async (trx) => {
      await commitWithNext(trx);
      await trx('effects').insert({ note: 'alone' });
    }))).toBe(1);
    let rows: unknown;
    expect(await exchangesOf(async () => (rows = await guardedLast(pipelined, 'c1', 'guarded last')))).toBe(1);
    expect(rows).toEqual([{ note: 'guarded last' }]);
    // the duplicate: its statement and COMMIT were in the same exchange, and neither took effect
    await expect(guardedLast(pipelined, 'c1', 'duplicate')).rejects.toBeInstanceOf(TransactionVoided);
    await expect(guardedLast(plain, 'c1', 'duplicate, not pipelined')).rejects.toBeInstanceOf(TransactionVoided);
    expect(await guardedLast(plain, 'c2', 'not pipelined')).toEqual([{ note: 'not pipelined' }]);
    // a failing last statement: the COMMIT sent with it never ran, and the transaction rolled back
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'rolled back' });
      await commitWithNext(trx);
      await trx('seen').insert({ id: 'c1' });
    })).rejects.toMatchObject({ code: '23505' });
    // nothing may follow the statement that carried the COMMIT
    await expect(pipelined.transaction(async (trx) => {
      await commitWithNext(trx);
      await trx('effects').insert({ note: 'committed' });
      await trx('effects').insert({ note: 'too late' });
    })).rejects.toThrow('statement after commitWith');
    await pipelined('effects').insert({ note: 'after' });
    expect(await effects()).toEqual(['alone', 'guarded last', 'not pipelined', 'committed', 'after']);
  });

  it('commitWithNext: the next statement carries the COMMIT, unless the transaction is held open by its owner', async () => {
    expect(await exchangesOf(() => pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'n1' });
      await commitWithNext(trx);
      await trx('effects').insert({ note: 'n2' });
    }))).toBe(2);
    expect(await exchangesOf(() => pipelined.transaction(async (trx) => {
      await holdOpen(trx, async () => {
        await commitWithNext(trx);
        await trx('effects').insert({ note: 'held' });
      });
      await trx('effects').insert({ note: 'after held' });
    }))).toBe(3);
    await plain.transaction(async (trx) => {
      await commitWithNext(trx);
      await trx('effects').insert({ note: 'not pipelined' });
    });
    expect(await effects()).toEqual(['n1', 'n2', 'held', 'after held', 'not pipelined']);
  });

  it('writeWithNext rides with the next statement or the COMMIT, and its failure fails the transaction', async () => {
    expect(await exchangesOf(() => pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'w1' });
      await writeWithNext(trx, trx('effects').insert({ note: 'w2' }));
      await writeWithNext(trx, trx('effects').insert({ note: 'w3' }));
    }))).toBe(2); // w1 with BEGIN; w2, w3 with the COMMIT
    await observer('seen').insert({ id: 'w' });
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'undone' });
      await writeWithNext(trx, trx('seen').insert({ id: 'w' }));
      await trx('effects').insert({ note: 'never' });
    })).rejects.toMatchObject({ code: '23505' });
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'undone too' });
      await writeWithNext(trx, trx('seen').insert({ id: 'w' }));
    })).rejects.toMatchObject({ code: '23505' });
    await writeWithNext(pipelined as never, pipelined('effects').insert({ note: 'no transaction: sent at once' }));
    expect(await effects()).toEqual(['w1', 'w2', 'w3', 'no transaction: sent at once']);
  });

  it.each([
    ['pipelined', () => pipelined],
    ['not pipelined', () => plain],
  ])('%s: a repeated guard voids the transaction, and nothing of it commits', async (_mode, db) => {
    await guardedInsert(db(), 'e2', 'first');
    await expect(guardedInsert(db(), 'e2', 'again')).rejects.toBeInstanceOf(TransactionVoided);
    // a handler that swallows the refusal and goes on still commits nothing
    await expect(db().transaction(async (trx) => {
      await voidIfDuplicate(trx, 'insert into seen (id) values (?)', ['e2']);
      await trx('effects').insert({ note: 'swallowed' }).catch(() => undefined);
      await trx('effects').insert({ note: 'later' }).catch(() => undefined);
    })).rejects.toBeInstanceOf(TransactionVoided);
    // a guard with nothing after it: voided too (sent with the COMMIT when pipelined)
    await expect(db().transaction(async (trx) => {
      await voidIfDuplicate(trx, 'insert into seen (id) values (?)', ['e2']);
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
    // a guard that fails for another reason than a duplicate fails the statement sent with it with its own error
    await expect(pipelined.transaction(async (trx) => {
      await voidIfDuplicate(trx, 'insert into seen (id) values (?)', [null]);
      await trx('effects').insert({ note: 'never either' });
    })).rejects.toMatchObject({ code: '23502' });
    // and when the failing guard was sent with the COMMIT, the transaction is rolled back before the connection is reused
    await expect(pipelined.transaction(async (trx) => {
      await trx('effects').insert({ note: 'rolled back with the guard' });
      await voidIfDuplicate(trx, 'insert into seen (id) values (?)', ['taken']);
    })).rejects.toBeInstanceOf(TransactionVoided);
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
