import type { Db, Tx } from '@postsale/runtime';
import type { AdminAuditEntry, AdminAuditLog } from '../domain/cancel-order.use-case';

/** fulfillment's admin audit trail: one row per admin write, in the same transaction as the write. Never holds secrets. */
export class AuditRepository implements AdminAuditLog {
  constructor(private readonly db: Db) {}

  async record(trx: Tx, e: AdminAuditEntry): Promise<void> {
    await trx('admin_audit').insert({
      actor: e.actor, action: e.action, target: e.target.slice(0, 255), order_id: e.orderId,
      before: JSON.stringify(e.before), after: JSON.stringify(e.after), reason: e.reason.slice(0, 500),
    });
  }

  async forOrder(orderId: string): Promise<Array<{ actor: string; action: string; reason: string | null; before: unknown; after: unknown; at: Date }>> {
    return this.db('admin_audit').where({ order_id: orderId }).orderBy('id').select('actor', 'action', 'reason', 'before', 'after', 'at');
  }
}
