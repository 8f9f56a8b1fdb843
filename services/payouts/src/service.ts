import { Streams } from '@postsale/contracts';
import { createPoller, type ServiceDefinition } from '@postsale/runtime';
import { createPayPalWebhookVerifier, PAYPAL_CERT_HOSTS } from '@postsale/paypal';
import { PayPalPayoutsClient } from './clients/paypal-payouts.client';
import { configSchema } from './config';
import { PayoutsRepository } from './db/payouts.repository';
import { migrations } from './db/migrations';
import type { PayoutsContext } from './domain/context';
import { reevaluatePlatformIntents } from './domain/intents.use-case';
import { parseReleasePolicy } from './domain/payout-rules';
import { runReconciliation } from './domain/reconcile.use-case';
import { runBatching } from './domain/submit-batches.use-case';
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
    let batcherNudge = () => undefined as void;
    let reconcilerNudge = () => undefined as void;
    const ctx: PayoutsContext = {
      db, outbox, logger, gateway,
      repo: new PayoutsRepository(),
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
      },
      nudgeBatcher: () => batcherNudge(),
      nudgeReconciler: () => reconcilerNudge(),
    };
    await reevaluatePlatformIntents(ctx);

    const batcher = createPoller({ name: 'payouts.batcher', intervalMs: config.PAYOUTS_BATCH_INTERVAL_MS, run: () => runBatching(ctx), logger, metrics });
    const reconciler = createPoller({ name: 'payouts.reconciler', intervalMs: config.PAYOUTS_RECONCILE_INTERVAL_MS, run: () => runReconciliation(ctx), logger, metrics });
    // Nudges only shorten the wait of a configured interval for work that is already due; batches still form per run.
    batcherNudge = () => batcher.nudge();
    reconcilerNudge = () => reconciler.nudge();

    const verifier = config.PAYPAL_WEBHOOK_ID && config.PAYOUTS_MODE !== 'dry-run'
      ? createPayPalWebhookVerifier({
        mode: 'offline',
        environment: config.PAYOUTS_MODE === 'live' ? 'live' : 'sandbox',
        webhookId: config.PAYPAL_WEBHOOK_ID,
        allowedCertHosts: config.PAYPAL_CERT_HOSTS ? config.PAYPAL_CERT_HOSTS.split(',').map((h) => h.trim()).filter(Boolean) : PAYPAL_CERT_HOSTS,
        timeoutMs: config.PAYPAL_TIMEOUT_MS,
      })
      : undefined;

    return {
      consumers: [salesConsumer(ctx), fulfillmentConsumer(ctx)],
      workers: [batcher, reconciler],
      routes(app) {
        paypalWebhookRoutes(app, ctx, verifier);
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
