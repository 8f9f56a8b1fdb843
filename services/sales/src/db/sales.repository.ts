import { safeInteger } from '@postsale/contracts';
import { AdminAuditTrail, fxRates, type AdminAuditEntry, type AdminAuditRecord, type Db, type Knex, type OutboxRow, type Tx } from '@postsale/runtime';
import type { Marketplace, Money } from '@postsale/contracts';
import type { AccountCode, Posting } from '../domain/ledger';
import type { Breakdown } from '../domain/money-breakdown';
import type {
  AdjustmentRecord, AdjustmentStatus, AppliedAmounts, CommercialTerms, EntryNote, FxRate, HistoryLine, JournalEntryInput, NewFacts, OrderFacts,
  OrderRecord, OrderState, PurchaseFacts, ReportStore, SaleRecord, SalesStore, StateMove, TermsRead,
} from '../domain/ports';

type Row = Record<string, unknown>;
type Columns = Record<string, Knex.Value>;

const money = (amount: unknown, currency: unknown): Money => ({ amountMinor: safeInteger(amount), currency: String(currency).trim() });
const optionalMoney = (amount: unknown, currency: unknown): Money | null => (amount === null || amount === undefined ? null : money(amount, currency));
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

/**
 * The ledger's storage, constructed with the pool: writes run in the transaction the use case gives them (`trx`),
 * reads whose `trx` is optional (and the admin read side) run on the pool when none is given.
 */
export class SalesRepository implements SalesStore, ReportStore {
  private readonly auditTrail: AdminAuditTrail;

  constructor(private readonly db: Db) {
    this.auditTrail = new AdminAuditTrail(db);
  }

  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  async advisoryLock(trx: Tx, key: string, mode: 'shared' | 'exclusive'): Promise<void> {
    const fn = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
    await trx.raw(`select ${fn}(hashtextextended(?, 0))`, [key]);
  }

  async lockOrCreateOrder(
    trx: Tx, orderId: string, sellerId: string, state: OrderState, at: Date, sharedLocks: string[], facts?: NewFacts,
  ): Promise<{ order: OrderRecord; recorded: boolean; terms?: TermsRead }> {
    // The insert's one source row is produced only after every lock in `locks` was taken, so the advisory locks come
    // before the row lock. ON CONFLICT DO UPDATE locks an existing row like SELECT … FOR UPDATE and returns it; with
    // facts, its WHERE leaves an order that already has them as it is (locked all the same, but not returned).
    const columns: Columns = facts ? ('order' in facts ? orderFactColumns(facts.order) : purchaseFactColumns(facts.purchase)) : {};
    const names = Object.keys(columns);
    const onConflict = facts
      ? `${names.map((c) => `${c} = excluded.${c}`).join(', ')}, updated_at = now() where orders.${'order' in facts ? 'sale_amount_minor' : 'supplier_cost_minor'} is null`
      : 'order_id = excluded.order_id';
    const result = await trx.raw(
      `with locks as (select pg_advisory_xact_lock_shared(hashtextextended(k, 0)) from unnest(?::text[]) with ordinality as l(k, n) order by n),
       saved as (
         insert into orders (order_id, seller_id, state, state_since${names.map((c) => `, ${c}`).join('')})
         select ?, ?, ?, ?${names.map(() => ', ?').join('')} from (select count(*) from locks) as taken
         on conflict (order_id) do update set ${onConflict}
         returning *)${facts ? `,
       noted as (insert into order_history (order_id, state, cause, detail) select order_id, state, ?, ? from saved)` : ''}
       select saved.*${facts ? `, ${BOTH_FACTS} as terms_read, case when ${BOTH_FACTS} then commercial_terms_now(saved.seller_id) end as terms_now` : ''}
         from saved`,
      [sharedLocks, orderId, sellerId, state, at, ...Object.values(columns), ...(facts ? [facts.cause, json(facts.detail)] : [])],
    );
    const row = result.rows[0] as Row | undefined;
    if (row) {
      // the terms are read after the locks (the insert's source waits for them), by a query of their own snapshot
      const terms = row.terms_read ? { current: row.terms_now ? toTerms(row.terms_now as Row) : undefined } : undefined;
      return { order: toOrder(row), recorded: facts !== undefined, ...(terms ? { terms } : {}) };
    }
    // the order already had these facts: its row is locked by the statement above, read it as it stands
    const known = await this.lockOrder(trx, orderId);
    if (!known) throw new Error(`order ${orderId} vanished inside its transaction`);
    return { order: known, recorded: false };
  }

