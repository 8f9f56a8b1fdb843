import { createAdminAuditTable, type Migration } from '@postsale/runtime';

/** fulfillment's own tables, in its own schema. Append new migrations; never edit one that has shipped. */
export const migrations: Migration[] = [
  {
    name: '0001_fulfillment',
    async up(db) {
      // One row per order: the state machine. Every change goes through a conditional UPDATE … WHERE state IN (…).
      await db.schema.createTable('fulfillments', (t) => {
        t.string('order_id').primary();
        t.string('seller_id').notNullable();
        t.string('marketplace', 32);
        t.string('external_order_id');
        t.string('marketplace_account_id');
        t.string('state', 32).notNullable();
        t.timestamp('state_since', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.string('reason_code', 64);
        t.jsonb('reason_details');
        t.jsonb('lines');
        t.jsonb('ship_to'); // personal data: never logged; needed to place the supplier order
        t.string('ship_to_issue');
        t.bigInteger('sale_amount_minor');
        t.string('sale_currency', 3);
        t.string('out_order_id', 64).unique();
        t.string('channel', 16);
        t.string('supplier_order_id');
        t.bigInteger('supplier_cost_minor');
        t.string('supplier_cost_currency', 3);
        t.bigInteger('approved_max_minor');
        t.string('approved_max_currency', 3);
        t.string('approved_by');
        t.integer('purchase_attempts').notNullable().defaultTo(0);
        t.integer('status_checks').notNullable().defaultTo(0);
        t.timestamp('next_run_at', { useTz: true });
        t.string('carrier');
        t.string('tracking_number');
        t.boolean('cancel_requested').notNullable().defaultTo(false);
        t.timestamp('received_at', { useTz: true });
        t.timestamp('purchased_at', { useTz: true });
        t.timestamp('shipped_at', { useTz: true });
        t.timestamp('delivered_at', { useTz: true });
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.raw('create index fulfillments_due on fulfillments (state, next_run_at)');
      await db.schema.createTable('transitions', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().index();
        t.string('from_state', 32);
        t.string('to_state', 32).notNullable();
        t.string('cause', 64).notNullable();
        t.jsonb('details');
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // One row per supplier call that could buy: written (PENDING) and committed BEFORE the call, completed after.
      await db.schema.createTable('purchase_attempts', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().index();
        t.integer('attempt_no').notNullable();
        t.string('kind', 16).notNullable(); // CREATE | RESOLVE
        t.string('channel', 16).notNullable(); // API | BROWSER
        t.string('out_order_id', 64).notNullable();
        t.string('outcome', 16).notNullable().defaultTo('PENDING'); // PENDING | CREATED | REJECTED | UNKNOWN | NOT_PLACED | PLACED (REPEATED_ORDER_ERROR: placed, id unknown)
        t.string('supplier_order_id');
        t.string('supplier_code');
        t.text('message');
        t.jsonb('response');
        t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('finished_at', { useTz: true });
        t.unique(['order_id', 'attempt_no']);
      });
      // Every other supplier answer worth showing an operator (price checks, status, tracking).
      await db.schema.createTable('supplier_responses', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().index();
        t.string('method', 64).notNullable();
        t.string('outcome', 32).notNullable();
        t.jsonb('summary');
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      // Outbox-driven marketplace step: written in the same transaction as the SHIPPED transition.
      await db.schema.createTable('tracking_pushes', (t) => {
        t.bigIncrements('id').primary();
        t.string('order_id').notNullable().unique();
        t.string('seller_id').notNullable();
        t.string('marketplace', 32).notNullable();
        t.string('status', 16).notNullable().defaultTo('PENDING'); // PENDING | DONE | FAILED | SKIPPED
        t.integer('attempts').notNullable().defaultTo(0);
        t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.text('last_error');
        t.jsonb('result');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.timestamp('done_at', { useTz: true });
      });
      await db.schema.createTable('seller_policies', (t) => {
        t.string('seller_id').primary();
        t.integer('min_margin_bps');
        t.bigInteger('max_cost_minor');
        t.string('max_cost_currency', 3);
        t.string('purchase_channel', 16).notNullable().defaultTo('API'); // API | BROWSER
        t.jsonb('fx_rates').notNullable().defaultTo('{}'); // {"USD:CLP": "950.5"}: units of CLP per USD
        t.float('rate_per_second'); // not money
        t.integer('daily_quota');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.schema.createTable('product_mappings', (t) => {
        t.string('seller_id').notNullable();
        t.string('listing_id').notNullable();
        t.string('sku').notNullable().defaultTo(''); // '' = any SKU of the listing
        t.string('product_id').notNullable();
        t.string('sku_attr').notNullable().defaultTo('');
        t.string('logistics_service_name');
        t.string('purchase_channel', 16); // overrides the seller's policy for this product
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['seller_id', 'listing_id', 'sku']);
      });
      await db.schema.createTable('supplier_credentials', (t) => {
        t.string('seller_id').primary();
        t.string('app_key');
        t.text('app_secret_sealed');
        t.text('access_token_sealed');
        t.text('web_email_sealed');
        t.text('web_password_sealed');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      });
      await db.schema.createTable('marketplace_tokens', (t) => {
        t.string('seller_id').notNullable();
        t.string('marketplace', 32).notNullable();
        t.text('access_token_sealed').notNullable();
        t.integer('ml_service_id'); // MercadoLibre me1 carrier service id
        t.string('ebay_carrier_code');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
        t.primary(['seller_id', 'marketplace']);
      });
      // Daily supplier call quota per seller, counted atomically before each call (Beijing day, as AliExpress counts).
      await db.schema.createTable('supplier_call_quota', (t) => {
        t.string('seller_id').notNullable();
        t.date('day').notNullable();
        t.integer('calls').notNullable().defaultTo(0);
        t.primary(['seller_id', 'day']);
      });
    },
  },
  {
    name: '0002_fees_for_the_price_guard',
    async up(db) {
      // The price guard's margin is after marketplace and payment fees (the order's own, from OrderReceived).
      await db.schema.alterTable('fulfillments', (t) => {
        t.bigInteger('marketplace_fee_minor');
        t.specificType('marketplace_fee_currency', 'char(3)');
        t.bigInteger('payment_fee_minor');
        t.specificType('payment_fee_currency', 'char(3)');
      });
    },
  },
  {
    name: '0003_lease_fencing_token',
    async up(db) {
      // Two replicas: a claim increments lease_version (the fencing token); every commit of a worker's result checks it,
      // so a worker whose lease expired (and whose order another worker has claimed since) cannot commit an outcome.
      await db.schema.alterTable('fulfillments', (t) => {
        t.bigInteger('lease_version').notNullable().defaultTo(0);
      });
    },
  },
  {
    name: '0004_supplier_order_lookup',
    async up(db) {
      // operators look orders up by the AliExpress order number the seller sees in their supplier account
      await db.raw('create index fulfillments_supplier_order on fulfillments (supplier_order_id) where supplier_order_id is not null');
    },
  },
  {
    // The tracking-push worker's claim (PENDING and due, by next_attempt_at) read the whole table, which keeps one row
    // per shipped order: found through this index, its cost no longer grows with history (bench: hot query plans).
    name: '0005_speed_tracking_pushes_due',
    async up(db) {
      await db.raw(`create index if not exists tracking_pushes_due on tracking_pushes (next_attempt_at) where status = 'PENDING'`);
    },
  },
  {
    name: '0006_fulfillment_admin_audit',
    async up(db) {
      // Every admin write that is not already a transition with its cause (e.g. an operator's cancel): who (from the
      // credential), what, before/after, why, when. Same shape as ingest's and payouts' admin_audit.
      await createAdminAuditTable(db, { orderColumn: true, indexes: ['order'] });
    },
  },
  {
    name: '0007_tracking_push_fencing_token',
    async up(db) {
      // Tracking pushes are claimed with a lease like orders: a claim increments lease_version and the outcome commits
      // only with the claim's token, so a replica whose lease expired cannot record a push outcome over the new holder's.
      await db.schema.alterTable('tracking_pushes', (t) => {
        t.bigInteger('lease_version').notNullable().defaultTo(0);
      });
    },
  },
  {
    // The unique (order_id, attempt_no) index already serves every lookup by order; this one only cost an entry per
    // purchase attempt.
    name: '0008_drop_purchase_attempts_order_id_index',
    transaction: false, // concurrently: the drop waits for the transactions using the index and holds none of the writes
    async up(db) {
      await db.raw('drop index concurrently if exists purchase_attempts_order_id_index');
    },
  },
];
