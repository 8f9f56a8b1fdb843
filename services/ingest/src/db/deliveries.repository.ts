import { safeInteger, type Marketplace } from '@postsale/contracts';
import type { Db, Tx } from '@postsale/runtime';
import type { DeliveryStore, StoreOptions, StoreResult } from '../domain/ports';
import { orderEventRow } from './orders.repository';
import { LeaseLostError, type DecisionFields, type Delivery, type DeliveryStatus, type DroppedCount, type NewDelivery } from '../domain/records';

type Row = Record<string, unknown>;
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

/** A deliveries row (or its row_to_json) as the domain's record. */
export function toDelivery(r: Row): Delivery {
  return {
    id: String(r.id), marketplace: r.marketplace as Marketplace, kind: String(r.kind), dedupeKey: String(r.dedupe_key),
    accountId: (r.account_id as string | null) ?? null, externalOrderId: (r.external_order_id as string | null) ?? null, orderId: (r.order_id as string | null) ?? null,
    status: r.status as DeliveryStatus, reason: (r.reason as string | null) ?? null, detail: (r.detail as string | null) ?? null,
    headers: (r.headers ?? {}) as Record<string, string>, rawBody: String(r.raw_body), sourceIp: (r.source_ip as string | null) ?? null,
    attempts: safeInteger(r.attempts), receivedAt: date(r.received_at), nextAttemptAt: date(r.next_attempt_at),
    processedAt: r.processed_at ? date(r.processed_at) : null, statusChangedAt: date(r.status_changed_at), fence: safeInteger(r.lease_fence ?? 0),
  };
}

const toRow = (d: NewDelivery) => ({
  id: d.id, marketplace: d.marketplace, kind: d.kind, dedupe_key: d.dedupeKey, account_id: d.accountId, external_order_id: d.externalOrderId,
  order_id: d.orderId, headers: JSON.stringify(d.headers), raw_body: d.rawBody, source_ip: d.sourceIp,
});

/** Adds the (marketplace, reason, day, count, now) rows of `source` to the day's counters; `source` gives each (marketplace, reason, day) once: a statement may update a row only once. */
const countDropped = (source: string) =>
  `insert into dropped_notifications (marketplace, reason, day, count, last_seen_at) ${source}
   on conflict (marketplace, reason, day) do update set count = dropped_notifications.count + excluded.count, last_seen_at = now()`;

/** The statuses that hold a message: at most one delivery per (marketplace, dedupe key) among them (unique index). */
const HOLDS_MESSAGE = `status in ('pending', 'accepted', 'ignored', 'parked')`;

export class DeliveriesRepository implements DeliveryStore {
  constructor(private readonly db: Db) {}

  /**
   * One statement, one round trip: insert pending unless the unique (marketplace, dedupe key) index already holds the
   * message, and in that case insert this delivery as a `duplicate` of it (kept for the audit trail). A delivery racing
   * the first copy (not yet visible to this statement) is still a duplicate, only without the first one's id. With
   * `dropUnregisteredAs`, a delivery for an account no seller registered is not stored, only counted under that reason.
   */
  async storeNew(d: NewDelivery, claimMs: number, options: StoreOptions = {}): Promise<StoreResult> {
    return (await this.storeMany([{ delivery: d, claimMs, options }]))[0]!;
  }

