import pg from 'pg';
import { createDb, createIndexConcurrently, localInfraEnv, migrate, type Db, type Logger, type Migration } from '../src';
import { dropSchema, uniqueId, waitFor } from '../src/testing';

/**
 * Index changes on tables that grow with every order are made concurrently, so a deploy does not hold a service's
 * writes while a large index is built; replicas starting together take turns (real Postgres).
 */
describe('migrations: one migrator at a time, indexes built without holding writes', () => {
  const infra = localInfraEnv();
  const schemas: string[] = [];
  const dbs: Db[] = [];
  /** a pool on a new schema (or on `schema`: another replica of the same service) */
  const pool = (schema = uniqueId('t_migrations_')): { db: Db; schema: string } => {
    if (!schemas.includes(schema)) schemas.push(schema);
    const db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 1 });
    dbs.push(db);
    return { db, schema };
  };
  const tableWithIndex = (transaction?: false): Migration[] => [
    { name: '0001_table', async up(db) {
      await db.raw('create table entries (id bigserial primary key, order_id text not null)');
      await db.raw(`insert into entries (order_id) select 'ord-' || n from generate_series(1, 1000) n`);
    } },
    { name: '0002_index', ...(transaction === false && { transaction }), async up(db) {
      await createIndexConcurrently(db, 'entries_by_order', 'entries (order_id)');
    } },
  ];
  const indexes = async (db: Db) => (await db.raw(
    `select c.relname as name, i.indisvalid as valid, i.indisunique as unique from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relnamespace = current_schema()::regnamespace and c.relname like 'entries_by%' order by 1`,
  )).rows as Array<{ name: string; valid: boolean; unique: boolean }>;

  /** a logger that keeps what a migrator says */
  const capturedLog = () => {
    const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    const note = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, msg, fields });
    return { lines, logger: { info: note('info'), warn: note('warn') } as unknown as Pick<Logger, 'info' | 'warn'> };
  };

  afterAll(async () => {
    for (const db of dbs) await db.destroy();
    for (const schema of schemas) await dropSchema(schema);
  });

  it('when a migration says transaction: false, then it builds its index concurrently; inside a transaction Postgres refuses', async () => {
    const refused = pool();
    await expect(migrate(refused.db, refused.schema, tableWithIndex())).rejects.toThrow(/cannot run inside a transaction block/);

    const { db, schema } = pool();
    await migrate(db, schema, tableWithIndex(false));
    expect(await indexes(db)).toEqual([{ name: 'entries_by_order', valid: true, unique: false }]);
  });

  it('when two replicas start together on a new schema, then they take turns and each migration runs once', async () => {
    const first = pool();
    const second = pool(first.schema);
    // the first to hold the turn builds the index concurrently while the other waits: a waiter blocked inside a
    // statement would hold a snapshot that the build waits for, and neither would finish
    await Promise.all([migrate(first.db, first.schema, tableWithIndex(false)), migrate(second.db, second.schema, tableWithIndex(false))]);
    expect(await indexes(first.db)).toEqual([{ name: 'entries_by_order', valid: true, unique: false }]);
    expect((await first.db('knex_migrations').whereIn('name', ['0001_table', '0002_index'])).length).toBe(2);
  }, 30_000);

  it('when another replica holds the turn, then the waiting one says so and who holds it, again while it waits, and migrates once it is free', async () => {
    const { db, schema } = pool();
    // another replica's migrator, mid-migration: its session holds the schema's turn
    const holder = new pg.Client({ connectionString: infra.DATABASE_URL, application_name: 'other-replica-migrating' });
    await holder.connect();
    try {
      const pid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await holder.query('select pg_advisory_lock(hashtextextended($1, 0))', [`postsale.migrate:${schema}`]);
      const { lines, logger } = capturedLog();
      const migrating = migrate(db, schema, tableWithIndex(false), { logger, waitReportEveryMs: 300 });
      await waitFor(() => lines.filter((l) => l.level === 'warn').length >= 2, { timeoutMs: 10_000, description: 'two reports that it still waits' });
      expect(lines[0]).toEqual({ level: 'info', msg: 'another replica is migrating this schema; waiting for its turn',
        fields: { schema, holder: expect.objectContaining({ pid, applicationName: 'other-replica-migrating' }) } });
      expect(lines[1]).toEqual({ level: 'warn', msg: 'still waiting for another replica to finish migrating this schema',
        fields: { schema, holder: expect.objectContaining({ pid }), waitedMs: expect.any(Number) } });
      expect(await indexes(db)).toEqual([]); // nothing migrated while the other holds the turn

      await holder.query('select pg_advisory_unlock(hashtextextended($1, 0))', [`postsale.migrate:${schema}`]);
      await migrating;
      expect(lines[lines.length - 1]).toEqual({ level: 'info', msg: 'migration turn taken', fields: { schema, waitedMs: expect.any(Number) } });
      expect(await indexes(db)).toEqual([{ name: 'entries_by_order', valid: true, unique: false }]);
    } finally {
      await holder.end();
    }
  }, 30_000);

  it('when the session holding the turn is cut while migrating, then the migrator says so (another may take the turn)', async () => {
    const { db, schema } = pool();
    const { lines, logger } = capturedLog();
    // a migration during which the turn's session is terminated (as a network cut or an operator would end it)
    await migrate(db, schema, [{ name: '0001_cut', async up(trx) {
      await trx.raw(`select pg_terminate_backend(l.pid) from pg_locks l where l.locktype = 'advisory' and l.granted and l.objsubid = 1
        and l.classid::bigint = (hashtextextended(?, 0) >> 32) & 4294967295 and l.objid::bigint = hashtextextended(?, 0) & 4294967295`,
      [`postsale.migrate:${schema}`, `postsale.migrate:${schema}`]);
      await waitFor(() => lines.length > 0, { timeoutMs: 5_000, description: 'the loss reported' });
    } }], { logger });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([['warn', 'lost the migration turn while migrating: another replica may migrate this schema at the same time']]);
  });

  it('when the server ends idle sessions, then the turn\'s session (idle while the migrations run) is kept', async () => {
    // every connection of this pool, and so the turn's session, starts with a 300 ms idle_session_timeout
    const schema = uniqueId('t_migrations_');
    schemas.push(schema);
    const url = new URL(infra.DATABASE_URL!);
    url.searchParams.set('options', '-c idle_session_timeout=300');
    const db = createDb({ url: url.toString(), schema, poolMax: 1 });
    dbs.push(db);
    const { lines, logger } = capturedLog();
    await migrate(db, schema, [{ name: '0001_slow', async up(trx) {
      await trx.raw('select pg_sleep(1)'); // the pool's connection is busy; the turn's session idles three times the timeout
    } }], { logger });
    expect(lines).toEqual([]);
  });

  it('when a migrator died part-way and left knex\'s lock set, then the next start migrates anyway', async () => {
    const { db, schema } = pool();
    await migrate(db, schema, tableWithIndex(false).slice(0, 1));
    // what a process killed during a migration outside a transaction leaves behind
    await db('knex_migrations_lock').update({ is_locked: 1 });
    await migrate(db, schema, tableWithIndex(false));
    expect(await indexes(db)).toEqual([{ name: 'entries_by_order', valid: true, unique: false }]);
    expect((await db('knex_migrations_lock').first()).is_locked).toBe(0);
  });

  it('when an earlier concurrent build failed and left an invalid index, then the migration drops it and builds it again', async () => {
    const { db, schema } = pool();
    await migrate(db, schema, tableWithIndex(false).slice(0, 1));
    // a build that fails part-way leaves its index behind, invalid (here: a unique build over duplicate values)
    await db('entries').insert({ order_id: 'ord-1' });
    await expect(db.raw('create unique index concurrently entries_by_order on entries (order_id)')).rejects.toThrow(/could not create unique index/);
    expect(await indexes(db)).toEqual([{ name: 'entries_by_order', valid: false, unique: true }]);

    await migrate(db, schema, tableWithIndex(false));
    expect(await indexes(db)).toEqual([{ name: 'entries_by_order', valid: true, unique: false }]);
  });
});
