import type { Knex } from 'knex';
import { safeInteger } from '@postsale/contracts';
import { AdminAuditTrail, afterCommit, fxRates, writeWithNext, type AdminAuditEntry, type AdminAuditRecord, type Db, type Tx } from '@postsale/runtime';
import { TERMINAL_STATUSES, type HoldReason, type Recipient } from '../domain/payout-rules';
import type { BusyItems, PayPalItemState, PayoutsStore } from '../domain/ports';
import { date, toBalanceEntry, toBatch, toIntent, toItem, toItemWithBatchId, toPayee, toReversal, toSale } from './payouts.rows';
import type {
  BalanceEntry, Batch, BatchCheckJob, FxRate, HistoryEntry, Intent, IntentPatch, ItemMove, ItemWithBatchId, Milestones, MovedItem, NewIntent,
  NewItem, Payee, PayeeSettings, PayoutItem, ReversalRecord, SaleRecord,
} from '../domain/records';

// the records live in the domain; re-exported for the tests that name them here
export type { Intent, PayoutItem, Batch };

/**
 * The payouts schema behind the domain's PayoutsStore port. Constructed with the database; writes run on the caller's
 * transaction (`trx` first), reads on the transaction when given (`trx?` last) or the pool. Money columns are bigint:
 * `safeInteger()` on the way out.
 */
export class PayoutsRepository implements PayoutsStore {
  constructor(private readonly db: Db) {}

  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  afterCommit(trx: Tx, then: () => void): void {
    afterCommit(trx, then);
  }

  // ---- sales, reversals, milestones, payees ------------------------------------------------------------------

  /**
   * false when the sale was already recorded (a re-delivered or re-published SaleRecorded). Takes the order's lock (see
   * insertUnderOrderLock) in the same statement.
   */
  async insertSale(trx: Tx, sale: SaleRecord): Promise<boolean> {
    const saved = trx('sales')
      .insert({
        sale_id: sale.saleId, order_id: sale.orderId, seller_id: sale.sellerId, currency: sale.currency,
        sale_amount_minor: sale.saleAmountMinor, platform_commission_minor: sale.platformCommissionMinor,
        seller_net_minor: sale.sellerNetMinor, is_loss: sale.isLoss, event_id: sale.eventId, recorded_at: sale.recordedAt,
      })
      .onConflict('sale_id')
      .ignore()
      .returning('sale_id');
    return this.insertUnderOrderLock(trx, sale.orderId, saved);
  }

  async salesForOrder(orderId: string, trx?: Tx): Promise<SaleRecord[]> {
    const q = trx ?? this.db;
    return (await q('sales').where({ order_id: orderId }).orderBy('recorded_at')).map(toSale);
  }

  /** false when the reversal was already recorded. Takes its order's lock (see insertUnderOrderLock) in the same statement. */
  async insertReversal(trx: Tx, r: ReversalRecord): Promise<boolean> {
    const saved = trx('reversals')
      .insert({
        reversal_id: r.reversalId, sale_id: r.saleId, order_id: r.orderId, kind: r.kind, currency: r.currency,
        commission_reversed_minor: r.commissionReversedMinor, seller_net_reversed_minor: r.sellerNetReversedMinor, reversed_at: r.reversedAt,
      })
      .onConflict('reversal_id')
      .ignore()
      .returning('reversal_id');
    return this.insertUnderOrderLock(trx, r.orderId, saved);
  }

  /**
   * The order's lock, held to the end of the transaction, is taken by the statements that record a sale, a reversal and
   * a shipment or delivery of the order: of two recorded concurrently (they come from two topics, so two consumers),
   * the second waits for the first to commit, and its later statements see the first's writes — the sale's decision
   * reads the milestones, the milestone's release reads the intents, the reversal reads the intents. Without it a sale
   * and its shipment recorded at once each missed the other, and the seller's payout stayed held for a shipment that
   * had come. Nothing in the statement itself depends on the lock (its insert may run first): only the statements
   * after it do. True when `insert` inserted a row.
   */
  private async insertUnderOrderLock(trx: Tx, orderId: string, insert: Knex.QueryBuilder | Knex.Raw): Promise<boolean> {
    const { rows } = await trx.raw(
      `with locked as materialized (select pg_advisory_xact_lock(hashtextextended(?, 0))), saved as (?)
       select exists (select 1 from saved) as fresh from locked`,
      [`order:${orderId}`, insert],
    );
    return Boolean((rows as Array<{ fresh: boolean }>)[0]?.fresh);
  }

  async reversalsForSale(saleId: string, trx?: Tx): Promise<ReversalRecord[]> {
    const q = trx ?? this.db;
    return (await q('reversals').where({ sale_id: saleId }).orderBy('received_at')).map(toReversal);
  }

  async reversalsForOrder(orderId: string, trx?: Tx): Promise<ReversalRecord[]> {
    const q = trx ?? this.db;
    return (await q('reversals').where({ order_id: orderId }).orderBy('received_at')).map(toReversal);
  }

