import { randomBytes } from 'node:crypto';
import { Streams } from '@postsale/contracts';
import { createPayPalWebhookVerifier } from '@postsale/paypal';
import { AdminAuditTrail, createJobWorker, createPoller, createSecretBox, createServiceDb, instrumentDb, keyEncryptionKey, requireCleanInput, retryDelayMs, type ServiceDefinition } from '@postsale/runtime';
import { createEbayClient } from './clients/ebay.client';
import { createMercadoLibreClient } from './clients/mercadolibre.client';
import { createPayPalCheckoutClient } from './clients/paypal-checkout.client';
import { configSchema } from './config';
import { createAckStore } from './db/ack-store';
import { DeliveriesRepository } from './db/deliveries.repository';
import { ErasureRepository } from './db/erasure.repository';
import { migrations } from './db/migrations';
import { OrdersRepository } from './db/orders.repository';
import { SellersRepository } from './db/sellers.repository';
import { SubjectKeysRepository, subjectKeyMigrations } from './db/subject-keys.repository';
import { createAdmin } from './domain/admin.use-case';
import { createCheckout } from './domain/checkout.use-case';
import { createEbayRecheck } from './domain/ebay-recheck.use-case';
import { integrityReport } from './domain/integrity.use-case';
import { createDeliveryProcessor } from './domain/process-delivery.use-case';
import { createErasure } from './domain/erase-personal-data.use-case';
import { createDeliveryReceiver } from './domain/receive-delivery.use-case';
import { createOrderRecorder } from './domain/record-order.use-case';
import { createSellersUseCase } from './domain/sellers.use-case';
import { createDeliveryJobs } from './domain/work-deliveries.use-case';
import { adminRoutes } from './http/admin.routes';
import { checkoutRoutes } from './http/checkout.routes';
import { rateLimitPerAddress } from './http/rate-limit';
import { webhookRoutes } from './http/webhooks.routes';
import { createIngestMetrics } from './metrics';

/** how long a delivery worker holds a delivery it claimed (or took as it was stored) before another may claim it */
const DELIVERY_LEASE_MS = 60_000;