  /**
   * storeNew for many deliveries in ONE statement (group commit of concurrent acks), each with the outcome storeNew
   * would give it. Two copies of one message in the same batch cannot both go through ON CONFLICT: only the first
   * (in batch order) is offered to the index, and the later ones are stored as duplicates of whichever copy holds the
   * message (that first one, or the one already in the table). Dropped notifications are added to their day's counter
   * once per (marketplace, reason), as one row may be updated only once by a statement.
   */
  async storeMany(items: ReadonlyArray<{ delivery: NewDelivery; claimMs: number; options?: StoreOptions }>): Promise<StoreResult[]> {
    if (items.length === 0) return [];
    const bindings: Array<string | number | null> = [];
    const rows = items.map(({ delivery }) => toRow(delivery));
    const values = items.map(({ claimMs, options = {} }, ord) => {
      const row = rows[ord]!;
      bindings.push(ord, row.id, row.marketplace, row.kind, row.dedupe_key, row.account_id, row.external_order_id, row.order_id, row.headers, row.raw_body, row.source_ip,
        options.dropUnregisteredAs ?? null, options.ignored ?? null, claimMs);
      return '(?::int, ?::uuid, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::jsonb, ?::text, ?::text, ?::text, ?::text, ?::int)';
    });
    // The messages are sent once (the bodies and headers are most of the bytes) and read back only as the columns the
    // database filled in; a prior copy is looked up only for the deliveries that were not stored.
    const result = await this.db.raw(
      `with incoming (ord, id, marketplace, kind, dedupe_key, account_id, external_order_id, order_id, headers, raw_body, source_ip, drop_reason, ignored, claim_ms) as (
         values ${values.join(', ')}
       ), routed as (
         select i.*, i.drop_reason is null or exists (select 1 from marketplace_accounts a where a.marketplace = i.marketplace and a.account_id = i.account_id) as routable
           from incoming i
       ), firsts as (
         select distinct on (marketplace, dedupe_key) * from routed where routable order by marketplace, dedupe_key, ord
       ), stored as (
         insert into deliveries (id, marketplace, kind, dedupe_key, account_id, external_order_id, order_id, headers, raw_body, source_ip, status, reason, processed_at, claimed_until)
         select id, marketplace, kind, dedupe_key, account_id, external_order_id, order_id, headers, raw_body, source_ip,
                case when ignored is null then 'pending' else 'ignored' end, ignored,
                case when ignored is null then null else now() end, case when claim_ms > 0 then now() + (claim_ms * interval '1 millisecond') end
           from firsts order by ord
         on conflict (marketplace, dedupe_key) where ${HOLDS_MESSAGE} do nothing
         returning id, marketplace, dedupe_key, order_id, status, reason, detail, attempts, received_at, next_attempt_at, processed_at, status_changed_at, lease_fence
       ), prior as (
         select r.ord, coalesce(s.id, held.id) as id, case when s.id is null then held.order_id else s.order_id end as order_id
           from routed r
           left join stored s on s.marketplace = r.marketplace and s.dedupe_key = r.dedupe_key
           left join lateral (
             select d.id, d.order_id from deliveries d
              where s.id is null and d.marketplace = r.marketplace and d.dedupe_key = r.dedupe_key and d.${HOLDS_MESSAGE} limit 1
           ) held on true
          where r.routable and not exists (select 1 from stored x where x.id = r.id)
       ), duplicate as (
         insert into deliveries (id, marketplace, kind, dedupe_key, account_id, external_order_id, order_id, headers, raw_body, source_ip, status, reason, processed_at)
         select r.id, r.marketplace, r.kind, r.dedupe_key, r.account_id, r.external_order_id, r.order_id, r.headers, r.raw_body, r.source_ip,
                'duplicate', coalesce('SAME_MESSAGE_AS_' || p.id, 'SAME_MESSAGE'), now()
           from routed r join prior p using (ord)
       ), dropped as (
         ${countDropped('select marketplace, drop_reason, current_date, count(*), now() from routed where not routable group by marketplace, drop_reason')}
       )
       select r.ord, r.routable,
              (select row_to_json(s) from stored s where s.id = r.id) as stored,
              (select json_build_object('id', p.id, 'order_id', p.order_id) from prior p where p.ord = r.ord) as prior
         from routed r order by r.ord`,
      bindings,
    );
    const outcomes = result.rows as Array<{ ord: number; routable: boolean; stored: Row | null; prior: { id: string | null; order_id: string | null } | null }>;
    return items.map(({ delivery: d, options = {} }, ord) => {
      const r = outcomes[ord];
      if (!r || r.ord !== ord) throw new Error(`storeMany: no outcome for delivery ${ord} of ${items.length}`);
      if (!r.routable) return { kind: 'dropped', reason: options.dropUnregisteredAs! };
      if (r.stored) return { kind: 'stored', delivery: toDelivery({ ...rows[ord], headers: d.headers, ...r.stored }) };
      return { kind: 'duplicate', deliveryId: d.id, duplicateOf: r.prior?.id ?? null, orderId: r.prior?.order_id ?? null };
    });
  }

  /** Stores a delivery that needs no work (e.g. an unsupported topic) as ignored, deduplicated like storeNew. */
  insertIgnored(d: NewDelivery, reason: string, options: Omit<StoreOptions, 'ignored'> = {}): Promise<StoreResult> {
    return this.storeNew(d, 0, { ...options, ignored: reason });
  }

  /** Our own scheduled work (an eBay re-read): stored pending for the worker; a key already held is not stored twice. */
  async enqueue(d: NewDelivery): Promise<void> {
    const row = toRow(d);
    await this.db.raw(
      `insert into deliveries (id, marketplace, kind, dedupe_key, account_id, external_order_id, order_id, headers, raw_body, source_ip, status)
       values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, 'pending') on conflict (marketplace, dedupe_key) where ${HOLDS_MESSAGE} do nothing`,
      [row.id, row.marketplace, row.kind, row.dedupe_key, row.account_id, row.external_order_id, row.order_id, row.headers, row.raw_body, row.source_ip],
    );
  }

  /** A notification answered but not kept: one counter row per marketplace, reason and day (bounded). */
  async countDropped(marketplace: Marketplace, reason: string): Promise<void> {
    await this.db.raw(countDropped('values (?, ?, current_date, 1, now())'), [marketplace, reason]);
  }

  async droppedCounts(): Promise<DroppedCount[]> {
    const rows: Row[] = await this.db('dropped_notifications').orderBy([{ column: 'day', order: 'desc' }, 'marketplace', 'reason']).limit(100);
    // the day as the driver reads it, so the admin answer is unchanged
    return rows.map((r) => ({ marketplace: String(r.marketplace), reason: String(r.reason), day: r.day as string | Date, count: safeInteger(r.count) }));
  }

