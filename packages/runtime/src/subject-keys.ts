import type { Consumer, Kafka } from 'kafkajs';
import { SubjectKeys, subjectKeysTopic, type EventCodec, type OrderReceived, type SubjectKey } from '@postsale/contracts';
import { retryDelayMs } from './backoff';
import { createBatcher, type Batcher } from './batcher';
import { afterCommit, type Db, type Migration, type Tx } from './db';
import { AppError, classifyError } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { erasedOrderReceived, openPersonalData, type KeyEncryptionKey } from './personal-data';

/**
 * A service's own copy of the data subjects' keys (crypto-shredding), fed by the compacted subject-keys topic that
 * ingest writes. Each service that reads personal data from events keeps one in its own schema (`subject_keys`): a key
 * (sealed with the key-encryption key, never in clear) or, once the subject is erased, only the fact that it was.
 * Erasure deletes the key here on the erased record; the topic drops it at compaction.
 */
export const subjectKeysMigration: Migration = {
  name: '0100_runtime_subject_keys',
  async up(db) {
    await db.schema.createTable('subject_keys', (t) => {
      t.string('subject_id', 64).primary();
      t.text('sealed_key');
      t.timestamp('erased_at', { useTz: true });
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    });
  },
};

/** rows per statement when applying a batch of subject keys */
const MAX_KEYS_PER_STATEMENT = 1000;

/** a subject's row as stored: its sealed key, or only the time of its erasure */
interface StoredKey {
  sealed_key: string | null;
  erased_at: Date | null;
}

/**
 * Applies subject-key records to the service's table in one statement; an erased subject's key is deleted and never
 * comes back. Given the pool (not a transaction), that statement runs on its own: no BEGIN/COMMIT around it. Once it
 * committed, the orders this process is waiting to open for those subjects are handed the rows it stored
 * (openOrderReceived then reads nothing again).
 */
export async function applySubjectKeys(db: Db | Tx, records: SubjectKey[]): Promise<void> {
  if (records.length === 0) return;
  // one row per subject, as applying them one by one would leave it: an erasure wins over any key; else the first key
  const bySubject = new Map<string, StoredKey & { subject_id: string }>();
  for (const r of records) {
    const erased = r.sealedKey === null || r.erasedAt !== null;
    const row = { subject_id: r.subjectId, sealed_key: erased ? null : r.sealedKey, erased_at: erased ? new Date(r.erasedAt ?? r.occurredAt) : null };
    const before = bySubject.get(r.subjectId);
    if (!before || erased) bySubject.set(r.subjectId, row);
  }
  const stored = new Map<string, StoredKey>();
  const rows = [...bySubject.values()];
  // (a replay from the topic's beginning brings large batches: a bounded number of rows per statement)
  for (let i = 0; i < rows.length; i += MAX_KEYS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + MAX_KEYS_PER_STATEMENT);
    // a key never replaces an erasure, nor another key (a redelivered older record after the erased one changes
    // nothing); an erasure replaces whatever was there. RETURNING: the rows this statement stored.
    const result: { rows: Array<StoredKey & { subject_id: string }> } = await db.raw(
      `insert into subject_keys (subject_id, sealed_key, erased_at) values ${chunk.map(() => '(?, ?, ?::timestamptz)').join(', ')}
       on conflict (subject_id) do update set sealed_key = null, erased_at = excluded.erased_at, updated_at = now() where excluded.erased_at is not null
       returning subject_id, sealed_key, erased_at`,
      chunk.flatMap((r) => [r.subject_id, r.sealed_key, r.erased_at]),
    );
    for (const r of result.rows) stored.set(r.subject_id, { sealed_key: r.sealed_key, erased_at: r.erased_at });
  }
  const wake = () => {
    for (const subjectId of bySubject.keys()) keyWaiters.get(subjectId)?.forEach((handOver) => handOver(stored.get(subjectId)));
  };
  if (db.isTransaction) afterCommit(db as Tx, wake);
  else wake();
}

/** the wait before a replica's next try (the runtime's one retry delay: 200 ms doubling, at most 5 s) */
const pauseBeforeRetry = (attempt: number) => new Promise((r) => setTimeout(r, retryDelayMs(attempt + 1, 200, 5_000)));