  async lockOrder(trx: Tx, orderId: string): Promise<OrderRecord | undefined> {
    const row = await trx('orders').where({ order_id: orderId }).forUpdate().first();
    return row ? toOrder(row) : undefined;
  }

  async findOrder(orderId: string): Promise<OrderRecord | undefined> {
    const row = await this.db('orders').where({ order_id: orderId }).first();
    return row ? toOrder(row) : undefined;
  }

  async saveHistory(trx: Tx, orderId: string, lines: HistoryLine[], move?: StateMove): Promise<void> {
    if (lines.length === 0 && !move) return;
    const noted = historySql(orderId, lines, move);
    await trx.raw(`with ${noted.sql} select 1`, noted.bindings);
  }

  async history(orderId: string): Promise<Row[]> {
    return this.db('order_history').where({ order_id: orderId }).orderBy('id').select('at', 'state', 'cause', 'detail');
  }

  async findSale(orderId: string, trx?: Tx): Promise<SaleRecord | undefined> {
    const q = trx ?? this.db;
    const row = await q('sales').where({ order_id: orderId }).select('*', q.raw(`to_char(fx_rate_date, 'YYYY-MM-DD') as fx_rate_day`)).first();
    return row ? toSale(row) : undefined;
  }

  async recordSale(trx: Tx, s: SaleRecord, entry: JournalEntryInput, also: { event?: OutboxRow; history?: HistoryLine[]; move?: StateMove } = {}): Promise<void> {
    const b = s.breakdown;
    const sale = trx('sales').insert({
      sale_id: s.saleId, order_id: s.orderId, seller_id: s.sellerId, currency: b.saleAmount.currency, sale_amount_minor: b.saleAmount.amountMinor,
      marketplace_fee_minor: b.marketplaceFee.amountMinor, marketplace_fee_source: s.marketplaceFeeSource, payment_fee_minor: b.paymentFee.amountMinor,
      supplier_cost_minor: b.supplierCost.amountMinor, supplier_cost_charged_minor: s.supplierCostCharged.amountMinor,
      supplier_cost_charged_currency: s.supplierCostCharged.currency, fx_rate: s.fx?.rate ?? null, fx_rate_date: s.fx?.rateDate ?? null,
      fx_source: s.fx?.source ?? null, gross_profit_minor: b.grossProfit.amountMinor, commission_rate_bps: b.commissionRateBps,
      terms_source: s.termsSource, platform_commission_minor: b.platformCommission.amountMinor, seller_net_profit_minor: b.sellerNetProfit.amountMinor,
      loss_minor: b.loss.amountMinor, is_loss: b.isLoss, recorded_at: s.recordedAt, refunded_minor: s.refundedMinor,
    }).toSQL();
    // a second sale for the order still fails on its unique order_id, and takes the entry, the event and the history
    // with it; the event is written from the sale inserted (it exists iff the sale does)
    const posting = entrySql(entry);
    const { event } = also;
    const published = event
      ? `, published as (insert into outbox (event_id, topic, stream, key, event_type, event) select ?::uuid, ?, ?, ?, ?, ?::jsonb from sale)`
      : '';
    const noted = (also.history?.length ?? 0) > 0 || also.move ? historySql(s.orderId, also.history ?? [], also.move) : undefined;
    await trx.raw(`with sale as (${sale.sql} returning 1), ${posting.sql}${published}${noted ? `, ${noted.sql}` : ''} select 1`, [
      ...sale.bindings, ...posting.bindings,
      ...(event ? [event.event_id, event.topic, event.stream, event.key, event.event_type, event.event] : []),
      ...(noted ? noted.bindings : []),
    ]);
  }

