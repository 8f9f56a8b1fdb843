import { createAdminAuditTable, type Migration } from '@postsale/runtime';
import { PAYPAL_PAYOUT_CURRENCIES } from '../domain/payout-currency';

/** payouts's own tables, in its own schema. Append new migrations; never edit one that has shipped. */
export const migrations: Migration[] = [
  {
    name: '0001_payouts',
    async up(db) {
      // Where a seller is paid and when. No row = no payee: the seller's intents are HELD (no default address).
      await db.schema.createTable('payees', (t) => {
        t.string('seller_id').primary();
        t.string('email').notNullable();
        t.string('release_policy').notNullable(); // immediate | after_shipment | after_delivery_plus_days
        t.integer('release_delay_days').notNullable().defaultTo(0);
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // What fulfillment said about an order's delivery, for release policies (may arrive before or after the sale).
      await db.schema.createTable('order_milestones', (t) => {
        t.string('order_id').primary();
        t.string('seller_id').notNullable();
        t.timestamp('shipped_at', { useTz: true });
        t.timestamp('delivered_at', { useTz: true });
      });
      // One row per recorded sale: the unique sale_id makes a re-delivered or re-published SaleRecorded a no-op.
      await db.schema.createTable('sales', (t) => {
        t.string('sale_id').primary();
        t.string('order_id').notNullable().index();
        t.string('seller_id').notNullable();
        t.string('currency', 3).notNullable();
        t.bigInteger('sale_amount_minor').notNullable();
        t.bigInteger('platform_commission_minor').notNullable();
        t.bigInteger('seller_net_minor').notNullable();
        t.boolean('is_loss').notNullable();
        t.string('event_id').notNullable();
        t.timestamp('recorded_at', { useTz: true }).notNullable();
        t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.schema.createTable('reversals', (t) => {
        t.string('reversal_id').primary();
        t.string('sale_id').notNullable();
        t.string('order_id').notNullable().index();
        t.string('kind').notNullable();
        t.string('currency', 3).notNullable();
        t.bigInteger('commission_reversed_minor').notNullable();
        t.bigInteger('seller_net_reversed_minor').notNullable();
        t.timestamp('reversed_at', { useTz: true }).notNullable();
        t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // What is owed to whom for one sale. Lesson 2: one intent per (sale, recipient), enforced by the database.
      await db.schema.createTable('payout_intents', (t) => {
        t.uuid('id').primary();
        t.string('sale_id').notNullable();
        t.string('order_id').notNullable().index();
        t.string('seller_id').notNullable().index();
        t.string('recipient').notNullable(); // PLATFORM | SELLER
        t.string('currency', 3).notNullable();
        t.bigInteger('amount_minor').notNullable(); // the share the sale assigned
        t.bigInteger('reversed_minor').notNullable().defaultTo(0); // taken back by reversals
        t.bigInteger('offset_minor').notNullable().defaultTo(0); // used to settle what the payee owed (clawbacks)
        t.bigInteger('pending_reversal_minor').notNullable().defaultTo(0); // reversed while in flight at PayPal
        t.bigInteger('payable_minor').notNullable(); // what the next payment sends
        t.string('status').notNullable();
        t.string('hold_reason');
        t.timestamp('release_at', { useTz: true }); // DUE intents are paid from this time on
        t.integer('attempt').notNullable().defaultTo(1);
        t.uuid('batch_id');
        t.timestamp('sale_recorded_at', { useTz: true }).notNullable();
        t.timestamp('status_since', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.unique(['sale_id', 'recipient']);
      });
      await db.raw("create index payout_intents_due on payout_intents (release_at) where status = 'DUE'");
      // One PayPal create-batch call. The row (and its sender_batch_id) is committed before the call.
      await db.schema.createTable('payout_batches', (t) => {
        t.uuid('id').primary();
        t.string('sender_batch_id').notNullable().unique();
        t.string('status').notNullable(); // SUBMITTING | ACCEPTED | REJECTED | COMPLETED | NEEDS_REVIEW | DRY_RUN
        t.string('paypal_batch_id').unique();
        t.string('paypal_batch_status');
        t.jsonb('request').notNullable(); // the exact body, re-posted unchanged when the outcome is unknown
        t.integer('item_count').notNullable();
        t.integer('post_attempts').notNullable().defaultTo(0);
        t.text('last_error');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('accepted_at', { useTz: true });
        t.timestamp('completed_at', { useTz: true });
        t.timestamp('last_checked_at', { useTz: true });
      });
      // One attempt to pay one intent: sender_item_id = intent id + attempt, so a retry never reuses an item id.
      await db.schema.createTable('payout_items', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('intent_id').notNullable().references('id').inTable('payout_intents');
        t.integer('attempt').notNullable();
        t.string('sender_item_id').notNullable().unique();
        t.uuid('batch_id').notNullable().references('id').inTable('payout_batches');
        t.string('receiver').notNullable();
        t.bigInteger('amount_minor').notNullable();
        t.string('currency', 3).notNullable();
        t.string('status').notNullable(); // SUBMITTED | PayPal item status | REJECTED | DRY_RUN
        t.string('paypal_item_id').unique();
        t.string('transaction_id');
        t.string('error_name');
        t.text('error_message');
        t.timestamp('cancel_requested_at', { useTz: true });
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.unique(['intent_id', 'attempt']);
      });
      // What each payee owes back (clawbacks, negative) and what was settled by netting (offsets, positive).
      await db.schema.createTable('balance_entries', (t) => {
        t.bigIncrements('id').primary();
        t.string('party').notNullable(); // 'seller:<id>' | 'platform'
        t.string('currency', 3).notNullable();
        t.bigInteger('amount_minor').notNullable();
        t.string('kind').notNullable(); // CLAWBACK | OFFSET
        t.string('order_id');
        t.uuid('intent_id');
        t.string('reference').notNullable(); // reversal id or batch id: with kind+intent it makes the entry unique
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.unique(['kind', 'intent_id', 'reference']);
        t.index(['party', 'currency']);
      });
      // Every state change of an intent, with its cause: GET /admin/orders/:orderId shows it.
      await db.schema.createTable('intent_history', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('intent_id').notNullable().index();
        t.string('order_id').notNullable().index();
        t.string('from_status');
        t.string('to_status').notNullable();
        t.text('cause').notNullable();
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.schema.createTable('webhook_events', (t) => {
        t.string('event_id').primary();
        t.string('event_type').notNullable();
        t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
    },
  },
  {
    name: '0002_payout_currency_and_fx',
    async up(db) {
      // The payee's chosen payout currency; null = the sale's currency when PayPal pays it, else DEFAULT_PAYOUT_CURRENCY.
      await db.schema.alterTable('payees', (t) => {
        t.string('payout_currency', 3);
      });
      // Dated rates owned by payouts (same meaning as the sales service's table): `rate` units of `to` per 1 `from`.
      await db.schema.createTable('fx_rates', (t) => {
        t.string('from_currency', 3).notNullable();
        t.string('to_currency', 3).notNullable();
        t.date('rate_date').notNullable();
        t.string('rate').notNullable(); // exact decimal string, never a float
        t.string('source').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['from_currency', 'to_currency', 'rate_date']);
      });
      // What an intent is paid in, and the rate pinned for it (null when paid in the sale's currency).
      await db.schema.alterTable('payout_intents', (t) => {
        t.string('payout_currency', 3);
        t.string('fx_rate');
        t.string('fx_rate_date', 10); // YYYY-MM-DD, the rate's own date
        t.string('fx_source');
        t.text('skip_reason');
      });
      // Intents from before this migration were paid in the sale's currency. Where PayPal cannot pay that currency
      // (the CLP defect) it stays null: the batcher re-decides such an intent (payout currency, rate) before paying it.
      await db('payout_intents').whereIn('currency', Object.keys(PAYPAL_PAYOUT_CURRENCIES)).update({ payout_currency: db.ref('currency') });
      // What an item converted: the owed amount in the sale's currency and the rate (amount_minor/currency = paid).
      await db.schema.alterTable('payout_items', (t) => {
        t.bigInteger('source_amount_minor');
        t.string('source_currency', 3);
        t.string('fx_rate');
        t.string('fx_rate_date', 10);
      });
    },
  },
  {
    name: '0003_payouts_admin_audit',
    async up(db) {
      // Every admin write: who (from the credential), what, before/after, why, when. A payee email change is one.
      await createAdminAuditTable(db, { orderColumn: false, indexes: ['target'] });
    },
  },
  {
    // Queries of the batcher and the reconciler that read whole tables, which grow with every payout (bench: hot query
    // plans): the items of a batch, batches by status (reconciler), items whose cancellation is pending.
    name: '0004_speed_payout_lookups',
    async up(db) {
      await db.raw('create index if not exists payout_items_batch on payout_items (batch_id, id)');
      await db.raw('create index if not exists payout_batches_by_status on payout_batches (status, last_checked_at nulls first, created_at)');
      await db.raw(`create index if not exists payout_items_cancel_pending on payout_items (id)
        where cancel_requested_at is not null and paypal_item_id is not null and status = 'UNCLAIMED'`);
    },
  },
  {
    // each batching run looks for intents held for a rate: held ones are few, so this stays small as history grows
    name: '0005_payout_intents_held_index',
    async up(db) {
      await db.raw("create index payout_intents_held on payout_intents (hold_reason) where status = 'HELD'");
    },
  },
  {
    // accepted batches are jobs of the runtime's job worker: a lease (next_check_at) and a fencing token per claim
    name: '0006_payout_batches_check_lease',
    async up(db) {
      await db.schema.alterTable('payout_batches', (t) => {
        t.bigInteger('fence').notNullable().defaultTo(0);
        t.timestamp('next_check_at', { useTz: true });
      });
      await db.raw("create index payout_batches_to_check on payout_batches (next_check_at nulls first) where status = 'ACCEPTED'");
    },
  },
  {
    // Every payout decision nets the payee's debt (settleDebtFirst): it read the SUM of the party's whole balance
    // history, a cost growing with every clawback and offset (issue 15). One running balance per (party, currency),
    // moved in the transaction of each balance entry, makes it one row. Backfilled from the entries; the table is
    // locked meanwhile so no entry is written between the sum and the commit.
    name: '0007_balances_running_total',
    async up(db) {
      await db.schema.createTable('balances', (t) => {
        t.string('party').notNullable(); // 'seller:<id>' | 'platform', as in balance_entries
        t.string('currency', 3).notNullable();
        t.bigInteger('balance_minor').notNullable(); // the sum of the party's entries in this currency (negative: owed)
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['party', 'currency']);
      });
      // Moved by Postgres itself with every entry inserted, in the entry's transaction: a replica still running the
      // version before this one (a rolling deploy) cannot write an entry the balance misses. Entries are never updated
      // or deleted (a correction is a new entry).
      await db.raw(`create function balances_follow_entries() returns trigger language plpgsql set search_path from current as $$
        begin
          insert into balances (party, currency, balance_minor) values (new.party, new.currency, new.amount_minor)
            on conflict (party, currency) do update set balance_minor = balances.balance_minor + excluded.balance_minor, updated_at = now();
          return null;
        end $$`);
      await db.raw('lock table balance_entries in share row exclusive mode');
      await db.raw(`insert into balances (party, currency, balance_minor)
        select party, currency, sum(amount_minor) from balance_entries group by party, currency`);
      await db.raw('create trigger balance_entries_move_balance after insert on balance_entries for each row execute function balances_follow_entries()');
    },
  },
  {
    // Intent history is read by order only (GET /admin/orders/:orderId); the index by intent took an entry for every
    // state change (≈ 6 per order) and served no query.
    name: '0008_drop_intent_history_intent_id_index',
    transaction: false, // concurrently: the drop waits for the transactions using the index and holds none of the writes
    async up(db) {
      await db.raw('drop index concurrently if exists intent_history_intent_id_index');
    },
  },
];
