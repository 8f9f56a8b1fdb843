import type { Knex } from 'knex';
import type { Db, Tx } from './db';

/** One admin write (or reveal of personal data) as it is recorded. The actor comes from the credential, never a header. */
export interface AdminAuditEntry {
  actor: string;
  action: string;
  target: string;
  orderId?: string | null;
  before?: unknown;
  after?: unknown;
  reason?: string | null;
}

export interface AdminAuditRecord {
  actor: string;
  action: string;
  target: string;
  /** absent where the service's table has no order column (payouts) */
  orderId?: string | null;
  before: unknown;
  after: unknown;
  reason: string | null;
  at: Date;
}

/**
 * The `admin_audit` table every service keeps in its own schema: who, what, before/after, why, when. Never secrets.
 * Called from each service's own migration, so the table is the same everywhere; `orderColumn` is false only where the
 * service's first version of the table had none (payouts: its entries name a seller or an intent as the target).
 */
export async function createAdminAuditTable(db: Knex, options: { orderColumn: boolean; indexes: Array<'order' | 'target'> }): Promise<void> {
  await db.schema.createTable('admin_audit', (t) => {
    t.bigIncrements('id').primary();
    t.string('actor', 32).notNullable();
    t.string('action', 64).notNullable();
    t.string('target', 255).notNullable();
    if (options.orderColumn) t.string('order_id');
    t.jsonb('before');
    t.jsonb('after');
    t.string('reason', 500);
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  if (options.indexes.includes('order')) await db.raw('create index admin_audit_order on admin_audit (order_id) where order_id is not null');
  if (options.indexes.includes('target')) await db.raw('create index admin_audit_target on admin_audit (target, id)');
}

/** Reads and writes a service's admin_audit table; a write goes in the transaction of the admin write it records. */
export class AdminAuditTrail {
  constructor(private readonly db: Db) {}

  async record(entry: AdminAuditEntry, q: Db | Tx = this.db): Promise<void> {
    await q('admin_audit').insert({
      actor: entry.actor, action: entry.action, target: entry.target.slice(0, 255),
      ...(entry.orderId ? { order_id: entry.orderId } : {}),
      before: entry.before === undefined ? null : JSON.stringify(entry.before),
      after: entry.after === undefined ? null : JSON.stringify(entry.after),
      reason: entry.reason?.slice(0, 500) ?? null,
    });
  }

  async forOrder(orderId: string, q: Db | Tx = this.db): Promise<AdminAuditRecord[]> {
    return (await q('admin_audit').where({ order_id: orderId }).orderBy('id')).map(toRecord);
  }

  /** newest first */
  async recent(filter: { target?: string; limit: number }, q: Db | Tx = this.db): Promise<AdminAuditRecord[]> {
    const query = q('admin_audit').orderBy('id', 'desc').limit(filter.limit);
    if (filter.target) query.where({ target: filter.target });
    return (await query).map(toRecord);
  }
}

function toRecord(row: Record<string, unknown>): AdminAuditRecord {
  return {
    actor: String(row.actor), action: String(row.action), target: String(row.target), ...('order_id' in row ? { orderId: (row.order_id as string | null) ?? null } : {}),
    before: row.before ?? null, after: row.after ?? null, reason: (row.reason as string | null) ?? null, at: new Date(row.at as string),
  };
}
