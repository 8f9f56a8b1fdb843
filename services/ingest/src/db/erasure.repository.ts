import type { Marketplace } from '@postsale/contracts';
import type { Db, Tx } from '@postsale/runtime';
import type { ErasureStore } from '../domain/ports';
import type { ErasedOrder, ErasureCause, ErasureRecord } from '../domain/records';


/**
 * Erasure of buyers' personal data in ingest's tables. Orders keep ids, amounts and states; their buyer becomes
 * `{externalId:null,name:null,email:null}` and their ship-to null (`shipToIssue: PERSONAL_DATA_ERASED`). Raw deliveries
 * of the order lose body and headers. Events still waiting in (or kept by) the outbox are redacted the same way.
 */
export class ErasureRepository implements ErasureStore {
  constructor(private readonly db: Db) {}

  transaction = <T>(fn: (trx: Tx) => Promise<T>): Promise<T> => this.db.transaction(fn);

  /** eBay orders whose buyer is this eBay username (`buyer.externalId`). */
  async ebayOrdersOfBuyer(trx: Tx, username: string): Promise<string[]> {
    const rows = await trx('orders').where({ marketplace: 'EBAY' }).whereRaw(`received_payload->'buyer'->>'externalId' = ?`, [username]).select('order_id');
    return rows.map((r: { order_id: string }) => r.order_id);
  }

  /** Orders received more than `days` ago whose personal data is still held (oldest first, bounded). */
  async ordersPastRetention(days: number, limit: number): Promise<string[]> {
    const rows = await this.db('orders')
      .whereNull('personal_data_erased_at')
      .where('received_at', '<', this.db.raw(`now() - (? * interval '1 day')`, [days]))
      .orderBy('received_at')
      .limit(limit)
      .select('order_id');
    return rows.map((r: { order_id: string }) => r.order_id);
  }

  /** Erases the orders' personal data; returns the orders erased now (not those erased before) for the event. */
  async eraseOrders(trx: Tx, orderIds: string[]): Promise<{ orders: number; deliveries: number; erased: ErasedOrder[] }> {
    if (orderIds.length === 0) return { orders: 0, deliveries: 0, erased: [] };
    const orders = await trx.raw(
      `update orders set
         received_payload = received_payload || jsonb_build_object(
           'buyer', case when jsonb_typeof(received_payload->'buyer') = 'object' then '{"externalId":null,"name":null,"email":null}'::jsonb else 'null'::jsonb end,
           'shipTo', 'null'::jsonb,
           'shipToIssue', to_jsonb(coalesce(received_payload->>'shipToIssue', 'PERSONAL_DATA_ERASED'))),
         personal_data_erased_at = now(), updated_at = now()
       where order_id = any(?) and personal_data_erased_at is null
       returning order_id, seller_id, marketplace, external_order_id`,
      [orderIds],
    );
    // Events of these orders in the outbox (unsent ones are then published without the personal data).
    await trx.raw(
      `update outbox set event = jsonb_set(jsonb_set(jsonb_set(event,
           '{payload,buyer}', case when jsonb_typeof(event->'payload'->'buyer') = 'object' then '{"externalId":null,"name":null,"email":null}'::jsonb else 'null'::jsonb end),
           '{payload,shipTo}', 'null'::jsonb),
           '{payload,shipToIssue}', to_jsonb(coalesce(event->'payload'->>'shipToIssue', 'PERSONAL_DATA_ERASED')))
       where key = any(?) and event_type = 'OrderReceived'`,
      [orderIds],
    );
    // Deliveries still being worked on (a refund webhook waiting for a retry) keep their body until they are decided;
    // retention erases them later.
    const deliveries = await this.redactDeliveries(trx, trx('deliveries').whereIn('order_id', orderIds).whereNotIn('status', ['pending', 'parked']).select('id'));
    const erased = (orders.rows as Array<{ order_id: string; seller_id: string; marketplace: Marketplace; external_order_id: string }>)
      .map((r) => ({ orderId: r.order_id, sellerId: r.seller_id, marketplace: r.marketplace, externalOrderId: r.external_order_id }));
    return { orders: erased.length, deliveries, erased };
  }

  /** The erasure event in the order's history (journey), like every event ingest emits. */
  async addEvent(trx: Tx, e: { orderId: string; eventId: string; cause: string }): Promise<void> {
    await trx('order_events').insert({ order_id: e.orderId, event_id: e.eventId, event_type: 'OrderPersonalDataErased', cause: e.cause });
  }

  /**
   * A marketplace account closed at the marketplace (eBay account deletion of one of our sellers): its deliveries lose
   * their raw body, work still queued for it is dropped, and the account (with its sealed token) is removed.
   */
  async eraseAccount(trx: Tx, marketplace: Marketplace, accountId: string): Promise<{ deliveries: number; accountRemoved: boolean }> {
    await trx('deliveries')
      .where({ marketplace, account_id: accountId })
      .whereIn('status', ['pending', 'parked'])
      .update({ status: 'rejected', reason: 'ACCOUNT_DELETED', processed_at: trx.fn.now(), claimed_until: null, status_changed_at: trx.fn.now() });
    const deliveries = await this.redactDeliveries(trx, trx('deliveries').where({ marketplace, account_id: accountId }).select('id'));
    const removed = await trx('marketplace_accounts').where({ marketplace, account_id: accountId }).delete();
    return { deliveries, accountRemoved: removed > 0 };
  }

  private async redactDeliveries(trx: Tx, ids: ReturnType<Tx>): Promise<number> {
    const n = await trx('deliveries')
      .whereIn('id', ids)
      .whereNull('personal_data_erased_at')
      .update({ raw_body: '{"erased":true}', headers: '{}', source_ip: null, detail: null, personal_data_erased_at: trx.fn.now() });
    return n;
  }

  async record(trx: Tx, e: { cause: ErasureCause; subjectHash?: string | null; orderId?: string | null; orders: number; deliveries: number; requestedBy: string; reason?: string | null }): Promise<void> {
    await trx('erasures').insert({
      cause: e.cause, subject_hash: e.subjectHash ?? null, order_id: e.orderId ?? null, orders_erased: e.orders, deliveries_erased: e.deliveries,
      requested_by: e.requestedBy.slice(0, 128), reason: e.reason?.slice(0, 500) ?? null,
    });
  }

  async forOrder(orderId: string): Promise<ErasureRecord[]> {
    const rows: Array<{ cause: string; requested_by: string; reason: string | null; at: Date }> = await this.db('erasures').where({ order_id: orderId }).orderBy('id').select('cause', 'requested_by', 'reason', 'at');
    return rows.map((r) => ({ cause: r.cause, requestedBy: r.requested_by, reason: r.reason, at: new Date(r.at) }));
  }

  /** Raw deliveries already decided and older than the retention period are deleted (bounded per call). */
  async deleteDecidedDeliveriesOlderThan(days: number, limit: number): Promise<number> {
    const result = await this.db.raw(
      `delete from deliveries where id in (
         select id from deliveries where status in ('accepted','duplicate','ignored','rejected')
            and received_at < now() - (? * interval '1 day') order by received_at limit ?)`,
      [days, limit],
    );
    await this.db('dropped_notifications').where('day', '<', this.db.raw(`current_date - ?::int`, [days])).delete();
    return result.rowCount ?? 0;
  }
}
