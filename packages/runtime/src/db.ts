import knex, { type Knex } from 'knex';
import pg from 'pg';
import type { BaseConfig } from './config';
import type { Metrics } from './metrics';
import type { Logger } from './logger';
import { postsaleClient, SETTINGS_KEY, WRITES, type ClientSettings } from './pg-client';

export type { Knex };
export type Db = Knex;
export type Tx = Knex.Transaction;

/**
 * Runs `then` once the transaction has committed (never after a rollback): knex settles executionPromise after COMMIT.
 * Without a transaction (a statement that committed on its own, already done) it runs now.
 */
export function afterCommit(trx: Tx | undefined, then: () => void): void {
  if (trx) trx.executionPromise.then(then, () => undefined);
  else then();
}

export interface Migration {
  name: string;
  up(db: Knex): Promise<void>;
  down?(db: Knex): Promise<void>;
  /**
   * false: runs outside a transaction, for what Postgres refuses inside one: CREATE / DROP INDEX CONCURRENTLY, which
   * change an index of a table that grows with every order without holding its writes meanwhile. Such a migration
   * must be safe to run again: a failure part-way keeps what was done, and the migration runs again at the next start.
   */
  transaction?: false;
}

/**
 * Builds an index without holding the table's writes (CREATE INDEX CONCURRENTLY), in a migration with
 * `transaction: false`. A concurrent build that failed (a deploy killed meanwhile) leaves an invalid index of that name,
 * which `if not exists` would keep: it is dropped and built again. Safe because migrate() lets one migrator at a time
 * work on a schema: an invalid index is never another one's build in progress.
 */
export async function createIndexConcurrently(db: Knex, name: string, on: string): Promise<void> {
  const invalid = await db.raw(
    `select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname = ? and c.relnamespace = current_schema()::regnamespace and not i.indisvalid`,
    [name],
  );
  if (invalid.rows.length > 0) await db.raw('drop index concurrently if exists ??', [name]);
  await db.raw(`create index concurrently if not exists ?? on ${on}`, [name]);
}

/**
 * A knex instance bound to the service's own schema: unqualified table names resolve there and nowhere else. With
 * `preparedStatements` (the default) repeated statements run as named prepared statements; with `pipelining` (the
 * default) a transaction's BEGIN rides with its first statement (see postsaleClient).
 */
export function createDb(options: {
  url: string; schema: string; poolMax?: number; logger?: Logger; preparedStatements?: boolean; pipelining?: boolean;
  /** what Postgres shows as the sessions' application_name (unless the URL names one) */
  applicationName?: string;
}): Db {
  const log = options.logger?.child({ component: 'knex' });
  const settings: ClientSettings = { prepare: options.preparedStatements ?? true, pipeline: options.pipelining ?? true };
  const config: Knex.Config & { [SETTINGS_KEY]: ClientSettings } = {
    // a subclass, not a patched instance: knex builds each transaction's client from the class's prototype
    client: postsaleClient() as unknown as typeof Knex.Client,
    [SETTINGS_KEY]: settings,
    connection: options.applicationName ? { connectionString: options.url, application_name: options.applicationName } : options.url,
    searchPath: [options.schema],
    pool: { min: 0, max: options.poolMax ?? 10 },
    // knex prints pool trouble ("Acquire connection error") with console.log unless given a logger
    ...(log && {
      log: {
        warn: (message: unknown) => log.warn(String(message)),
        error: (message: unknown) => log.error(String(message)),
        deprecate: (message: unknown) => log.warn(String(message)),
        debug: (message: unknown) => log.debug(String(message)),
      },
    }),
    // bigint columns come back as strings from pg; money columns are bigint, converted explicitly where read
  };
  return knex(config);
}

/**
 * A pool as the service's configuration says: its URL and schema, prepared statements and pipelining. Its sessions are
 * named after the schema (application_name; `schema/purpose` for a second pool), so pg_stat_activity and pg_locks tell
 * which service, and which of its pools, holds or waits for what.
 */
