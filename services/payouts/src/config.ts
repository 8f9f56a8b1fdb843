import { z } from 'zod';
import { baseConfigSchema } from '@postsale/runtime';
import { isPayPalPayoutCurrency } from './domain/payout-currency';

export const PAYOUTS_MODES = ['sandbox', 'live', 'dry-run'] as const;
export type PayoutsMode = (typeof PAYOUTS_MODES)[number];

const payoutCurrency = z.string().refine(isPayPalPayoutCurrency, 'a currency PayPal Payouts supports (see src/domain/payout-currency.ts)');

const releasePolicyText = z
  .string()
  .regex(/^(immediate|after_shipment|after_delivery_plus_days:\d{1,3})$/, 'immediate | after_shipment | after_delivery_plus_days:N');

/** Hosts that can only mean a simulated PayPal: live mode refuses them (lesson 23). */
export function isSimulatedPayPalUrl(url: string): boolean {
  const host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    host === '0.0.0.0' ||
    /^127\./.test(host) ||
    host.includes('sandbox')
  );
}

/**
 * payouts's environment: the shared variables plus its own. Parsed first; a bad value stops the process.
 * There is deliberately no default for any payee identity (lesson 18): a missing platform payee holds platform
 * intents in sandbox and dry-run, and stops live mode from starting at all.
 */