  async recordMilestone(trx: Tx, orderId: string, sellerId: string, milestone: 'shipped' | 'delivered', at: Date): Promise<void> {
    // keeps the earliest time: a re-delivered or replayed event changes nothing
    const field = milestone === 'shipped' ? 'shipped_at' : 'delivered_at';
    await this.insertUnderOrderLock(trx, orderId, trx.raw(
      `insert into order_milestones (order_id, seller_id, ${field}) values (?, ?, ?)
       on conflict (order_id) do update set ${field} = least(coalesce(order_milestones.${field}, excluded.${field}), excluded.${field})
       returning order_id`,
      [orderId, sellerId, at],
    ));
  }

  async milestones(orderId: string, trx?: Tx): Promise<Milestones> {
    const q = trx ?? this.db;
    const row = await q('order_milestones').where({ order_id: orderId }).first();
    return { shippedAt: date(row?.shipped_at), deliveredAt: date(row?.delivered_at) };
  }

  async payee(sellerId: string, trx?: Tx): Promise<Payee | undefined> {
    const q = trx ?? this.db;
    const r = await q('payees').where({ seller_id: sellerId }).first();
    return r ? toPayee(r) : undefined;
  }

  async payees(sellerIds: string[], trx?: Tx): Promise<Payee[]> {
    if (sellerIds.length === 0) return [];
    const q = trx ?? this.db;
    return (await q('payees').whereIn('seller_id', sellerIds)).map(toPayee);
  }

  async payeeAndMilestones(sellerId: string, orderId: string, trx?: Tx): Promise<{ payee: Payee | undefined; milestones: Milestones }> {
    const q = trx ?? this.db;
    // one row whether or not either exists
    const { rows } = await q.raw(
      `select to_jsonb(p) as payee, m.shipped_at, m.delivered_at
         from (select 1) as one
         left join payees p on p.seller_id = ?
         left join order_milestones m on m.order_id = ?`,
      [sellerId, orderId],
    );
    const [r] = rows as Array<Record<string, unknown>>;
    return {
      payee: r?.payee ? toPayee(r.payee as Record<string, unknown>) : undefined,
      milestones: { shippedAt: date(r?.shipped_at), deliveredAt: date(r?.delivered_at) },
    };
  }

  async recordAudit(trx: Tx | undefined, e: AdminAuditEntry): Promise<void> {
    const q = trx ?? this.db;
    await new AdminAuditTrail(this.db).record(e, q);
  }

  async audit(filter: { target?: string; limit: number }, trx?: Tx): Promise<AdminAuditRecord[]> {
    const q = trx ?? this.db;
    return new AdminAuditTrail(this.db).recent(filter, q);
  }

  async upsertPayee(trx: Tx, p: PayeeSettings): Promise<void> {
    await trx('payees')
      .insert({
        seller_id: p.sellerId, email: p.email, release_policy: p.releasePolicy, release_delay_days: p.releaseDelayDays,
        payout_currency: p.payoutCurrency, updated_at: trx.fn.now(),
      })
      .onConflict('seller_id')
      .merge();
  }

  // ---- FX rates ----------------------------------------------------------------------------------------------

  /** The most recent rate from→to dated on or before `onOrBefore` and not before `notBefore` (YYYY-MM-DD). */
  findFxRate(from: string, to: string, onOrBefore: string, notBefore: string, trx?: Tx): Promise<FxRate | undefined> {
    return fxRates.find(trx ?? this.db, from, to, onOrBefore, notBefore);
  }

  saveFxRate(trx: Tx, rate: FxRate): Promise<void> {
    return fxRates.save(trx, rate);
  }

  async listFxRates(filter: { from?: string; to?: string; limit: number }, trx?: Tx): Promise<FxRate[]> {
    const q = trx ?? this.db;
    const query = q('fx_rates').orderBy([{ column: 'rate_date', order: 'desc' }, 'from_currency', 'to_currency']).limit(filter.limit)
      .select('from_currency', 'to_currency', 'rate', 'source', q.raw(`to_char(rate_date, 'YYYY-MM-DD') as day`));
    if (filter.from) query.where({ from_currency: filter.from });
    if (filter.to) query.where({ to_currency: filter.to });
    return (await query).map((r: Record<string, unknown>) => ({
      from: String(r.from_currency), to: String(r.to_currency), rateDate: String(r.day), rate: String(r.rate), source: String(r.source),
    }));
  }

  // ---- intents -----------------------------------------------------------------------------------------------