export function createServiceDb(
  config: Pick<BaseConfig, 'DATABASE_URL' | 'DB_SCHEMA' | 'DB_PREPARED_STATEMENTS' | 'DB_PIPELINING'>,
  options: { poolMax: number; logger: Logger; purpose?: string },
): Db {
  return createDb({
    url: config.DATABASE_URL, schema: config.DB_SCHEMA, poolMax: options.poolMax, logger: options.logger,
    preparedStatements: config.DB_PREPARED_STATEMENTS, pipelining: config.DB_PIPELINING,
    applicationName: options.purpose ? `${config.DB_SCHEMA}/${options.purpose}` : config.DB_SCHEMA,
  });
}

/** the knex pool's own counters (tarn), where instrumentDb reads how many connections are in use and who waits */
interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
  on(event: 'acquireRequest', listener: (id: number) => void): void;
  on(event: 'acquireSuccess' | 'acquireFail', listener: (id: number) => void): void;
}

/**
 * Counts what the service asks of Postgres, for the benchmark's cost per order: every exchange with Postgres is a
 * round trip (counted by the client as it sends them: a pipelined BEGIN, inbox row, outbox row or COMMIT rides with
 * another statement); a commit is a COMMIT or a write sent outside a transaction (it commits on its own).
 */
export function instrumentDb(db: Db, metrics: Metrics, options: { poolMetrics?: boolean } = {}): void {
  const roundTrips = metrics.counter('db_round_trips_total', 'Exchanges with Postgres: statements sent on their own, or several pipelined in one (BEGIN and COMMIT included)');
  const commits = metrics.counter('db_commits_total', 'Transactions committed: COMMITs plus writes sent outside a transaction');
  // the client counts what it really sends (a pipelined exchange is one); a plain knex client, every statement
  const settings = (db.client.config as Record<string, unknown>)[SETTINGS_KEY] as ClientSettings | undefined;
  if (settings) {
    const previous = settings.exchanged;
    settings.exchanged = () => {
      previous?.();
      roundTrips.inc();
    };
  }
  db.on('query', (query: { sql?: string; __knexTxId?: string }) => {
    if (!settings) roundTrips.inc();
    if (query.__knexTxId && /^commit\b/i.test(query.sql ?? '')) commits.inc();
  });
  // a write outside a transaction commits on its own once it answered, unless it changed no row: Postgres then writes
  // no commit record and flushes nothing (the transaction never took an id), e.g. a claim that found nothing due
  db.on('query-response', (_response: unknown, query: { sql?: string; __knexTxId?: string; response?: unknown }) => {
    const sql = query.sql ?? '';
    if (!query.__knexTxId && WRITES.test(sql) && !changedNoRow(sql, query.response)) commits.inc();
  });
  // DB_STATEMENT_PROFILE=1 (the benchmark's --statements): which statements those round trips are, to find the ones to
  // fold. Off by default: one label per distinct statement text is fine for a measurement, not for every scrape.
  if (process.env.DB_STATEMENT_PROFILE === '1') {
    const statements = metrics.counter('db_statements_total', 'Statements sent to Postgres, by their text (DB_STATEMENT_PROFILE=1)', ['statement']);
    db.on('query', (query: { sql?: string }) => statements.inc({ statement: statementShape(query.sql ?? '') }));
  }
  // How many connections the service's work really holds at once, and how long it waits for one: what DB_POOL_MAX
  // should be (waits mean too small; a peak far below the maximum means connections Postgres never needed).
  const pool = (db.client as { pool?: TarnPool }).pool;
  // a second pool of the same service (ingest's acks) counts its statements above; the pool gauges describe the main one
  if (!pool || options.poolMetrics === false) return;
  metrics.gauge('db_pool_in_use', 'Connections checked out of the pool now', [], function collect() {
    this.set(pool.numUsed());
  });
  const peak = metrics.gauge('db_pool_in_use_peak', 'Most connections checked out at once since the process started');
  const waits = metrics.histogram('db_pool_acquire_seconds', 'Time a query or transaction waited for a pooled connection', [], [0.001, 0.005, 0.02, 0.1, 0.5, 2]);
  const started = new Map<number, number>();
  let most = 0;
  pool.on('acquireRequest', (id) => started.set(id, performance.now()));
  const done = (id: number) => {
    const at = started.get(id);
    started.delete(id);
    if (at !== undefined) waits.observe((performance.now() - at) / 1000);
    const used = pool.numUsed();
    if (used > most) peak.set((most = used));
  };
  pool.on('acquireSuccess', done);
  pool.on('acquireFail', done);
}

