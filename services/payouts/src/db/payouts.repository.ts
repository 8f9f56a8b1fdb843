import { safeInteger } from '@postsale/contracts';
import type { Db, Tx } from '@postsale/runtime';
import type { HoldReason, IntentStatus, Recipient } from '../domain/payout-rules';

/** Reads and writes of the payouts schema. Money columns are bigint: converted with `safeInteger()` on the way out. */
type Q = Db | Tx;

const date = (v: unknown): Date | null => (v ? new Date(v as string) : null);

export interface Intent {
  id: string;
  saleId: string;
  orderId: string;
  sellerId: string;
  recipient: Recipient;
  currency: string;
  amountMinor: number;
  reversedMinor: number;
  offsetMinor: number;
  pendingReversalMinor: number;
  payableMinor: number;
  status: IntentStatus;
  holdReason: HoldReason | null;
  releaseAt: Date | null;
  attempt: number;
  batchId: string | null;
  saleRecordedAt: Date;
  statusSince: Date;
  createdAt: Date;
  /** what the payee is paid in; null until decided (e.g. while the payee is missing) */
  payoutCurrency: string | null;
  /** the rate pinned for this intent (units of payoutCurrency per 1 currency); null when no conversion */
  fxRate: string | null;
  fxRateDate: string | null;
  fxSource: string | null;
  skipReason: string | null;
}

function toIntent(r: Record<string, unknown>): Intent {
  return {
    id: String(r.id),
    saleId: String(r.sale_id),
    orderId: String(r.order_id),
    sellerId: String(r.seller_id),
    recipient: r.recipient as Recipient,
    currency: String(r.currency),
    amountMinor: safeInteger(r.amount_minor),
    reversedMinor: safeInteger(r.reversed_minor),
    offsetMinor: safeInteger(r.offset_minor),
    pendingReversalMinor: safeInteger(r.pending_reversal_minor),
    payableMinor: safeInteger(r.payable_minor),
    status: r.status as IntentStatus,
    holdReason: (r.hold_reason as HoldReason | null) ?? null,
    releaseAt: date(r.release_at),
    attempt: Number(r.attempt),
    batchId: (r.batch_id as string | null) ?? null,
    saleRecordedAt: new Date(r.sale_recorded_at as string),
    statusSince: new Date(r.status_since as string),
    createdAt: new Date(r.created_at as string),
    payoutCurrency: (r.payout_currency as string | null) ?? null,
    fxRate: (r.fx_rate as string | null) ?? null,
    fxRateDate: (r.fx_rate_date as string | null) ?? null,
    fxSource: (r.fx_source as string | null) ?? null,
    skipReason: (r.skip_reason as string | null) ?? null,
  };
}

/** The payout currency and pinned rate of an intent (all null fields: not decided / no conversion). */
export interface PayoutTerms {
  payoutCurrency: string | null;
  fxRate: string | null;
  fxRateDate: string | null;
  fxSource: string | null;
}

import type { FxRate } from '@postsale/contracts';
export type { FxRate };

export interface IntentPatch extends Partial<PayoutTerms> {
  skipReason?: string | null;
  status?: IntentStatus;
  holdReason?: HoldReason | null;
  releaseAt?: Date | null;
  payableMinor?: number;
  reversedMinor?: number;
  offsetMinor?: number;
  pendingReversalMinor?: number;
  attempt?: number;
  batchId?: string | null;
}

export interface Payee {
  sellerId: string;
  email: string;
  releasePolicy: string;
  releaseDelayDays: number;
  /** explicit payout currency; null = default rule (see payout-currency.ts) */
  payoutCurrency: string | null;
  updatedAt: Date;
}