export const configSchema = baseConfigSchema
  .extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(3004),
    DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('payouts'),
    /**
     * A recorded sale waits this long before its inbox transaction, so the sales that arrive meanwhile share one (see
     * the runtime's INBOX_LINGER_MS; the shared default is 0): its intents go into a batch that waits for more anyway
     * (PAYOUT_BATCH_LINGER_MS), so a short wait here costs little and saves a commit per sale once sales come faster.
     */
    INBOX_LINGER_MS: z.coerce.number().int().min(0).max(1000).default(50),
    /** explicit on purpose: no default, so nobody pays for real by accident */
    PAYOUTS_MODE: z.enum(PAYOUTS_MODES),
    /** the platform's PayPal account (receives the commission); no default */
    PLATFORM_PAYEE_EMAIL: z.string().email().optional(),
    PAYPAL_BASE_URL: z.string().url().default('https://api-m.sandbox.paypal.com'),
    PAYPAL_WEB_URL: z.string().url().default('https://www.sandbox.paypal.com'),
    PAYPAL_CLIENT_ID: z.string().min(1).optional(),
    PAYPAL_CLIENT_SECRET: z.string().min(1).optional(),
    /** client-side timeout of one PayPal call; an expired call is an unknown outcome, resolved by asking PayPal */
    PAYPAL_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
    /** id of the webhook configured at PayPal for this service's /webhooks/paypal (signature checks need it) */
    PAYPAL_WEBHOOK_ID: z.string().min(1).optional(),
    /** hosts webhook signing certificates may come from (comma list); PayPal's own hosts unless a test points elsewhere */
    PAYPAL_CERT_HOSTS: z.string().optional(),
    /**
     * group commit of item webhooks: PayPal sends a batch's item events at once, and those arriving together (at most
     * PAYPAL_WEBHOOK_BATCH_MAX) are applied as one set once the current event-loop turn is done
     * (PAYPAL_WEBHOOK_BATCH_LINGER_MS 0) or that many ms after the first
     */
    PAYPAL_WEBHOOK_BATCH_MAX: z.coerce.number().int().min(1).max(500).default(64),
    PAYPAL_WEBHOOK_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(100).default(0),
    PAYOUTS_BATCH_SIZE: z.coerce.number().int().min(1).max(15_000).default(500),
    PAYOUTS_BATCH_INTERVAL_MS: z.coerce.number().int().positive().default(60_000),
    /**
     * when intents become due the batcher is nudged, then waits at most this long for more to fill the batch (a full
     * batch goes at once); the interval above is only the fallback for other replicas' intents and timed releases
     */
    PAYOUT_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(60_000).default(200),
    PAYOUTS_RECONCILE_INTERVAL_MS: z.coerce.number().int().positive().default(60_000),
    /**
     * With PayPal's webhooks configured (PAYPAL_WEBHOOK_ID), an accepted batch is first checked at PayPal this long
     * after its acceptance, or after a batch webhook: its items' webhooks bring their outcomes first and close the
     * batch once every item is final, so the check is the fallback for webhooks that never came. Without webhooks a
     * batch is checked at once. (A check right after acceptance finds a real PayPal batch PENDING.)
     */
    PAYOUTS_WEBHOOK_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    /** release policy for sellers without payee settings (platform intents follow the seller's policy) */
    PAYOUTS_DEFAULT_RELEASE_POLICY: releasePolicyText.default('immediate'),
    /** attempts the poller may make on its own per intent; 1 = a FAILED/RETURNED item waits for POST /admin/payouts/:id/retry */
    PAYOUTS_AUTO_RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(1),
    PAYOUTS_AUTO_RETRY_DELAY_MS: z.coerce.number().int().min(0).default(3_600_000),
    /**
     * PayPal rejects a reused sender_batch_id for 30 days; a batch whose outcome is still unknown after this long is
     * no longer re-posted (that could pay twice) but flagged for review.
     */
    PAYOUTS_RESUBMIT_WINDOW_MS: z.coerce.number().int().positive().default(20 * 24 * 3600 * 1000),
    /** integrity deadlines, seconds */
    PAYOUTS_DUE_DEADLINE_SECONDS: z.coerce.number().int().positive().default(2 * 3600),
    PAYOUTS_SUBMITTED_DEADLINE_SECONDS: z.coerce.number().int().positive().default(24 * 3600),
    PAYOUTS_HELD_DEADLINE_SECONDS: z.coerce.number().int().positive().default(30 * 24 * 3600),
    /**
     * when set, the platform's commission is always paid in this currency (converted at the payouts FX table when the
     * sale's differs); unset, the platform follows the sellers' default rule: the sale's currency when PayPal pays
     * it, else DEFAULT_PAYOUT_CURRENCY (so commissions on EUR sales keep being paid in EUR without an EUR→USD rate)
     */
    PLATFORM_PAYOUT_CURRENCY: payoutCurrency.optional(),
    /** sellers without an explicit payout currency whose sale currency PayPal cannot pay (e.g. CLP) are paid in this */
    DEFAULT_PAYOUT_CURRENCY: payoutCurrency.default('USD'),
    /** a rate dated more than this many days before the sale's day is too old to convert it (the intent is held) */
    PAYOUTS_FX_MAX_RATE_AGE_DAYS: z.coerce.number().int().min(0).max(366).default(7),
  })
  .superRefine((c, ctx) => {
    if (c.PAYOUTS_MODE === 'dry-run') return;
    for (const key of ['PAYPAL_CLIENT_ID', 'PAYPAL_CLIENT_SECRET'] as const) {
      if (!c[key]) ctx.addIssue({ code: 'custom', path: [key], message: `is required when PAYOUTS_MODE=${c.PAYOUTS_MODE}` });
    }
    if (c.PAYOUTS_MODE !== 'live') return;
    if (!c.PLATFORM_PAYEE_EMAIL) {
      ctx.addIssue({
        code: 'custom',
        path: ['PLATFORM_PAYEE_EMAIL'],
        message: 'is required when PAYOUTS_MODE=live (the platform commission has no default payee; refusing to start)',
      });
    }
    if (isSimulatedPayPalUrl(c.PAYPAL_BASE_URL)) {
      ctx.addIssue({
        code: 'custom',
        path: ['PAYPAL_BASE_URL'],
        message: `${c.PAYPAL_BASE_URL} is a sandbox or loopback PayPal; PAYOUTS_MODE=live refuses simulated components`,
      });
    }
    const certHosts = (c.PAYPAL_CERT_HOSTS ?? '').split(',').map((h) => h.trim()).filter(Boolean);
    if (certHosts.some((h) => isSimulatedPayPalUrl(`https://${h}`))) {
      ctx.addIssue({ code: 'custom', path: ['PAYPAL_CERT_HOSTS'], message: 'names a sandbox or loopback host; PAYOUTS_MODE=live refuses simulated components' });
    }
    if (!c.PAYPAL_BASE_URL.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['PAYPAL_BASE_URL'], message: 'must be https when PAYOUTS_MODE=live' });
    }
  });
export type PayoutsConfig = z.infer<typeof configSchema>;