  /**
   * A sale's intents and their first history rows in ONE statement (the history row is written from what the insert
   * returned, so an intent that existed already gets none). The same statement says whether a reversal of the sale is
   * recorded: it runs after insertSale took the order's lock, so a reversal recorded concurrently either committed before
   * (and is seen here) or waits for this transaction (and then sees these intents).
   */
  async insertSaleIntents(trx: Tx, saleId: string, entries: Array<{ intent: NewIntent; cause: string }>): Promise<{ reversed: boolean }> {
    const added = trx('payout_intents')
      .insert(entries.map(({ intent: i }) => ({
        id: i.id, sale_id: i.saleId, order_id: i.orderId, seller_id: i.sellerId, recipient: i.recipient, currency: i.currency,
        amount_minor: i.amountMinor, payable_minor: i.payableMinor, status: i.status, hold_reason: i.holdReason,
        release_at: i.releaseAt, sale_recorded_at: i.saleRecordedAt, skip_reason: i.skipReason ?? null,
        payout_currency: i.payoutCurrency ?? null, fx_rate: i.fxRate ?? null, fx_rate_date: i.fxRateDate ?? null, fx_source: i.fxSource ?? null,
      })))
      .onConflict(['sale_id', 'recipient'])
      .ignore()
      .returning(['id', 'order_id', 'status']);
    // history rows in the callers' order (ids are the history's order)
    const causes = entries.map(() => '(?::uuid, ?::text, ?::int)').join(', ');
    const { rows } = await trx.raw(
      `with added as (?),
       noted as (insert into intent_history (intent_id, order_id, from_status, to_status, cause)
                 select added.id, added.order_id, null, added.status, c.cause
                   from added join (values ${causes}) as c(id, cause, n) on c.id = added.id
                  order by c.n)
       select exists (select 1 from reversals where sale_id = ?) as reversed`,
      [added, ...entries.flatMap(({ intent, cause }, n) => [intent.id, cause, n]), saleId],
    );
    return { reversed: Boolean((rows as Array<{ reversed: boolean }>)[0]?.reversed) };
  }

  async intentForUpdate(trx: Tx, id: string): Promise<Intent | undefined> {
    const r = await trx('payout_intents').where({ id }).forUpdate().first();
    return r ? toIntent(r) : undefined;
  }

  async intentsForSale(trx: Tx, saleId: string): Promise<Intent[]> {
    return (await trx('payout_intents').where({ sale_id: saleId }).orderBy('recipient').forUpdate()).map(toIntent);
  }

  async intentsForOrder(orderId: string, trx?: Tx): Promise<Intent[]> {
    const q = trx ?? this.db;
    return (await q('payout_intents').where({ order_id: orderId }).orderBy(['created_at', 'recipient'])).map(toIntent);
  }

  async intentsAwaitingRelease(trx: Tx, where: { orderId?: string; sellerId?: string; recipient?: Recipient; currency?: string; holdReason?: HoldReason; limit?: number }): Promise<Intent[]> {
    const query = trx('payout_intents').whereIn('status', ['HELD', 'DUE']);
    if (where.holdReason) query.where({ hold_reason: where.holdReason });
    if (where.limit) query.orderBy('created_at').limit(where.limit);
    if (where.currency) query.where({ currency: where.currency });
    if (where.orderId) query.where({ order_id: where.orderId });
    if (where.sellerId) query.where({ seller_id: where.sellerId });
    if (where.recipient) query.where({ recipient: where.recipient });
    return (await query.forUpdate().skipLocked()).map(toIntent);
  }

  async anyHeldFor(holdReason: HoldReason, trx?: Tx): Promise<boolean> {
    const q = trx ?? this.db;
    return Boolean(await q('payout_intents').where({ status: 'HELD', hold_reason: holdReason }).select('id').first());
  }

  async listIntents(filter: { status?: string; sellerId?: string; limit: number }, trx?: Tx): Promise<Intent[]> {
    const q = trx ?? this.db;
    const query = q('payout_intents').orderBy('created_at', 'desc').limit(filter.limit);
    if (filter.status) query.where({ status: filter.status });
    if (filter.sellerId) query.where({ seller_id: filter.sellerId });
    return (await query).map(toIntent);
  }

  async openIntents(trx?: Tx): Promise<Intent[]> {
    const q = trx ?? this.db;
    return (await q('payout_intents').whereNotIn('status', TERMINAL_STATUSES)).map(toIntent);
  }

  async sellerPayableTotals(sellerId: string, statuses: string[], trx?: Tx): Promise<Array<{ currency: string; totalMinor: number }>> {
    const q = trx ?? this.db;
    const rows = await q('payout_intents').where({ seller_id: sellerId, recipient: 'SELLER' }).whereIn('status', statuses)
      .select('currency').sum<{ currency: string; total: string }[]>('payable_minor as total').groupBy('currency');
    return rows.map((r) => ({ currency: r.currency, totalMinor: safeInteger(r.total) }));
  }

  async claimDueIntents(trx: Tx, limit: number): Promise<Intent[]> {
    const rows = await trx('payout_intents')
      .where({ status: 'DUE' })
      .andWhere('release_at', '<=', trx.fn.now())
      .orderBy('release_at')
      .limit(limit)
      .forUpdate()
      .skipLocked();
    return rows.map(toIntent);
  }