/** how long a consumer looks again for a subject's key before it gives the event back to be retried */
const KEY_WAIT_MS = 1_000;
/**
 * A key this process stores wakes its waiting order at once; the look on a timer is for a key another replica stores
 * (the subject-keys topic's partitions are split between the replicas' consumers, the orders topic's independently).
 */
const KEY_LOOK_AGAIN_MS = 100;

/**
 * the orders of this process waiting for a subject's key: woken when applySubjectKeys commits it, with the row it
 * stored (undefined when it stored none: the subject's row was there already)
 */
const keyWaiters = new Map<string, Set<(row: StoredKey | undefined) => void>>();

/**
 * Waits for `subjectId`'s key to be stored by this process, or `ms` at most. Registered before the first look, so a
 * key stored between that look and the wait is not missed. `next` resolves to the row this process stored, if any.
 */
function keyArrival(subjectId: string) {
  let stored = false;
  let handed: StoredKey | undefined;
  let wakeWaiter: (() => void) | undefined;
  const wake = (row: StoredKey | undefined) => {
    stored = true;
    handed = row ?? handed;
    wakeWaiter?.();
  };
  const waiters = keyWaiters.get(subjectId) ?? new Set();
  keyWaiters.set(subjectId, waiters.add(wake));
  return {
    async next(ms: number): Promise<StoredKey | undefined> {
      if (!stored) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wakeWaiter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeWaiter = undefined;
      }
      stored = false;
      const row = handed;
      handed = undefined;
      return row;
    },
    done(): void {
      waiters.delete(wake);
      if (waiters.size === 0 && keyWaiters.get(subjectId) === waiters) keyWaiters.delete(subjectId);
    },
  };
}

/**
 * One batch of keys the replica holds: settled once every held key was stored by an order's transaction, or when the
 * hold time is over; `unstored()` is then what the replica still has to store itself (the erasures always, since they
 * are never held).
 */
export interface HeldBatch {
  readonly settled: Promise<void>;
  unstored(): SubjectKey[];
  release(): void;
}

/**
 * The keys this process's replica has read from the topic and holds for a moment before it stores them itself. A key
 * is published just before its order: an order of this process whose key is held stores it in its own inbox
 * transaction (its commit carries it), and the replica stores only the keys nobody took. (Each key stored on its own
 * was a statement and a commit: 0.6 commits per order at 50 orders/s.) An erasure is never held.
 *
 * When the hold ends, a key that an order's transaction is storing at that moment stays that transaction's: the batch
 * waits for its outcome (committed: stored; rolled back: the replica's to store) instead of the replica inserting the
 * same row meanwhile, which waited for that transaction's row lock while holding up the rest of its batch (10–15 ms
 * per statement at 15 orders/s). The other keys leave the hold then: an order that comes for one afterwards reads the
 * replica's row (waiting for its commit) rather than racing the replica's insert.
 */
export class HeldSubjectKeys {
  private readonly keys = new Map<string, HeldKey>();

  constructor(private readonly onStoredByOrder: () => void = () => undefined) {}

  /** the sealed key of `subjectId` if it is held (not stored yet) */
  sealedKeyOf(subjectId: string): string | undefined {
    return this.keys.get(subjectId)?.sealedKey;
  }

  /**
   * An order's transaction is storing `subjectId`'s held key: its outcome decides (`committed` true: the replica need
   * not store it). Undefined when the key is not held (any more).
   */
  claim(subjectId: string): ((committed: boolean) => void) | undefined {
    return this.keys.get(subjectId)?.claim();
  }

