import { Streams } from '@postsale/contracts';
import { AdminAuditTrail, claimOnCommit, createJobWorker, createSecretBox, type JobWorker, keyEncryptionKey, SubjectKeyReplica, subjectKeysMigration, type JobStore, type ServiceDefinition } from '@postsale/runtime';
import { AliExpressDsClient, SupplierCallError } from './clients/aliexpress-ds.client';
import { CheckoutBrowser } from './clients/checkout-browser';
import { MarketplaceTrackingClients } from './clients/marketplace-tracking.client';
import { SellerRateLimiter } from './clients/seller-rate-limiter';
import { configSchema } from './config';
import { FulfillmentRepository } from './db/fulfillment.repository';
import { migrations } from './db/migrations';
import { CachedSellerSettings } from './db/seller-settings.cache';
import { runFollowUp } from './domain/follow-up.use-case';
import type { Fulfillment, FulfillmentDeps, TrackingPush } from './domain/ports';
import { runPurchase } from './domain/purchase.use-case';
import { States, type State } from './domain/states';
import { runTrackingPush } from './domain/tracking-push.use-case';
import { adminRoutes } from './http/admin.routes';
import { ordersConsumer } from './kafka/orders.consumer';
import { createFulfillmentMetrics } from './metrics';

/** A claimed order: the job workers' unit of work, with its lease's fencing token. */
interface OrderJob {
  fence: number;
  order: Fulfillment;
}

export const fulfillmentService: ServiceDefinition<typeof configSchema> = {
  name: 'fulfillment',
  configSchema,
  migrations: [...migrations, subjectKeysMigration],
  produces: [Streams.fulfillment],
  build({ config, db, logger, metrics, outbox, kafka, codec }) {
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
        trackingPollMinMs: config.TRACKING_POLL_MIN_MS,
        trackingPollMaxMs: config.TRACKING_POLL_MAX_MS,
        pushMaxAttempts: config.PUSH_MAX_ATTEMPTS,
        pushRetryBaseMs: config.PUSH_RETRY_BASE_MS,
        leaseMs: config.JOB_LEASE_MS,
      },
      pushQueued: () => pusher.nudge(),
      followUpDue: (at) => follower.nudgeAt(at),
      purchaseOnCommit(trx) {
        const slot = claimOnCommit(purchaser, trx);
        return slot && ((order) => slot.claimed({ fence: order.leaseVersion, order }));
      },
    };

    // Three job workers on the runtime's one mechanism: due rows claimed with a lease and a fencing token (SKIP LOCKED,
    // so replicas split the work), run as a continuous pool. Orders are independent (each has its own lease and
    // out_order_id); per-seller rate limits and quotas still apply inside each supplier call.
    const orderJobs = (states: State[], renew: boolean): JobStore<OrderJob> => ({
      claim: async (limit, leaseMs) => (await repo.claimDue(states, limit, leaseMs)).map((order) => ({ fence: order.leaseVersion, order })),
      // a purchase can outlast its lease (a browser checkout): renewed while it runs
      ...(renew ? { renew: (job: OrderJob, leaseMs: number) => repo.renewLease(job.order.orderId, job.fence, leaseMs) } : {}),
    });
    const common = { leaseMs: config.JOB_LEASE_MS, idleMs: config.WORKER_INTERVAL_MS, logger, metrics };
    const purchaser = createJobWorker<OrderJob>({
      ...common,
      name: 'purchase',
      concurrency: config.PURCHASE_CONCURRENCY ?? config.PURCHASE_BATCH_SIZE ?? 10,
      store: orderJobs([States.RECEIVED, States.PURCHASING], true),
      run: ({ order }, { lease }) => runPurchase(deps, order, lease),
      describe: ({ order }) => ({ orderId: order.orderId }),
    });
    // woken by the checks it schedules itself; its own look is every FOLLOW_UP_IDLE_MS (an empty claim, and a commit,
    // every WORKER_INTERVAL_MS was 0.5 per order at 10/s in the benchmark)
    const follower: JobWorker = createJobWorker<OrderJob>({
      ...common,
      idleMs: config.FOLLOW_UP_IDLE_MS,
      name: 'supplier-follow-up',
      concurrency: config.FOLLOW_UP_CONCURRENCY,
      store: orderJobs([States.AWAITING_PAYMENT, States.PURCHASED, States.SHIPPED], false),
      run: ({ order }) => runFollowUp(deps, order),
      describe: ({ order }) => ({ orderId: order.orderId }),
    });
    const marketplaces = new MarketplaceTrackingClients({ ebayBaseUrl: config.EBAY_API_BASE_URL, mercadoLibreBaseUrl: config.MERCADOLIBRE_API_BASE_URL, timeoutMs: config.SUPPLIER_TIMEOUT_MS });
    // Woken when this process queues a push and when a retry it recorded falls due; its own look for due pushes is
    // rare (TRACKING_PUSH_IDLE_MS): at WORKER_INTERVAL_MS it was an empty claim, and a commit, five times a second.
    const pusher: JobWorker = createJobWorker<TrackingPush>({
      ...common,
      idleMs: config.TRACKING_PUSH_IDLE_MS,
      name: 'tracking-push',
      concurrency: config.TRACKING_PUSH_CONCURRENCY,
      store: { claim: (limit, leaseMs) => repo.claimDuePushes(limit, leaseMs) },
      run: async (push) => {
        const retryAt = await runTrackingPush(deps, marketplaces, push);
        if (retryAt) pusher.nudgeAt(retryAt);
      },
      describe: (push) => ({ orderId: push.orderId }),
    });
    const wake = () => {
      purchaser.nudge();
      follower.nudge();
    };

    // our copy of the buyers' data keys, from the compacted subject-keys topic (crypto-shredding)
    const subjectKeys = new SubjectKeyReplica({
      kafka, db, codec, logger, metrics, namespace: config.TOPIC_NAMESPACE, group: 'fulfillment.subject-keys', holdMs: config.SUBJECT_KEY_HOLD_MS,
    });

    return {
      // a recorded order is the purchase worker's: orders events never make the follow-up worker's work due (the
      // purchase worker does an accepted order's first payment check itself), so it is not woken for each of them
      consumers: [ordersConsumer(deps, () => purchaser.nudge(), keyEncryptionKey(config), subjectKeys.held)],
      workers: [purchaser, follower, pusher, subjectKeys],
      routes: adminRoutes(deps, {
        adminToken: config.ADMIN_TOKEN,
        operatorToken: config.OPERATOR_TOKEN,
        wake,
        audit: new AdminAuditTrail(db),
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
