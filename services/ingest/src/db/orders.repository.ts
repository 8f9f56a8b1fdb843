import type { Marketplace, OrderReceived } from '@postsale/contracts';
import type { Db, Tx } from '@postsale/runtime';

export type OrderState = 'RECEIVED' | 'CANCELLED' | 'PARTIALLY_REFUNDED' | 'REFUNDED';

export interface OrderRow {
  order_id: string;
  marketplace: Marketplace;
  external_order_id: string;
  seller_id: string;
  account_id: string;
  state: OrderState;
  sale_amount_minor: string;
  refunded_amount_minor: string;
  currency: string;
  payment_reference: string | null;
  received_payload: OrderReceived;
  first_delivery_id: string | null;
  received_at: Date;
  updated_at: Date;
}

export class OrdersRepository {
  constructor(private readonly db: Db) {}

  /** Inserts the order unless (marketplace, external id) exists; true when this call created it. */
  async insertIfNew(trx: Tx, row: { orderId: string; sellerId: string; deliveryId: string; payload: OrderReceived }): Promise<boolean> {
    const inserted = await trx('orders')
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
      .returning('order_id');
    return inserted.length > 0;
  }

  /**
   * Claims the next eBay order due for a re-read (still open, received within the window) and schedules the read after
   * it: recheck_at = now + min × 2^count, at most max. Skip-locked, so replicas never claim the same order.
   */
  async claimEbayRecheck(o: { windowSeconds: number; minMs: number; maxMs: number }): Promise<{ order_id: string; recheck_count: number } | undefined> {
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
    return result.rows[0];
  }

  async get(orderId: string, trx: Tx | Db = this.db, lock = false): Promise<OrderRow | undefined> {
    const q = trx('orders').where({ order_id: orderId });
    if (lock) q.forUpdate();
    return q.first();
  }

  /** Our order ids for a buyer's email (case-insensitive); the answer carries ids only, no personal data. */
  async orderIdsByBuyerEmail(email: string): Promise<string[]> {
    const rows: Array<{ order_id: string }> = await this.db('orders')
      .whereRaw(`lower(received_payload->'buyer'->>'email') = lower(?)`, [email])
      .orderBy('received_at', 'desc').limit(50).select('order_id');
    return rows.map((r) => r.order_id);
  }

  async byPaymentReference(marketplace: Marketplace, reference: string): Promise<OrderRow | undefined> {
    return this.db('orders').where({ marketplace, payment_reference: reference }).first();
  }

  async update(trx: Tx, orderId: string, fields: { state: OrderState; refundedMinor?: number }): Promise<void> {
    await trx('orders')
      .where({ order_id: orderId })
      .update({ state: fields.state, ...(fields.refundedMinor !== undefined ? { refunded_amount_minor: fields.refundedMinor } : {}), updated_at: trx.fn.now() });
  }

  /** Records an emitted event; false when this refund id was already recorded for the order. */
  async addEvent(trx: Tx, e: { orderId: string; eventId: string; type: string; cause: string; deliveryId: string | null; refundId?: string; amountMinor?: number }): Promise<boolean> {
    const rows = await trx('order_events')
      .insert({ order_id: e.orderId, event_id: e.eventId, event_type: e.type, cause: e.cause, delivery_id: e.deliveryId, refund_id: e.refundId ?? null, amount_minor: e.amountMinor ?? null })
      .onConflict(['order_id', 'refund_id'])
      .ignore()
      .returning('id');
    return rows.length > 0;
  }

  async events(orderId: string): Promise<Array<{ event_id: string; event_type: string; cause: string; delivery_id: string | null; refund_id: string | null; amount_minor: string | null; at: Date }>> {
    return this.db('order_events').where({ order_id: orderId }).orderBy('id');
  }

  async hasRefund(orderId: string, refundId: string): Promise<boolean> {
    return Boolean(await this.db('order_events').where({ order_id: orderId, refund_id: refundId }).first());
  }
}