  async setSaleRefunded(trx: Tx, saleId: string, refundedMinor: number): Promise<void> {
    await trx('sales').where({ sale_id: saleId }).update({ refunded_minor: refundedMinor });
  }

  async insertAdjustment(trx: Tx, a: AdjustmentRecord): Promise<boolean> {
    // the order's adjustment_count follows through the trigger on adjustments (migration 0004)
    const inserted = await trx('adjustments')
      .insert({
        adjustment_id: a.adjustmentId, order_id: a.orderId, kind: a.kind, refund_id: a.refundId, amount_minor: a.amount?.amountMinor ?? null,
        currency: a.amount?.currency ?? null, full: a.full, reason: a.reason, occurred_at: a.occurredAt, event_id: a.eventId, status: a.status,
      })
      .onConflict('adjustment_id')
      .ignore()
      .returning('adjustment_id');
    return inserted.length === 1;
  }

  async adjustments(trx: Tx, orderId: string): Promise<AdjustmentRecord[]> {
    const rows: Row[] = await trx('adjustments').where({ order_id: orderId }).orderBy([{ column: 'occurred_at' }, { column: 'created_at' }]);
    return rows.map((r) => ({
      adjustmentId: String(r.adjustment_id), orderId: String(r.order_id), kind: r.kind as AdjustmentRecord['kind'], refundId: (r.refund_id as string) ?? null,
      amount: optionalMoney(r.amount_minor, r.currency), full: Boolean(r.full), reason: (r.reason as string) ?? null, occurredAt: date(r.occurred_at),
      eventId: String(r.event_id), status: r.status as AdjustmentStatus,
    }));
  }

  async adjustmentRows(orderId: string): Promise<Row[]> {
    return this.db('adjustments').where({ order_id: orderId }).orderBy([{ column: 'occurred_at' }, { column: 'created_at' }]);
  }

  async markAdjustment(trx: Tx, adjustmentId: string, status: AdjustmentStatus, reason: string | null, applied?: AppliedAmounts, at?: Date): Promise<void> {
    await trx('adjustments').where({ adjustment_id: adjustmentId }).update({
      status, status_reason: reason, reversal_kind: applied?.reversalKind ?? null, refunded_minor: applied?.refundedMinor ?? null,
      commission_reversed_minor: applied?.commissionReversedMinor ?? null, seller_net_reversed_minor: applied?.sellerNetReversedMinor ?? null,
      loss_added_minor: applied?.lossAddedMinor ?? null, applied_at: applied ? (at ?? new Date()) : null,
    });
  }

  async postEntry(trx: Tx, e: JournalEntryInput, note?: EntryNote): Promise<boolean> {
    if (!note) {
      const posting = entrySql(e);
      const result = await trx.raw(`with ${posting.sql} select (select count(*) from entry)::int as entries`, posting.bindings);
      return result.rows[0].entries === 1;
    }
    // The order's row is locked first (the entry waits on it), so the note carries the state as it stands when posted.
    const posting = entrySql(e, 'locked');
    const result = await trx.raw(
      `with locked as materialized (select order_id, state from orders where order_id = ? for update),
       ${posting.sql},
       noted as (
         insert into order_history (order_id, state, cause, detail)
         select order_id, state, ?, case when exists (select from entry) then ?::jsonb else ?::jsonb || jsonb_build_object('ignored', ?::text) end
         from locked)
       select (select count(*) from entry)::int as entries`,
      [e.orderId, ...posting.bindings, note.cause, json(note.detail), json(note.detail), note.ignored],
    );
    return result.rows[0].entries === 1;
  }