export interface PayoutItem {
  id: string;
  intentId: string;
  attempt: number;
  senderItemId: string;
  batchId: string;
  receiver: string;
  amountMinor: number;
  currency: string;
  /** what this item converted (sale currency) and at which rate; null when paid in the sale's currency */
  sourceAmountMinor: number | null;
  sourceCurrency: string | null;
  fxRate: string | null;
  fxRateDate: string | null;
  status: string;
  paypalItemId: string | null;
  transactionId: string | null;
  errorName: string | null;
  errorMessage: string | null;
  cancelRequestedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

function toItem(r: Record<string, unknown>): PayoutItem {
  return {
    id: String(r.id),
    intentId: String(r.intent_id),
    attempt: Number(r.attempt),
    senderItemId: String(r.sender_item_id),
    batchId: String(r.batch_id),
    receiver: String(r.receiver),
    amountMinor: safeInteger(r.amount_minor),
    currency: String(r.currency),
    sourceAmountMinor: r.source_amount_minor === null || r.source_amount_minor === undefined ? null : safeInteger(r.source_amount_minor),
    sourceCurrency: (r.source_currency as string | null) ?? null,
    fxRate: (r.fx_rate as string | null) ?? null,
    fxRateDate: (r.fx_rate_date as string | null) ?? null,
    status: String(r.status),
    paypalItemId: (r.paypal_item_id as string | null) ?? null,
    transactionId: (r.transaction_id as string | null) ?? null,
    errorName: (r.error_name as string | null) ?? null,
    errorMessage: (r.error_message as string | null) ?? null,
    cancelRequestedAt: date(r.cancel_requested_at),
    createdAt: new Date(r.created_at as string),
    updatedAt: new Date(r.updated_at as string),
  };
}

export interface Batch {
  id: string;
  senderBatchId: string;
  status: string;
  paypalBatchId: string | null;
  request: unknown;
  itemCount: number;
  postAttempts: number;
  lastError: string | null;
  createdAt: Date;
}

function toBatch(r: Record<string, unknown>): Batch {
  return {
    id: String(r.id),
    senderBatchId: String(r.sender_batch_id),
    status: String(r.status),
    paypalBatchId: (r.paypal_batch_id as string | null) ?? null,
    request: typeof r.request === 'string' ? JSON.parse(r.request) : r.request,
    itemCount: Number(r.item_count),
    postAttempts: Number(r.post_attempts),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(r.created_at as string),
  };
}

export class PayoutsRepository {
  // ---- sales, reversals, milestones, payees ------------------------------------------------------------------

  /** false when the sale was already recorded (a re-delivered or re-published SaleRecorded) */
  async insertSale(q: Q, sale: {
    saleId: string; orderId: string; sellerId: string; currency: string; saleAmountMinor: number;
    platformCommissionMinor: number; sellerNetMinor: number; isLoss: boolean; eventId: string; recordedAt: Date;
  }): Promise<boolean> {
    const rows = await q('sales')
      .insert({
        sale_id: sale.saleId, order_id: sale.orderId, seller_id: sale.sellerId, currency: sale.currency,
        sale_amount_minor: sale.saleAmountMinor, platform_commission_minor: sale.platformCommissionMinor,
        seller_net_minor: sale.sellerNetMinor, is_loss: sale.isLoss, event_id: sale.eventId, recorded_at: sale.recordedAt,
      })
      .onConflict('sale_id')
      .ignore()
      .returning('sale_id');
    return rows.length > 0;
  }

  async salesForOrder(q: Q, orderId: string) {
    return q('sales').where({ order_id: orderId }).orderBy('recorded_at');
  }

  async insertReversal(q: Q, r: {
    reversalId: string; saleId: string; orderId: string; kind: string; currency: string;
    commissionReversedMinor: number; sellerNetReversedMinor: number; reversedAt: Date;
  }): Promise<boolean> {
    const rows = await q('reversals')
      .insert({
        reversal_id: r.reversalId, sale_id: r.saleId, order_id: r.orderId, kind: r.kind, currency: r.currency,
        commission_reversed_minor: r.commissionReversedMinor, seller_net_reversed_minor: r.sellerNetReversedMinor, reversed_at: r.reversedAt,
      })
      .onConflict('reversal_id')
      .ignore()
      .returning('reversal_id');
    return rows.length > 0;
  }

