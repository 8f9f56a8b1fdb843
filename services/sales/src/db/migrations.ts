import { createAdminAuditTable, createIndexConcurrently, type Migration } from '@postsale/runtime';
import { ACCOUNTS } from '../domain/ledger';

/** sales's own tables, in its own schema. Append new migrations; never edit one that has shipped. */
export const migrations: Migration[] = [
  {
    name: '0001_sales_ledger',
    async up(db) {
      // One row per order this service has heard of: what the order and the purchase said, and where the sale stands.
      await db.schema.createTable('orders', (t) => {
        t.string('order_id').primary();
        t.string('seller_id').notNullable();
        t.string('state', 32).notNullable();
        t.string('state_reason');
        t.timestamp('state_since', { useTz: true }).notNullable();
        t.string('marketplace', 32);
        t.string('external_order_id');
        t.specificType('currency', 'char(3)');
        t.bigInteger('sale_amount_minor');
        t.bigInteger('marketplace_fee_minor');
        t.specificType('marketplace_fee_currency', 'char(3)');
        t.bigInteger('payment_fee_minor');
        t.specificType('payment_fee_currency', 'char(3)');
        t.timestamp('order_received_at', { useTz: true });
        t.string('order_event_id');
        t.string('supplier');
        t.string('supplier_order_id');
        t.bigInteger('supplier_cost_minor');
        t.specificType('supplier_cost_currency', 'char(3)');
        t.timestamp('purchased_at', { useTz: true });
        t.timestamp('purchase_known_at', { useTz: true });
        t.string('purchase_event_id');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.index(['seller_id', 'state']);
        t.index(['state', 'state_since']);
      });
      await db.schema.createTable('order_history', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().references('order_id').inTable('orders');
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.string('state', 32).notNullable();
        t.string('cause').notNullable();
        t.jsonb('detail');
        t.index(['order_id', 'id']);
      });
      await db.schema.createTable('sales', (t) => {
        t.string('sale_id').primary();
        t.string('order_id').notNullable().unique().references('order_id').inTable('orders');
        t.string('seller_id').notNullable();
        t.specificType('currency', 'char(3)').notNullable();
        t.bigInteger('sale_amount_minor').notNullable();
        t.bigInteger('marketplace_fee_minor').notNullable();
        t.string('marketplace_fee_source', 16).notNullable();
        t.bigInteger('payment_fee_minor').notNullable();
        t.bigInteger('supplier_cost_minor').notNullable();
        t.bigInteger('supplier_cost_charged_minor').notNullable();
        t.specificType('supplier_cost_charged_currency', 'char(3)').notNullable();
        t.string('fx_rate');
        t.date('fx_rate_date');
        t.string('fx_source');
        t.bigInteger('gross_profit_minor').notNullable();
        t.integer('commission_rate_bps').notNullable();
        t.string('terms_source', 16).notNullable();
        t.bigInteger('platform_commission_minor').notNullable();
        t.bigInteger('seller_net_profit_minor').notNullable();
        t.bigInteger('loss_minor').notNullable();
        t.boolean('is_loss').notNullable();
        t.timestamp('recorded_at', { useTz: true }).notNullable();
        t.bigInteger('refunded_minor').notNullable().defaultTo(0);
        t.index(['seller_id', 'recorded_at']);
      });
      await db.raw(`alter table sales add constraint sales_identity check (
        marketplace_fee_minor + payment_fee_minor + supplier_cost_minor + platform_commission_minor + seller_net_profit_minor - loss_minor = sale_amount_minor
        and platform_commission_minor >= 0 and seller_net_profit_minor >= 0 and loss_minor >= 0
        and refunded_minor between 0 and sale_amount_minor)`);
      // Cancellations and refunds, remembered even before the sale exists and applied once it does.
      await db.schema.createTable('adjustments', (t) => {
        t.string('adjustment_id').primary(); // <orderId>:cancel or <orderId>:refund:<refundId>
        t.string('order_id').notNullable().references('order_id').inTable('orders');
        t.string('kind', 16).notNullable(); // CANCELLATION | REFUND
        t.string('refund_id');
        t.bigInteger('amount_minor');
        t.specificType('currency', 'char(3)');
        t.boolean('full').notNullable();
        t.string('reason');
        t.timestamp('occurred_at', { useTz: true }).notNullable();
        t.string('event_id').notNullable();
        t.string('status', 16).notNullable(); // PENDING | APPLIED | IGNORED | REJECTED
        t.string('status_reason');
        t.string('reversal_kind', 16);
        t.bigInteger('refunded_minor');
        t.bigInteger('commission_reversed_minor');
        t.bigInteger('seller_net_reversed_minor');
        t.bigInteger('loss_added_minor');
        t.timestamp('applied_at', { useTz: true });
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.index(['order_id', 'status']);
      });
      await db.schema.createTable('accounts', (t) => {
        t.string('code').primary();
        t.string('description').notNullable();
      });
      await db('accounts').insert(Object.entries(ACCOUNTS).map(([code, description]) => ({ code, description })));
      await db.schema.createTable('journal_entries', (t) => {
        t.bigIncrements('id').primary();
        t.string('entry_key').notNullable().unique(); // sale:<orderId> | reversal:<adjustmentId>: one entry per fact
        t.string('order_id').notNullable();
        t.string('seller_id').notNullable();
        t.string('kind', 16).notNullable(); // SALE | REVERSAL
        t.string('description').notNullable();
        t.timestamp('posted_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.index(['seller_id', 'posted_at']);
      });
      await db.schema.createTable('postings', (t) => {
        t.bigIncrements('id').primary();
        t.bigInteger('entry_id').notNullable().references('id').inTable('journal_entries');
        t.string('account_code').notNullable().references('code').inTable('accounts');
        t.string('seller_id').notNullable();
        t.string('order_id').notNullable();
        t.specificType('currency', 'char(3)').notNullable();
        t.bigInteger('amount_minor').notNullable(); // debit > 0, credit < 0
        t.index(['entry_id']);
        t.index(['currency', 'account_code']);
      });
      // The database itself refuses an unbalanced entry: checked per entry and currency at commit.
      await db.raw(`
        create function postings_balanced() returns trigger language plpgsql as $$
        declare unbalanced record;
        begin
          select currency, sum(amount_minor) as total into unbalanced from postings
            where entry_id = new.entry_id group by currency having sum(amount_minor) <> 0 limit 1;
          if found then
            raise exception 'journal entry % is unbalanced in %: %', new.entry_id, unbalanced.currency, unbalanced.total;
          end if;
          return null;
        end $$`);
      await db.raw(`create constraint trigger postings_balanced after insert or update on postings
        deferrable initially deferred for each row execute function postings_balanced()`);
      await db.schema.createTable('commercial_terms', (t) => {
        t.string('seller_id').primary();
        t.integer('commission_rate_bps').notNullable();
        t.jsonb('marketplace_fees').notNullable(); // { EBAY: { percentBps, fixed: { USD: "0.30" } } }
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.schema.createTable('fx_rates', (t) => {
        t.specificType('from_currency', 'char(3)').notNullable();
        t.specificType('to_currency', 'char(3)').notNullable();
        t.date('rate_date').notNullable();
        t.string('rate').notNullable(); // exact decimal string, units of `to` per unit of `from`
        t.string('source').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['from_currency', 'to_currency', 'rate_date']);
      });
    },
  },
  {
    name: '0002_payout_settlement',
    async up(db) {
      // PayoutSent / PayoutReturned from the payouts stream settle the payables (see domain/ledger.ts payoutPostings).
      await db('accounts').insert([
        { code: 'payouts_sent', description: ACCOUNTS.payouts_sent },
        { code: 'fx_rounding', description: ACCOUNTS.fx_rounding },
      ]).onConflict('code').ignore();
      await db.raw("alter table journal_entries alter column kind type varchar(16)");
    },
  },
  {
    // Every admin write (commercial terms, FX rates): who (from the credential), what, before/after, why, when.
    name: '0003_sales_admin_audit',
    async up(db) {
      await createAdminAuditTable(db, { orderColumn: false, indexes: ['target'] });
    },
  },
  {
    // An order counts its adjustments, so an event reads them only for an order that has some (most have none). A
    // trigger keeps the count, not the code: every insert counts, including one by a replica still running the previous
    // version during a rollout. The trigger comes before the backfill, and holds off inserts until this commits.
    name: '0004_orders_adjustment_count',
    async up(db) {
      await db.schema.alterTable('orders', (t) => {
        t.integer('adjustment_count').notNullable().defaultTo(0);
      });
      await db.raw(`
        create function count_adjustment() returns trigger language plpgsql as $$
        begin
          update orders set adjustment_count = adjustment_count + 1 where order_id = new.order_id;
          return null;
        end $$`);
      await db.raw('create trigger adjustments_counted after insert on adjustments for each row execute function count_adjustment()');
      await db.raw(`update orders o set adjustment_count = a.n
        from (select order_id, count(*)::int as n from adjustments group by order_id) a where a.order_id = o.order_id`);
    },
  },
  {
    // The balance check at commit reads one entry's postings per row inserted. With (entry_id) alone, a table without
    // fresh statistics (autovacuum off, or a burst before autoanalyze) was planned as a walk of the (currency,
    // account_code) index filtered on entry_id — the GROUP BY currency LIMIT 1 looked cheaper that way — so every check
    // read the whole table: commits grew with history until a 100-event slice took longer than the consumer's session
    // (found at ~200,000 postings by the 20,000-order benchmark). (entry_id, currency) answers the filter and the
    // grouping at once and is the plan with or without statistics; it also serves what the old index served.
    name: '0005_postings_by_entry_and_currency',
    async up(db) {
      await db.raw('create index postings_entry_id_currency_index on postings (entry_id, currency)');
      await db.raw('drop index postings_entry_id_index');
    },
  },
  {
    // The seller's terms read by the statement that takes the terms lock and records an order's last fact (one round
    // trip less per sale). That statement's snapshot predates the lock; a VOLATILE function's query takes a fresh one
    // (PL/pgSQL is never inlined), so it sees terms an admin committed while the statement waited for the lock.
    name: '0006_commercial_terms_now',
    async up(db) {
      await db.raw(`
        create function commercial_terms_now(seller text) returns jsonb language plpgsql volatile as $$
        begin
          return (select to_jsonb(t) from commercial_terms t where t.seller_id = seller);
        end $$`);
    },
  },
  {
    // Indexes as the queries use them. postings (currency, account_code) took an entry for every posting (≈ 12 per
    // order) and served no query: the trial balance and the open payables sum every posting (a scan either way), and
    // its leading currency column cannot serve a lookup by account. journal_entries had no index for the one lookup by
    // order (GET /admin/orders/:orderId), which read every entry ever posted; its postings are now found by entry.
    // Concurrently, outside a transaction: on a long journal the build must not hold sales's writes meanwhile.
    name: '0007_ledger_indexes_by_use',
    transaction: false,
    async up(db) {
      await db.raw('drop index concurrently if exists postings_currency_account_code_index');
      await createIndexConcurrently(db, 'journal_entries_order_id', 'journal_entries (order_id, id)');
    },
  },
  {
    // The trial balance and the open payables summed every posting ever made, on every view of the console's ledger
    // page. Balances rolled up now and then (per account, seller and currency: rows grow with sellers, not orders)
    // plus the postings after the roll-up answer both. A running balance kept by each sale's own transaction would be
    // a row every sale updates: sales would queue on it. Postings only ever get inserted, so a roll-up stays true.
    name: '0008_account_balances',
    async up(db) {
      await db.raw(`create table account_balances (
        account_code text not null references accounts (code),
        seller_id text not null,
        currency char(3) not null,
        balance_minor bigint not null,
        primary key (account_code, seller_id, currency))`);
      // one row: the last posting the balances include (0: none; the first roll-up reads the whole journal once)
      await db.raw(`create table account_balances_through (
        only_row boolean primary key default true check (only_row),
        posting_id bigint not null)`);
      await db.raw('insert into account_balances_through (posting_id) values (0)');
    },
  },
];
