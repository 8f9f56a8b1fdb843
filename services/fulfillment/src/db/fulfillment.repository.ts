import { safeInteger } from '@postsale/contracts';
import type { Address, Money, OrderLine } from '@postsale/contracts';
import type { Knex } from 'knex';
import type { Db, OutboxRow, Tx } from '@postsale/runtime';
import type {
  Attempt, Fulfillment, FulfillmentHistory, FulfillmentPatch, FulfillmentStore, NewFulfillment, OverdueOrder, OverduePush, PurchaseIntent, SupplierAnswer, TrackingPush, TrackingPushOutcome,
} from '../domain/ports';
import type { State } from '../domain/states';

export type { Attempt, Fulfillment, FulfillmentPatch, NewFulfillment };

type Row = Record<string, unknown>;

function moneyOf(minor: unknown, currency: unknown): Money | null {
  if (minor === null || minor === undefined || !currency) return null;
  return { amountMinor: safeInteger(minor), currency: String(currency).trim() };
}

const date = (v: unknown) => (v ? new Date(v as string) : null);

function toFulfillment(row: Row): Fulfillment {
  return {
    orderId: String(row.order_id),
    sellerId: String(row.seller_id),
    marketplace: (row.marketplace as string) ?? null,
    externalOrderId: (row.external_order_id as string) ?? null,
    marketplaceAccountId: (row.marketplace_account_id as string) ?? null,
    state: row.state as State,
    stateSince: new Date(row.state_since as string),
    reasonCode: (row.reason_code as string) ?? null,
    reasonDetails: row.reason_details ?? null,
    lines: (row.lines as OrderLine[]) ?? [],
    shipTo: (row.ship_to as Address) ?? null,
    shipToIssue: (row.ship_to_issue as string) ?? null,
    saleAmount: moneyOf(row.sale_amount_minor, row.sale_currency),
    marketplaceFee: moneyOf(row.marketplace_fee_minor, row.marketplace_fee_currency),
    paymentFee: moneyOf(row.payment_fee_minor, row.payment_fee_currency),
    outOrderId: (row.out_order_id as string) ?? null,
    channel: (row.channel as string) ?? null,
    supplierOrderId: (row.supplier_order_id as string) ?? null,
    supplierCost: moneyOf(row.supplier_cost_minor, row.supplier_cost_currency),
    approvedMax: moneyOf(row.approved_max_minor, row.approved_max_currency),
    purchaseAttempts: Number(row.purchase_attempts ?? 0),
    statusChecks: Number(row.status_checks ?? 0),
    nextRunAt: date(row.next_run_at),
    carrier: (row.carrier as string) ?? null,
    trackingNumber: (row.tracking_number as string) ?? null,
    cancelRequested: Boolean(row.cancel_requested),
    receivedAt: date(row.received_at),
    purchasedAt: date(row.purchased_at),
    shippedAt: date(row.shipped_at),
    leaseVersion: safeInteger(row.lease_version ?? 0),
  };
}

function toAttempt(row: Row): Attempt {
  return {
    id: String(row.id),
    attemptNo: Number(row.attempt_no),
    kind: row.kind as Attempt['kind'],
    channel: String(row.channel),
    outOrderId: String(row.out_order_id),
    outcome: row.outcome as Attempt['outcome'],
    supplierOrderId: (row.supplier_order_id as string) ?? null,
    supplierCode: (row.supplier_code as string) ?? null,
    startedAt: new Date(row.started_at as string),
  };
}