  /** Holds the keys of `records` for `ms` at most (0: holds nothing) and wakes this process's orders waiting for them. */
  hold(records: SubjectKey[], ms: number): HeldBatch {
    const erased = new Set(records.filter((r) => r.sealedKey === null || r.erasedAt !== null).map((r) => r.subjectId));
    const mine = new Map<string, HeldKey>();
    /** held subjects whose order has not stored the key yet */
    const waiting = new Set<string>();
    /** of those, the ones orders' transactions are storing now: how many transactions per subject */
    const claims = new Map<string, number>();
    let over = false;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    let timer: NodeJS.Timeout | undefined;
    const leaveHold = (subjectId: string) => {
      if (this.keys.get(subjectId) === mine.get(subjectId)) this.keys.delete(subjectId);
    };
    const settleIfDone = () => {
      if (waiting.size === 0 || (over && claims.size === 0)) {
        clearTimeout(timer);
        settle();
      }
    };
    for (const r of ms > 0 ? records : []) {
      if (erased.has(r.subjectId) || mine.has(r.subjectId)) continue;
      const subjectId = r.subjectId;
      const entry: HeldKey = {
        sealedKey: r.sealedKey!,
        claim: () => {
          claims.set(subjectId, (claims.get(subjectId) ?? 0) + 1);
          let done = false;
          return (committed) => {
            if (done) return;
            done = true;
            const left = (claims.get(subjectId) ?? 1) - 1;
            if (left > 0) claims.set(subjectId, left);
            else claims.delete(subjectId);
            if (committed && waiting.delete(subjectId)) this.onStoredByOrder();
            // a rollback once the hold is over: the replica stores it, so no later order may insert it beside it
            if (!committed && over && !claims.has(subjectId)) leaveHold(subjectId);
            settleIfDone();
          };
        },
      };
      mine.set(subjectId, entry);
      waiting.add(subjectId);
      this.keys.set(subjectId, entry);
      keyWaiters.get(subjectId)?.forEach((wake) => wake(undefined));
    }
    if (waiting.size === 0) settle();
    else {
      timer = setTimeout(() => {
        over = true;
        for (const subjectId of waiting) if (!claims.has(subjectId)) leaveHold(subjectId);
        settleIfDone();
      }, ms);
    }
    return {
      settled,
      // erasures (never held), and held keys no order stored
      unstored: () => records.filter((r) => !mine.has(r.subjectId) || waiting.has(r.subjectId)),
      release: () => {
        clearTimeout(timer);
        for (const subjectId of mine.keys()) leaveHold(subjectId);
      },
    };
  }
}

/** a key the replica holds: its sealed key, and how an order's transaction that stores it says so */
interface HeldKey {
  sealedKey: string;
  claim(): (committed: boolean) => void;
}

/**
 * Stores a held key in the order's own transaction and answers the subject's row: the key, or the erasure already
 * stored (a key never replaces an erasure). The hold learns the transaction's outcome: once it commits, the replica
 * need not store the key; if it rolls back, the replica does.
 */
async function storeHeldKey(trx: Tx, held: HeldSubjectKeys, subjectId: string, sealedKey: string): Promise<StoredKey | undefined> {
  const settle = held.claim(subjectId);
  if (settle) trx.executionPromise.then(() => settle(true), () => settle(false));
  const result: { rows: StoredKey[] } = await trx.raw(
    `with stored as (insert into subject_keys (subject_id, sealed_key) values (?, ?) on conflict (subject_id) do nothing returning sealed_key, erased_at)
     select sealed_key, erased_at from stored
     union all select sealed_key, erased_at from subject_keys where subject_id = ? and not exists (select 1 from stored)`,
    [subjectId, sealedKey, subjectId],
  );
  // (nothing answered: another transaction stored the subject after this statement's snapshot; it has committed now)
  return result.rows[0] ?? trx('subject_keys').where({ subject_id: subjectId }).first('sealed_key', 'erased_at');
}

/**
 * The OrderReceived a reader may use: buyer and ship-to opened from `sealedPersonal` with the subject's key; without
 * personal data when the subject was erased. A key this service has not received yet is a retriable error: the
 * consumer waits (the partition pauses), it does not dead-letter. Events from before sealing pass unchanged.
 */
