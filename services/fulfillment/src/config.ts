import { z } from 'zod';
import { baseConfigSchema, personalDataKeyProblems, personalDataKeyShape, secretBoxKeyProblems } from '@postsale/runtime';

const ms = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
const seconds = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/**
 * A URL a live deployment may not use: loopback, private test hosts and anything named "sandbox" (lesson 23: a
 * simulated supplier must never be mistaken for the real one). Exported for the unit test.
 */
export function isSandboxUrl(raw: string): boolean {
  const host = new URL(raw).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '::1' || host === '0.0.0.0' || /^127\./.test(host) ||
    host.includes('sandbox') || host.endsWith('.local') || host.endsWith('.test')
  );
}

/** fulfillment's environment: the shared variables plus its own. Parsed first; a bad value stops the process. */
export const configSchema = baseConfigSchema
  .extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(3002),
    DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('fulfillment'),
    /** sandbox: the local fakes; live: the real providers (sandbox URLs refused) */
    SUPPLIER_MODE: z.enum(['sandbox', 'live']),
    /** 32 bytes, base64: seals per-seller credentials and marketplace tokens at rest; no default on purpose */
    CREDENTIALS_KEY: z.string().min(40, '32 bytes, base64-encoded'),
    /** the id stored with every value CREDENTIALS_KEY seals; defaults to a fingerprint of the key */
    CREDENTIALS_KEY_ID: z.string().optional(),
    /** keys that still open older values during a rotation: comma-separated `id:base64` (or bare base64) */
    CREDENTIALS_PREVIOUS_KEYS: z.string().optional(),
    /** key-encryption key of buyers' data keys (crypto-shredding of personal data in events); see the root README */
    ...personalDataKeyShape,
    ALIEXPRESS_GATEWAY_URL: z.string().url(),
    /** the supplier's web checkout, for the browser fallback */
    ALIEXPRESS_WEB_URL: z.string().url(),
    EBAY_API_BASE_URL: z.string().url(),
    MERCADOLIBRE_API_BASE_URL: z.string().url(),
    CHROMIUM_PATH: z.string().default('/usr/bin/chromium'),
    BROWSER_TIMEOUT_MS: ms(30_000),
    SUPPLIER_TIMEOUT_MS: ms(10_000),
    /** never buy at a loss by default: the minimum margin for sellers without a policy, basis points of the sale */
    DEFAULT_MIN_MARGIN_BPS: z.coerce.number().int().min(0).max(10_000).default(0),
    /** per-seller supplier calls per second, and per day (AliExpress bans an app that exceeds its daily quota) */
    DEFAULT_SUPPLIER_RATE_PER_SECOND: z.coerce.number().positive().default(5),
    DEFAULT_SUPPLIER_DAILY_QUOTA: z.coerce.number().int().positive().default(5000),
    /**
     * supplier calls reserved from the daily quota per database write; unused reservations count as used, so at most
     * this many calls per replica and restart are lost from the quota (20 of 5,000 by default)
     */
    SUPPLIER_QUOTA_BLOCK: z.coerce.number().int().min(1).max(1000).default(20),
    /**
     * how long seller settings and opened credentials are reused; an admin write through the same replica is seen at
     * once, one through another replica after at most this long
     */
    SELLER_SETTINGS_CACHE_TTL_MS: ms(5_000),
    PURCHASE_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(6),
    PURCHASE_RETRY_BASE_MS: ms(2_000),
    PURCHASE_RETRY_MAX_MS: ms(10 * 60_000),
    /** how long a claimed job is leased to this process before another may take it (crash recovery) */
    JOB_LEASE_MS: ms(120_000),
    /** re-sending order.create with the same out_order_id is safe only inside AliExpress's idempotency window (24 h) */
    OUT_ORDER_ID_WINDOW_MS: ms(23 * 3600_000),
    STATUS_POLL_MIN_MS: ms(30_000),
    STATUS_POLL_MAX_MS: ms(6 * 3600_000),
    // Tracking and delivery take days at a supplier: polling them as often as a payment (seconds) spends the seller's
    // supplier quota and our CPU on orders that cannot have moved (issue 15). Backs off up to the maximum.
    TRACKING_POLL_MIN_MS: ms(30 * 60_000),
    TRACKING_POLL_MAX_MS: ms(12 * 3600_000),
    PUSH_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(12),
    PUSH_RETRY_BASE_MS: ms(5_000),
    WORKER_INTERVAL_MS: ms(1_000),
    /**
     * how often the tracking-push worker looks for due pushes on its own: a push this process queues wakes it, and so
     * does the due time of a retry it scheduled; only a push left by a stopped or crashed replica needs this look (its
     * lease runs out first anyway), so it is rare, not an empty claim every WORKER_INTERVAL_MS
     */
    TRACKING_PUSH_IDLE_MS: ms(60_000),
    /**
     * how often the follow-up worker looks for due orders on its own: it is woken when a check it scheduled falls due
     * within this time; the look finds the rest (a check scheduled further ahead, another replica's orders after it
     * stopped, an accepted order whose purchase worker crashed before its first payment check, once that lease ran out)
     */
    FOLLOW_UP_IDLE_MS: ms(10_000),
    /**
     * orders the purchase worker buys at once (default 10): a continuous pool, where each purchase that ends claims the
     * next due order, not rounds that wait for the slowest
     */
    PURCHASE_CONCURRENCY: z.coerce.number().int().min(1).max(100).optional(),
    /** the former name of PURCHASE_CONCURRENCY, still read when that one is not set */
    PURCHASE_BATCH_SIZE: z.coerce.number().int().min(1).max(100).optional(),
    /**
     * how long a buyer's data key read from the subject-keys topic waits for this process's order to store it in the
     * order's own transaction before the replica stores it itself (0: at once). The key comes just before its order, so
     * a moment saves a commit per order; an order read by another replica finds the key at most this much later.
     */
    SUBJECT_KEY_HOLD_MS: z.coerce.number().int().min(0).max(1_000).default(50),
    /** supplier status checks (payment, tracking, delivery) run at once */
    FOLLOW_UP_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(20),
    /** tracking pushes to marketplaces run at once */
    TRACKING_PUSH_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(4),
    /** integrity deadlines per stage, seconds */
    DEADLINE_RECEIVED_S: seconds(3600),
    DEADLINE_PURCHASING_S: seconds(3600),
    DEADLINE_AWAITING_PAYMENT_S: seconds(24 * 3600),
    DEADLINE_PURCHASED_S: seconds(10 * 86_400),
    DEADLINE_SHIPPED_S: seconds(90 * 86_400),
    DEADLINE_TRACKING_PUSH_S: seconds(6 * 3600),
  })
  .superRefine((config, ctx) => {
    for (const [name, message] of secretBoxKeyProblems({ key: config.CREDENTIALS_KEY, keyId: config.CREDENTIALS_KEY_ID, previousKeys: config.CREDENTIALS_PREVIOUS_KEYS })) {
      ctx.addIssue({ code: 'custom', path: [name], message });
    }
    for (const [name, message] of personalDataKeyProblems(config)) ctx.addIssue({ code: 'custom', path: [name], message });
    if (config.SUPPLIER_MODE !== 'live') return;
    for (const key of ['ALIEXPRESS_GATEWAY_URL', 'ALIEXPRESS_WEB_URL', 'EBAY_API_BASE_URL', 'MERCADOLIBRE_API_BASE_URL'] as const) {
      const url = config[key];
      if (isSandboxUrl(url) || !url.startsWith('https://')) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'SUPPLIER_MODE=live refuses loopback, sandbox and non-https URLs' });
      }
    }
  });
export type FulfillmentConfig = z.infer<typeof configSchema>;