function patchColumns(patch: FulfillmentPatch): Row {
  const row: Row = {};
  if (patch.reasonCode !== undefined) row.reason_code = patch.reasonCode;
  if (patch.reasonDetails !== undefined) row.reason_details = patch.reasonDetails === null ? null : JSON.stringify(patch.reasonDetails);
  if (patch.channel !== undefined) row.channel = patch.channel;
  if (patch.supplierOrderId !== undefined) row.supplier_order_id = patch.supplierOrderId;
  if (patch.supplierCost !== undefined) {
    row.supplier_cost_minor = patch.supplierCost.amountMinor;
    row.supplier_cost_currency = patch.supplierCost.currency;
  }
  if (patch.approvedMax !== undefined) {
    row.approved_max_minor = patch.approvedMax?.amountMinor ?? null;
    row.approved_max_currency = patch.approvedMax?.currency ?? null;
  }
  if (patch.approvedBy !== undefined) row.approved_by = patch.approvedBy;
  if (patch.purchaseAttempts !== undefined) row.purchase_attempts = patch.purchaseAttempts;
  if (patch.statusChecks !== undefined) row.status_checks = patch.statusChecks;
  if (patch.nextRunAt !== undefined) row.next_run_at = patch.nextRunAt;
  if (patch.carrier !== undefined) row.carrier = patch.carrier;
  if (patch.trackingNumber !== undefined) row.tracking_number = patch.trackingNumber;
  if (patch.cancelRequested !== undefined) row.cancel_requested = patch.cancelRequested;
  if (patch.purchasedAt !== undefined) row.purchased_at = patch.purchasedAt;
  if (patch.shippedAt !== undefined) row.shipped_at = patch.shippedAt;
  if (patch.deliveredAt !== undefined) row.delivered_at = patch.deliveredAt;
  return row;
}

/** The domain's FulfillmentStore over the fulfillment schema. */
export class FulfillmentRepository implements FulfillmentStore {
  constructor(readonly db: Db) {}

  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /**
   * Inserts the order once (business-key idempotency on top of the inbox: a re-ingested duplicate is a no-op). With
   * `claimedForMs` the order is inserted claimed, as `claimDue` would leave it: its lease taken and its first fence.
   */
  async insertReceived(trx: Tx, f: NewFulfillment, cause: string, claimedForMs?: number): Promise<Fulfillment | undefined> {
    const insert = trx('fulfillments')
      .insert({
        order_id: f.orderId,
        seller_id: f.sellerId,
        marketplace: f.marketplace,
        external_order_id: f.externalOrderId,
        marketplace_account_id: f.marketplaceAccountId,
        state: 'RECEIVED',
        lines: JSON.stringify(f.lines),
        ship_to: f.shipTo ? JSON.stringify(f.shipTo) : null,
        ship_to_issue: f.shipToIssue,
        sale_amount_minor: f.saleAmount.amountMinor,
        sale_currency: f.saleAmount.currency,
        marketplace_fee_minor: f.marketplaceFee?.amountMinor ?? null,
        marketplace_fee_currency: f.marketplaceFee?.currency ?? null,
        payment_fee_minor: f.paymentFee?.amountMinor ?? null,
        payment_fee_currency: f.paymentFee?.currency ?? null,
        out_order_id: f.outOrderId,
        next_run_at: claimedForMs === undefined ? trx.fn.now() : new Date(Date.now() + claimedForMs),
        lease_version: claimedForMs === undefined ? 0 : 1,
        received_at: f.receivedAt,
      })
      .onConflict('order_id')
      .ignore()
      .returning('*');
    const row = await this.changeWithTransition(trx, insert, { previous: null, cause, details: null });
    return row ? toFulfillment(row) : undefined;
  }

  /** A cancellation that arrived before (or without) the order: remembered so a later OrderReceived buys nothing. */
  async insertCancelledPlaceholder(trx: Tx, orderId: string, sellerId: string, cause: string, details: unknown): Promise<void> {
    const insert = trx('fulfillments')
      .insert({ order_id: orderId, seller_id: sellerId, state: 'CANCELLED', reason_code: 'CANCELLED_BEFORE_RECEIVED' })
      .onConflict('order_id')
      .ignore()
      .returning('*');
    await this.changeWithTransition(trx, insert, { previous: null, cause, details });
  }