  async unreturnedPayoutEntry(trx: Tx, orderId: string, payoutId: string): Promise<{ entryKey: string; postings: Posting[] } | undefined> {
    // found through the order's entries (journal_entries_order_id): a LIKE on the key uses no index unless the
    // database's collation is C, and would read the whole journal
    const entry: Row | undefined = await trx('journal_entries as je')
      .where('je.order_id', orderId)
      .andWhere('je.kind', 'PAYOUT')
      .andWhere('je.entry_key', 'like', `payout:${payoutId.replace(/[\\%_]/g, (c) => `\\${c}`)}:%`)
      .whereNotExists(trx('journal_entries as r').whereRaw(`r.entry_key = 'return:' || je.entry_key`))
      .orderBy('je.id', 'desc')
      .first();
    if (!entry) return undefined;
    const postings: Row[] = await trx('postings').where({ entry_id: entry.id }).orderBy('id');
    return { entryKey: String(entry.entry_key), postings: postings.map((p) => ({ account: p.account_code as AccountCode, amount: money(p.amount_minor, p.currency) })) };
  }

  /** Balances of the payable accounts (seller_payable per seller, platform_commission) that are not zero. */
  async openPayables(): Promise<Row[]> {
    const { rows } = await this.db.raw(
      `select account_code, seller_id, currency, sum(amount_minor) as total from (${BALANCES_AND_POSTINGS_AFTER}) b
        where account_code in ('seller_payable', 'platform_commission')
        group by account_code, seller_id, currency having sum(amount_minor) <> 0 order by account_code, seller_id, currency`,
    );
    return rows as Row[];
  }