  async updateIntent(trx: Tx, before: Intent, patch: IntentPatch, cause: string): Promise<Intent> {
    const [updated] = await this.updateIntents(trx, [{ before, cause }], patch);
    return updated!;
  }

  async updateIntents(trx: Tx, entries: Array<{ before: Intent; cause: string }>, patch: IntentPatch): Promise<Intent[]> {
    if (entries.length === 0) return [];
    const row = this.intentColumns(trx, patch);
    const ids = entries.map((e) => e.before.id);
    // the change and its history rows in one statement: history is written from what the update returned, so an
    // intent the update did not match gets none. A note without a change (an operator asked PayPal to cancel an
    // unclaimed item) only adds history: knex refuses an empty update.
    const moved = Object.keys(row).length > 0
      ? trx('payout_intents').whereIn('id', ids).update(row).returning('*')
      : trx('payout_intents').whereIn('id', ids).select('*');
    const notes = entries.map(() => '(?::uuid, ?::text, ?::text, ?::text, ?::int)').join(', ');
    const { rows } = await trx.raw(
      `with moved as (?),
       noted as (insert into intent_history (intent_id, order_id, from_status, to_status, cause)
                 select moved.id, moved.order_id, c.from_status, c.to_status, c.cause
                   from moved join (values ${notes}) as c(id, from_status, to_status, cause, n) on c.id = moved.id
                  order by c.n)
       select * from moved`,
      [moved, ...entries.flatMap(({ before, cause }, n) => [before.id, before.status, patch.status ?? before.status, cause, n])],
    );
    const byId = new Map((rows as Array<Record<string, unknown>>).map((r) => [String(r.id), r]));
    return entries.map(({ before }) => {
      const updated = byId.get(before.id);
      if (!updated) throw new Error(`intent ${before.id} not found: not updated, no history written`);
      return toIntent(updated);
    });
  }

  /** The columns a patch writes; a status that changes restarts status_since. */
  private intentColumns(trx: Tx, patch: IntentPatch): Record<string, unknown> {
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
    // SET reads the row as it was: the status the caller locked
    if (patch.status !== undefined) row.status_since = trx.raw('case when "status" = ? then "status_since" else CURRENT_TIMESTAMP end', [patch.status]);
    return row;
  }

  async history(orderId: string, trx?: Tx): Promise<HistoryEntry[]> {
    const q = trx ?? this.db;
    return (await q('intent_history').where({ order_id: orderId }).orderBy('id')).map((h: Record<string, unknown>) => ({
      intentId: String(h.intent_id), from: (h.from_status as string | null) ?? null, to: String(h.to_status), cause: String(h.cause), at: new Date(h.at as string),
    }));
  }

  // ---- balance ledger ----------------------------------------------------------------------------------------

  async lockBalance(trx: Tx, party: string, currency: string): Promise<void> {
    await this.lockBalances(trx, [{ party, currency }]);
  }

  async lockBalances(trx: Tx, balances: Array<{ party: string; currency: string }>): Promise<void> {
    // one statement for all, in a fixed order (sorted keys), so two transactions locking overlapping sets never wait
    // on each other in a cycle
    const keys = [...new Set(balances.map((b) => `balance:${b.party}:${b.currency}`))].sort();
    if (keys.length === 0) return;
    await trx.raw(
      'select pg_advisory_xact_lock(hashtext(k)) from unnest(?::text[]) with ordinality as l(k, n) order by n',
      [keys],
    );
  }

  async owed(party: string, currency: string, trx?: Tx): Promise<number> {
    const q = trx ?? this.db;
    // the running balance (one row), not a sum over the party's history: its entries move it in their transaction
    const row = await q('balances').where({ party, currency }).first('balance_minor');
    return -safeInteger(row?.balance_minor ?? 0);
  }

  async owedMany(balances: Array<{ party: string; currency: string }>, trx?: Tx): Promise<Array<{ party: string; currency: string; owedMinor: number }>> {
    if (balances.length === 0) return [];
    const q = trx ?? this.db;
    const rows = await q('balances')
      .whereIn(['party', 'currency'], balances.map((b) => [b.party, b.currency]))
      .select('party', 'currency', 'balance_minor');
    const found = new Map((rows as Array<Record<string, unknown>>).map((r) => [`${String(r.party)}\n${String(r.currency)}`, r.balance_minor]));
    // a party without a row owes nothing (-0, as owed() says)
    return balances.map((b) => ({ ...b, owedMinor: -safeInteger(found.get(`${b.party}\n${b.currency}`) ?? 0) }));
  }