  async reversalsForSale(q: Q, saleId: string) {
    return q('reversals').where({ sale_id: saleId }).orderBy('received_at');
  }

  async reversalsForOrder(q: Q, orderId: string) {
    return q('reversals').where({ order_id: orderId }).orderBy('received_at');
  }

  async recordMilestone(q: Q, orderId: string, sellerId: string, field: 'shipped_at' | 'delivered_at', at: Date): Promise<void> {
    // keeps the earliest time: a re-delivered or replayed event changes nothing
    await q.raw(
      `insert into order_milestones (order_id, seller_id, ${field}) values (?, ?, ?)
       on conflict (order_id) do update set ${field} = least(coalesce(order_milestones.${field}, excluded.${field}), excluded.${field})`,
      [orderId, sellerId, at],
    );
  }

  async milestones(q: Q, orderId: string): Promise<{ shippedAt: Date | null; deliveredAt: Date | null }> {
    const row = await q('order_milestones').where({ order_id: orderId }).first();
    return { shippedAt: date(row?.shipped_at), deliveredAt: date(row?.delivered_at) };
  }

  async payee(q: Q, sellerId: string): Promise<Payee | undefined> {
    const r = await q('payees').where({ seller_id: sellerId }).first();
    if (!r) return undefined;
    return {
      sellerId: r.seller_id, email: r.email, releasePolicy: r.release_policy, releaseDelayDays: Number(r.release_delay_days),
      payoutCurrency: r.payout_currency ?? null, updatedAt: new Date(r.updated_at),
    };
  }

  /** One admin write in the audit trail (never a secret). */
  async recordAudit(q: Q, e: { actor: string; action: string; target: string; before?: unknown; after?: unknown; reason?: string | null }): Promise<void> {
    await q('admin_audit').insert({
      actor: e.actor, action: e.action, target: e.target.slice(0, 255),
      before: e.before === undefined ? null : JSON.stringify(e.before), after: e.after === undefined ? null : JSON.stringify(e.after),
      reason: e.reason?.slice(0, 500) ?? null,
    });
  }

  async audit(q: Q, filter: { target?: string; limit: number }): Promise<Array<{ actor: string; action: string; target: string; before: unknown; after: unknown; reason: string | null; at: Date }>> {
    const query = q('admin_audit').orderBy('id', 'desc').limit(filter.limit);
    if (filter.target) query.where({ target: filter.target });
    return query;
  }

  async upsertPayee(q: Q, p: { sellerId: string; email: string; releasePolicy: string; releaseDelayDays: number; payoutCurrency: string | null }): Promise<void> {
    await q('payees')
      .insert({
        seller_id: p.sellerId, email: p.email, release_policy: p.releasePolicy, release_delay_days: p.releaseDelayDays,
        payout_currency: p.payoutCurrency, updated_at: q.fn.now(),
      })
      .onConflict('seller_id')
      .merge();
  }

  // ---- FX rates ----------------------------------------------------------------------------------------------

  /** The most recent rate from→to dated on or before `onOrBefore` and not before `notBefore` (YYYY-MM-DD). */
  async findFxRate(q: Q, from: string, to: string, onOrBefore: string, notBefore: string): Promise<FxRate | undefined> {
    const row = await q('fx_rates')
      .where({ from_currency: from, to_currency: to })
      .andWhere('rate_date', '<=', onOrBefore)
      .andWhere('rate_date', '>=', notBefore)
      .orderBy('rate_date', 'desc')
      .select('rate', 'source', q.raw(`to_char(rate_date, 'YYYY-MM-DD') as day`))
      .first();
    return row ? { from, to, rateDate: String(row.day), rate: String(row.rate), source: String(row.source) } : undefined;
  }

