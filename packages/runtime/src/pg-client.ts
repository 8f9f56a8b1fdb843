import knex, { type Knex } from 'knex';
import { createHash } from 'node:crypto';
import type { Tx } from './db';
import { PipelinedQuery, type PgConnection, type PipelinePart } from './pg-pipeline';

/*
 * The pg client every service's knex uses (createDb): prepared statements and pipelined transactions, and the
 * helpers use cases call to let a statement ride with another (voidIfDuplicate, writeWithNext, commitWithNext,
 * holdOpen).
 */

/** what the client keeps per pg connection for its prepared statements */
interface ConnectionStatements {
  /** part of every name: a new generation means new names, so statements Postgres dropped or refused are parsed again */
  generation: number;
  named: number;
}

/** a process-wide bound on the distinct statement texts counted, and on the statements named per connection */
const MAX_TRACKED_TEXTS = 5000;
const MAX_NAMED_PER_CONNECTION = 400;

/** what createDb chose for this pool, kept in the knex config (transactions' clients share it) */
export interface ClientSettings {
  prepare: boolean;
  pipeline: boolean;
  /** called for every exchange with Postgres this pool's client sends (instrumentDb counts them) */
  exchanged?: () => void;
  /** asked for a statement to send before the COMMIT of each transaction that wrote (see rideWithCommits) */
  commitRider?: () => CommitRide | undefined;
}

/** A statement sent with a writing transaction's COMMIT, in the same exchange (see rideWithCommits). */
export interface CommitRide {
  /** one statement with $n parameters, whose result nobody reads */
  sql: string;
  bindings: unknown[];
  /** told once that exchange answered: committed with the transaction, or not (its effect is gone with the transaction) */
  settle(committed: boolean): void;
}

/**
 * Lets a statement of the process's own housekeeping (the outbox relay's deletion of rows it published) ride with the
 * COMMIT of the next transaction on `db` that wrote anything: committed by that transaction's commit, not by one of its
 * own (a commit, a WAL flush and a round trip each time). `rider` is asked at each such COMMIT and answers nothing when
 * it has nothing to send. Only with pipelining; returns the function that stops it.
 */
export function rideWithCommits(db: Knex, rider: () => CommitRide | undefined): () => void {
  const settings = (db.client.config as Record<string, unknown>)[SETTINGS_KEY] as ClientSettings | undefined;
  if (!settings?.pipeline) return () => undefined;
  settings.commitRider = rider;
  return () => {
    if (settings.commitRider === rider) settings.commitRider = undefined;
  };
}
export const SETTINGS_KEY = 'postsaleClient' as const;
/** knex query options marking a statement sent by voidIfDuplicate or writeWithNext */
const VOID_IF_DUPLICATE = 'postsaleVoidIfDuplicate';
const WITH_NEXT = 'postsaleWithNext';
const UNIQUE_VIOLATION = '23505';
/** the answer knex gets for a statement held back to ride with the next one */
const DEFERRED = 'DEFERRED';
/** transactions whose owner sends more after the current use case (commitWithNext has no effect) */
const heldOpen = new WeakSet<Tx>();

/** The transaction was void: the row voidIfDuplicate inserts existed already, so nothing of the transaction committed. */
export class TransactionVoided extends Error {
  readonly code = 'TRANSACTION_VOIDED';
  constructor() {
    super('transaction voided: the row guarding it existed already; nothing was committed');
    this.name = 'TransactionVoided';
  }
}

/**
 * Inserts the row that makes the transaction's effect happen once — an event's inbox row — and voids the transaction
 * when it exists already (`sql` is an INSERT without ON CONFLICT: the unique violation is the signal). With pipelining
 * it is not sent now but with the transaction's next statement, in the same round trip: Postgres skips what follows a
 * failed statement of an exchange, so nothing after a duplicate runs. The statement sent with it then fails with
 * TransactionVoided, every later one is refused, COMMIT rolls back, and db.transaction rejects with TransactionVoided.
 * Without pipelining (DB_PIPELINING=false) it runs at once and throws TransactionVoided itself.
 */
export async function voidIfDuplicate(trx: Tx, sql: string, bindings: readonly Knex.RawBinding[]): Promise<void> {
  await trx.raw(sql, bindings).options({ [VOID_IF_DUPLICATE]: true });
}

/**
 * Marks the transaction's NEXT statement as its last: its COMMIT rides with it, in the same round trip. Nothing may be
 * sent on the transaction after that statement (refused), and the caller should do nothing that can fail before
 * returning: once the statement answered, the transaction has committed (a failure after it still rejects
 * db.transaction, whose effect stands). afterCommit hooks run as usual. No effect while the transaction is held open
 * by its owner (`holdOpen`: an inbox transaction applying several events) or without pipelining.
 */