  /** The buyer's address is erased (OrderPersonalDataErased); ids, amounts and states stay. */
  async erasePersonalData(trx: Tx, orderId: string): Promise<boolean> {
    const n = await trx('fulfillments').where({ order_id: orderId }).update({ ship_to: null, ship_to_issue: 'PERSONAL_DATA_ERASED' });
    return n > 0;
  }

  async get(orderId: string, trx?: Tx): Promise<Fulfillment | undefined> {
    const row = await (trx ?? this.db)('fulfillments').where({ order_id: orderId }).first();
    return row ? toFulfillment(row) : undefined;
  }

  /**
   * The atomic transition: UPDATE … WHERE state IN (from). Returns the updated fulfillment, or undefined when the order
   * was not in one of those states (someone else moved it first) — the caller then does nothing.
   */
  async transition(trx: Tx | undefined, orderId: string, from: State[], to: State, cause: string, details: unknown, patch: FulfillmentPatch = {}, fence?: number, also: { answer?: SupplierAnswer; event?: OutboxRow } = {}): Promise<Fulfillment | undefined> {
    const q = trx ?? this.db;
    const update = q('fulfillments').where({ order_id: orderId }).whereIn('state', from);
    // a worker passes its lease's fencing token: if another worker has claimed the order since, nothing is updated
    if (fence !== undefined) update.where('lease_version', fence);
    update.update({ ...patchColumns(patch), state: to, state_since: q.fn.now() }).returning('*');
    const row = await this.changeWithTransition(q, update, { previous: from.length === 1 ? from[0]! : 'last recorded', cause, details }, also.answer && { ...also.answer, orderId }, also.event);
    return row ? toFulfillment(row) : undefined;
  }

  /** Updates columns without changing state, only if the order is still in `state`. */
  async update(trx: Tx | undefined, orderId: string, state: State, patch: FulfillmentPatch, fence?: number): Promise<boolean> {
    const query = (trx ?? this.db)('fulfillments').where({ order_id: orderId, state });
    if (fence !== undefined) query.where('lease_version', fence);
    const count = await query.update(patchColumns(patch));
    return count > 0;
  }

  /** Reads the order and locks its row until the transaction ends (a cancellation and a purchase outcome serialize). */
  async getForUpdate(trx: Tx, orderId: string): Promise<Fulfillment | undefined> {
    const row = await trx('fulfillments').where({ order_id: orderId }).forUpdate().first();
    return row ? toFulfillment(row) : undefined;
  }

  /**
   * Extends the lease of a claimed job while its worker is still at it (a long browser checkout). Only the holder of
   * the current fencing token can; false means the lease was lost (another worker claimed the order).
   */
  async renewLease(orderId: string, fence: number, leaseMs: number): Promise<boolean> {
    const count = await this.db('fulfillments')
      .where({ order_id: orderId, lease_version: fence })
      .update({ next_run_at: new Date(Date.now() + leaseMs) });
    return count > 0;
  }

  /** True when some purchase attempt of the order may have created a supplier order (unknown, pending, placed, created). */
  async mayHaveSupplierOrder(orderId: string, trx?: Tx): Promise<boolean> {
    const row = await (trx ?? this.db)('purchase_attempts').where({ order_id: orderId }).whereIn('outcome', ['PENDING', 'UNKNOWN', 'PLACED', 'CREATED']).first('id');
    return Boolean(row);
  }