  async saveFxRate(q: Q, r: FxRate): Promise<void> {
    await q('fx_rates')
      .insert({ from_currency: r.from, to_currency: r.to, rate_date: r.rateDate, rate: r.rate, source: r.source, updated_at: q.fn.now() })
      .onConflict(['from_currency', 'to_currency', 'rate_date'])
      .merge();
  }

  async listFxRates(q: Q, filter: { from?: string; to?: string; limit: number }): Promise<FxRate[]> {
    const query = q('fx_rates').orderBy([{ column: 'rate_date', order: 'desc' }, 'from_currency', 'to_currency']).limit(filter.limit)
      .select('from_currency', 'to_currency', 'rate', 'source', q.raw(`to_char(rate_date, 'YYYY-MM-DD') as day`));
    if (filter.from) query.where({ from_currency: filter.from });
    if (filter.to) query.where({ to_currency: filter.to });
    return (await query).map((r: Record<string, unknown>) => ({
      from: String(r.from_currency), to: String(r.to_currency), rateDate: String(r.day), rate: String(r.rate), source: String(r.source),
    }));
  }

  // ---- intents -----------------------------------------------------------------------------------------------

  async insertIntent(q: Q, i: {
    id: string; saleId: string; orderId: string; sellerId: string; recipient: Recipient; currency: string; amountMinor: number;
    payableMinor: number; status: IntentStatus; holdReason: HoldReason | null; releaseAt: Date | null; saleRecordedAt: Date;
    skipReason?: string | null;
  } & Partial<PayoutTerms>, cause: string): Promise<boolean> {
    const rows = await q('payout_intents')
      .insert({
        id: i.id, sale_id: i.saleId, order_id: i.orderId, seller_id: i.sellerId, recipient: i.recipient, currency: i.currency,
        amount_minor: i.amountMinor, payable_minor: i.payableMinor, status: i.status, hold_reason: i.holdReason,
        release_at: i.releaseAt, sale_recorded_at: i.saleRecordedAt, skip_reason: i.skipReason ?? null,
        payout_currency: i.payoutCurrency ?? null, fx_rate: i.fxRate ?? null, fx_rate_date: i.fxRateDate ?? null, fx_source: i.fxSource ?? null,
      })
      .onConflict(['sale_id', 'recipient'])
      .ignore()
      .returning('id');
    if (rows.length === 0) return false;
    await q('intent_history').insert({ intent_id: i.id, order_id: i.orderId, from_status: null, to_status: i.status, cause });
    return true;
  }

  async intent(q: Q, id: string, forUpdate = false): Promise<Intent | undefined> {
    const query = q('payout_intents').where({ id });
    const r = await (forUpdate ? query.forUpdate() : query).first();
    return r ? toIntent(r) : undefined;
  }

  async intentsForSale(q: Q, saleId: string): Promise<Intent[]> {
    return (await q('payout_intents').where({ sale_id: saleId }).orderBy('recipient').forUpdate()).map(toIntent);
  }

  async intentsForOrder(q: Q, orderId: string): Promise<Intent[]> {
    return (await q('payout_intents').where({ order_id: orderId }).orderBy(['created_at', 'recipient'])).map(toIntent);
  }

  async intentsAwaitingRelease(q: Q, where: { orderId?: string; sellerId?: string; recipient?: Recipient; currency?: string; holdReason?: HoldReason; limit?: number }): Promise<Intent[]> {
    const query = q('payout_intents').whereIn('status', ['HELD', 'DUE']);
    if (where.holdReason) query.where({ hold_reason: where.holdReason });
    if (where.limit) query.orderBy('created_at').limit(where.limit);
    if (where.currency) query.where({ currency: where.currency });
    if (where.orderId) query.where({ order_id: where.orderId });
    if (where.sellerId) query.where({ seller_id: where.sellerId });
    if (where.recipient) query.where({ recipient: where.recipient });
    return (await query.forUpdate().skipLocked()).map(toIntent);
  }