export async function commitWithNext(trx: Tx): Promise<void> {
  if (heldOpen.has(trx)) return;
  // the transaction's connection, as knex's transaction client hands it to its statements
  const connection: object = await (trx.client as unknown as { acquireConnection(): Promise<object> }).acquireConnection();
  const open = openTransactions.get(connection);
  if (open && !open.ended && !open.refused) open.commitNext = true;
}

/** Runs `work` on the transaction with commitWithNext disabled: the owner sends more after it. */
export async function holdOpen<T>(trx: Tx, work: () => Promise<T>): Promise<T> {
  heldOpen.add(trx);
  try {
    return await work();
  } finally {
    heldOpen.delete(trx);
  }
}

/**
 * Sends a write whose result nobody reads (an outbox row) with the transaction's next statement or its COMMIT, in the
 * same round trip. Its failure fails that statement (or the COMMIT) with the write's own error; the transaction then
 * rolls back as usual. Outside a transaction, or without pipelining, it is sent at once.
 */
export async function writeWithNext(trx: Tx, query: Knex.QueryBuilder | Knex.Raw): Promise<void> {
  await query.options({ [WITH_NEXT]: true });
}

/** the transactions begun on each pg connection (pipelining only) */
const openTransactions = new WeakMap<object, OpenTransaction>();

/** a transaction the client has been asked to begin, on one pg connection */
interface OpenTransaction {
  /** statements to send with the next one: BEGIN until the first statement, voidIfDuplicate's and writeWithNext's */
  pending: PipelinePart[];
  /** which of `pending` void the transaction when they meet a unique violation */
  guards: number[];
  /** set once the transaction cannot commit: later statements are refused with it, COMMIT rolls back and rejects */
  refused?: Error;
  /** its COMMIT rode with its last statement (or failed, `refused` then): knex's own COMMIT or ROLLBACK sends nothing */
  ended?: boolean;
  /** commitWithNext was called: the next statement is sent with the COMMIT */
  commitNext?: boolean;
  /** a statement of it writes: its COMMIT may carry a ride (rideWithCommits); one that only read takes none */
  wrote?: boolean;
}

/** a statement that writes (what makes its transaction, or itself outside one, commit something) */
export const WRITES = /^\s*(with\b[\s\S]*?\b)?(insert|update|delete|merge)\b/i;

type PgQuery = { sql?: string; bindings?: unknown[]; options?: Record<string, unknown>; response?: unknown };
type PgClientClass = new (config: Knex.Config) => { _query(connection: object, obj: PgQuery): Promise<unknown>; config: Knex.Config };
let postsaleClientClass: PgClientClass | undefined;

/** pg's Client, the members used here */
interface PgClient {
  connection: PgConnection;
  query(query: PipelinedQuery): unknown;
  query(text: string): Promise<unknown>;
}

/**
 * knex's pg client with two savings, each one shared by every statement of every service:
 *
 * **Prepared statements.** Every statement the process has already sent once before is sent as a named prepared
 * statement: Postgres then parses, analyzes and (after five runs, when its generic plan costs no more than the custom
 * ones) plans it once per connection instead of once per execution — on this project's statements about a third of
 * Postgres's CPU per statement (pgbench, one of payouts' CTE updates: 0.58 ms extended protocol, 0.37 ms prepared).
 * Only statements with parameters (BEGIN, COMMIT and multi-statement migrations stay simple queries); one-off texts
 * are never prepared, and both the texts counted and the statements prepared per connection are bounded (lists of
 * varying length make many texts). Postgres re-plans a prepared statement itself when a table it reads changes; when
 * the change alters its result's columns (a `select *` after a migration added one, SQLSTATE 0A000) or the statement
 * has vanished (a pooler, DISCARD ALL: 26000), the statement fails once and that connection starts a new generation of
 * names. DB_PREPARED_STATEMENTS=false turns this off (e.g. behind PgBouncer older than 1.21 in transaction mode).
 *
 * **Pipelining.** A transaction's BEGIN is not sent on its own: it travels with the transaction's first statement in
 * one exchange (PipelinedQuery), and so do statements given to voidIfDuplicate (an event's inbox row) and
 * writeWithNext (outbox rows); after commitWithNext the next statement carries the COMMIT; a writing transaction's COMMIT
 * carries the process's housekeeping that rideWithCommits hands it (the outbox relay's deletions). A transaction of one
 * statement is then one round trip, where it was three. Postgres skips what follows a failed statement of an exchange, so nothing runs outside the transaction,
 * after its guard failed or commits after a failure. A transaction that sends nothing sends no BEGIN either.
 * DB_PIPELINING=false sends every statement on its own.
 */
