import { createAdminAuditTable, type Migration } from '@postsale/runtime';

/** ingest's own tables, in its own schema. Append new migrations; never edit one that has shipped. */
export const migrations: Migration[] = [
  {
    name: '0001_ingest_sellers_deliveries_orders',
    async up(db) {
      await db.schema.createTable('sellers', (t) => {
        t.string('seller_id').primary();
        t.string('display_name');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // One marketplace account belongs to exactly one seller; its token is sealed (AES-GCM) and never shared.
      await db.schema.createTable('marketplace_accounts', (t) => {
        t.string('marketplace', 32).notNullable();
        t.string('account_id').notNullable();
        t.string('seller_id').notNullable().references('seller_id').inTable('sellers').onDelete('CASCADE');
        t.text('token_sealed');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['marketplace', 'account_id']);
      });
      // Every delivery that passed signature checks, with its outcome: the audit trail and the work queue.
      await db.schema.createTable('deliveries', (t) => {
        t.uuid('id').primary();
        t.string('marketplace', 32).notNullable();
        t.string('kind', 64).notNullable();
        t.string('dedupe_key').notNullable();
        t.string('account_id');
        t.string('external_order_id');
        t.string('order_id');
        t.string('status', 16).notNullable();
        t.string('reason', 64);
        t.text('detail');
        t.jsonb('headers').notNullable();
        t.text('raw_body').notNullable();
        t.string('source_ip', 64);
        t.integer('attempts').notNullable().defaultTo(0);
        t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('claimed_until', { useTz: true });
        t.timestamp('processed_at', { useTz: true });
        t.timestamp('status_changed_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.raw(`alter table deliveries add constraint deliveries_status check (status in ('pending','accepted','duplicate','ignored','rejected','parked'))`);
      await db.raw('create index deliveries_due on deliveries (next_attempt_at) where status = \'pending\'');
      await db.raw('create index deliveries_by_status on deliveries (status, received_at)');
      await db.raw('create index deliveries_by_key on deliveries (marketplace, dedupe_key)');
      await db.raw('create index deliveries_parked_account on deliveries (marketplace, account_id) where status = \'parked\'');

      // Orders as received. The dedupe key is exactly the stored key (lesson 8): unique (marketplace, external id).
      await db.schema.createTable('orders', (t) => {
        t.string('order_id').primary();
        t.string('marketplace', 32).notNullable();
        t.string('external_order_id').notNullable();
        t.string('seller_id').notNullable();
        t.string('account_id').notNullable();
        t.string('state', 32).notNullable();
        t.bigInteger('sale_amount_minor').notNullable();
        t.bigInteger('refunded_amount_minor').notNullable().defaultTo(0);
        t.string('currency', 3).notNullable();
        t.string('payment_reference');
        t.jsonb('received_payload').notNullable();
        t.uuid('first_delivery_id');
        t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.unique(['marketplace', 'external_order_id']);
      });
      await db.raw('create index orders_payment_reference on orders (marketplace, payment_reference)');
      // What ingest said about each order, in order: one row per emitted event.
      await db.schema.createTable('order_events', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().references('order_id').inTable('orders');
        t.uuid('event_id').notNullable().unique();
        t.string('event_type', 64).notNullable();
        t.string('cause').notNullable();
        t.uuid('delivery_id');
        // refunds are deduplicated per marketplace refund id
        t.string('refund_id');
        t.bigInteger('amount_minor');
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.unique(['order_id', 'refund_id']);
      });
    },
  },
  {
    name: '0002_ebay_order_recheck',
    async up(db) {
      // When an eBay order is next re-read for cancellations and refunds (null = not yet scheduled: received_at + min).
      await db.schema.alterTable('orders', (t) => {
        t.timestamp('recheck_at', { useTz: true });
        t.integer('recheck_count').notNullable().defaultTo(0);
      });
      await db.raw(`create index orders_ebay_recheck on orders (received_at) where marketplace = 'EBAY' and state in ('RECEIVED', 'PARTIALLY_REFUNDED')`);
    },
  },
  {
    name: '0002_ingest_privacy_and_flood_proofing',
    async up(db) {
      // Erasure of personal data: when it happened to an order / a delivery (the rows stay: amounts, ids, states).
      await db.schema.alterTable('orders', (t) => {
        t.timestamp('personal_data_erased_at', { useTz: true });
      });
      await db.schema.alterTable('deliveries', (t) => {
        t.timestamp('personal_data_erased_at', { useTz: true });
      });
      await db.raw(`create index orders_erasable on orders (received_at) where personal_data_erased_at is null`);
      await db.raw(`create index orders_ebay_buyer on orders ((received_payload->'buyer'->>'externalId')) where marketplace = 'EBAY'`);
      await db.raw(`create index deliveries_by_order on deliveries (order_id)`);
      await db.raw(`create index deliveries_by_account on deliveries (marketplace, account_id)`);
      await db.raw(`create index deliveries_retention on deliveries (received_at) where status in ('accepted','duplicate','ignored','rejected')`);
      // Every erasure, without the personal data it erased: the subject is a hash.
      await db.schema.createTable('erasures', (t) => {
        t.bigIncrements('id').primary();
        t.string('cause', 32).notNullable(); // EBAY_ACCOUNT_DELETION | ADMIN | RETENTION
        t.string('subject_hash', 64);
        t.string('order_id');
        t.integer('orders_erased').notNullable().defaultTo(0);
        t.integer('deliveries_erased').notNullable().defaultTo(0);
        t.string('requested_by', 128);
        t.string('reason', 500);
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // Notifications answered but not kept (foreign application, unknown account): one counter row per day and reason.
      await db.schema.createTable('dropped_notifications', (t) => {
        t.string('marketplace', 32).notNullable();
        t.string('reason', 64).notNullable();
        t.date('day').notNullable();
        t.bigInteger('count').notNullable().defaultTo(0);
        t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['marketplace', 'reason', 'day']);
      });
      // Storefront capture calls are signed with a per-storefront secret (sealed like the marketplace tokens).
      await db.schema.alterTable('marketplace_accounts', (t) => {
        t.text('secret_sealed');
      });
    },
  },
  {
    name: '0003_ingest_admin_audit',
    async up(db) {
      // Every admin write (and every reveal of personal data): who (from the credential), what, before/after, why, when.
      await createAdminAuditTable(db, { orderColumn: true, indexes: ['order'] });
    },
  },
  {
    name: '0004_ingest_fair_claim_index',
    async up(db) {
      // The fair claim walks the accounts that have pending deliveries (skip scan), then each account's oldest due ones.
      await db.raw(`create index deliveries_pending_by_account on deliveries (marketplace, (coalesce(account_id, '')), next_attempt_at) where status = 'pending'`);
    },
  },
  {
    name: '0005_buyer_email_lookup',
    async up(db) {
      // operators find a buyer's orders by the email the buyer writes to them with (erasure nulls it, and the index entry)
      await db.raw(`create index orders_buyer_email on orders (lower(received_payload->'buyer'->>'email')) where received_payload->'buyer'->>'email' is not null`);
    },
  },
  {
    name: '0006_deliveries_one_per_message',
    async up(db) {
      // A delivery is stored with one INSERT … ON CONFLICT on its message: at most one delivery per (marketplace,
      // dedupe key) holds it; later copies are stored as duplicates, rejected ones do not hold it (a refused capture may
      // be tried again). Copies that raced in before this index become the duplicates they are.
      await db.raw(`
        with ranked as (
          select id, first_value(id) over w as first_id, row_number() over w as n from deliveries
           where status in ('pending', 'accepted', 'ignored', 'parked')
          window w as (partition by marketplace, dedupe_key order by received_at, id))
        update deliveries d set status = 'duplicate', reason = 'SAME_MESSAGE_AS_' || ranked.first_id, claimed_until = null,
               processed_at = coalesce(d.processed_at, now()), status_changed_at = now()
          from ranked where d.id = ranked.id and ranked.n > 1`);
      await db.raw(`create unique index deliveries_one_per_message on deliveries (marketplace, dedupe_key) where status in ('pending', 'accepted', 'ignored', 'parked')`);
      await db.raw('drop index if exists deliveries_by_key');
    },
  },
  {
    name: '0007_deliveries_lease_fence',
    async up(db) {
      // The delivery worker's fencing token: every claim bumps it, every decision is conditional on it, so a worker whose
      // lease ran out (and whose delivery another worker claimed) commits nothing.
      await db.raw('alter table deliveries add column lease_fence bigint not null default 0');
    },
  },
];