  async listIntents(q: Q, filter: { status?: string; sellerId?: string; limit: number }): Promise<Intent[]> {
    const query = q('payout_intents').orderBy('created_at', 'desc').limit(filter.limit);
    if (filter.status) query.where({ status: filter.status });
    if (filter.sellerId) query.where({ seller_id: filter.sellerId });
    return (await query).map(toIntent);
  }

  /** DUE intents whose release time has passed, locked for this batch (others skip them). */
  async claimDueIntents(q: Tx, limit: number): Promise<Intent[]> {
    const rows = await q('payout_intents')
      .where({ status: 'DUE' })
      .andWhere('release_at', '<=', q.fn.now())
      .orderBy('release_at')
      .limit(limit)
      .forUpdate()
      .skipLocked();
    return rows.map(toIntent);
  }

  async updateIntent(q: Q, before: Intent, patch: IntentPatch, cause: string): Promise<Intent> {
    const row: Record<string, unknown> = {};
    if (patch.status !== undefined) row.status = patch.status;
    if (patch.holdReason !== undefined) row.hold_reason = patch.holdReason;
    if (patch.releaseAt !== undefined) row.release_at = patch.releaseAt;
    if (patch.payableMinor !== undefined) row.payable_minor = patch.payableMinor;
    if (patch.reversedMinor !== undefined) row.reversed_minor = patch.reversedMinor;
    if (patch.offsetMinor !== undefined) row.offset_minor = patch.offsetMinor;
    if (patch.pendingReversalMinor !== undefined) row.pending_reversal_minor = patch.pendingReversalMinor;
    if (patch.attempt !== undefined) row.attempt = patch.attempt;
    if (patch.batchId !== undefined) row.batch_id = patch.batchId;
    if (patch.skipReason !== undefined) row.skip_reason = patch.skipReason;
    if (patch.payoutCurrency !== undefined) row.payout_currency = patch.payoutCurrency;
    if (patch.fxRate !== undefined) row.fx_rate = patch.fxRate;
    if (patch.fxRateDate !== undefined) row.fx_rate_date = patch.fxRateDate;
    if (patch.fxSource !== undefined) row.fx_source = patch.fxSource;
    const statusChanged = patch.status !== undefined && patch.status !== before.status;
    if (statusChanged) row.status_since = q.fn.now();
    // a note without a change (an operator asked PayPal to cancel an unclaimed item) only adds history: knex refuses an empty update
    const [updated] = Object.keys(row).length > 0
      ? await q('payout_intents').where({ id: before.id }).update(row).returning('*')
      : await q('payout_intents').where({ id: before.id }).select('*');
    await q('intent_history').insert({
      intent_id: before.id, order_id: before.orderId, from_status: before.status, to_status: patch.status ?? before.status, cause,
    });
    return toIntent(updated);
  }

  async history(q: Q, orderId: string) {
    return q('intent_history').where({ order_id: orderId }).orderBy('id');
  }

  // ---- balance ledger ----------------------------------------------------------------------------------------

  /** Serialises every change to one party's balance in one currency for the rest of the transaction. */
  async lockBalance(q: Tx, party: string, currency: string): Promise<void> {
    await q.raw('select pg_advisory_xact_lock(hashtext(?))', [`balance:${party}:${currency}`]);
  }

  /** What the party owes (positive) in this currency: clawbacks minus what netting already settled. */
  async owed(q: Q, party: string, currency: string): Promise<number> {
    const row = await q('balance_entries').where({ party, currency }).sum<{ total: string | null }[]>('amount_minor as total').first();
    return -safeInteger(row?.total ?? 0);
  }

  async addBalanceEntry(q: Q, e: { party: string; currency: string; amountMinor: number; kind: 'CLAWBACK' | 'OFFSET'; orderId: string; intentId: string; reference: string }): Promise<void> {
    await q('balance_entries')
      .insert({ party: e.party, currency: e.currency, amount_minor: e.amountMinor, kind: e.kind, order_id: e.orderId, intent_id: e.intentId, reference: e.reference })
      .onConflict(['kind', 'intent_id', 'reference'])
      .ignore();
  }