  async get(id: string): Promise<Delivery | undefined> {
    const row = await this.db('deliveries').where({ id }).first();
    return row ? toDelivery(row) : undefined;
  }

  /**
   * Claims up to `limit` due deliveries, at most `perAccount` of any one (marketplace, account), round-robin over
   * accounts: however long one account's backlog, another account's delivery is in the next claim. Accounts with due
   * work are found by a skip scan over the pending index (one probe per account, at most `maxAccounts`), then each
   * account's oldest due deliveries are taken (skip-locked, so replicas split the work).
   */
  async claimBatch(claimMs: number, limit: number, perAccount: number, options: { maxAccounts?: number; exclude?: string[] } = {}): Promise<Delivery[]> {
    const due = `status = 'pending' and next_attempt_at <= now() and (claimed_until is null or claimed_until < now())`;
    const result = await this.db.raw(
      `with recursive excluded(k) as (select unnest(?::text[])), accounts(marketplace, account) as (
         (select marketplace, coalesce(account_id, '') from deliveries where ${due}
           order by marketplace, coalesce(account_id, '') limit 1)
         union all
         select n.marketplace, n.account from accounts a cross join lateral (
           select marketplace, coalesce(account_id, '') as account from deliveries
            where ${due} and (marketplace, coalesce(account_id, '')) > (a.marketplace, a.account)
            order by marketplace, coalesce(account_id, '') limit 1) n
       ), some_accounts as (
         select * from accounts where marketplace || ':' || account <> all (select k from excluded) limit ?
       ), candidates as (
         select c.id, c.next_attempt_at, c.turn from some_accounts a cross join lateral (
           select id, next_attempt_at, row_number() over (order by next_attempt_at) as turn from (
             select id, next_attempt_at from deliveries
              where ${due} and marketplace = a.marketplace and coalesce(account_id, '') = a.account
              order by next_attempt_at limit ? for update skip locked) mine) c
       ), chosen as (
         select id, turn from candidates order by turn, next_attempt_at limit ?
       )
       update deliveries d set claimed_until = now() + (? * interval '1 millisecond'), lease_fence = d.lease_fence + 1
         from chosen where d.id = chosen.id
       returning d.*, chosen.turn`,
      [options.exclude ?? [], options.maxAccounts ?? 256, perAccount, limit, claimMs],
    );
    return (result.rows as Array<Row & { turn: string }>)
      .sort((a, b) => Number(a.turn) - Number(b.turn) || date(a.next_attempt_at).getTime() - date(b.next_attempt_at).getTime())
      .map(({ turn: _turn, ...row }) => toDelivery(row));
  }

  async decide(trx: Tx | Db, id: string, status: DeliveryStatus, fields: DecisionFields = {}): Promise<void> {
    const decision = trx('deliveries');
    // the event it emitted is recorded in the same statement (one round trip); a lost lease throws below and the
    // transaction takes the record back with it
    if (fields.event) decision.with('recorded', trx('order_events').insert(orderEventRow({ ...fields.event, deliveryId: id })));
    const updated = await decision
      .where({ id, ...(fields.fence !== undefined ? { lease_fence: fields.fence } : {}) })
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
    if (updated === 0 && fields.fence !== undefined) throw new LeaseLostError(id);
  }

  decideNow(id: string, status: DeliveryStatus, fields: DecisionFields = {}): Promise<void> {
    return this.decide(this.db, id, status, fields);
  }

  /** Leaves the delivery pending and schedules another attempt after `delay` ms (the caller's backoff). */
  async retryLater(id: string, attempts: number, delay: number, error: { code: string; message: string }, fence?: number): Promise<void> {
    await this.db('deliveries')
      .where({ id, status: 'pending', ...(fence !== undefined ? { lease_fence: fence } : {}) })
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

  async list(filter: { status?: DeliveryStatus; marketplace?: Marketplace; limit: number }): Promise<Delivery[]> {
    const q = this.db('deliveries').orderBy('received_at', 'desc').limit(filter.limit);
    if (filter.status) q.where({ status: filter.status });
    if (filter.marketplace) q.where({ marketplace: filter.marketplace });
    return (await q).map(toDelivery);
  }

  async forOrder(orderId: string): Promise<Delivery[]> {
    return (await this.db('deliveries').where({ order_id: orderId }).orderBy('received_at')).map(toDelivery);
  }

  async countByStatus(status: DeliveryStatus): Promise<number> {
    const row = await this.db('deliveries').where({ status }).count<{ count: string }[]>('* as count').first();
    return Number(row?.count ?? 0);
  }

  /** Deliveries stuck past a deadline, for the integrity report. */
  async stuck(status: 'pending' | 'parked', olderThanSeconds: number): Promise<Delivery[]> {
    const rows: Row[] = await this.db('deliveries')
      .where({ status })
      .where('status_changed_at', '<', this.db.raw(`now() - (? * interval '1 second')`, [olderThanSeconds]))
      .orderBy('status_changed_at')
      .limit(1000);
    return rows.map(toDelivery);
  }
}
