import { safeInteger, type Marketplace, type OrderReceived } from '@postsale/contracts';
import type { Db, Knex, Tx } from '@postsale/runtime';
import type { OrderStore } from '../domain/ports';
import type { OrderEventRecord, OrderRecord, OrderState } from '../domain/records';

type Row = Record<string, unknown>;
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

/** An emitted event as order_events records it (also written by a delivery's decision: DeliveriesRepository.decide). */
export type OrderEventRow = { orderId: string; eventId: string; type: string; cause: string; deliveryId: string | null; refundId?: string; amountMinor?: number };
export const orderEventRow = (e: OrderEventRow) => ({
  order_id: e.orderId, event_id: e.eventId, event_type: e.type, cause: e.cause, delivery_id: e.deliveryId, refund_id: e.refundId ?? null, amount_minor: e.amountMinor ?? null,
});

export function toOrder(r: Row): OrderRecord {
  return {
    orderId: String(r.order_id), marketplace: r.marketplace as Marketplace, externalOrderId: String(r.external_order_id), sellerId: String(r.seller_id),
    accountId: String(r.account_id), state: r.state as OrderState, saleAmountMinor: safeInteger(r.sale_amount_minor),
    refundedAmountMinor: safeInteger(r.refunded_amount_minor), currency: String(r.currency).trim(), paymentReference: (r.payment_reference as string | null) ?? null,
    receivedPayload: r.received_payload as OrderReceived, receivedAt: date(r.received_at),
  };
}

export class OrdersRepository implements OrderStore {
  constructor(private readonly db: Db) {}

  /**
   * The insert of a received order unless (marketplace, external id) exists, returning its id only when this statement
   * created it: a statement to run inside a larger one (the subject keys' `sealIfNew`), not on its own.
   */
  insertIfNewQuery(trx: Tx, row: { orderId: string; sellerId: string; deliveryId: string; payload: OrderReceived }): Knex.Sql {
    return trx('orders')
      .insert({
        order_id: row.orderId,
        marketplace: row.payload.marketplace,
        external_order_id: row.payload.externalOrderId,
        seller_id: row.sellerId,
        account_id: row.payload.marketplaceAccountId,
        state: 'RECEIVED',
        sale_amount_minor: row.payload.saleAmount.amountMinor,
        currency: row.payload.saleAmount.currency,
        payment_reference: row.payload.paymentReference,
        received_payload: JSON.stringify(row.payload),
        first_delivery_id: row.deliveryId,
      })
      .onConflict(['marketplace', 'external_order_id'])
      .ignore()
      .returning('order_id')
      .toSQL();
  }

  /**
   * Claims the next eBay order due for a re-read (still open, received within the window) and schedules the read after
   * it: recheck_at = now + min × 2^count, at most max. Skip-locked, so replicas never claim the same order.
   */
  async claimEbayRecheck(o: { windowSeconds: number; minMs: number; maxMs: number }): Promise<{ orderId: string; recheckCount: number } | undefined> {
    const result = await this.db.raw(
      `update orders set recheck_count = recheck_count + 1,
              recheck_at = now() + least(? * power(2, least(recheck_count, 30)), ?) * interval '1 millisecond'
        where order_id = (select order_id from orders
                           where marketplace = 'EBAY' and state in ('RECEIVED', 'PARTIALLY_REFUNDED')
                             and received_at > now() - ? * interval '1 second'
                             and coalesce(recheck_at, received_at + ? * interval '1 millisecond') <= now()
                           order by coalesce(recheck_at, received_at) limit 1 for update skip locked)
        returning order_id, recheck_count`,
      [o.minMs, o.maxMs, o.windowSeconds, o.minMs],
    );
    const row = result.rows[0] as { order_id: string; recheck_count: number } | undefined;
    return row ? { orderId: row.order_id, recheckCount: safeInteger(row.recheck_count) } : undefined;
  }

  async get(orderId: string, trx: Tx | Db = this.db, lock = false): Promise<OrderRecord | undefined> {
    const q = trx('orders').where({ order_id: orderId });
    if (lock) q.forUpdate();
    const row = await q.first();
    return row ? toOrder(row) : undefined;
  }

  /** Our order ids for a buyer's email (case-insensitive); the answer carries ids only, no personal data. */
  async orderIdsByBuyerEmail(email: string): Promise<string[]> {
    const rows: Array<{ order_id: string }> = await this.db('orders')
      .whereRaw(`lower(received_payload->'buyer'->>'email') = lower(?)`, [email])
      .orderBy('received_at', 'desc').limit(50).select('order_id');
    return rows.map((r) => r.order_id);
  }

  async byPaymentReference(marketplace: Marketplace, reference: string): Promise<OrderRecord | undefined> {
    const row = await this.db('orders').where({ marketplace, payment_reference: reference }).first();
    return row ? toOrder(row) : undefined;
  }

  async update(trx: Tx, orderId: string, fields: { state: OrderState; refundedMinor?: number }): Promise<void> {
    await trx('orders')
      .where({ order_id: orderId })
      .update({ state: fields.state, ...(fields.refundedMinor !== undefined ? { refunded_amount_minor: fields.refundedMinor } : {}), updated_at: trx.fn.now() });
  }

  /** Records an emitted event; false when this refund id was already recorded for the order. */
  async addEvent(trx: Tx, e: OrderEventRow): Promise<boolean> {
    const rows = await trx('order_events').insert(orderEventRow(e)).onConflict(['order_id', 'refund_id']).ignore().returning('id');
    return rows.length > 0;
  }

  async events(orderId: string): Promise<OrderEventRecord[]> {
    const rows: Row[] = await this.db('order_events').where({ order_id: orderId }).orderBy('id');
    return rows.map((r) => ({
      eventId: String(r.event_id), eventType: String(r.event_type), cause: String(r.cause), deliveryId: (r.delivery_id as string | null) ?? null,
      refundId: (r.refund_id as string | null) ?? null, at: date(r.at),
    }));
  }
}