export function postsaleClient(): PgClientClass {
  if (postsaleClientClass) return postsaleClientClass;
  // knex's pg client class, taken from an instance: the dialect's module is not part of knex's typed API
  const probe = knex({ client: 'pg' });
  const KnexPgClient = probe.client.constructor as PgClientClass;
  void probe.destroy();
  const seen = new Map<string, string | null>();
  const perConnection = new WeakMap<object, ConnectionStatements>();
  const settled = (obj: PgQuery, command: string): Promise<PgQuery> => {
    obj.response = { command, rowCount: null, rows: [], fields: [] };
    return Promise.resolve(obj);
  };

  postsaleClientClass = class PostsalePgClient extends KnexPgClient {
    private get settings(): ClientSettings {
      return ((this.config as Record<string, unknown>)[SETTINGS_KEY] as ClientSettings | undefined) ?? { prepare: true, pipeline: true };
    }

    override _query(connection: object, obj: PgQuery): Promise<unknown> {
      if (!this.settings.pipeline) return this.sendOne(connection, obj);
      const sql = obj.sql ?? '';
      if (sql === 'BEGIN;') {
        openTransactions.set(connection, { pending: [{ text: 'BEGIN' }], guards: [] });
        return settled(obj, 'BEGIN');
      }
      const open = openTransactions.get(connection);
      if (open && !open.wrote && WRITES.test(sql)) open.wrote = true;
      if (obj.options?.[VOID_IF_DUPLICATE]) {
        if (!open) return Promise.reject(new Error('voidIfDuplicate needs a transaction'));
        open.guards.push(open.pending.length);
        open.pending.push(this.part(connection, obj));
        return settled(obj, DEFERRED);
      }
      if (obj.options?.[WITH_NEXT] && open && !open.ended && !open.refused) {
        open.pending.push(this.part(connection, obj));
        return settled(obj, DEFERRED);
      }
      if (!open) return this.sendOne(connection, obj);
      const ending = sql === 'ROLLBACK' || sql === 'COMMIT;';
      const commitWithThis = !ending && Boolean(open.commitNext);
      open.commitNext = false;
      if (ending) openTransactions.delete(connection);
      if (open.ended) {
        // the COMMIT was sent with the last statement already, and a ROLLBACK can no longer undo anything
        if (sql === 'COMMIT;' && open.refused) return Promise.reject(open.refused);
        if (ending) return settled(obj, sql.replace(';', ''));
        return Promise.reject(new Error("statement after commitWithNext's statement: the transaction has committed"));
      }
      if (open.refused) {
        if (sql === 'ROLLBACK') return this.sendOne(connection, obj);
        const refused = open.refused;
        if (sql === 'COMMIT;') return this.sendOne(connection, { sql: 'ROLLBACK' }).then(() => Promise.reject(refused));
        return Promise.reject(refused);
      }
      const beginPending = open.pending[0]?.text === 'BEGIN';
      // a rollback drops what is pending; before anything was sent, there is nothing to roll back or commit
      if (sql === 'ROLLBACK') return beginPending ? settled(obj, 'ROLLBACK') : this.sendOne(connection, obj);
      if (sql === 'COMMIT;' && beginPending && open.pending.length === 1) return settled(obj, 'COMMIT');
      // several statements in one text cannot go through the extended protocol: the pending ones go first, on their own
      const severalStatements = /;\s*\S/.test(sql);
      const ride = (sql === 'COMMIT;' || commitWithThis) && open.wrote && !severalStatements ? this.settings.commitRider?.() : undefined;
      if (open.pending.length === 0 && !commitWithThis && !ride) return this.sendOne(connection, obj);
      if (severalStatements) return this.sendPipelined(connection, open, undefined, false).then(() => this.sendOne(connection, obj));
      return this.sendPipelined(connection, open, obj, commitWithThis, ride);
    }

    /**
     * the pending statements, then `obj` (when given), then COMMIT (when `commit`), in one exchange; `ride` goes just
     * before the COMMIT (`obj` itself, or the one `commit` adds)
     */
    private sendPipelined(connection: object, open: OpenTransaction, obj: PgQuery | undefined, commit: boolean, ride?: CommitRide): Promise<unknown> {
      const objIsCommit = obj?.sql === 'COMMIT;';
      const rider = ride ? [this.part(connection, { sql: ride.sql, bindings: ride.bindings })] : [];
      const parts = [
        ...open.pending,
        ...(obj && !objIsCommit ? [this.part(connection, obj)] : []),
        ...rider,
        ...(objIsCommit ? [this.part(connection, obj)] : commit ? [{ text: 'COMMIT' }] : []),
      ];
      // where obj's answer is: the last part when it is the COMMIT, else just after the pending ones
      const objAt = objIsCommit ? parts.length - 1 : open.pending.length;
      const guards = open.guards;
      open.pending = [];
      open.guards = [];
      const endsTransaction = commit || obj?.sql === 'COMMIT;';
      const client = connection as PgClient;
      this.settings.exchanged?.();
      return new Promise((resolve, reject) => {
        client.query(new PipelinedQuery(parts, (error, results, failedPart) => {
          if (!error) {
            if (commit) open.ended = true;
            if (obj) obj.response = results[objAt]; // (the ride's and an added COMMIT's answers are not the caller's)
            ride?.settle(true);
            resolve(obj);
            return;
          }
          ride?.settle(false);
          this.forgetStatementsOnChange(connection, error);
          const voided = guards.includes(failedPart) && (error as { code?: string }).code === UNIQUE_VIOLATION;
          const failure = voided ? new TransactionVoided() : error;
          const commitSkipped = endsTransaction && failedPart < parts.length - 1;
          if (commitSkipped) {
            // the COMMIT never ran: the transaction is open and aborted. knex does not roll back after a failed COMMIT,
            // so it is done here, before the connection serves anyone else
            this.settings.exchanged?.();
            client.query('ROLLBACK').catch(() => undefined);
            if (commit) Object.assign(open, { ended: true, refused: failure });
          } else if (commit) {
            Object.assign(open, { ended: true, refused: failure }); // the COMMIT itself failed: Postgres ended the transaction
          } else if (!endsTransaction) {
            open.refused = failure; // whatever the caller does with the error, this transaction will not commit
          }
          reject(failure);
        }));
      });
    }

    private part(connection: object, obj: PgQuery): PipelinePart {
      return { text: obj.sql!, values: obj.bindings ?? [], name: this.statementName(connection, obj) };
    }

    private sendOne(connection: object, obj: PgQuery): Promise<unknown> {
      const name = this.statementName(connection, obj);
      const { [VOID_IF_DUPLICATE]: _guard, [WITH_NEXT]: _withNext, ...options } = obj.options ?? {};
      const query = { ...obj, options: name ? { ...options, name } : options };
      this.settings.exchanged?.();
      return super._query(connection, query).then((done) => {
        obj.response = query.response;
        return done;
      }, (error: unknown) => {
        this.forgetStatementsOnChange(connection, error);
        // not pipelined: voidIfDuplicate's statement runs at once, and a duplicate shows here
        if (obj.options?.[VOID_IF_DUPLICATE] && (error as { code?: string }).code === UNIQUE_VIOLATION) throw new TransactionVoided();
        throw error;
      });
    }

    /** the name to prepare `obj` under on this connection; undefined: send it unnamed */
    private statementName(connection: object, obj: PgQuery): string | undefined {
      const sql = obj.sql;
      if (obj.options?.name !== undefined) return obj.options.name as string;
      if (!this.settings.prepare || !sql || !obj.bindings?.length) return undefined;
      const hash = seen.get(sql);
      if (hash === undefined) {
        if (seen.size < MAX_TRACKED_TEXTS) seen.set(sql, null); // the first time: counted, sent unnamed
        return undefined;
      }
      const key = hash ?? createHash('sha1').update(sql).digest('base64url').slice(0, 22);
      if (hash === null) seen.set(sql, key);
      let statements = perConnection.get(connection);
      if (!statements) perConnection.set(connection, (statements = { generation: 0, named: 0 }));
      const name = `ps${statements.generation}_${key}`;
      if (!(connection as PgClient).connection?.parsedStatements?.[name]) {
        if (statements.named >= MAX_NAMED_PER_CONNECTION) return undefined;
        statements.named += 1;
      }
      return name;
    }

    /** a prepared statement whose result changed shape (0A000) or that vanished (26000): new names on this connection */
    private forgetStatementsOnChange(connection: object, error: unknown): void {
      const code = (error as { code?: string }).code;
      const statements = perConnection.get(connection);
      if (statements && (code === '0A000' || code === '26000')) {
        statements.generation += 1;
        statements.named = 0;
      }
    }
  };
  return postsaleClientClass;
}