  /** The running balance (`balances`) moves with it, by the table's trigger (migration 0007); a repeat moves nothing. */
  async addBalanceEntry(trx: Tx, e: Omit<BalanceEntry, 'at'>): Promise<void> {
    await trx('balance_entries')
      .insert({ party: e.party, currency: e.currency, amount_minor: e.amountMinor, kind: e.kind, order_id: e.orderId, intent_id: e.intentId, reference: e.reference })
      .onConflict(['kind', 'intent_id', 'reference'])
      .ignore();
  }

  async balanceEntries(party: string, trx?: Tx): Promise<BalanceEntry[]> {
    const q = trx ?? this.db;
    return (await q('balance_entries').where({ party }).orderBy('id')).map(toBalanceEntry);
  }

  // ---- batches and items -------------------------------------------------------------------------------------

  async insertBatch(trx: Tx, b: { id: string; senderBatchId: string; status: string; request: unknown; itemCount: number; postAttempts: number }): Promise<Batch> {
    const [row] = await trx('payout_batches')
      .insert({ id: b.id, sender_batch_id: b.senderBatchId, status: b.status, request: JSON.stringify(b.request), item_count: b.itemCount, post_attempts: b.postAttempts })
      .returning('*');
    return toBatch(row);
  }

  async batch(id: string, trx?: Tx): Promise<Batch | undefined> {
    const q = trx ?? this.db;
    const r = await q('payout_batches').where({ id }).first();
    return r ? toBatch(r) : undefined;
  }

  async batchesWithStatus(status: string, limit: number, trx?: Tx): Promise<Batch[]> {
    const q = trx ?? this.db;
    return (await q('payout_batches').where({ status }).orderByRaw('last_checked_at asc nulls first, created_at').limit(limit)).map(toBatch);
  }

  async recordPostAttempt(batchId: string, postAttempts: number): Promise<void> {
    await this.db('payout_batches').where({ id: batchId }).update({ post_attempts: postAttempts });
  }

  async setBatchError(batchId: string, lastError: string): Promise<void> {
    await this.db('payout_batches').where({ id: batchId }).update({ last_error: lastError });
  }

  async markBatchAccepted(batchId: string, a: { paypalBatchId: string; paypalBatchStatus: string; lastError: string | null; firstCheckInMs: number }): Promise<Date> {
    const [row] = await this.db('payout_batches').where({ id: batchId }).update({
      status: 'ACCEPTED', paypal_batch_id: a.paypalBatchId, accepted_at: this.db.fn.now(), last_error: a.lastError, paypal_batch_status: a.paypalBatchStatus,
      next_check_at: this.db.raw('now() + make_interval(secs => ? / 1000.0)', [a.firstCheckInMs]),
    }, ['next_check_at']);
    return row ? new Date(row.next_check_at) : new Date(Date.now() + a.firstCheckInMs);
  }

  async markBatchRejected(trx: Tx, batchId: string, lastError: string): Promise<void> {
    await trx('payout_batches').where({ id: batchId }).update({ status: 'REJECTED', last_error: lastError, completed_at: trx.fn.now() });
  }

  async markBatchNeedsReview(trx: Tx, batchId: string, lastError: string): Promise<void> {
    await trx('payout_batches').where({ id: batchId }).update({ status: 'NEEDS_REVIEW', last_error: lastError });
  }

  async claimBatchesToCheck(limit: number, leaseMs: number): Promise<BatchCheckJob[]> {
    const { rows } = await this.db.raw(
      `update payout_batches set fence = fence + 1, next_check_at = now() + make_interval(secs => ? / 1000.0)
        where id in (select id from payout_batches
                      where status = 'ACCEPTED' and paypal_batch_id is not null and (next_check_at is null or next_check_at <= now())
                      order by next_check_at nulls first, last_checked_at nulls first limit ? for update skip locked)
        returning id, paypal_batch_id, fence`,
      [leaseMs, limit],
    );
    return (rows as Array<Record<string, unknown>>).map((r) => ({ batchId: String(r.id), paypalBatchId: String(r.paypal_batch_id), fence: safeInteger(r.fence) }));
  }

  async recordBatchCheck(job: BatchCheckJob, paypalBatchStatus: string, finalItemStatuses: readonly string[], nextCheckInMs: number, trx?: Tx): Promise<boolean> {
    const db = trx ?? this.db;
    const done = 'not exists (select 1 from payout_items i where i.batch_id = payout_batches.id and i.status <> all(?::text[]))';
    const updated = await db('payout_batches').where({ id: job.batchId, fence: job.fence }).update({
      paypal_batch_status: paypalBatchStatus, last_checked_at: db.fn.now(),
      next_check_at: db.raw('now() + make_interval(secs => ? / 1000.0)', [nextCheckInMs]),
      status: db.raw(`case when ${done} then 'COMPLETED' else status end`, [[...finalItemStatuses]]),
      completed_at: db.raw(`case when ${done} then now() else completed_at end`, [[...finalItemStatuses]]),
    });
    return updated > 0;
  }