export const ingestService: ServiceDefinition<typeof configSchema> = {
  name: 'ingest',
  configSchema,
  migrations: [...migrations, ...subjectKeyMigrations],
  produces: [Streams.orders],
  build({ config, db, outbox, logger, metrics }) {
    let credentialsKey = config.CREDENTIALS_KEY;
    if (!credentialsKey) {
      // Development only (config refuses this elsewhere): tokens sealed with it are unreadable after a restart.
      logger.warn('CREDENTIALS_KEY not set: using an ephemeral key (development only)');
      credentialsKey = randomBytes(32).toString('base64');
    }
    const secrets = createSecretBox({ key: credentialsKey, keyId: config.CREDENTIALS_KEY_ID, previousKeys: config.CREDENTIALS_PREVIOUS_KEYS });
    const sellersRepo = new SellersRepository(db);
    const deliveries = new DeliveriesRepository(db);
    const orders = new OrdersRepository(db);

    const ebay = createEbayClient({ baseUrl: config.EBAY_API_BASE_URL, clientId: config.EBAY_CLIENT_ID, clientSecret: config.EBAY_CLIENT_SECRET, keyTtlSeconds: config.EBAY_PUBLIC_KEY_TTL_SECONDS,
      unknownKidTtlSeconds: config.EBAY_UNKNOWN_KID_TTL_SECONDS, keyLookupsPerMinute: config.EBAY_KEY_LOOKUPS_PER_MINUTE });
    const mercadolibre = createMercadoLibreClient({ baseUrl: config.MERCADOLIBRE_API_BASE_URL });
    const paypal = createPayPalCheckoutClient({ baseUrl: config.PAYPAL_BASE_URL, clientId: config.PAYPAL_CLIENT_ID, clientSecret: config.PAYPAL_CLIENT_SECRET });
    const paypalVerifier = config.PAYPAL_WEBHOOK_ID
      ? createPayPalWebhookVerifier({ mode: config.PAYPAL_WEBHOOK_VERIFICATION, webhookId: config.PAYPAL_WEBHOOK_ID, baseUrl: config.PAYPAL_BASE_URL, tokenClient: paypal.tokens, allowedCertHosts: config.PAYPAL_CERT_HOSTS,
        environment: config.PAYPAL_ENVIRONMENT, maxTransmissionSkewSeconds: config.PAYPAL_WEBHOOK_MAX_SKEW_SECONDS })
      : undefined;

    const subjects = new SubjectKeysRepository(db, keyEncryptionKey(config), outbox);
    const ingestMetrics = createIngestMetrics(metrics);
    const recorder = createOrderRecorder({ transaction: (fn) => db.transaction(fn), orders, deliveries, outbox, metrics: ingestMetrics,
      receiveOrder: (trx, row) => subjects.sealIfNew(trx, row.orderId, row.payload, orders.insertIfNewQuery(trx, row)) });
    const processor = createDeliveryProcessor({
      sellers: sellersRepo, deliveries, orders, recorder, secrets, ebay, mercadolibre, paypal, logger, metrics: ingestMetrics,
      retryDelayMs: (attempts) => retryDelayMs(attempts + 1, 500, config.DELIVERY_MAX_BACKOFF_MS),
    });

    // Works the persisted deliveries (eBay and MercadoLibre notifications, anything an inline attempt left pending) with
    // the runtime's job worker: a continuous pool, each slot one account's due deliveries, claimed with a lease and fence.
    const jobs = createDeliveryJobs({ deliveries, processor, batch: config.DELIVERY_CLAIM_BATCH, perAccount: config.DELIVERY_CLAIM_PER_ACCOUNT });
    const deliveryWorker = createJobWorker({
      name: 'ingest.deliveries', store: jobs.store, run: (job) => jobs.run(job), concurrency: jobs.concurrency,
      leaseMs: DELIVERY_LEASE_MS, idleMs: config.DELIVERY_POLL_INTERVAL_MS, logger, metrics,
      describe: (job) => ({ deliveryIds: job.deliveries.map((d) => d.id) }),
    });
    const nudgeWorker = () => deliveryWorker.nudge();
    const erasureRepo = new ErasureRepository(db);
    const erasure = createErasure({ repo: erasureRepo, subjects, outbox, logger, metrics: ingestMetrics });
    const retention = createPoller({
      name: 'ingest.retention',
      intervalMs: config.RETENTION_INTERVAL_MS,
      logger,
      metrics,
      async run() {
        const done = await erasure.applyRetention({ days: config.PERSONAL_DATA_RETENTION_DAYS, deliveryDays: config.DELIVERY_RETENTION_DAYS, batch: 500 });
        return done.orders === 500;
      },
    });
    // eBay notifies no cancellation or refund: open eBay orders are re-read with backoff for the return window. Each
    // re-read is a persisted delivery of kind ebay.order_recheck, worked (retried, parked) like any other.
    const recheck = createEbayRecheck({ orders, deliveries, nudgeWorker, schedule: { windowSeconds: config.EBAY_RECHECK_WINDOW_SECONDS, minMs: config.EBAY_RECHECK_MIN_MS, maxMs: config.EBAY_RECHECK_MAX_MS } });
    const ebayRecheck = createPoller({ name: 'ingest.ebay-recheck', intervalMs: config.EBAY_RECHECK_POLL_INTERVAL_MS, logger, metrics, run: () => recheck.scheduleNext() });
    // Webhooks are stored through a pool of their own: the worker's and inline processing's transactions can fill the
    // main pool, and an ack (one statement) must not queue behind them.
    const ackDb = createServiceDb(config, { poolMax: config.ACK_DB_POOL_MAX, logger, purpose: 'acks' });
    instrumentDb(ackDb, metrics, { poolMetrics: false });
    // ... and group-committed: webhooks arriving together share one statement (at most one per ack connection at a time)
    const acks = createAckStore(new DeliveriesRepository(ackDb), { maxBatch: config.ACK_BATCH_MAX, maxInFlight: config.ACK_DB_POOL_MAX, lingerMs: config.ACK_BATCH_LINGER_MS, logger, metrics });
    const receiver = createDeliveryReceiver({ deliveries: acks, processor, metrics: ingestMetrics, nudgeWorker,
      handOver: (delivery) => jobs.handOver(deliveryWorker, delivery, DELIVERY_LEASE_MS) });
    const sellers = createSellersUseCase({ sellers: sellersRepo, deliveries, secrets, requeueParked: config.REQUEUE_PARKED_ON_REGISTRATION, nudgePoller: nudgeWorker });
    const checkout = createCheckout({ sellers: sellersRepo, secrets, receiver, inlineBudgetMs: config.INLINE_PROCESSING_BUDGET_MS });
    const admin = createAdmin({ sellers, deliveries, orders, erasure, erasures: erasureRepo, audit: new AdminAuditTrail(db), nudgeWorker });
    ingestMetrics.watchDeliveries((status) => deliveries.countByStatus(status));

    return {
      workers: [deliveryWorker, ebayRecheck, retention],
      onStop: () => ackDb.destroy(),
      routes(app) {
        const limit = rateLimitPerAddress({
          perSecond: config.RATE_LIMIT_PER_SECOND, burst: config.RATE_LIMIT_BURST, metrics: ingestMetrics,
          // as express routes it: any case, an optional trailing slash
          unproven: (req) => /^\/webhooks\/mercadolibre\/?$/i.test(req.baseUrl + req.path),
        });
        app.use(['/webhooks', '/checkout'], limit, requireCleanInput());
        webhookRoutes(app, {
          receiver, ebay, paypalVerifier, metrics: ingestMetrics, erasure,
          mercadoLibreApplicationId: config.MERCADOLIBRE_APPLICATION_ID,
          ebayVerificationToken: config.EBAY_VERIFICATION_TOKEN, ebayEndpointUrl: config.EBAY_ENDPOINT_URL,
          inlineBudgetMs: config.INLINE_PROCESSING_BUDGET_MS,
        });
        checkoutRoutes(app, { checkout, signatureWindowSeconds: config.STOREFRONT_SIGNATURE_WINDOW_SECONDS });
        adminRoutes(app, {
          adminToken: config.ADMIN_TOKEN, operatorToken: config.OPERATOR_TOKEN, admin,
          integrity: () => integrityReport({ deliveries, sellers: sellersRepo }, { pendingSeconds: config.PENDING_DELIVERY_DEADLINE_SECONDS, parkedSeconds: config.PARKED_DELIVERY_DEADLINE_SECONDS }),
        });
      },
    };
  },
};
