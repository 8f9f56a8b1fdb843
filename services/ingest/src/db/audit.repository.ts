import type { Db } from '@postsale/runtime';
import type { AuditLog } from '../domain/ports';
import type { AuditEntry, AuditRecord } from '../domain/records';

/** The admin audit trail: one row per admin write or reveal of personal data. Never holds secrets. */
export class AuditRepository implements AuditLog {
  constructor(private readonly db: Db) {}

  async record(e: AuditEntry): Promise<void> {
    await this.db('admin_audit').insert({
      actor: e.actor, action: e.action, target: e.target.slice(0, 255), order_id: e.orderId ?? null,
      before: e.before === undefined ? null : JSON.stringify(e.before), after: e.after === undefined ? null : JSON.stringify(e.after),
      reason: e.reason?.slice(0, 500) ?? null,
    });
  }

  async forOrder(orderId: string): Promise<AuditRecord[]> {
    return this.db('admin_audit').where({ order_id: orderId }).orderBy('id').select('actor', 'action', 'reason', 'before', 'after', 'at');
  }

  async recent(limit: number): Promise<Array<Record<string, unknown>>> {
    return this.db('admin_audit').orderBy('id', 'desc').limit(limit);
  }
}