  async deferBatchCheck(job: BatchCheckJob, inMs: number): Promise<void> {
    await this.db('payout_batches').where({ id: job.batchId, fence: job.fence }).update({ next_check_at: this.db.raw('now() + make_interval(secs => ? / 1000.0)', [inMs]) });
  }

  async checkBatchSoon(trx: Tx, batchId: string): Promise<void> {
    await trx('payout_batches').where({ id: batchId, status: 'ACCEPTED' }).update({ next_check_at: trx.fn.now() });
  }

  async checkBatchWithin(paypalBatchId: string, inMs: number): Promise<Date | undefined> {
    // Written only when it brings the check forward: a batch webhook soon after the acceptance finds the check due
    // within the grace already, and an update to the same value was a commit of its own (0.3 per order at 15/s).
    const { rows } = await this.db.raw(
      `update payout_batches set next_check_at = now() + make_interval(secs => ? / 1000.0)
        where paypal_batch_id = ? and status = 'ACCEPTED' and next_check_at > now() + make_interval(secs => ? / 1000.0)
        returning next_check_at`,
      [inMs, paypalBatchId, inMs],
    );
    const moved = (rows as Array<{ next_check_at: Date }>)[0];
    if (moved) return new Date(moved.next_check_at);
    // (not moved: still open and due sooner — no due time is due now —, or closed; a read, which commits nothing)
    const open = await this.db('payout_batches').where({ paypal_batch_id: paypalBatchId, status: 'ACCEPTED' }).first('next_check_at');
    if (!open) return undefined;
    return open.next_check_at ? new Date(open.next_check_at as Date) : new Date();
  }

  async closeFinishedBatches(trx: Tx, batchIds: string[], finalItemStatuses: readonly string[]): Promise<void> {
    if (batchIds.length === 0) return;
    await writeWithNext(trx, trx.raw(
      `update payout_batches b set status = 'COMPLETED', completed_at = now()
        where b.id = any(?::uuid[]) and b.status = 'ACCEPTED'
          and not exists (select 1 from payout_items i where i.batch_id = b.id and i.status <> all(?::text[]))`,
      [[...new Set(batchIds)], [...finalItemStatuses]],
    ));
  }

  async learnPayPalBatchId(trx: Tx, batchId: string, paypalBatchId: string): Promise<void> {
    await trx('payout_batches').where({ id: batchId }).whereNull('paypal_batch_id').update({ paypal_batch_id: paypalBatchId });
  }

  async insertItems(trx: Tx, items: NewItem[]): Promise<void> {
    if (items.length === 0) return;
    // one statement; ids follow the order given
    await trx('payout_items').insert(items.map((i) => ({
      intent_id: i.intentId, attempt: i.attempt, sender_item_id: i.senderItemId, batch_id: i.batchId, receiver: i.receiver,
      amount_minor: i.amountMinor, currency: i.currency, status: i.status,
      source_amount_minor: i.source?.amountMinor ?? null, source_currency: i.source?.currency ?? null,
      fx_rate: i.source?.fxRate ?? null, fx_rate_date: i.source?.fxRateDate ?? null,
    })));
  }

  async itemsBySenderItemIds(trx: Tx, senderItemIds: string[], busy: BusyItems = 'wait'): Promise<ItemWithBatchId[]> {
    // the items are locked, not their batch (`for update of payout_items`): the batch's PayPal id is only read
    return this.itemsWithBatchId(trx, senderItemIds, busy);
  }

  async peekItemsBySenderItemIds(senderItemIds: string[], trx?: Tx): Promise<ItemWithBatchId[]> {
    return this.itemsWithBatchId(trx ?? this.db, senderItemIds, undefined);
  }

  async peekWebhookItems(webhooks: Array<{ state: PayPalItemState; event: { id: string; type: string } }>): Promise<ItemWithBatchId[]> {
    // the records and the read see the same snapshot: the caller knows from the rows read which were written
    const { rows } = await this.db.raw(
      `with incoming (event_id, event_type, sender_item_id, status, paypal_item_id) as (values ${webhooks.map(() => '(?::text, ?::text, ?::text, ?::text, ?::text)').join(', ')}),
       recorded as (insert into webhook_events (event_id, event_type)
                    select i.event_id, i.event_type from incoming i
                     where exists (select 1 from payout_items p where p.sender_item_id = i.sender_item_id and p.status = i.status and p.paypal_item_id = i.paypal_item_id)
                    on conflict (event_id) do nothing)
       select "payout_items".*, "payout_batches"."paypal_batch_id" as "batch_paypal_batch_id", "payout_batches"."status" as "batch_status",
              "payout_intents"."order_id" as "payment_order_id", "payout_intents"."seller_id" as "payment_seller_id", "payout_intents"."recipient" as "payment_recipient"
         from "payout_items" inner join "payout_batches" on "payout_batches"."id" = "payout_items"."batch_id"
              inner join "payout_intents" on "payout_intents"."id" = "payout_items"."intent_id"
        where "payout_items"."sender_item_id" in (select sender_item_id from incoming)
        order by "payout_items"."id"`,
      webhooks.flatMap(({ state, event }) => [event.id, event.type, state.senderItemId ?? null, state.transactionStatus, state.payoutItemId]),
    );
    return (rows as Array<Record<string, unknown>>).map(toItemWithBatchId);
  }

