import type { Marketplace } from '@postsale/contracts';
import { retryDelayMs, type Db, type Tx } from '@postsale/runtime';

export type DeliveryStatus = 'pending' | 'accepted' | 'duplicate' | 'ignored' | 'rejected' | 'parked';

export interface DeliveryRow {
  id: string;
  marketplace: Marketplace;
  kind: string;
  dedupe_key: string;
  account_id: string | null;
  external_order_id: string | null;
  order_id: string | null;
  status: DeliveryStatus;
  reason: string | null;
  detail: string | null;
  headers: Record<string, string>;
  raw_body: string;
  source_ip: string | null;
  attempts: number;
  received_at: Date;
  next_attempt_at: Date;
  claimed_until: Date | null;
  processed_at: Date | null;
  status_changed_at: Date;
}

export type NewDelivery = Pick<DeliveryRow, 'id' | 'marketplace' | 'kind' | 'dedupe_key' | 'account_id' | 'external_order_id' | 'order_id' | 'headers' | 'raw_body' | 'source_ip'>;

export class DeliveriesRepository {
  constructor(private readonly db: Db) {}

  /** Stores a delivery as pending; `claimMs` keeps the poller off it while the request processes it inline. */
  async insertPending(d: NewDelivery, claimMs: number): Promise<void> {
    await this.db('deliveries').insert({
      ...d,
      headers: JSON.stringify(d.headers),
      status: 'pending',
      claimed_until: claimMs > 0 ? this.db.raw(`now() + (? * interval '1 millisecond')`, [claimMs]) : null,
    });
  }

  /** Stores a delivery already decided (e.g. a duplicate of one already accepted), for the audit trail. */
  async insertDecided(d: NewDelivery, status: DeliveryStatus, reason: string | null): Promise<void> {
    await this.db('deliveries').insert({ ...d, headers: JSON.stringify(d.headers), status, reason, processed_at: this.db.fn.now() });
  }

  /** An earlier delivery of the same marketplace message that is decided or still owned by the queue. */
  async earlierWithKey(marketplace: Marketplace, dedupeKey: string): Promise<DeliveryRow | undefined> {
    return this.db('deliveries').where({ marketplace, dedupe_key: dedupeKey }).whereIn('status', ['accepted', 'duplicate', 'ignored', 'pending', 'parked']).orderBy('received_at').first();
  }

  /** A notification answered but not kept: one counter row per marketplace, reason and day (bounded). */
  async countDropped(marketplace: Marketplace, reason: string): Promise<void> {
    await this.db.raw(
      `insert into dropped_notifications (marketplace, reason, day, count, last_seen_at) values (?, ?, current_date, 1, now())
       on conflict (marketplace, reason, day) do update set count = dropped_notifications.count + 1, last_seen_at = now()`,
      [marketplace, reason],
    );
  }

  async droppedCounts(): Promise<Array<{ marketplace: string; reason: string; day: string; count: string }>> {
    return this.db('dropped_notifications').orderBy([{ column: 'day', order: 'desc' }, 'marketplace', 'reason']).limit(100);
  }

  async get(id: string): Promise<DeliveryRow | undefined> {
    return this.db('deliveries').where({ id }).first();
  }

  /** Claims the next due pending delivery (skip-locked, so several replicas never process the same one). */
  async claimNext(claimMs: number): Promise<DeliveryRow | undefined> {
    const result = await this.db.raw(
      `update deliveries set claimed_until = now() + (? * interval '1 millisecond')
        where id = (select id from deliveries
                     where status = 'pending' and next_attempt_at <= now() and (claimed_until is null or claimed_until < now())
                     order by next_attempt_at limit 1 for update skip locked)
        returning *`,
      [claimMs],
    );
    return result.rows[0];
  }

  /**
   * Claims up to `limit` due deliveries, at most `perAccount` of any one (marketplace, account), round-robin over
   * accounts: however long one account's backlog, another account's delivery is in the next claim. Accounts with due
   * work are found by a skip scan over the pending index (one probe per account, at most `maxAccounts`), then each
   * account's oldest due deliveries are taken (skip-locked, so replicas split the work).
   */
  async claimBatch(claimMs: number, limit: number, perAccount: number, maxAccounts = 256): Promise<DeliveryRow[]> {
    const due = `status = 'pending' and next_attempt_at <= now() and (claimed_until is null or claimed_until < now())`;
    const result = await this.db.raw(
      `with recursive accounts(marketplace, account) as (
         (select marketplace, coalesce(account_id, '') from deliveries where ${due}
           order by marketplace, coalesce(account_id, '') limit 1)
         union all
         select n.marketplace, n.account from accounts a cross join lateral (
           select marketplace, coalesce(account_id, '') as account from deliveries
            where ${due} and (marketplace, coalesce(account_id, '')) > (a.marketplace, a.account)
            order by marketplace, coalesce(account_id, '') limit 1) n
       ), some_accounts as (
         select * from accounts limit ?
       ), candidates as (
         select c.id, c.next_attempt_at, c.turn from some_accounts a cross join lateral (
           select id, next_attempt_at, row_number() over (order by next_attempt_at) as turn from (
             select id, next_attempt_at from deliveries
              where ${due} and marketplace = a.marketplace and coalesce(account_id, '') = a.account
              order by next_attempt_at limit ? for update skip locked) mine) c
       ), chosen as (
         select id, turn from candidates order by turn, next_attempt_at limit ?
       )
       update deliveries d set claimed_until = now() + (? * interval '1 millisecond')
         from chosen where d.id = chosen.id
       returning d.*, chosen.turn`,
      [maxAccounts, perAccount, limit, claimMs],
    );
    return (result.rows as Array<DeliveryRow & { turn: string }>)
      .sort((a, b) => Number(a.turn) - Number(b.turn) || new Date(a.next_attempt_at).getTime() - new Date(b.next_attempt_at).getTime())
      .map(({ turn: _turn, ...row }) => row as DeliveryRow);
  }