  async rollUpBalances(lockTimeoutMs: number): Promise<void> {
    // The balances may take in only postings whose transactions have ended: ids are handed out before commit, so a
    // posting committed later can have a smaller id than one already visible. Taking the table in SHARE mode waits for
    // the writers in flight and stops new ones for as long as it takes to read the last id (one index probe); after
    // that, every posting up to it is committed. A writer that holds on long makes this give up (lock_timeout, shorter
    // than deadlock_timeout: a sale is never the one aborted) and the next roll-up tries again.
    const through = await this.db.transaction(async (trx) => {
      await trx.raw(`set local lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
      await trx.raw('lock table postings in share mode');
      return safeInteger((await trx.raw('select coalesce(max(id), 0) as id from postings')).rows[0].id);
    });
    // One statement on its own: the balances and the mark move together. Replicas rolling up at once queue on the
    // mark's row; the later one adds only what the first did not (the mark it reads is the first one's). The final
    // select reads `added`, so the mark is locked and read before `moved` updates it (as the main query, the update
    // would run first, and the lock would then skip the row its own statement changed).
    await this.db.raw(
      `with mark as (select posting_id from account_balances_through for update),
       added as (select account_code, seller_id, currency, sum(amount_minor) as total from postings
                  where id > (select posting_id from mark) and id <= ? group by account_code, seller_id, currency),
       balances as (insert into account_balances as b (account_code, seller_id, currency, balance_minor)
                    select account_code, seller_id, currency, total from added
                    on conflict (account_code, seller_id, currency) do update set balance_minor = b.balance_minor + excluded.balance_minor),
       moved as (update account_balances_through set posting_id = ? where posting_id < ?)
       select count(*) from added`,
      [through, through, through],
    );
  }

  /** What was paid to a seller through PayPal: the seller's PAYOUT / PAYOUT_RETURN entries and their postings. */
  async sellerPayouts(sellerId: string): Promise<Row[]> {
    return this.db('journal_entries as je').join('postings as p', 'p.entry_id', 'je.id')
      .where('je.seller_id', sellerId).whereIn('je.kind', ['PAYOUT', 'PAYOUT_RETURN'])
      .select('je.entry_key', 'je.kind', 'je.order_id', 'je.description', 'je.posted_at', 'p.account_code', 'p.currency', 'p.amount_minor')
      .orderBy(['je.id', 'p.id']);
  }

  async entries(orderId: string): Promise<Row[]> {
    const entries: Row[] = await this.db('journal_entries').where({ order_id: orderId }).orderBy('id');
    // by entry, through the (entry_id, currency) index: postings has no index on order_id, and a filter on it alone
    // would read every posting ever made
    const postings: Row[] = entries.length === 0 ? [] : await this.db('postings').whereIn('entry_id', entries.map((e) => String(e.id))).orderBy('id');
    return entries.map((e) => ({
      entryKey: e.entry_key, kind: e.kind, description: e.description, postedAt: date(e.posted_at).toISOString(),
      postings: postings.filter((p) => String(p.entry_id) === String(e.id)).map((p) => ({ account: p.account_code, amount: money(p.amount_minor, p.currency) })),
    }));
  }

  async findTerms(sellerId: string, trx?: Tx): Promise<CommercialTerms | undefined> {
    const q = trx ?? this.db;
    const row = await q('commercial_terms').where({ seller_id: sellerId }).first();
    return row ? toTerms(row) : undefined;
  }

  async saveTerms(trx: Tx, t: CommercialTerms): Promise<void> {
    await trx('commercial_terms')
      .insert({ seller_id: t.sellerId, commission_rate_bps: t.commissionRateBps, marketplace_fees: JSON.stringify(t.marketplaceFees), updated_at: trx.fn.now() })
      .onConflict('seller_id')
      .merge();
  }

  findFxRate(trx: Tx, from: string, to: string, onOrBefore: string, notBefore: string): Promise<FxRate | undefined> {
    return fxRates.find(trx, from, to, onOrBefore, notBefore);
  }

  saveFxRate(trx: Tx, rate: FxRate): Promise<void> {
    return fxRates.save(trx, rate);
  }

  async recordAudit(trx: Tx, entry: AdminAuditEntry): Promise<void> {
    await this.auditTrail.record(entry, trx);
  }

  async audit(filter: { target?: string; limit: number }): Promise<AdminAuditRecord[]> {
    return this.auditTrail.recent(filter);
  }

  async ordersInState(trx: Tx, state: OrderState, sellerId?: string): Promise<string[]> {
    const q = trx('orders').where({ state }).orderBy('state_since').select('order_id');
    if (sellerId) q.andWhere({ seller_id: sellerId });
    return (await q).map((r: Row) => String(r.order_id));
  }

  /** Orders in one of `states` whose state began before `before`. */
  async stuckOrders(states: string[], before: Date): Promise<Row[]> {
    return this.db('orders').whereIn('state', states).andWhere('state_since', '<', before).orderBy('state_since').select('order_id', 'seller_id', 'state', 'state_reason', 'state_since');
  }

  async trialBalance(): Promise<Array<{ currency: string; account: string; balanceMinor: number }>> {
    const rows: Row[] = (await this.db.raw(
      `select currency, account_code, sum(amount_minor) as total from (${BALANCES_AND_POSTINGS_AFTER}) b
        group by currency, account_code order by currency, account_code`,
    )).rows;
    return rows.map((r) => ({ currency: String(r.currency).trim(), account: String(r.account_code), balanceMinor: safeInteger(r.total) }));
  }

  async statementSales(sellerId: string, from: Date, to: Date): Promise<Row[]> {
    return this.db('journal_entries as je')
      .join('sales as s', 's.order_id', 'je.order_id')
      .where('je.seller_id', sellerId).andWhere('je.kind', 'SALE').andWhere('je.posted_at', '>=', from).andWhere('je.posted_at', '<', to)
      .select('je.posted_at', 's.*');
  }

  async statementReversals(sellerId: string, from: Date, to: Date): Promise<Row[]> {
    return this.db('journal_entries as je')
      .join('adjustments as a', this.db.raw(`je.entry_key = 'reversal:' || a.adjustment_id`))
      .join('sales as s', 's.order_id', 'a.order_id')
      .where('je.seller_id', sellerId).andWhere('je.kind', 'REVERSAL').andWhere('je.posted_at', '>=', from).andWhere('je.posted_at', '<', to)
      .select('je.posted_at', 's.sale_id', 's.currency', 'a.*');
  }
}

/**
 * Every account's balance per seller and currency, as rows to sum: the rolled-up balances and the postings after
 * them, read in one statement (one snapshot: a roll-up moves balances and mark together). The postings after the mark
 * are a range of the primary key, bounded on both sides so that the planner, which cannot know the mark's value when
 * it plans, still takes it for a small range and walks the index rather than the table.
 */
const BALANCES_AND_POSTINGS_AFTER = `
  select account_code, seller_id, currency, balance_minor as amount_minor from account_balances
  union all
  select account_code, seller_id, currency, amount_minor from postings
   where id > (select posting_id from account_balances_through) and id <= (select max(id) from postings)`;

/** A jsonb parameter: the object as JSON text, or null. */
const json = (detail: Record<string, unknown> | undefined): string | null => (detail ? JSON.stringify(detail) : null);

/**
 * The order's history lines (in the order given: ids follow it) as two CTEs (`target`, `noted`) for one statement; with
 * a move, the order is moved first and the lines written only if it exists, like the update itself.
 */
function historySql(orderId: string, lines: HistoryLine[], move?: StateMove): { sql: string; bindings: Knex.Value[] } {
  const source = move
    ? 'update orders set state = ?, state_reason = ?, state_since = ?, updated_at = now() where order_id = ? returning order_id'
    : 'select ?::text as order_id';
  return {
    sql: `target as (${source}),
       noted as (
         insert into order_history (order_id, state, cause, detail)
         select target.order_id, l.state, l.cause, l.detail
         from target cross join jsonb_to_recordset(?::jsonb) as l(state text, cause text, detail jsonb, n int)
         order by l.n)`,
    bindings: [...(move ? [move.state, move.reason, move.at, orderId] : [orderId]), historyJson(lines)],
  };
}

const historyJson = (lines: HistoryLine[]): string => JSON.stringify(lines.map((l, n) => ({ state: l.state, cause: l.cause, detail: l.detail ?? null, n })));

const orderFactColumns = (f: OrderFacts): Columns => ({
  marketplace: f.marketplace, external_order_id: f.externalOrderId, currency: f.saleAmount.currency, sale_amount_minor: f.saleAmount.amountMinor,
  marketplace_fee_minor: f.marketplaceFee?.amountMinor ?? null, marketplace_fee_currency: f.marketplaceFee?.currency ?? null,
  payment_fee_minor: f.paymentFee?.amountMinor ?? null, payment_fee_currency: f.paymentFee?.currency ?? null,
  order_received_at: f.receivedAt, order_event_id: f.eventId,
});

const purchaseFactColumns = (f: PurchaseFacts): Columns => ({
  supplier: f.supplier, supplier_order_id: f.supplierOrderId, supplier_cost_minor: f.supplierCost.amountMinor,
  supplier_cost_currency: f.supplierCost.currency, purchased_at: f.purchasedAt, purchase_known_at: f.knownAt, purchase_event_id: f.eventId,
});

/**
 * A journal entry and its postings as two CTEs (`entry`, returning the new entry's id, and `posted`) for one statement:
 * the postings are inserted only when the entry is new. With `after`, the entry waits for that CTE (e.g. a row lock).
 */
function entrySql(e: JournalEntryInput, after?: string): { sql: string; bindings: Knex.Value[] } {
  return {
    sql: `entry as (
         insert into journal_entries (entry_key, order_id, seller_id, kind, description, posted_at)
         select ?, ?, ?, ?, ?, ?${after ? ` from (select count(*) from ${after}) as waited` : ''}
         on conflict (entry_key) do nothing returning id),
       posted as (
         insert into postings (entry_id, account_code, seller_id, order_id, currency, amount_minor)
         select entry.id, p.account_code, ?, ?, p.currency, p.amount_minor
         from entry cross join jsonb_to_recordset(?::jsonb) as p(account_code text, currency text, amount_minor bigint, n int)
         order by p.n
         returning 1)`,
    bindings: [
      e.entryKey, e.orderId, e.sellerId, e.kind, e.description, e.postedAt, e.sellerId, e.orderId,
      JSON.stringify(e.postings.map((p, n) => ({ account_code: p.account, currency: p.amount.currency, amount_minor: p.amount.amountMinor, n }))),
    ],
  };
}

/** The order has both facts once this statement recorded one: a sale is to be priced, with the seller's terms. */
const BOTH_FACTS = '(saved.sale_amount_minor is not null and saved.supplier_cost_minor is not null)';

function toTerms(row: Row): CommercialTerms {
  const fees = typeof row.marketplace_fees === 'string' ? JSON.parse(row.marketplace_fees) : row.marketplace_fees;
  return { sellerId: String(row.seller_id), commissionRateBps: Number(row.commission_rate_bps), marketplaceFees: fees as CommercialTerms['marketplaceFees'], updatedAt: date(row.updated_at) };
}

function toOrder(r: Row): OrderRecord {
  return {
    orderId: String(r.order_id), sellerId: String(r.seller_id), state: r.state as OrderState, stateReason: (r.state_reason as string) ?? null,
    stateSince: date(r.state_since),
    order: r.sale_amount_minor === null || r.sale_amount_minor === undefined ? null : {
      marketplace: r.marketplace as Marketplace, externalOrderId: String(r.external_order_id), saleAmount: money(r.sale_amount_minor, r.currency),
      marketplaceFee: optionalMoney(r.marketplace_fee_minor, r.marketplace_fee_currency), paymentFee: optionalMoney(r.payment_fee_minor, r.payment_fee_currency),
      receivedAt: date(r.order_received_at), eventId: String(r.order_event_id),
    },
    purchase: r.supplier_cost_minor === null || r.supplier_cost_minor === undefined ? null : {
      supplier: String(r.supplier), supplierOrderId: String(r.supplier_order_id), supplierCost: money(r.supplier_cost_minor, r.supplier_cost_currency),
      purchasedAt: date(r.purchased_at), knownAt: date(r.purchase_known_at), eventId: String(r.purchase_event_id),
    },
    adjustmentCount: Number(r.adjustment_count),
  };
}

export function toSale(r: Row): SaleRecord {
  const c = String(r.currency).trim();
  const m = (v: unknown) => money(v, c);
  const breakdown: Breakdown = {
    saleAmount: m(r.sale_amount_minor), marketplaceFee: m(r.marketplace_fee_minor), paymentFee: m(r.payment_fee_minor), supplierCost: m(r.supplier_cost_minor),
    grossProfit: m(r.gross_profit_minor), commissionRateBps: Number(r.commission_rate_bps), platformCommission: m(r.platform_commission_minor),
    sellerNetProfit: m(r.seller_net_profit_minor), loss: m(r.loss_minor), isLoss: Boolean(r.is_loss),
  };
  return {
    saleId: String(r.sale_id), orderId: String(r.order_id), sellerId: String(r.seller_id), breakdown,
    marketplaceFeeSource: r.marketplace_fee_source as SaleRecord['marketplaceFeeSource'], termsSource: r.terms_source as SaleRecord['termsSource'],
    supplierCostCharged: money(r.supplier_cost_charged_minor, r.supplier_cost_charged_currency),
    fx: r.fx_rate ? { fromCurrency: String(r.supplier_cost_charged_currency).trim(), toCurrency: c, rate: String(r.fx_rate), rateDate: String(r.fx_rate_day), source: String(r.fx_source) } : null,
    recordedAt: date(r.recorded_at), refundedMinor: safeInteger(r.refunded_minor),
  };
}