  /** `lock` undefined: read without a lock; else the items are locked, waiting for or skipping the ones another holds */
  private async itemsWithBatchId(q: Db | Tx, senderItemIds: string[], lock: BusyItems | undefined): Promise<ItemWithBatchId[]> {
    if (senderItemIds.length === 0) return [];
    // the intent's order, seller and recipient never change: read with the item, not locked (only the items are)
    const query = q('payout_items')
      .join('payout_batches', 'payout_batches.id', 'payout_items.batch_id')
      .join('payout_intents', 'payout_intents.id', 'payout_items.intent_id')
      .whereIn('payout_items.sender_item_id', senderItemIds)
      .orderBy('payout_items.id')
      .select('payout_items.*', 'payout_batches.paypal_batch_id as batch_paypal_batch_id', 'payout_batches.status as batch_status',
        'payout_intents.order_id as payment_order_id', 'payout_intents.seller_id as payment_seller_id', 'payout_intents.recipient as payment_recipient');
    if (lock) query.forUpdate('payout_items');
    if (lock === 'skip') query.skipLocked();
    return ((await query) as Array<Record<string, unknown>>).map(toItemWithBatchId);
  }

  async itemsOfBatch(batchId: string, trx?: Tx): Promise<PayoutItem[]> {
    const q = trx ?? this.db;
    return (await q('payout_items').where({ batch_id: batchId }).orderBy('id')).map(toItem);
  }

  async itemsOfIntents(intentIds: string[], trx?: Tx): Promise<PayoutItem[]> {
    const q = trx ?? this.db;
    if (intentIds.length === 0) return [];
    return (await q('payout_items').whereIn('intent_id', intentIds).orderBy('id')).map(toItem);
  }

  async currentItem(intent: Intent, trx?: Tx): Promise<PayoutItem | undefined> {
    const q = trx ?? this.db;
    const r = await q('payout_items').where({ intent_id: intent.id, attempt: intent.attempt }).first();
    return r ? toItem(r) : undefined;
  }

  async itemsWithCancelRequested(batchId: string, trx?: Tx): Promise<PayoutItem[]> {
    const q = trx ?? this.db;
    return (await q('payout_items').where({ batch_id: batchId, status: 'UNCLAIMED' }).whereNotNull('cancel_requested_at').whereNotNull('paypal_item_id').orderBy('id')).map(toItem);
  }

