import { randomUUID } from 'node:crypto';
import type { OrderReceived } from '@postsale/contracts';
import {
  naturalSubjectId, newDataKey, sealOrderReceived, type Db, type KeyEncryptionKey, type Migration, type OutboxWriter, type Tx,
} from '@postsale/runtime';

/**
 * Ingest issues the data subjects' keys (crypto-shredding of personal data in events). A subject is a buyer of a
 * marketplace, or the order when the marketplace names no buyer. Its key is random, sealed with the key-encryption key
 * (never in clear here or on Kafka), found by a keyed hash of who the subject is (`subject_ref`), and known elsewhere
 * only by a random `subject_id`. It is published on the compacted subject-keys topic through the outbox, in the same
 * transaction as the first order it seals, so it reaches Kafka no later than that order's event. Erasure deletes it
 * here and publishes the subject as erased: every service deletes its copy, compaction drops it from the topic.
 */
export const subjectKeyMigrations: Migration[] = [
  {
    name: '0100_ingest_subject_keys',
    async up(db) {
      await db.schema.createTable('subject_keys', (t) => {
        t.string('subject_id', 64).primary();
        t.string('subject_ref', 64).notNullable().unique();
        t.text('sealed_key').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // which subject sealed each order: erasure finds a subject's orders and an order's subject (ids only, no person)
      await db.schema.createTable('order_subjects', (t) => {
        t.string('order_id').primary();
        t.string('subject_id', 64).notNullable().index();
      });
    },
  },
];

export class SubjectKeysRepository {
  constructor(
    private readonly db: Db,
    private readonly kek: KeyEncryptionKey,
    private readonly outbox: OutboxWriter,
  ) {}

  /** The order as it goes on Kafka: buyer and ship-to sealed under its subject's key (issued now if it has none). */
  async seal(trx: Tx, orderId: string, order: OrderReceived): Promise<OrderReceived> {
    const ref = this.kek.subjectRef(naturalSubjectId(order.marketplace, orderId, order.buyer?.externalId));
    const fresh = { subject_id: randomUUID(), subject_ref: ref, sealed_key: '' };
    fresh.sealed_key = this.kek.wrap(newDataKey(), fresh.subject_id);
    const inserted: Array<{ subject_id: string; sealed_key: string }> = await trx('subject_keys').insert(fresh).onConflict('subject_ref').ignore().returning(['subject_id', 'sealed_key']);
    // A key issued here is this transaction's own uncommitted row: no erasure can see it before this order commits. An
    // existing key is read with a shared lock, so an erasure of the subject waits for this order to commit (and then
    // erases it with the rest).
    const row = inserted[0] ?? ((await trx('subject_keys').where({ subject_ref: ref }).forShare().first('subject_id', 'sealed_key')) as { subject_id: string; sealed_key: string });
    if (inserted.length > 0) {
      await this.outbox.publishSubjectKey(trx, { subjectId: row.subject_id, sealedKey: row.sealed_key, erasedAt: null, occurredAt: Date.now() });
    }
    await trx('order_subjects').insert({ order_id: orderId, subject_id: row.subject_id }).onConflict('order_id').ignore();
    return sealOrderReceived(order, orderId, { subjectId: row.subject_id, dataKey: this.kek.unwrap(row.sealed_key, row.subject_id) });
  }

  async subjectsOfOrders(trx: Tx, orderIds: string[]): Promise<string[]> {
    if (orderIds.length === 0) return [];
    const rows: Array<{ subject_id: string }> = await trx('order_subjects').whereIn('order_id', orderIds).distinct('subject_id');
    return rows.map((r) => r.subject_id);
  }

  async ordersOfSubjects(trx: Tx, subjectIds: string[]): Promise<string[]> {
    if (subjectIds.length === 0) return [];
    const rows: Array<{ order_id: string }> = await trx('order_subjects').whereIn('subject_id', subjectIds).select('order_id');
    return rows.map((r) => r.order_id);
  }

  /** Of these subjects, those none of whose orders still holds personal data (retention may shred them). */
  async withoutPersonalData(trx: Tx, subjectIds: string[]): Promise<string[]> {
    if (subjectIds.length === 0) return [];
    const held: Array<{ subject_id: string }> = await trx('order_subjects as s')
      .join('orders as o', 'o.order_id', 's.order_id')
      .whereIn('s.subject_id', subjectIds)
      .whereNull('o.personal_data_erased_at')
      .distinct('s.subject_id');
    const keep = new Set(held.map((r) => r.subject_id));
    return subjectIds.filter((id) => !keep.has(id));
  }

  /** Crypto-shredding: the keys go, and every copy of the subjects' events becomes unreadable. Returns how many. */
  async shred(trx: Tx, subjectIds: string[]): Promise<number> {
    if (subjectIds.length === 0) return 0;
    const deleted: Array<{ subject_id: string }> = await trx('subject_keys').whereIn('subject_id', subjectIds).delete().returning('subject_id');
    const now = Date.now();
    // announced even when this copy was gone already (an erasure repeated after a lost publish): idempotent downstream
    for (const subjectId of subjectIds) await this.outbox.publishSubjectKey(trx, { subjectId, sealedKey: null, erasedAt: now, occurredAt: now });
    return deleted.length;
  }

  /** For tests and the operator: is this subject's key still held? */
  async exists(subjectId: string): Promise<boolean> {
    return (await this.db('subject_keys').where({ subject_id: subjectId }).first('subject_id')) !== undefined;
  }
}
