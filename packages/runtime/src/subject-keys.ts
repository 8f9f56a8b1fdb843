import type { Consumer, Kafka } from 'kafkajs';
import { SubjectKeys, subjectKeysTopic, type EventCodec, type OrderReceived, type SubjectKey } from '@postsale/contracts';
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
 * The OrderReceived a reader may use: buyer and ship-to opened from `sealedPersonal` with the subject's key; without
 * personal data when the subject was erased. A key this service has not received yet is a retriable error: the
 * consumer waits (the partition pauses), it does not dead-letter. Events from before sealing pass unchanged.
 */
export async function openOrderReceived(trx: Tx, kek: KeyEncryptionKey, orderId: string, order: OrderReceived, waitMs = KEY_WAIT_MS): Promise<OrderReceived> {
  const sealed = order.sealedPersonal;
  if (!sealed) return order;
  // The key is published just before the order, on another topic read by another consumer: it is usually a few
  // milliseconds behind. Looking again for a moment (our transaction sees its commit) spares a rolled-back slice and a
  // retry for each such order — a quarter of them at 8 orders/s in the 20,000-order run. It looks again when this
  // process has stored the key, else every KEY_LOOK_AGAIN_MS (looking every 20 ms was 0.5 reads per order).
  // A key this process stored meanwhile is handed over with the row its statement stored (committed): no second read.
  const lookUp = (): Promise<StoredKey | undefined> => trx('subject_keys').where({ subject_id: sealed.subjectId }).first('sealed_key', 'erased_at');
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
 * statement that fails stores each batch on its own. Runs beside a service's consumers as one of its workers; a
 * failure (database or broker down) is retried with backoff, never skipped.
 */
export class SubjectKeyReplica {
  readonly name = 'subject-keys';
  private consumer?: Consumer;
  private stopping = false;
  private starting?: Promise<void>;
  private readonly store: Batcher<SubjectKey[], void>;

  constructor(private readonly deps: { kafka: Kafka; db: Db; codec: EventCodec; logger: Logger; metrics: Metrics; namespace: string; group: string }) {
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
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
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
        for (let attempt = 1; ; attempt++) {
          if (!isRunning() || isStale() || this.stopping) return;
          try {
            const records: SubjectKey[] = [];
            for (const m of batch.messages) if (m.value) records.push(await codec.decodeSubjectKey(m.value));
            await this.store.submit(records);
            break;
          } catch (error) {
            // a key that cannot be stored must not be skipped (its orders would wait for ever): retry until it passes
            logger.warn({ err: error, code: classifyError(error).code, attempt, partition: batch.partition }, 'subject keys not stored yet; retrying');
            await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
            await heartbeat().catch(() => undefined);
          }
        }
        const last = batch.messages[batch.messages.length - 1]!;
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
        resolveOffset(last.offset);
      },
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting?.catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
