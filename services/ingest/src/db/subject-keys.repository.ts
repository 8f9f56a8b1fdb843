import { randomUUID } from 'node:crypto';
import type { OrderReceived, SubjectKey } from '@postsale/contracts';
import {
  naturalSubjectId, newDataKey, sealOrderReceived, type Db, type KeyEncryptionKey, type Knex, type Migration, type OutboxWriter, type Tx,
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

  /**
   * A received order and its data subject, in ONE statement: the order is inserted unless it is known (`insertOrder`,
   * from OrdersRepository.insertIfNewQuery); only when it is new is its subject's key issued (or the one held locked),
   * and the order linked to it. Returns the order as it goes on Kafka — buyer and ship-to sealed under that key — with
   * the key when it was issued here (the caller publishes it with the order's event: OutboxWriter.publish's
   * `subjectKey`), or undefined when the order was known already (then nothing was written).
   */
  async sealIfNew(trx: Tx, orderId: string, order: OrderReceived, insertOrder: Knex.Sql): Promise<{ sealed: OrderReceived; issuedKey: SubjectKey | null } | undefined> {
    const ref = this.kek.subjectRef(naturalSubjectId(order.marketplace, orderId, order.buyer?.externalId));
    const fresh = { subject_id: randomUUID(), subject_ref: ref, sealed_key: '' };
    fresh.sealed_key = this.kek.wrap(newDataKey(), fresh.subject_id);
    // A key issued here is this transaction's own uncommitted row: no erasure can see it before this order commits. An
    // existing key is read with a shared lock, so an erasure of the subject waits for this order to commit (and then
    // erases it with the rest). A key that is neither (another order issued it after this statement's snapshot was
    // taken, and committed) is read again, with the same lock, by a statement of its own.
    const result = await trx.raw(
      `with new_order as (${insertOrder.sql}),
       issued as (
         insert into subject_keys (subject_id, subject_ref, sealed_key) select ?, ?, ? where exists (select 1 from new_order)
         on conflict (subject_ref) do nothing returning subject_id, sealed_key
       ),
       held as (
         select subject_id, sealed_key from subject_keys where subject_ref = ? and exists (select 1 from new_order) for share
       ),
       subject as (select subject_id, sealed_key, true as issued from issued union all select subject_id, sealed_key, false from held),
       linked as (
         insert into order_subjects (order_id, subject_id) select order_id, subject_id from new_order cross join subject
         on conflict (order_id) do nothing
       )
       select exists (select 1 from new_order) as created, (select row_to_json(s) from subject s) as subject`,
      [...insertOrder.bindings, fresh.subject_id, fresh.subject_ref, fresh.sealed_key, ref],
    );
    const found = result.rows[0] as { created: boolean; subject: { subject_id: string; sealed_key: string; issued: boolean } | null };
    if (!found.created) return undefined;
    const subject = found.subject ?? { ...(await this.lockCommittedKey(trx, ref)), issued: false };
    if (!found.subject) await trx('order_subjects').insert({ order_id: orderId, subject_id: subject.subject_id }).onConflict('order_id').ignore();
    return {
      sealed: sealOrderReceived(order, orderId, { subjectId: subject.subject_id, dataKey: this.kek.unwrap(subject.sealed_key, subject.subject_id) }),
      issuedKey: subject.issued ? { subjectId: subject.subject_id, sealedKey: subject.sealed_key, erasedAt: null, occurredAt: Date.now() } : null,
    };
  }

  /** A key another order committed after sealIfNew's statement began: read with the shared lock erasure waits on. */
  private async lockCommittedKey(trx: Tx, ref: string): Promise<{ subject_id: string; sealed_key: string }> {
    const row = (await trx('subject_keys').where({ subject_ref: ref }).forShare().first('subject_id', 'sealed_key')) as { subject_id: string; sealed_key: string } | undefined;
    // erased in between: the delivery is retried, and a fresh key is issued then
    if (!row) throw new Error('the subject key was erased while this order was being received; retrying');
    return row;
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
