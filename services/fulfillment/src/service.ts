import { Streams } from '@postsale/contracts';
import { createPoller, createSecretBox, type ServiceDefinition } from '@postsale/runtime';
import { AliExpressDsClient, SupplierCallError } from './clients/aliexpress-ds.client';
import { CheckoutBrowser } from './clients/checkout-browser';
import { SellerRateLimiter } from './clients/seller-rate-limiter';
import { configSchema } from './config';
import { AuditRepository } from './db/audit.repository';
import { FulfillmentRepository } from './db/fulfillment.repository';
import { migrations } from './db/migrations';
import { CachedSellerSettings } from './db/seller-settings.cache';
import { runFollowUp } from './domain/follow-up.use-case';
import type { FulfillmentDeps } from './domain/ports';
import { runPurchase } from './domain/purchase.use-case';
import { States } from './domain/states';
import { runTrackingPush } from './domain/tracking-push.use-case';
import { adminRoutes } from './http/admin.routes';
import { ordersConsumer } from './kafka/orders.consumer';
import { createFulfillmentMetrics } from './metrics';

export const fulfillmentService: ServiceDefinition<typeof configSchema> = {
  name: 'fulfillment',
  configSchema,
  migrations,
  produces: [Streams.fulfillment],
  build({ config, db, logger, metrics, outbox }) {
    const box = createSecretBox({ key: config.CREDENTIALS_KEY, keyId: config.CREDENTIALS_KEY_ID, previousKeys: config.CREDENTIALS_PREVIOUS_KEYS });
    const repo = new FulfillmentRepository(db);
    const sellers = new CachedSellerSettings(db, box, { ttlMs: config.SELLER_SETTINGS_CACHE_TTL_MS, quotaBlock: config.SUPPLIER_QUOTA_BLOCK });
    const m = createFulfillmentMetrics(metrics, repo);
    const limiter = new SellerRateLimiter();
    logger.info({ supplierMode: config.SUPPLIER_MODE }, 'supplier mode');

    const deps: FulfillmentDeps = {
      repo,
      sellers,
      outbox,
      logger,
      metrics: m,
      browser: new CheckoutBrowser({ chromiumPath: config.CHROMIUM_PATH, webUrl: config.ALIEXPRESS_WEB_URL, timeoutMs: config.BROWSER_TIMEOUT_MS }),
      // A fresh client per seller and job, from that seller's own credentials (lesson 21).
      async supplierFor(sellerId) {
        const secrets = await sellers.supplierSecrets(sellerId);
        if (!secrets.api) return undefined;
        const policy = await sellers.policy(sellerId);
        return new AliExpressDsClient({
          gatewayUrl: config.ALIEXPRESS_GATEWAY_URL,
          credentials: secrets.api,
          timeoutMs: config.SUPPLIER_TIMEOUT_MS,
          beforeCall: async () => {
            if (!(await sellers.takeDailyQuota(sellerId, policy?.dailyQuota ?? config.DEFAULT_SUPPLIER_DAILY_QUOTA))) {
              throw new SupplierCallError('RETRIABLE', 'DAILY_QUOTA_EXHAUSTED', 'the seller\'s daily supplier call quota is used up');
            }
            await limiter.take(sellerId, policy?.ratePerSecond ?? config.DEFAULT_SUPPLIER_RATE_PER_SECOND);
          },
          observe: (method, outcome, seconds) => m.supplierCalls.observe({ method, outcome }, seconds),
        });
      },
      settings: {
        defaultMinMarginBps: config.DEFAULT_MIN_MARGIN_BPS,
        purchaseMaxAttempts: config.PURCHASE_MAX_ATTEMPTS,
        purchaseRetryBaseMs: config.PURCHASE_RETRY_BASE_MS,
        purchaseRetryMaxMs: config.PURCHASE_RETRY_MAX_MS,
        outOrderIdWindowMs: config.OUT_ORDER_ID_WINDOW_MS,
        statusPollMinMs: config.STATUS_POLL_MIN_MS,
        statusPollMaxMs: config.STATUS_POLL_MAX_MS,
        pushMaxAttempts: config.PUSH_MAX_ATTEMPTS,
        pushRetryBaseMs: config.PUSH_RETRY_BASE_MS,
        leaseMs: config.JOB_LEASE_MS,
      },
    };

    // Each worker processes a few claimed orders per run, one at a time per order; claims are leased (SKIP LOCKED).
    const purchaser = createPoller({
      name: 'purchase',
      intervalMs: config.WORKER_INTERVAL_MS,
      logger,
      metrics,
      run: async () => {
        // Orders are independent (each has its own lease and out_order_id), so a claimed batch runs concurrently;
        // per-seller rate limits and quotas still apply inside runPurchase.
        const due = await repo.claimDue([States.RECEIVED, States.PURCHASING], config.PURCHASE_BATCH_SIZE, config.JOB_LEASE_MS);
        await Promise.all(
          due.map((f) =>
            runPurchase(deps, f).catch((error) => {
              m.workerFailures.inc({ step: 'purchase', code: 'UNEXPECTED' });
              logger.error({ err: error, orderId: f.orderId }, 'purchase step failed; the lease expires and it is retried');
            }),
          ),
        );
        return due.length > 0;
      },
    });
    const follower = createPoller({
      name: 'supplier-follow-up',
      intervalMs: config.WORKER_INTERVAL_MS,
      logger,
      metrics,
      run: async () => {
        const due = await repo.claimDue([States.AWAITING_PAYMENT, States.PURCHASED, States.SHIPPED], 20, config.JOB_LEASE_MS);
        await Promise.all(
          due.map((f) =>
            runFollowUp(deps, f).catch((error) => {
              m.workerFailures.inc({ step: 'follow_up', code: 'UNEXPECTED' });
              logger.error({ err: error, orderId: f.orderId }, 'follow-up step failed; the lease expires and it is retried');
            }),
          ),
        );
        return due.length > 0;
      },
    });
    const pusher = createPoller({
      name: 'tracking-push',
      intervalMs: config.WORKER_INTERVAL_MS,
      logger,
      metrics,
      run: async () => {
        const due = await repo.claimDuePushes(10, config.JOB_LEASE_MS);
        const urls = { ebayBaseUrl: config.EBAY_API_BASE_URL, mercadoLibreBaseUrl: config.MERCADOLIBRE_API_BASE_URL, timeoutMs: config.SUPPLIER_TIMEOUT_MS };
        for (const push of due) await runTrackingPush(deps, urls, push);
        return due.length > 0;
      },
    });
    const wake = () => {
      purchaser.nudge();
      follower.nudge();
    };

    return {
      consumers: [ordersConsumer(deps, wake)],
      workers: [purchaser, follower, pusher],
      routes: adminRoutes(deps, {
        adminToken: config.ADMIN_TOKEN,
        operatorToken: config.OPERATOR_TOKEN,
        wake,
        audit: new AuditRepository(db),
        deadlines: {
          RECEIVED: config.DEADLINE_RECEIVED_S,
          PURCHASING: config.DEADLINE_PURCHASING_S,
          AWAITING_PAYMENT: config.DEADLINE_AWAITING_PAYMENT_S,
          PURCHASED: config.DEADLINE_PURCHASED_S,
          SHIPPED: config.DEADLINE_SHIPPED_S,
          trackingPush: config.DEADLINE_TRACKING_PUSH_S,
        },
      }),
    };
  },
};