  /**
   * Runs `change` (an insert or a guarded update of one fulfillment, `returning *`) and records its transition in the
   * same statement: a transitions row for the row it changed, none when it changed nothing (a fenced-off or moved order).
   * The previous state is `previous`, or with several possible ones the last recorded transition's target. A supplier
   * `answer` behind the change is recorded in the statement too, whether or not it changed a row. An outbox `event`
   * (OutboxWriter.row) is written only from the row it changed: it exists iff the change happened.
   */
  private async changeWithTransition(q: Db | Tx, change: Knex.QueryBuilder, t: { previous: string | null | 'last recorded'; cause: string; details: unknown }, answer?: SupplierAnswer & { orderId: string }, event?: OutboxRow): Promise<Row | undefined> {
    const previous = t.previous === 'last recorded' ? '(select last.to_state from transitions last where last.order_id = changed.order_id order by last.id desc limit 1)' : '?::text';
    const answered = answer ? ', answered as (insert into supplier_responses (order_id, method, outcome, summary) values (?, ?, ?, ?::jsonb))' : '';
    const published = event ? ', published as (insert into outbox (event_id, topic, stream, key, event_type, event) select ?::uuid, ?, ?, ?, ?, ?::jsonb from changed)' : '';
    const result: { rows: Row[] } = await q.raw(
      `with changed as (?), recorded as (
         insert into transitions (order_id, from_state, to_state, cause, details)
         select order_id, ${previous}, state, ?, ?::jsonb from changed)${answered}${published}
       select * from changed`,
      [
        change, ...(t.previous === 'last recorded' ? [] : [t.previous]), t.cause, t.details === null || t.details === undefined ? null : JSON.stringify(t.details),
        ...(answer ? [answer.orderId, answer.method, answer.outcome, JSON.stringify(answer.summary ?? null)] : []),
        ...(event ? [event.event_id, event.topic, event.stream, event.key, event.event_type, event.event] : []),
      ],
    );
    return result.rows[0];
  }

  /**
   * Claims due work in `states` for this process, in one statement: rows whose next_run_at has passed are picked with
   * SKIP LOCKED (two workers never take the same order at once) and get a lease (next_run_at moved forward) and a new
   * fencing token, committed at once.
   */
  async claimDue(states: State[], limit: number, leaseMs: number): Promise<Fulfillment[]> {
    const due = this.db('fulfillments')
      .select('order_id')
      .whereIn('state', states)
      .where('next_run_at', '<=', this.db.fn.now())
      .orderBy('next_run_at')
      .limit(limit)
      .forUpdate()
      .skipLocked();
    // a new lease, a new fencing token: whoever held the previous lease can no longer commit
    const claimed: Row[] = await this.db('fulfillments')
      .whereIn('order_id', due)
      .update({ next_run_at: new Date(Date.now() + leaseMs), lease_version: this.db.raw('lease_version + 1') })
      .returning('*');
    return claimed.map(toFulfillment);
  }

  async lastAttempt(orderId: string, trx?: Tx): Promise<Attempt | undefined> {
    const row = await (trx ?? this.db)('purchase_attempts').where({ order_id: orderId }).orderBy('attempt_no', 'desc').first();
    return row ? toAttempt(row) : undefined;
  }

  async firstCreateAttempt(orderId: string): Promise<Attempt | undefined> {
    const row = await this.db('purchase_attempts').where({ order_id: orderId, kind: 'CREATE' }).orderBy('attempt_no').first();
    return row ? toAttempt(row) : undefined;
  }

  /**
   * An attempt on its own, numbered after the order's last one in the same statement (no read first). The purchase
   * worker records its attempt with its intent (recordPurchaseIntent), which numbers it the same way.
   */
  async insertAttempt(trx: Tx, a: { orderId: string; kind: Attempt['kind']; channel: string; outOrderId: string }): Promise<string> {
    const result: { rows: Row[] } = await trx.raw(
      `insert into purchase_attempts (order_id, attempt_no, kind, channel, out_order_id)
       select ?, coalesce(max(attempt_no), 0) + 1, ?, ?, ? from purchase_attempts where order_id = ?
       returning id`,
      [a.orderId, a.kind, a.channel, a.outOrderId, a.orderId],
    );
    return String(result.rows[0]!.id);
  }