  async balanceEntries(q: Q, party: string) {
    return q('balance_entries').where({ party }).orderBy('id');
  }

  // ---- batches and items -------------------------------------------------------------------------------------

  async insertBatch(q: Q, b: { id: string; senderBatchId: string; status: string; request: unknown; itemCount: number }): Promise<void> {
    await q('payout_batches').insert({ id: b.id, sender_batch_id: b.senderBatchId, status: b.status, request: JSON.stringify(b.request), item_count: b.itemCount });
  }

  async batch(q: Q, id: string, forUpdate = false): Promise<Batch | undefined> {
    const query = q('payout_batches').where({ id });
    const r = await (forUpdate ? query.forUpdate() : query).first();
    return r ? toBatch(r) : undefined;
  }

  async batchesWithStatus(q: Q, status: string, limit: number): Promise<Batch[]> {
    return (await q('payout_batches').where({ status }).orderByRaw('last_checked_at asc nulls first, created_at').limit(limit)).map(toBatch);
  }

  async updateBatch(q: Q, id: string, patch: Record<string, unknown>): Promise<void> {
    await q('payout_batches').where({ id }).update(patch);
  }

  async insertItem(q: Q, i: {
    intentId: string; attempt: number; senderItemId: string; batchId: string; receiver: string; amountMinor: number; currency: string; status: string;
    source: { amountMinor: number; currency: string; fxRate: string; fxRateDate: string | null } | null;
  }): Promise<void> {
    await q('payout_items').insert({
      intent_id: i.intentId, attempt: i.attempt, sender_item_id: i.senderItemId, batch_id: i.batchId, receiver: i.receiver,
      amount_minor: i.amountMinor, currency: i.currency, status: i.status,
      source_amount_minor: i.source?.amountMinor ?? null, source_currency: i.source?.currency ?? null,
      fx_rate: i.source?.fxRate ?? null, fx_rate_date: i.source?.fxRateDate ?? null,
    });
  }

  async itemBySenderItemId(q: Q, senderItemId: string, forUpdate = false): Promise<PayoutItem | undefined> {
    const query = q('payout_items').where({ sender_item_id: senderItemId });
    const r = await (forUpdate ? query.forUpdate() : query).first();
    return r ? toItem(r) : undefined;
  }

  async itemsOfBatch(q: Q, batchId: string): Promise<PayoutItem[]> {
    return (await q('payout_items').where({ batch_id: batchId }).orderBy('id')).map(toItem);
  }

  async itemsOfIntents(q: Q, intentIds: string[]): Promise<PayoutItem[]> {
    if (intentIds.length === 0) return [];
    return (await q('payout_items').whereIn('intent_id', intentIds).orderBy('id')).map(toItem);
  }

  async currentItem(q: Q, intent: Intent): Promise<PayoutItem | undefined> {
    const r = await q('payout_items').where({ intent_id: intent.id, attempt: intent.attempt }).first();
    return r ? toItem(r) : undefined;
  }

  async itemsWithCancelRequested(q: Q, limit: number): Promise<PayoutItem[]> {
    return (await q('payout_items').whereNotNull('cancel_requested_at').whereNotNull('paypal_item_id').where({ status: 'UNCLAIMED' }).limit(limit)).map(toItem);
  }

  async updateItem(q: Q, id: string, patch: Record<string, unknown>): Promise<void> {
    await q('payout_items').where({ id }).update({ ...patch, updated_at: q.fn.now() });
  }

  async updateItemsOfBatch(q: Q, batchId: string, patch: Record<string, unknown>): Promise<void> {
    await q('payout_items').where({ batch_id: batchId }).update({ ...patch, updated_at: q.fn.now() });
  }

  async recordWebhookEvent(q: Q, eventId: string, eventType: string): Promise<boolean> {
    const rows = await q('webhook_events').insert({ event_id: eventId, event_type: eventType }).onConflict('event_id').ignore().returning('event_id');
    return rows.length > 0;
  }
}