  async moveItemsAsSeen(trx: Tx, moves: ItemMove[], webhookEvents: Array<{ id: string; type: string }> = [], busy: BusyItems = 'wait'): Promise<MovedItem[] | undefined> {
    if (moves.length === 0) throw new Error('moveItemsAsSeen: no items to move');
    const withMove = moves.filter((m) => m.intentMove);
    const intentMove = withMove[0]?.intentMove;
    if (withMove.some((m) => m.intentMove!.from.join() !== intentMove!.from.join() || JSON.stringify(m.intentMove!.patch) !== JSON.stringify(intentMove!.patch))) {
      throw new Error('moveItemsAsSeen: the intents\' moves of one call share their from and patch');
    }
    const sorted = [...moves].sort((a, b) => Number(a.seen.id) - Number(b.seen.id));
    if (moves.some((m) => m.event && !m.intentMove)) throw new Error('moveItemsAsSeen: an event is written only with its intent\'s move');
    const seenRows = sorted.map(() => '(?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::boolean, ?::text)').join(', ');
    const seenBindings = sorted.flatMap(({ seen, outcome: o, intentMove: m }) => [
      seen.id, seen.status, seen.paypalItemId, seen.transactionId, o.status, o.paypalItemId, o.transactionId, o.errorName, o.errorMessage, m !== undefined, m?.cause ?? null,
    ]);
    // the intents' events, one per item that carries one: written for the intents `after` moved, in item id order
    const withEvent = sorted.filter((m) => m.event);
    const events = withEvent.length === 0 ? '' : `,
       events (item_id, event_id, topic, stream, key, event_type, event) as (values ${withEvent.map(() => '(?::bigint, ?::uuid, ?::text, ?::text, ?::text, ?::text, ?::jsonb)').join(', ')}),
       published as (insert into outbox (event_id, topic, stream, key, event_type, event)
                     select e.event_id, e.topic, e.stream, e.key, e.event_type, e.event
                       from after a join moved m on m.intent_id = a.id and m.attempt = a.attempt join events e on e.item_id = m.id
                      order by m.id)`;
    const eventBindings = withEvent.flatMap(({ seen, event: e }) => [seen.id, e!.event_id, e!.topic, e!.stream, e!.key, e!.event_type, e!.event]);
    // the intents' move, decided on the rows `before` locked (the update reads the row it locked: a version committed
    // after this statement began is rechecked against `before`), with history rows from what the update returned
    const after = intentMove
      ? trx('payout_intents')
        .whereRaw('id in (select b.id from before b join moved m on m.intent_id = b.id and m.attempt = b.attempt where m.move_intent and b.status = any(?::text[]))', [intentMove.from])
        .update(this.intentColumns(trx, intentMove.patch))
        .returning('*')
      : trx('payout_intents').whereRaw('false').select('*');
    // The items are locked first, in id order, then compared with what was seen (status and PayPal item id decided on,
    // transaction id computed from): all as seen, all move; any moved meanwhile, none does (and no intent is locked),
    // so a caller that reads them again (locked already) and tries again still takes items before intents, each in id
    // order, as every other path does. Busy items skipped: "all" is the ones locked, the others are not touched.
    // The webhooks' records, when given, are written whatever the outcome.
    const { rows } = await trx.raw(
      `with seen (id, status, paypal_item_id, transaction_id, to_status, to_paypal_item_id, to_transaction_id, error_name, error_message, move_intent, cause)
         as (values ${seenRows}),
       locked as materialized (select i.* from payout_items i where i.id in (select id from seen) order by i.id for update${busy === 'skip' ? ' skip locked' : ''}),
       as_seen as materialized (select count(*) = (select count(*) from ${busy === 'skip' ? 'locked' : 'seen'}) as yes from seen s join locked l on l.id = s.id
                                 where l.status = s.status and l.paypal_item_id is not distinct from s.paypal_item_id
                                   and l.transaction_id is not distinct from s.transaction_id),
       moved as (update payout_items i
                    set status = s.to_status, paypal_item_id = s.to_paypal_item_id, transaction_id = s.to_transaction_id,
                        error_name = s.error_name, error_message = s.error_message, updated_at = CURRENT_TIMESTAMP
                   from seen s
                  where i.id = s.id and (select yes from as_seen)${busy === 'skip' ? ' and i.id in (select id from locked)' : ''}
                 returning i.id, i.intent_id, i.attempt, s.move_intent, s.cause),
       before as materialized (select * from payout_intents where id in (select intent_id from moved) order by id for update),
       after as (?),
       noted as (insert into intent_history (intent_id, order_id, from_status, to_status, cause)
                 select a.id, a.order_id, b.status, a.status, m.cause
                   from after a join before b on b.id = a.id join moved m on m.intent_id = a.id and m.attempt = a.attempt),
       recorded as (insert into webhook_events (event_id, event_type) select * from unnest(?::text[], ?::text[]) on conflict (event_id) do nothing)${events}
       select m.id as moved_item_id, before.* from moved m join before on before.id = m.intent_id
       union all
       select null, after.* from after`,
      [...seenBindings, after, webhookEvents.map((e) => e.id), webhookEvents.map((e) => e.type), ...eventBindings],
    );
    const found = rows as Array<Record<string, unknown>>;
    const afterById = new Map(found.filter((r) => r.moved_item_id === null).map((r) => [String(r.id), toIntent(r)]));
    const moved = found.filter((r) => r.moved_item_id !== null)
      .map((r) => ({ itemId: String(r.moved_item_id), before: toIntent(r) }));
    if (moved.length === 0) return undefined;
    // an intent moved by the item at its attempt (one item per attempt)
    const attemptOf = new Map(sorted.map((m) => [m.seen.id, m.seen.attempt]));
    return moved.map(({ itemId, before }) => ({
      itemId, before, after: attemptOf.get(itemId) === before.attempt ? afterById.get(before.id) : undefined,
    }));
  }

  async requestItemCancel(trx: Tx, itemId: string): Promise<void> {
    await trx('payout_items').where({ id: itemId }).update({ cancel_requested_at: trx.fn.now(), updated_at: trx.fn.now() });
  }

  async recordCancelRefused(itemId: string, message: string): Promise<void> {
    await this.db('payout_items').where({ id: itemId }).update({ cancel_requested_at: null, error_message: message, updated_at: this.db.fn.now() });
  }

  async rejectItemsOfBatch(trx: Tx, batchId: string, errorName: string, errorMessage: string): Promise<void> {
    await trx('payout_items').where({ batch_id: batchId }).update({ status: 'REJECTED', error_name: errorName, error_message: errorMessage, updated_at: trx.fn.now() });
  }

  async recordWebhookEvents(trx: Tx | undefined, events: Array<{ id: string; type: string }>): Promise<void> {
    await (trx ?? this.db)('webhook_events').insert(events.map((e) => ({ event_id: e.id, event_type: e.type }))).onConflict('event_id').ignore();
  }
}