  async decide(trx: Tx | Db, id: string, status: DeliveryStatus, fields: { reason?: string | null; detail?: string | null; orderId?: string | null; accountId?: string | null; externalOrderId?: string | null } = {}): Promise<void> {
    await trx('deliveries')
      .where({ id })
      .update({
        status,
        reason: fields.reason?.slice(0, 64) ?? null,
        detail: fields.detail?.slice(0, 2000) ?? null,
        ...(fields.orderId !== undefined ? { order_id: fields.orderId } : {}),
        ...(fields.accountId !== undefined ? { account_id: fields.accountId } : {}),
        ...(fields.externalOrderId !== undefined ? { external_order_id: fields.externalOrderId } : {}),
        processed_at: status === 'pending' ? null : trx.fn.now(),
        claimed_until: null,
        status_changed_at: trx.fn.now(),
        attempts: trx.raw('attempts + 1'),
      });
  }

  decideNow(id: string, status: DeliveryStatus, fields: Parameters<DeliveriesRepository['decide']>[3] = {}): Promise<void> {
    return this.decide(this.db, id, status, fields);
  }

  /** Leaves the delivery pending and schedules another attempt (the runtime's backoff: up to 500 ms·2^attempts, jittered). */
  async retryLater(id: string, attempts: number, maxBackoffMs: number, error: { code: string; message: string }): Promise<void> {
    const delay = retryDelayMs(attempts + 1, 500, maxBackoffMs);
    await this.db('deliveries')
      .where({ id, status: 'pending' })
      .update({
        attempts: attempts + 1,
        reason: error.code,
        detail: error.message.slice(0, 500),
        claimed_until: null,
        next_attempt_at: this.db.raw(`now() + (? * interval '1 millisecond')`, [delay]),
      });
  }

  /** Parked or rejected-by-mapping deliveries become pending again (operator reprocess or seller registration). */
  async requeue(id: string): Promise<boolean> {
    const n = await this.db('deliveries').where({ id, status: 'parked' }).whereNull('personal_data_erased_at').update({ status: 'pending', next_attempt_at: this.db.fn.now(), claimed_until: null, status_changed_at: this.db.fn.now() });
    return n > 0;
  }

  async requeueUnroutable(accounts: Array<{ marketplace: Marketplace; accountId: string }>): Promise<number> {
    let total = 0;
    for (const a of accounts) {
      total += await this.db('deliveries')
        .where({ status: 'parked', reason: 'UNROUTABLE', marketplace: a.marketplace, account_id: a.accountId })
        .update({ status: 'pending', next_attempt_at: this.db.fn.now(), claimed_until: null, status_changed_at: this.db.fn.now() });
    }
    return total;
  }

  async list(filter: { status?: DeliveryStatus; marketplace?: Marketplace; limit: number }): Promise<DeliveryRow[]> {
    const q = this.db('deliveries').orderBy('received_at', 'desc').limit(filter.limit);
    if (filter.status) q.where({ status: filter.status });
    if (filter.marketplace) q.where({ marketplace: filter.marketplace });
    return q;
  }

  async forOrder(orderId: string): Promise<DeliveryRow[]> {
    return this.db('deliveries').where({ order_id: orderId }).orderBy('received_at');
  }

  async countByStatus(status: DeliveryStatus): Promise<number> {
    const row = await this.db('deliveries').where({ status }).count<{ count: string }[]>('* as count').first();
    return Number(row?.count ?? 0);
  }

  /** Deliveries stuck past a deadline, for the integrity report. */
  async stuck(status: 'pending' | 'parked', olderThanSeconds: number): Promise<DeliveryRow[]> {
    return this.db('deliveries')
      .where({ status })
      .where('status_changed_at', '<', this.db.raw(`now() - (? * interval '1 second')`, [olderThanSeconds]))
      .orderBy('status_changed_at')
      .limit(1000);
  }
}