export async function openOrderReceived(
  trx: Tx, kek: KeyEncryptionKey, orderId: string, order: OrderReceived,
  options: { waitMs?: number; held?: HeldSubjectKeys } = {},
): Promise<OrderReceived> {
  const sealed = order.sealedPersonal;
  if (!sealed) return order;
  const { waitMs = KEY_WAIT_MS, held } = options;
  // The key is published just before the order, on another topic read by another consumer: it is usually a few
  // milliseconds behind. Looking again for a moment (our transaction sees its commit) spares a rolled-back slice and a
  // retry for each such order — a quarter of them at 8 orders/s in the 20,000-order run. It looks again when this
  // process has stored the key, else every KEY_LOOK_AGAIN_MS (looking every 20 ms was 0.5 reads per order).
  // A key this process stored meanwhile is handed over with the row its statement stored (committed): no second read.
  // A key this process's replica holds (not stored yet) is stored by this transaction, in the same round trip as the look.
  const lookUp = (): Promise<StoredKey | undefined> => {
    const heldKey = held?.sealedKeyOf(sealed.subjectId);
    if (heldKey) return storeHeldKey(trx, held!, sealed.subjectId, heldKey);
    return trx('subject_keys').where({ subject_id: sealed.subjectId }).first('sealed_key', 'erased_at');
  };
  const arrival = keyArrival(sealed.subjectId);
  let row: StoredKey | undefined;
  try {
    row = await lookUp();
    for (const deadline = Date.now() + waitMs; !row && Date.now() < deadline;) {
      row = (await arrival.next(Math.min(KEY_LOOK_AGAIN_MS, deadline - Date.now()))) ?? (await lookUp());
    }
  } finally {
    arrival.done();
  }
  if (!row) {
    throw new AppError('SUBJECT_KEY_NOT_RECEIVED', `the data key of subject ${sealed.subjectId} has not arrived yet`, { retriable: true, status: 503 });
  }
  if (!row.sealed_key) return erasedOrderReceived(order);
  const data = openPersonalData(kek.unwrap(row.sealed_key, sealed.subjectId), { orderId, subjectId: sealed.subjectId }, sealed.ciphertext);
  return { ...order, buyer: data.buyer, shipTo: data.shipTo };
}

/**
 * Reads the subject-keys topic from the beginning into `subject_keys`, one offset commit per batch (records are
 * idempotent, so a redelivered batch changes nothing). The batches of the partitions one fetch brought are stored by
 * one statement (group commit; at the rates a shop sees each holds a key or two, and each was a commit of its own); a
 * statement that fails stores each batch on its own. With `holdMs`, a batch's keys are first held that long for this
 * process's orders to store in their own transactions (HeldSubjectKeys); the replica stores the rest. Runs beside a
 * service's consumers as one of its workers; a failure (database or broker down) is retried with backoff, never skipped.
 */
export class SubjectKeyReplica {
  readonly name = 'subject-keys';
  private consumer?: Consumer;
  private stopping = false;
  private starting?: Promise<void>;
  private readonly store: Batcher<SubjectKey[], void>;
  /** the keys read and not stored yet, for this process's orders to store in their own transaction (see HeldSubjectKeys) */
  readonly held: HeldSubjectKeys;

  constructor(private readonly deps: {
    kafka: Kafka; db: Db; codec: EventCodec; logger: Logger; metrics: Metrics; namespace: string; group: string;
    /** how long a key waits for an order of this process to store it before the replica does (0: stored at once) */
    holdMs?: number;
  }) {
    const keysStored = deps.metrics.counter('subject_keys_stored_total', 'Subject keys stored in this service\'s copy, by who stored them: an order\'s own transaction, or the replica', ['by']);
    this.held = new HeldSubjectKeys(() => keysStored.inc({ by: 'order' }));
    this.storedByReplica = (n) => keysStored.inc({ by: 'replica' }, n);
    this.store = createBatcher<SubjectKey[], void>({
      name: deps.group, maxBatch: SubjectKeys.partitions, maxInFlight: SubjectKeys.partitions,
      run: async (batches) => {
        await applySubjectKeys(deps.db, batches.flat());
        return batches.map(() => undefined);
      },
      runOne: (records) => applySubjectKeys(deps.db, records),
      logger: deps.logger, metrics: deps.metrics,
    });
  }

  private readonly storedByReplica: (n: number) => void;
  /** per partition: settles once every batch handed over so far is stored (rejects if one gave up) */
  private readonly storedSoFar = new Map<string, Promise<void>>();
  /** offset commits not done yet, which stop() lets finish */
  private readonly committing = new Set<Promise<unknown>>();