  /**
   * The purchase intent in one statement, all or nothing, committed before the caller calls the supplier: the price
   * check's answer (recorded whatever the guard finds), the update of the order guarded by its state and fenced by the
   * lease, and — only from the row that update returned — its transitions row and the next attempt, PENDING, numbered
   * after the order's last one. No row back: the order was moved or claimed by another worker, nothing but the answer
   * was recorded.
   */
  async recordPurchaseIntent(i: PurchaseIntent): Promise<string | undefined> {
    const changed = this.db('fulfillments')
      .where({ order_id: i.orderId, state: i.from, lease_version: i.fence })
      .update({ ...patchColumns(i.patch), ...(i.transition ? { state: 'PURCHASING', state_since: this.db.fn.now() } : {}) })
      .returning(['order_id', 'state']);
    const steps: string[] = ['changed as (?)'];
    const bindings: Knex.RawBinding[] = [changed];
    if (i.priceCheck) {
      steps.push(`priced as (insert into supplier_responses (order_id, method, outcome, summary) values (?, 'price-guard', ?, ?::jsonb))`);
      bindings.push(i.orderId, i.priceCheck.outcome, JSON.stringify(i.priceCheck.summary ?? null));
    }
    if (i.transition) {
      steps.push('recorded as (insert into transitions (order_id, from_state, to_state, cause, details) select order_id, ?::text, state, ?, ?::jsonb from changed)');
      bindings.push(i.from, i.transition.cause, i.transition.details === null || i.transition.details === undefined ? null : JSON.stringify(i.transition.details));
    }
    steps.push(`attempt as (
         insert into purchase_attempts (order_id, attempt_no, kind, channel, out_order_id)
         select order_id, (select coalesce(max(a.attempt_no), 0) + 1 from purchase_attempts a where a.order_id = changed.order_id), ?, ?, ? from changed
         returning id)`);
    bindings.push(i.attempt.kind, i.attempt.channel, i.attempt.outOrderId);
    const result: { rows: Row[] } = await this.db.raw(`with ${steps.join(',\n       ')}\n       select id from attempt`, bindings);
    return result.rows[0] ? String(result.rows[0].id) : undefined;
  }

  /**
   * Locks the order (as getForUpdate does) and records the attempt's result only while the lease `fence` is still
   * current, in one statement. Returns the order as it is now: another lease_version means nothing was recorded.
   */
  async finishAttempt(trx: Tx, orderId: string, fence: number, id: string, r: { outcome: Attempt['outcome']; supplierOrderId?: string; supplierCode?: string; message?: string; response?: unknown }): Promise<Fulfillment | undefined> {
    const finish = trx('purchase_attempts')
      .where({ id, order_id: orderId })
      .whereExists((q) => q.select(trx.raw('1')).from('current_order').where('lease_version', fence))
      .update({
        outcome: r.outcome,
        supplier_order_id: r.supplierOrderId ?? null,
        supplier_code: r.supplierCode ?? null,
        message: r.message ?? null,
        response: r.response === undefined ? null : JSON.stringify(r.response),
        finished_at: trx.fn.now(),
      });
    const result: { rows: Row[] } = await trx.raw('with current_order as (select * from fulfillments where order_id = ? for update), finished as (?) select * from current_order', [
      orderId,
      finish,
    ]);
    const row = result.rows[0];
    return row ? toFulfillment(row) : undefined;
  }

  async recordSupplierResponse(orderId: string, method: string, outcome: string, summary: unknown, trx?: Tx): Promise<void> {
    await (trx ?? this.db)('supplier_responses').insert({ order_id: orderId, method, outcome, summary: JSON.stringify(summary ?? null) });
  }

  async history(orderId: string): Promise<FulfillmentHistory> {
    const [transitions, attempts, responses, push] = await Promise.all([
      this.db('transitions').where({ order_id: orderId }).orderBy('id'),
      this.db('purchase_attempts').where({ order_id: orderId }).orderBy('attempt_no'),
      this.db('supplier_responses').where({ order_id: orderId }).orderBy('id'),
      this.db('tracking_pushes').where({ order_id: orderId }).first(),
    ]);
    return { transitions, attempts, responses, push };
  }

  /** Our order ids for a supplier (AliExpress) order number. */
  async orderIdsBySupplierOrder(supplierOrderId: string): Promise<string[]> {
    const rows: Array<{ order_id: string }> = await this.db('fulfillments').where({ supplier_order_id: supplierOrderId }).select('order_id').limit(50);
    return rows.map((r) => r.order_id);
  }

