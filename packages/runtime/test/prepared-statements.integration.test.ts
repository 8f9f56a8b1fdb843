import { createDb, type Db } from '../src';
import { dropSchema, testEnv } from '../src/testing';

/** Repeated statements run as named prepared statements, one-offs do not, and a changed table costs one failure (real Postgres). */
describe('prepared statements', () => {
  const env = testEnv('runtime');
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let plain: Db;

  beforeAll(async () => {
    // one connection each, so pg_prepared_statements (per session) shows what this pool's connection prepared
    db = createDb({ url: env.DATABASE_URL!, schema, poolMax: 1 });
    plain = createDb({ url: env.DATABASE_URL!, schema, poolMax: 1, preparedStatements: false });
    await db.raw('create schema if not exists ??', [schema]);
    await db.raw('create table items (id int primary key, status text not null)');
    await db('items').insert([{ id: 1, status: 'NEW' }, { id: 2, status: 'NEW' }]);
  });
  afterAll(async () => {
    await db.destroy();
    await plain.destroy();
    await dropSchema(schema);
  });

  const prepared = async (on: Db) =>
    (await on.raw<{ rows: { statement: string }[] }>('select statement from pg_prepared_statements')).rows.map((r) => r.statement);

  it('prepares a statement the second time it is sent, and reuses it', async () => {
    const read = (on: Db, id: number) => on('items').where({ id }).first('status');
    await read(db, 1);
    expect((await prepared(db)).filter((s) => s.includes('"items"'))).toEqual([]);
    for (const id of [1, 2, 1]) expect(await read(db, id)).toEqual({ status: 'NEW' });
    expect((await prepared(db)).filter((s) => s.includes('"items"'))).toHaveLength(1);

    for (const id of [1, 2, 1]) expect(await read(plain, id)).toEqual({ status: 'NEW' });
    expect(await prepared(plain)).toEqual([]);
  });

  it('inside a transaction too, while BEGIN and COMMIT stay simple queries', async () => {
    const move = (status: string) => db.transaction(async (trx) => trx('items').where({ id: 2 }).update({ status }));
    for (const status of ['A', 'B', 'C']) expect(await move(status)).toBe(1);
    const statements = await prepared(db);
    expect(statements.filter((s) => s.startsWith('update "items"'))).toHaveLength(1);
    expect(statements.some((s) => /^(begin|commit)/i.test(s))).toBe(false);
  });

  it('a statement whose result changed shape fails once, then is prepared anew', async () => {
    const all = () => db.select('*').from('items').where({ id: 1 });
    await all();
    await all(); // now prepared on this connection
    await plain.raw('alter table items add column note text');
    // Postgres refuses to run a prepared statement whose columns changed (SQLSTATE 0A000); callers retry transient failures
    await expect(all()).rejects.toMatchObject({ code: '0A000' });
    expect(await all()).toEqual([{ id: 1, status: 'NEW', note: null }]);
  });
});