/**
 * A WITH part that writes: Postgres allows INSERT, UPDATE, DELETE (and MERGE) in WITH only as a part's own statement,
 * right after `name [(columns)] AS [[NOT] MATERIALIZED] (`.
 */
const WRITING_WITH_PART = /\bas\s+(?:not\s+)?(?:materialized\s+)?\(\s*(?:insert|update|delete|merge)\b/i;

/**
 * Whether an INSERT, UPDATE or DELETE answered that it changed no row. Its answer counts the rows of its last part
 * only, so a statement with a WITH part that writes is not judged (what that part wrote is not in the answer); one
 * whose WITH parts only read (a claim's lookup) is.
 */
function changedNoRow(sql: string, response: unknown): boolean {
  const answer = response as { command?: string; rowCount?: number | null } | undefined;
  return !WRITING_WITH_PART.test(sql) && /^(INSERT|UPDATE|DELETE)$/.test(answer?.command ?? '') && answer?.rowCount === 0;
}

/** A statement's text with its parameter lists collapsed, so a 3-row and a 30-row insert count as one statement. */
export function statementShape(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/\$\d+/g, '?')
    .replace(/\(\?(, ?\?)*\)(, ?\(\?(, ?\?)*\))+/g, '(?…),…')
    .replace(/\?(, ?\?)+/g, '?…')
    .trim()
    .slice(0, 200);
}

/** How a migrator that waits for another replica's turn says so (a start that seems to hang should say why). */
export interface MigrateOptions {
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** how often a replica still waiting says so again (default 30 s) */
  waitReportEveryMs?: number;
}

/** Creates the schema if needed and runs the service's migrations (the runtime's own tables first), one replica at a time. */
export async function migrate(db: Db, schema: string, migrations: Migration[], options: MigrateOptions = {}): Promise<void> {
  const all = [...runtimeMigrations, ...migrations];
  const names = new Set<string>();
  for (const m of all) {
    if (names.has(m.name)) throw new Error(`duplicate migration name ${m.name}`);
    names.add(m.name);
  }
  const config: Knex.MigratorConfig = {
    schemaName: schema,
    tableName: 'knex_migrations',
    migrationSource: {
      getMigrations: async () => all,
      getMigrationName: (m: Migration) => m.name,
      getMigration: async (m: Migration) => ({ up: m.up, down: m.down ?? (async () => undefined), ...(m.transaction === false && { config: { transaction: false } }) }),
    },
  };
  await oneMigratorAtATime(db, schema, options, async () => {
    // under the turn too: two `create schema if not exists` at once can both try, and one fails on a duplicate key
    await db.raw('create schema if not exists ??', [schema]);
    // Nobody else migrates this schema now: knex's lock row, if set, was left by a migrator that died part-way through
    // a migration run outside a transaction (inside one, its lock would have rolled back with it).
    await db.migrate.forceFreeMigrationsLock(config);
    await db.migrate.latest(config);
  });
}

/** how often a replica that waits for another's migrations asks again */
const MIGRATION_LOCK_POLL_MS = 200;
/** how often a replica still waiting for the turn logs so */
const MIGRATION_WAIT_REPORT_MS = 30_000;

/**
 * The session holding the migration turn, as Postgres sees it (a bigint advisory key is stored as its high and low
 * 32 bits in classid and objid): its process id, application name, client address and since when it is connected.
 */
async function migrationTurnHolder(session: pg.Client, key: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await session.query(
    `select a.pid, a.application_name as "applicationName", a.client_addr::text as "clientAddr", a.backend_start as "connectedSince"
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 1 and l.database = (select oid from pg_database where datname = current_database())
        and l.classid::bigint = (hashtextextended($1, 0) >> 32) & 4294967295 and l.objid::bigint = hashtextextended($1, 0) & 4294967295`,
    [key],
  );
  return rows[0];
}

/**
 * Runs `work` while this process is the schema's only migrator (replicas starting together take turns): a session
 * advisory lock, which Postgres gives up when the holder's process dies, on a connection of its own (the pool may have
 * only one). Asked for with pg_try_advisory_lock, again and again, not waited for inside a statement: a statement that
 * waits holds a snapshot, and the holder's CREATE INDEX CONCURRENTLY waits for every older snapshot to end — the two
 * would wait for each other, out of sight of Postgres's deadlock detector.
 */
