import { randomBytes, randomUUID } from 'node:crypto';
import { Streams } from '@postsale/contracts';
import { createPayPalWebhookVerifier } from '@postsale/paypal';
import { createPoller, createSecretBox, keyEncryptionKey, requireCleanInput, type ServiceDefinition } from '@postsale/runtime';
import { createEbayClient } from './clients/ebay.client';
import { createMercadoLibreClient } from './clients/mercadolibre.client';
import { createPayPalCheckoutClient } from './clients/paypal-checkout.client';
import { configSchema } from './config';
import { AuditRepository } from './db/audit.repository';
import { DeliveriesRepository } from './db/deliveries.repository';
import { ErasureRepository } from './db/erasure.repository';
import { migrations } from './db/migrations';
import { OrdersRepository } from './db/orders.repository';
import { SellersRepository } from './db/sellers.repository';
import { SubjectKeysRepository, subjectKeyMigrations } from './db/subject-keys.repository';
import { integrityReport } from './domain/integrity.use-case';
import { createDeliveryProcessor, DeliveryKinds } from './domain/process-delivery.use-case';
import { createErasure } from './domain/erase-personal-data.use-case';
import { createDeliveryReceiver } from './domain/receive-delivery.use-case';
import { createOrderRecorder } from './domain/record-order.use-case';
import { createSellersUseCase } from './domain/sellers.use-case';
import { adminRoutes } from './http/admin.routes';
import { checkoutRoutes } from './http/checkout.routes';
import { rateLimitPerAddress } from './http/rate-limit';
import { webhookRoutes } from './http/webhooks.routes';

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
    const recorder = createOrderRecorder({ transaction: (fn) => db.transaction(fn), orders, deliveries, outbox, metrics, sealPersonal: (trx, orderId, order) => subjects.seal(trx, orderId, order) });
    const processor = createDeliveryProcessor({ sellers: sellersRepo, deliveries, orders, recorder, secrets, ebay, mercadolibre, paypal, logger, metrics, maxBackoffMs: config.DELIVERY_MAX_BACKOFF_MS });

    // Works the persisted deliveries: MercadoLibre notifications, and anything an inline attempt left pending. Claims a
    // batch fair across accounts; accounts are worked side by side, each account's deliveries in order.
    const poller = createPoller({
      name: 'ingest.deliveries',
      intervalMs: config.DELIVERY_POLL_INTERVAL_MS,
      logger,
      metrics,
      async run() {
        const claimed = await deliveries.claimBatch(60_000, config.DELIVERY_CLAIM_BATCH, config.DELIVERY_CLAIM_PER_ACCOUNT);
        if (claimed.length === 0) return false;
        const byAccount = new Map<string, typeof claimed>();
        for (const d of claimed) {
          const key = `${d.marketplace}:${d.account_id ?? ''}`;
          byAccount.set(key, [...(byAccount.get(key) ?? []), d]);
        }
        await Promise.all([...byAccount.values()].map(async (list) => {
          for (const d of list) await processor.process(d);
        }));
        return true;
      },
    });
    const erasureRepo = new ErasureRepository(db);
    const erasure = createErasure({ repo: erasureRepo, subjects, outbox, logger, metrics });
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
    const nudgePoller = () => poller.nudge();
    // eBay notifies no cancellation or refund: open eBay orders are re-read with backoff for the return window. Each
    // re-read is a persisted delivery of kind ebay.order_recheck, worked (retried, parked) like any other.
    const ebayRecheck = createPoller({
      name: 'ingest.ebay-recheck',
      intervalMs: config.EBAY_RECHECK_POLL_INTERVAL_MS,
      logger,
      metrics,
      async run() {
        const due = await orders.claimEbayRecheck({ windowSeconds: config.EBAY_RECHECK_WINDOW_SECONDS, minMs: config.EBAY_RECHECK_MIN_MS, maxMs: config.EBAY_RECHECK_MAX_MS });
        if (!due) return false;
        const order = (await orders.get(due.order_id))!;
        await deliveries.insertPending({
          id: randomUUID(), marketplace: 'EBAY', kind: DeliveryKinds.ebayOrderRecheck, dedupe_key: `ebay-recheck:${due.order_id}:${due.recheck_count}`,
          account_id: order.account_id, external_order_id: order.external_order_id, order_id: due.order_id, headers: {},
          raw_body: JSON.stringify({ orderId: due.order_id }), source_ip: null,
        }, 0);
        poller.nudge();
        return true;
      },
    });
    const receiver = createDeliveryReceiver({ deliveries, processor, metrics, nudgePoller });
    const sellers = createSellersUseCase({ sellers: sellersRepo, deliveries, secrets, requeueParked: config.REQUEUE_PARKED_ON_REGISTRATION, nudgePoller });

    metrics.gauge('ingest_parked_deliveries', 'Deliveries parked for review or a later event', [], async function () {
      this.set(await deliveries.countByStatus('parked'));
    });
    metrics.gauge('ingest_pending_deliveries', 'Deliveries persisted and not yet decided', [], async function () {
      this.set(await deliveries.countByStatus('pending'));
    });

    return {
      workers: [poller, ebayRecheck, retention],
      routes(app) {
        const limit = rateLimitPerAddress({ perSecond: config.RATE_LIMIT_PER_SECOND, burst: config.RATE_LIMIT_BURST, metrics });
        app.use(['/webhooks', '/checkout'], limit, requireCleanInput());
        webhookRoutes(app, {
          receiver, ebay, paypalVerifier, metrics, erasure, sellers: sellersRepo, deliveries,
          mercadoLibreApplicationId: config.MERCADOLIBRE_APPLICATION_ID,
          ebayVerificationToken: config.EBAY_VERIFICATION_TOKEN, ebayEndpointUrl: config.EBAY_ENDPOINT_URL,
          inlineBudgetMs: config.INLINE_PROCESSING_BUDGET_MS,
        });
        checkoutRoutes(app, { receiver, orders, sellers: sellersRepo, secrets, inlineBudgetMs: config.INLINE_PROCESSING_BUDGET_MS, signatureWindowSeconds: config.STOREFRONT_SIGNATURE_WINDOW_SECONDS });
        adminRoutes(app, {
          adminToken: config.ADMIN_TOKEN, sellers, deliveries, orders, nudgePoller, erasure, erasures: erasureRepo,
          operatorToken: config.OPERATOR_TOKEN, audit: new AuditRepository(db),
          integrity: () => integrityReport(
            { deliveries, sellerOf: async (d) => (d.account_id ? ((await sellersRepo.account(d.marketplace, d.account_id))?.seller_id ?? null) : null) },
            { pendingSeconds: config.PENDING_DELIVERY_DEADLINE_SECONDS, parkedSeconds: config.PARKED_DELIVERY_DEADLINE_SECONDS },
          ),
        });
      },
    };
  },
};