  start(): void {
    this.starting ??= this.run();
  }

  nudge(): void {
    // a Kafka consumer is pushed records; nothing to wake
  }

  private async run(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.runOnce();
        return;
      } catch (error) {
        this.deps.logger.warn({ err: error, attempt }, 'subject-keys consumer could not start; will try again');
        await this.consumer?.disconnect().catch(() => undefined);
        await pauseBeforeRetry(attempt);
      }
    }
  }

  private async runOnce(): Promise<void> {
    const { kafka, codec, namespace, group, logger } = this.deps;
    const groupId = namespace ? `${namespace}.${group}` : group;
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => {
      if (event.payload.restart || this.stopping) return;
      logger.warn({ err: event.payload.error }, 'subject-keys consumer crashed; restarting it');
      this.starting = undefined;
      void consumer.disconnect().catch(() => undefined).then(() => this.start());
    });
    await consumer.connect();
    await consumer.subscribe({ topic: subjectKeysTopic(namespace), fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      // every partition at once, so the batches of one fetch can be stored together
      partitionsConsumedConcurrently: SubjectKeys.partitions,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (batch.messages.length === 0) return;
        let records: SubjectKey[] | undefined;
        for (let attempt = 1; !records; attempt++) {
          if (!isRunning() || isStale() || this.stopping) return;
          try {
            const decoded: SubjectKey[] = [];
            for (const m of batch.messages) if (m.value) decoded.push(await codec.decodeSubjectKey(m.value));
            records = decoded;
          } catch (error) {
            // a key that cannot be read must not be skipped (its orders would wait for ever): retry until it passes
            logger.warn({ err: error, code: classifyError(error).code, attempt, partition: batch.partition }, 'subject keys not read yet; retrying');
            await pauseBeforeRetry(attempt);
            await heartbeat().catch(() => undefined);
          }
        }
        // The partition's next batches are fetched at once: an order may be waiting for a key in one of them, and this
        // batch's keys may be waiting for that order's commit. The offset is committed once this batch and every
        // earlier one of the partition are stored (a batch not stored commits nothing after it).
        const held = this.held.hold(records, this.deps.holdMs ?? 0);
        const last = batch.messages[batch.messages.length - 1]!.offset;
        resolveOffset(last);
        const partition = `${batch.topic}:${batch.partition}`;
        const stored = Promise.all([this.storedSoFar.get(partition), this.storeHeld(held, batch.partition)]).then(() => undefined);
        stored.catch(() => undefined); // (handled below; the next batch of the partition waits on it too)
        this.storedSoFar.set(partition, stored);
        const committed = stored
          .then(() => consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]))
          // (stopping, or the partition went to another member meanwhile: its keys are read again, which changes nothing)
          .catch((error: unknown) => logger.debug({ err: error, partition: batch.partition }, 'subject-key offsets not committed'));
        this.committing.add(committed);
        void committed.finally(() => this.committing.delete(committed));
        // without a hold the batch is stored by now, or soon: wait for it, as a consumer without a hold would
        if (!this.deps.holdMs) await committed;
      },
    });
  }

  /** Stores what the batch's hold leaves (after it), retrying until it is stored; gives up only when stopping. */
  private async storeHeld(held: HeldBatch, partition: number): Promise<void> {
    try {
      await held.settled;
      for (let attempt = 1; ; attempt++) {
        try {
          const rest = held.unstored();
          if (rest.length > 0) await this.store.submit(rest);
          this.storedByReplica(rest.length);
          return;
        } catch (error) {
          if (this.stopping) throw error;
          // a key that cannot be stored must not be skipped (its orders would wait for ever): retry until it passes
          this.deps.logger.warn({ err: error, code: classifyError(error).code, attempt, partition }, 'subject keys not stored yet; retrying');
          await pauseBeforeRetry(attempt);
        }
      }
    } finally {
      held.release();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting?.catch(() => undefined);
    // the batches held or being stored commit their offsets first (a hold is short); what is not stored is read again
    await Promise.allSettled([...this.committing]);
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
