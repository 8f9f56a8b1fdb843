import { z } from 'zod';
import { isSandboxOrLoopbackHost } from '@postsale/paypal';
import { baseConfigSchema, envFlag, personalDataKeyProblems, personalDataKeyShape, secretBoxKeyProblems } from '@postsale/runtime';

/** ingest's environment: the shared variables plus its own. Parsed first; a bad value stops the process. */
export const configSchema = baseConfigSchema
  .extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(3001),
    DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('ingest'),
    /** AES-256-GCM key (base64, 32 bytes) sealing per-seller marketplace tokens; required outside development */
    CREDENTIALS_KEY: z.string().optional(),
    /** the id stored with every value CREDENTIALS_KEY seals; defaults to a fingerprint of the key */
    CREDENTIALS_KEY_ID: z.string().optional(),
    /** keys that still open older values during a rotation: comma-separated `id:base64` (or bare base64) */
    CREDENTIALS_PREVIOUS_KEYS: z.string().optional(),
    /** key-encryption key of buyers' data keys (crypto-shredding of personal data in events); see the root README */
    ...personalDataKeyShape,

    EBAY_API_BASE_URL: z.string().url().default('https://api.ebay.com'),
    EBAY_CLIENT_ID: z.string().default(''),
    EBAY_CLIENT_SECRET: z.string().default(''),
    /** the verification token configured in eBay's developer portal for the notification endpoint */
    EBAY_VERIFICATION_TOKEN: z.string().default(''),
    /** the public URL eBay calls, exactly as registered (part of the challenge hash) */
    EBAY_ENDPOINT_URL: z.string().default(''),
    EBAY_PUBLIC_KEY_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
    /**
     * eBay has no notification for cancellations and refunds (Corrections): received eBay orders are re-read until
     * they settle, with backoff from MIN to MAX between reads, for this window after receipt (the return window: eBay's
     * longest standard return period is 60 days, plus a margin for refunds completing after it).
     */
    EBAY_RECHECK_WINDOW_SECONDS: z.coerce.number().int().positive().default(75 * 24 * 3600),
    EBAY_RECHECK_MIN_MS: z.coerce.number().int().positive().default(15 * 60_000),
    EBAY_RECHECK_MAX_MS: z.coerce.number().int().positive().default(24 * 3600_000),
    EBAY_RECHECK_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(60_000),
    /** a kid eBay does not know is remembered this long (no second call for it) */
    EBAY_UNKNOWN_KID_TTL_SECONDS: z.coerce.number().int().positive().default(600),
    /** key lookups for kids not in the cache, per minute; beyond it new kids are refused (412, eBay retries) */
    EBAY_KEY_LOOKUPS_PER_MINUTE: z.coerce.number().int().positive().default(30),

    MERCADOLIBRE_API_BASE_URL: z.string().url().default('https://api.mercadolibre.com'),
    /** this deployment's MercadoLibre application id; notifications for any other application are only counted */
    MERCADOLIBRE_APPLICATION_ID: z.string().regex(/^\d*$/).default(''),

    PAYPAL_BASE_URL: z.string().url().default('https://api-m.paypal.com'),
    PAYPAL_CLIENT_ID: z.string().default(''),
    PAYPAL_CLIENT_SECRET: z.string().default(''),
    /** the id of the platform's PayPal webhook subscription (part of the signed string) */
    PAYPAL_WEBHOOK_ID: z.string().default(''),
    PAYPAL_WEBHOOK_VERIFICATION: z.enum(['offline', 'online']).default('offline'),
    /**
     * live or sandbox PayPal; by default live unless PAYPAL_BASE_URL is a sandbox or loopback host. Live webhook
     * verification never accepts a sandbox or loopback certificate host.
     */
    PAYPAL_ENVIRONMENT: z.enum(['live', 'sandbox']).optional(),
    /** hosts PAYPAL-CERT-URL may point at (offline verification); PayPal's own for the environment by default */
    PAYPAL_CERT_HOSTS: z.string().optional().transform((s) => (s ? s.split(',').map((h) => h.trim()).filter(Boolean) : undefined)),
    /** a PayPal webhook whose transmission time is further than this from now does not verify */
    PAYPAL_WEBHOOK_MAX_SKEW_SECONDS: z.coerce.number().int().positive().max(86_400).default(600),

    /** storefront capture calls: accepted signature timestamps within this many seconds of now */
    STOREFRONT_SIGNATURE_WINDOW_SECONDS: z.coerce.number().int().positive().max(3600).default(300),
    /** buyers' personal data (name, address, email, phone) is erased this many days after the order was received */
    PERSONAL_DATA_RETENTION_DAYS: z.coerce.number().int().positive().default(180),
    /** raw deliveries already decided are deleted after this many days (pending and parked ones are kept) */
    DELIVERY_RETENTION_DAYS: z.coerce.number().int().positive().default(30),
    RETENTION_INTERVAL_MS: z.coerce.number().int().positive().default(60 * 60_000),
    /** the delivery worker claims up to this many due deliveries per round, at most DELIVERY_CLAIM_PER_ACCOUNT per account */
    DELIVERY_CLAIM_BATCH: z.coerce.number().int().positive().max(500).default(32),
    DELIVERY_CLAIM_PER_ACCOUNT: z.coerce.number().int().positive().default(4),
    /** per source address: sustained requests per second and burst, for /webhooks and /checkout */
    RATE_LIMIT_PER_SECOND: z.coerce.number().positive().default(50),
    RATE_LIMIT_BURST: z.coerce.number().int().positive().default(200),
    /** how long a PayPal webhook or storefront capture may spend processing inline before it is answered 202 and left to the worker */
    INLINE_PROCESSING_BUDGET_MS: z.coerce.number().int().positive().default(4000),
    // connections kept for storing webhooks, so an ack never waits behind the delivery worker's transactions (the bench's
    // ack mode measured a 670 ms mean wait for a pooled connection at 100 webhooks/s with one shared pool)
    ACK_DB_POOL_MAX: z.coerce.number().int().min(1).max(50).default(4),
    /**
     * group commit of acks: webhooks arriving together are stored by one statement of at most ACK_BATCH_MAX, sent once
     * the current event-loop turn is done (ACK_BATCH_LINGER_MS 0) or that many ms after the first; while every ack
     * connection is busy, arrivals wait and go in the next statement
     */
    ACK_BATCH_MAX: z.coerce.number().int().min(1).max(500).default(64),
    ACK_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(100).default(0),
    DELIVERY_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
    DELIVERY_MAX_BACKOFF_MS: z.coerce.number().int().positive().default(5 * 60_000),
    /** when a seller is registered, parked UNROUTABLE deliveries for its accounts are queued again automatically */
    REQUEUE_PARKED_ON_REGISTRATION: envFlag(true),
    /** integrity deadlines: a delivery pending / parked longer than this is reported */
    PENDING_DELIVERY_DEADLINE_SECONDS: z.coerce.number().int().positive().default(900),
    PARKED_DELIVERY_DEADLINE_SECONDS: z.coerce.number().int().positive().default(3600),
  })
  .transform((c) => ({ ...c, PAYPAL_ENVIRONMENT: c.PAYPAL_ENVIRONMENT ?? (isSandboxOrLoopbackHost(new URL(c.PAYPAL_BASE_URL).hostname) ? 'sandbox' as const : 'live' as const) }))
  .superRefine((c, ctx) => {
    if (c.OPERATOR_TOKEN && c.OPERATOR_TOKEN === c.ADMIN_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['OPERATOR_TOKEN'], message: 'must differ from ADMIN_TOKEN' });
    }
    if (c.PAYPAL_ENVIRONMENT === 'live' && c.PAYPAL_CERT_HOSTS?.some(isSandboxOrLoopbackHost)) {
      ctx.addIssue({ code: 'custom', path: ['PAYPAL_CERT_HOSTS'], message: 'names a sandbox or loopback host; live PayPal refuses them' });
    }
    if (c.NODE_ENV !== 'development' && !c.CREDENTIALS_KEY) {
      ctx.addIssue({ code: 'custom', path: ['CREDENTIALS_KEY'], message: 'required outside development (base64 of 32 random bytes)' });
    }
    for (const [name, message] of secretBoxKeyProblems({ key: c.CREDENTIALS_KEY, keyId: c.CREDENTIALS_KEY_ID, previousKeys: c.CREDENTIALS_PREVIOUS_KEYS })) {
      ctx.addIssue({ code: 'custom', path: [name], message });
    }
    for (const [name, message] of personalDataKeyProblems(c)) ctx.addIssue({ code: 'custom', path: [name], message });
  });
export type IngestConfig = z.infer<typeof configSchema>;