async function oneMigratorAtATime(db: Db, schema: string, options: MigrateOptions, work: () => Promise<void>): Promise<void> {
  const { logger, waitReportEveryMs = MIGRATION_WAIT_REPORT_MS } = options;
  // the pool's own connection settings, as knex parsed them from the URL
  // (TCP keep-alive: the session is idle while the migrations run on the pool, and an idle connection is what
  // firewalls and load balancers drop)
  const session = new pg.Client({ ...(db.client as unknown as { connectionSettings: pg.ClientConfig }).connectionSettings, keepAlive: true });
  // A session that drops loses its lock, and another replica may take the turn while this one migrates: said loudly,
  // as two migrators at once may leave a migration half done (this one's most likely fails, and runs again at the
  // next start).
  let migrating = false;
  const lost = (err?: unknown) => {
    if (migrating) logger?.warn({ schema, err }, 'lost the migration turn while migrating: another replica may migrate this schema at the same time');
    migrating = false;
  };
  session.on('error', lost);
  session.on('end', () => lost());
  await session.connect();
  try {
    // a server's idle_session_timeout would end the idle session (and the turn) part-way through a long migration
    // (the setting exists from PostgreSQL 14 on)
    await session.query(`select set_config(name, '0', false) from pg_settings where name = 'idle_session_timeout'`);
    const key = `postsale.migrate:${schema}`;
    const since = Date.now();
    let nextReportAt: number | undefined;
    while (!(await session.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as locked', [key])).rows[0]!.locked) {
      // A migration can run long (an index built concurrently waits for every older transaction): the replicas
      // waiting behind it say so, and who holds the turn, at once and then every so often, not silently.
      if (logger && (nextReportAt === undefined || Date.now() >= nextReportAt)) {
        const holder = await migrationTurnHolder(session, key);
        if (nextReportAt === undefined) logger.info({ schema, holder }, 'another replica is migrating this schema; waiting for its turn');
        else logger.warn({ schema, holder, waitedMs: Date.now() - since }, 'still waiting for another replica to finish migrating this schema');
        nextReportAt = Date.now() + waitReportEveryMs;
      }
      await new Promise((resolve) => setTimeout(resolve, MIGRATION_LOCK_POLL_MS));
    }
    if (logger && nextReportAt !== undefined) logger.info({ schema, waitedMs: Date.now() - since }, 'migration turn taken');
    migrating = true;
    await work();
  } finally {
    migrating = false;
    await session.end().catch(() => undefined); // the lock ends with the session
  }
}

/** Tables every service has: the transactional outbox and the consumer inbox. */
const runtimeMigrations: Migration[] = [
  {
    name: '0000_runtime_outbox_inbox',
    async up(db) {
      await db.schema.createTable('outbox', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('event_id').notNullable().unique();
        t.string('topic', 249).notNullable();
        t.string('stream', 64).notNullable();
        t.string('key').notNullable();
        t.string('event_type', 128).notNullable();
        t.jsonb('event').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('published_at', { useTz: true });
      });
      await db.raw('create index outbox_unpublished on outbox (id) where published_at is null');
      await db.schema.createTable('inbox', (t) => {
        t.string('consumer_group').notNullable();
        t.string('event_id').notNullable();
        t.string('topic', 249).notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('offset').notNullable();
        t.string('event_type', 128);
        t.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['consumer_group', 'event_id']);
      });
    },
  },
  {
    // The relay now deletes what it publishes; rows that earlier versions marked published are dropped the same way.
    name: '0001_runtime_outbox_drop_published',
    async up(db) {
      await db('outbox').whereNotNull('published_at').delete();
    },
  },
  {
    // Inbox retention (inbox-retention.ts) finds old rows by processed_at. Rows arrive in processed_at order, so a
    // BRIN index finds them at almost no cost to each insert (a b-tree would add a write per consumed event).
    name: '0002_runtime_inbox_processed_at',
    async up(db) {
      await db.raw('create index if not exists inbox_processed_at on inbox using brin (processed_at)');
    },
  },
];