  async reviewQueue(limit: number): Promise<Fulfillment[]> {
    const rows = await this.db('fulfillments').where({ state: 'NEEDS_REVIEW' }).orderBy('state_since').limit(limit);
    return rows.map(toFulfillment);
  }

  async countByState(state: State): Promise<number> {
    const row = await this.db('fulfillments').where({ state }).count<{ count: string }[]>('* as count').first();
    return Number(row?.count ?? 0);
  }

  /** Non-terminal orders that have been in their state longer than `deadlines[state]` seconds. */
  async overdue(deadlines: Partial<Record<State, number>>): Promise<OverdueOrder[]> {
    const query = this.db('fulfillments').select('order_id', 'seller_id', 'state', 'state_since');
    query.where((q) => {
      for (const [state, seconds] of Object.entries(deadlines)) {
        q.orWhere((w) => w.where('state', state).where('state_since', '<', this.db.raw(`now() - (? * interval '1 second')`, [seconds])));
      }
    });
    const rows: Row[] = await query.orderBy('state_since');
    return rows.map((r) => ({ orderId: String(r.order_id), sellerId: String(r.seller_id), state: r.state as State, since: new Date(r.state_since as string) }));
  }

  // --- tracking pushes (outbox-driven marketplace step) ---

  async insertTrackingPush(trx: Tx, orderId: string, sellerId: string, marketplace: string, status: 'PENDING' | 'SKIPPED'): Promise<void> {
    await trx('tracking_pushes').insert({ order_id: orderId, seller_id: sellerId, marketplace, status }).onConflict('order_id').ignore();
  }

  /** Claims due pushes like orders: one statement, SKIP LOCKED, the lease moved forward, a new fencing token per claim. */
  async claimDuePushes(limit: number, leaseMs: number): Promise<TrackingPush[]> {
    const due = this.db('tracking_pushes').select('id').where({ status: 'PENDING' }).where('next_attempt_at', '<=', this.db.fn.now()).orderBy('next_attempt_at').limit(limit).forUpdate().skipLocked();
    const claimed: Row[] = await this.db('tracking_pushes')
      .whereIn('id', due)
      .update({ next_attempt_at: new Date(Date.now() + leaseMs), lease_version: this.db.raw('lease_version + 1') })
      .returning(['id', 'order_id', 'seller_id', 'marketplace', 'attempts', 'lease_version']);
    return claimed.map((r) => ({ id: String(r.id), orderId: String(r.order_id), sellerId: String(r.seller_id), marketplace: String(r.marketplace), attempts: Number(r.attempts), fence: safeInteger(r.lease_version) }));
  }

  /** Records a push's outcome only while its lease is current (and it is still pending). */
  async finishPush(push: Pick<TrackingPush, 'id' | 'fence'>, r: TrackingPushOutcome): Promise<boolean> {
    const count = await this.db('tracking_pushes')
      .where({ id: push.id, lease_version: push.fence, status: 'PENDING' })
      .update({
        status: r.status,
        attempts: r.attempts,
        ...(r.nextAttemptAt ? { next_attempt_at: r.nextAttemptAt } : {}),
        last_error: r.lastError ?? null,
        ...(r.result !== undefined ? { result: JSON.stringify(r.result) } : {}),
        ...(r.status === 'DONE' ? { done_at: this.db.fn.now() } : {}),
      });
    return count > 0;
  }

  async overduePushes(seconds: number): Promise<OverduePush[]> {
    const rows: Row[] = await this.db('tracking_pushes')
      .whereIn('status', ['PENDING', 'FAILED'])
      .where('created_at', '<', this.db.raw(`now() - (? * interval '1 second')`, [seconds]));
    return rows.map((r) => ({ orderId: String(r.order_id), sellerId: String(r.seller_id), status: String(r.status), since: new Date(r.created_at as string), lastError: (r.last_error as string) ?? null }));
  }
}
