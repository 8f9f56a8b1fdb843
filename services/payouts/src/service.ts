import { Streams } from '@postsale/contracts';
import { createBatcher, createJobWorker, createPoller, type Poller, type ServiceDefinition } from '@postsale/runtime';
import { createPayPalWebhookVerifier, PAYPAL_CERT_HOSTS } from '@postsale/paypal';
import { PayPalPayoutsClient } from './clients/paypal-payouts.client';
import { configSchema } from './config';
import { PayoutsRepository } from './db/payouts.repository';
import { migrations } from './db/migrations';
import type { PayoutsContext } from './domain/context';
import { reevaluatePlatformIntents } from './domain/payout-admin.use-case';
import { parseReleasePolicy } from './domain/payout-rules';
import { applyWebhookItems, checkBatch, type WebhookItem } from './domain/reconcile.use-case';
import { submitDueBatches } from './domain/submit-batches.use-case';
import { adminRoutes } from './http/admin.routes';
import { paypalWebhookRoutes } from './http/paypal-webhook.routes';
import { fulfillmentConsumer } from './kafka/fulfillment.consumer';
import { salesConsumer } from './kafka/sales.consumer';
import { createPayoutsMetrics } from './metrics';

export const payoutsService: ServiceDefinition<typeof configSchema> = {
  name: 'payouts',
  configSchema,
  migrations,
  produces: [Streams.payouts],
  async build({ config, db, outbox, logger, metrics }) {
    const gateway = config.PAYOUTS_MODE === 'dry-run'
      ? undefined
      : new PayPalPayoutsClient({
        clientId: config.PAYPAL_CLIENT_ID!, clientSecret: config.PAYPAL_CLIENT_SECRET!, baseUrl: config.PAYPAL_BASE_URL,
        webUrl: config.PAYPAL_WEB_URL, timeoutMs: config.PAYPAL_TIMEOUT_MS,
      });
    if (!config.PLATFORM_PAYEE_EMAIL) logger.warn({ mode: config.PAYOUTS_MODE }, 'PLATFORM_PAYEE_EMAIL is not set: platform commission intents are HELD');
    const verifier = config.PAYPAL_WEBHOOK_ID && config.PAYOUTS_MODE !== 'dry-run'
      ? createPayPalWebhookVerifier({
        mode: 'offline',
        environment: config.PAYOUTS_MODE === 'live' ? 'live' : 'sandbox',
        webhookId: config.PAYPAL_WEBHOOK_ID,
        allowedCertHosts: config.PAYPAL_CERT_HOSTS ? config.PAYPAL_CERT_HOSTS.split(',').map((h) => h.trim()).filter(Boolean) : PAYPAL_CERT_HOSTS,
        timeoutMs: config.PAYPAL_TIMEOUT_MS,
      })
      : undefined;
    const store = new PayoutsRepository(db);
    const ctx: PayoutsContext = {
      store, outbox, logger, gateway,
      metrics: createPayoutsMetrics(metrics, db),
      settings: {
        mode: config.PAYOUTS_MODE,
        platformPayeeEmail: config.PLATFORM_PAYEE_EMAIL,
        defaultReleasePolicy: parseReleasePolicy(config.PAYOUTS_DEFAULT_RELEASE_POLICY),
        batchSize: config.PAYOUTS_BATCH_SIZE,
        autoRetryMaxAttempts: config.PAYOUTS_AUTO_RETRY_MAX_ATTEMPTS,
        autoRetryDelayMs: config.PAYOUTS_AUTO_RETRY_DELAY_MS,
        resubmitWindowMs: config.PAYOUTS_RESUBMIT_WINDOW_MS,
        platformPayoutCurrency: config.PLATFORM_PAYOUT_CURRENCY,
        defaultPayoutCurrency: config.DEFAULT_PAYOUT_CURRENCY,
        fxMaxRateAgeDays: config.PAYOUTS_FX_MAX_RATE_AGE_DAYS,
        reconcileIntervalMs: config.PAYOUTS_RECONCILE_INTERVAL_MS,
        // without webhooks nothing else brings a batch's outcomes: checked at once
        firstCheckInMs: verifier ? config.PAYOUTS_WEBHOOK_GRACE_MS : 0,
      },
      nudge: {
        batcher: () => batcher.nudge(),
        intentsDue: (count) => linger.intentsDue(count),
        reconciler: () => reconciler.nudge(),
        reconcilerAt: (at) => reconciler.nudgeAt(at),
      },
    };
    await reevaluatePlatformIntents(ctx);

    // The batcher stays a poller: one run builds ONE batch from many due intents, claimed (row locks) and moved to
    // SUBMITTED in a single transaction that commits before PayPal is called — not a job per row. Its interval is the
    // fallback (timed releases, other replicas' commits); nudges start runs for work just made due.
    const batcher = createPoller({ name: 'payouts.batcher', intervalMs: config.PAYOUTS_BATCH_INTERVAL_MS, run: () => submitDueBatches(ctx), logger, metrics });
    // Accepted batches are jobs: leased with a fencing token (two replicas never read the same batch at once), checked
    // concurrently, each re-checked PAYOUTS_RECONCILE_INTERVAL_MS after its last check until every item is final.
    const reconciler = createJobWorker({
      name: 'payouts.reconciler',
      store: { claim: (limit, leaseMs) => store.claimBatchesToCheck(limit, leaseMs) },
      run: (job) => checkBatch(ctx, job),
      concurrency: 4,
      // a check makes one PayPal call per cancellation and per page of 1,000 items, each bounded by PAYPAL_TIMEOUT_MS
      leaseMs: Math.max(60_000, 4 * config.PAYPAL_TIMEOUT_MS),
      idleMs: config.PAYOUTS_RECONCILE_INTERVAL_MS,
      logger, metrics,
      describe: (job) => ({ batchId: job.batchId }),
    });
    const linger = lingeringNudge(batcher, config.PAYOUTS_BATCH_SIZE, config.PAYOUT_BATCH_LINGER_MS);

    // PayPal sends a batch's item webhooks at once: those arriving together are applied as one set (one read, one
    // transaction); a set that fails is applied again one webhook at a time, so one bad webhook fails only its request
    const webhookItems = createBatcher<WebhookItem, boolean>({
      name: 'payouts.webhooks', maxBatch: config.PAYPAL_WEBHOOK_BATCH_MAX, maxInFlight: 2, lingerMs: config.PAYPAL_WEBHOOK_BATCH_LINGER_MS,
      run: (items) => applyWebhookItems(ctx, items),
      runOne: async (item) => (await applyWebhookItems(ctx, [item]))[0]!,
      logger, metrics,
    });

    return {
      consumers: [salesConsumer(ctx), fulfillmentConsumer(ctx)],
      workers: [batcher, reconciler],
      routes(app) {
        paypalWebhookRoutes(app, ctx, verifier, (item) => webhookItems.submit(item));
        adminRoutes(app, ctx, {
          adminToken: config.ADMIN_TOKEN,
          operatorToken: config.OPERATOR_TOKEN,
          deadlines: {
            dueSeconds: config.PAYOUTS_DUE_DEADLINE_SECONDS,
            submittedSeconds: config.PAYOUTS_SUBMITTED_DEADLINE_SECONDS,
            heldSeconds: config.PAYOUTS_HELD_DEADLINE_SECONDS,
          },
        });
      },
    };
  },
};

/**
 * Intents that became due start a batching run once a batch is full, or at most `lingerMs` after the first of them:
 * orders arriving close together go out in one batch, and none waits for the batching interval.
 */
function lingeringNudge(batcher: Poller, batchSize: number, lingerMs: number): { intentsDue(count: number): void } {
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  const run = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pending = 0;
    batcher.nudge();
  };
  return {
    intentsDue(count) {
      pending += count;
      if (pending >= batchSize) run();
      else if (!timer) {
        timer = setTimeout(run, lingerMs);
        timer.unref();
      }
    },
  };
}
