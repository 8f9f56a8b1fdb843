import { X509Certificate, verify as verifySignature, type KeyObject } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { crc32 } from 'node:zlib';
import { callHttp, transientFailure, type OutboundResponse } from '@postsale/runtime';
import { paypalRequest } from './http';
import type { PayPalTokenClient } from './token-client';

/** The hosts PayPal serves webhook certificates from. Production code fetches certificates from nowhere else. */
export const PAYPAL_CERT_HOSTS: readonly string[] = ['api.paypal.com', 'api.sandbox.paypal.com', 'api-m.paypal.com', 'api-m.sandbox.paypal.com'];
/** Live PayPal's certificate hosts: the only ones a live deployment accepts. */
export const PAYPAL_LIVE_CERT_HOSTS: readonly string[] = ['api.paypal.com', 'api-m.paypal.com'];
/** PayPal's certificate URLs: `/v1/notifications/certs/CERT-360caa42-fca2a594-…`, nothing else (no query, no other path). */
const CERT_PATH = /^\/v1\/notifications\/certs\/[A-Za-z0-9._-]{1,128}$/;
/** The subject PayPal's webhook signing certificates are issued to. */
const CERT_SUBJECTS = { live: ['messageverificationcerts.paypal.com'], sandbox: ['messageverificationcerts.sandbox.paypal.com', 'messageverificationcerts.paypal.com'] };

/** A sandbox or loopback host: never acceptable when verifying live webhooks. */
export function isSandboxOrLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h.includes('sandbox') || h === 'localhost' || h === '[::1]' || h === '::1' || /^127\./.test(h);
}

export type PayPalVerificationMode = 'offline' | 'online';

export interface PayPalWebhookVerifierOptions {
  /**
   * offline: RSA-SHA256 over `transmissionId|transmissionTime|webhookId|crc32(rawBody)` with the certificate at
   * PAYPAL-CERT-URL (fetched once per URL, only from `allowedCertHosts`).
   * online: PayPal's `POST /v1/notifications/verify-webhook-signature` (needs `baseUrl` and `tokenClient`).
   */
  mode: PayPalVerificationMode;
  /** the id PayPal gave the webhook subscription this endpoint serves (part of the signed string) */
  webhookId: string;
  /** REST base URL; required for online mode */
  baseUrl?: string;
  tokenClient?: PayPalTokenClient;
  /** hosts certificates may be fetched from; defaults to PAYPAL_CERT_HOSTS. Tests add 127.0.0.1. */
  allowedCertHosts?: readonly string[];
  timeoutMs?: number;
  /**
   * live (default): only live PayPal hosts; a sandbox or loopback host in `allowedCertHosts` is refused at construction.
   * sandbox: PayPal's sandbox hosts too (and loopback hosts a test allows).
   */
  environment?: 'live' | 'sandbox';
  /** deliveries whose PAYPAL-TRANSMISSION-TIME is further than this from now do not verify (default 600 s) */
  maxTransmissionSkewSeconds?: number;
  /** bound on the certificate cache (default 32 URLs); a cached certificate is re-fetched after `certificateTtlSeconds` */
  maxCachedCertificates?: number;
  certificateTtlSeconds?: number;
  /** certificate downloads for URLs not in the cache, per minute (default 30); beyond it a new URL does not verify */
  certificateFetchesPerMinute?: number;
  /**
   * trust anchors for the certificate chain (PEM); Node's bundled Mozilla roots by default. The chain (leaf first, then
   * intermediates, as PayPal serves it) must lead to one of them, and the leaf must be issued to PayPal's
   * message-verification name. `verifyChain: false` turns this off; loopback hosts (a test's fake) skip it by default.
   */
  trustedRoots?: readonly string[];
  verifyChain?: boolean;
  now?: () => number;
}

export interface PayPalWebhookInput {
  /** request headers, any case (node's lower-cased `req.headers` or a plain record) */
  headers: Record<string, string | string[] | undefined>;
  /** the exact bytes received; the offline signature covers their CRC32 */
  rawBody: Buffer | string;
  /** the parsed JSON body; the online check sends it as `webhook_event` */
  parsedBody: unknown;
}

export interface PayPalWebhookVerifier {
  /**
   * true only when the delivery is authentic for this webhook id. false for a missing/invalid signature, a
   * certificate from a host not allowed, an unknown algorithm. Throws a retriable AppError when the answer cannot be
   * known now (certificate host or PayPal unreachable / 5xx), so the caller can ask PayPal to retry (5xx) instead of
   * rejecting a genuine delivery.
   */
  verify(input: PayPalWebhookInput): Promise<boolean>;
  /**
   * Like verify, and says whether this transmission id was already handled inside the time window (a replay or a
   * re-send of the same transmission): the caller acknowledges it without doing the work again. The caller calls
   * `handled()` once its work for the delivery is committed; a transmission that failed half-way is not a replay.
   */
  check(input: PayPalWebhookInput): Promise<{ authentic: boolean; replay: boolean; handled: () => void }>;
}

interface TransmissionHeaders {
  transmissionId: string;
  transmissionTime: string;
  transmissionSig: string;
  certUrl: string;
  authAlgo: string;
}

export function createPayPalWebhookVerifier(options: PayPalWebhookVerifierOptions): PayPalWebhookVerifier {
  if (!options.webhookId) throw new Error('a PayPal webhook id is required to verify webhooks');
  if (options.mode === 'online' && (!options.baseUrl || !options.tokenClient)) {
    throw new Error('online PayPal webhook verification needs baseUrl and tokenClient');
  }
  const environment = options.environment ?? 'live';
  const allowedHosts = new Set((options.allowedCertHosts ?? (environment === 'live' ? PAYPAL_LIVE_CERT_HOSTS : PAYPAL_CERT_HOSTS)).map((h) => h.toLowerCase()));
  if (environment === 'live') {
    const bad = [...allowedHosts].filter(isSandboxOrLoopbackHost);
    if (bad.length > 0) throw new Error(`live PayPal webhook verification refuses sandbox or loopback certificate hosts: ${bad.join(', ')}`);
    if (options.verifyChain === false) throw new Error('live PayPal webhook verification always verifies the certificate chain');
  }
  const now = options.now ?? Date.now;
  const skewMs = (options.maxTransmissionSkewSeconds ?? 600) * 1000;
  const maxCached = options.maxCachedCertificates ?? 32;
  const ttlMs = (options.certificateTtlSeconds ?? 24 * 3600) * 1000;
  const fetchesPerMinute = options.certificateFetchesPerMinute ?? 30;
  let roots: X509Certificate[] | undefined;
  const trustAnchors = () => (roots ??= (options.trustedRoots ?? rootCertificates).flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  }));
  // Insertion-ordered map as a bounded cache: the oldest URL goes first.
  const certificates = new Map<string, { key: Promise<KeyObject | undefined>; expiresAt: number }>();
  let fetchWindow = { startedAt: 0, used: 0 };
  // Transmission ids verified inside the window (bounded): a replay is caught by its id until its time runs out.
  const seen = new Map<string, number>();
  const maxSeen = 50_000;
  const alreadyHandled = (transmissionId: string) => (seen.get(transmissionId) ?? 0) > now();
  function remember(transmissionId: string, sentAt: number): void {
    const t = now();
    seen.delete(transmissionId);
    seen.set(transmissionId, sentAt + skewMs);
    for (const [id, expiry] of seen) {
      if (seen.size <= maxSeen && expiry > t) break;
      seen.delete(id);
    }
  }

  function certificateKey(certUrl: string): Promise<KeyObject | undefined> {
    const cached = certificates.get(certUrl);
    if (cached && cached.expiresAt > now()) return cached.key;
    if (now() - fetchWindow.startedAt >= 60_000) fetchWindow = { startedAt: now(), used: 0 };
    if (fetchWindow.used >= fetchesPerMinute) return Promise.resolve(undefined);
    fetchWindow.used += 1;
    const host = new URL(certUrl).hostname.toLowerCase();
    const verifyChain = options.verifyChain ?? !isLoopback(host);
    const pending = downloadCertificateKey(certUrl, options.timeoutMs ?? 10_000, {
      now: now(), roots: verifyChain ? trustAnchors() : undefined, subjects: CERT_SUBJECTS[environment],
    });
    certificates.delete(certUrl);
    certificates.set(certUrl, { key: pending, expiresAt: now() + ttlMs });
    while (certificates.size > maxCached) certificates.delete(certificates.keys().next().value as string);
    // Only a usable key stays cached; failures are retried on the next delivery.
    pending.then(
      (key) => {
        if (!key) certificates.delete(certUrl);
      },
      () => certificates.delete(certUrl),
    );
    return pending;
  }

  async function verifyOffline(h: TransmissionHeaders, rawBody: Buffer): Promise<boolean> {
    if (h.authAlgo && h.authAlgo !== 'SHA256withRSA') return false;
    if (!certUrlAllowed(h.certUrl, allowedHosts)) return false;
    if (!CERT_PATH.test(new URL(h.certUrl).pathname)) return false;
    const key = await certificateKey(h.certUrl);
    if (!key) return false;
    const message = `${h.transmissionId}|${h.transmissionTime}|${options.webhookId}|${crc32(rawBody) >>> 0}`;
    try {
      return verifySignature('sha256', Buffer.from(message, 'utf8'), key, Buffer.from(h.transmissionSig, 'base64'));
    } catch {
      return false;
    }
  }

  async function verifyOnline(h: TransmissionHeaders, parsedBody: unknown): Promise<boolean> {
    const { body } = await paypalRequest<{ verification_status?: string }>(options.baseUrl!, options.tokenClient!, {
      method: 'POST',
      path: '/v1/notifications/verify-webhook-signature',
      body: {
        auth_algo: h.authAlgo || 'SHA256withRSA',
        cert_url: h.certUrl,
        transmission_id: h.transmissionId,
        transmission_sig: h.transmissionSig,
        transmission_time: h.transmissionTime,
        webhook_id: options.webhookId,
        webhook_event: parsedBody,
      },
      timeoutMs: options.timeoutMs,
    }).catch((error: unknown) => {
      // PayPal refusing the check request itself (4xx, e.g. malformed headers) means "not verified".
      if (error instanceof Error && 'httpStatus' in error && typeof error.httpStatus === 'number' && error.httpStatus < 500 && error.httpStatus !== 429) {
        return { body: { verification_status: 'FAILURE' } };
      }
      throw error;
    });
    return body.verification_status === 'SUCCESS';
  }

  return {
    async verify(input) {
      return (await check(input)).authentic;
    },
    check,
  };

  async function check(input: PayPalWebhookInput): Promise<{ authentic: boolean; replay: boolean; handled: () => void }> {
    const refused = { authentic: false, replay: false, handled: () => undefined };
    const h = transmissionHeaders(input.headers);
    if (!h) return refused;
    // A signature from long ago (or the future) does not verify: a captured delivery cannot be replayed for ever.
    const sentAt = Date.parse(h.transmissionTime);
    if (!Number.isFinite(sentAt) || Math.abs(now() - sentAt) > skewMs) return refused;
    const raw = typeof input.rawBody === 'string' ? Buffer.from(input.rawBody, 'utf8') : input.rawBody;
    const authentic = options.mode === 'online' ? await verifyOnline(h, input.parsedBody) : await verifyOffline(h, raw);
    if (!authentic) return refused;
    return { authentic, replay: alreadyHandled(h.transmissionId), handled: () => remember(h.transmissionId, sentAt) };
  }
}

function header(headers: PayPalWebhookInput['headers'], name: string): string {
  const direct = headers[name] ?? headers[name.toLowerCase()] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  const value = Array.isArray(direct) ? direct[0] : direct;
  return typeof value === 'string' ? value.trim() : '';
}

function transmissionHeaders(headers: PayPalWebhookInput['headers']): TransmissionHeaders | undefined {
  const h = {
    transmissionId: header(headers, 'paypal-transmission-id'),
    transmissionTime: header(headers, 'paypal-transmission-time'),
    transmissionSig: header(headers, 'paypal-transmission-sig'),
    certUrl: header(headers, 'paypal-cert-url'),
    authAlgo: header(headers, 'paypal-auth-algo'),
  };
  if (!h.transmissionId || !h.transmissionTime || !h.transmissionSig || !h.certUrl) return undefined;
  return h;
}

/** https on an allowed host; plain http only for loopback hosts a test explicitly allowed. */
export function certUrlAllowed(certUrl: string, allowedHosts: ReadonlySet<string>): boolean {
  let url: URL;
  try {
    url = new URL(certUrl);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  if (!allowedHosts.has(host)) return false;
  if (url.username || url.password || url.search || url.hash) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(host));
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

const validAt = (cert: X509Certificate, at: number) => new Date(cert.validFrom).getTime() <= at && new Date(cert.validTo).getTime() >= at;

/**
 * The leaf of a PEM bundle (leaf first, then intermediates) when it chains to one of `roots` through valid
 * certificates, each signed by the next; undefined otherwise. At most four intermediates.
 */
export function chainedLeaf(pem: string, roots: readonly X509Certificate[], at: number): X509Certificate | undefined {
  const bundle = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const certs = bundle.map((p) => new X509Certificate(p));
  const leaf = certs[0];
  if (!leaf) return undefined;
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    if (!validAt(current, at)) return undefined;
    const issuedBy = (c: X509Certificate) => Boolean(current.checkIssued(c)) && current.verify(c.publicKey);
    const root = roots.find(issuedBy);
    if (root) return validAt(root, at) ? leaf : undefined;
    const next = certs.find((c) => c !== current && c.ca && issuedBy(c));
    if (!next) return undefined;
    current = next;
  }
  return undefined;
}

async function downloadCertificateKey(certUrl: string, timeoutMs: number, check: { now: number; roots: readonly X509Certificate[] | undefined; subjects: readonly string[] }): Promise<KeyObject | undefined> {
  let response: OutboundResponse;
  try {
    response = await callHttp(certUrl, { timeoutMs });
  } catch (error) {
    throw transientFailure('PAYPAL_CERT_UNREACHABLE', 'the PayPal webhook certificate could not be downloaded', error);
  }
  // a redirect is not followed: the certificate must come from the allowed host itself
  if (response.status >= 300 && response.status < 400) {
    throw transientFailure('PAYPAL_CERT_UNREACHABLE', `certificate host answered ${response.status} (a redirect, not followed)`);
  }
  if (response.status >= 500 || response.status === 429) {
    throw transientFailure('PAYPAL_CERT_UNAVAILABLE', `certificate host answered ${response.status}`);
  }
  if (!response.ok) return undefined;
  try {
    const pem = response.text;
    if (pem.length > 64 * 1024) return undefined;
    const cert = check.roots ? chainedLeaf(pem, check.roots, check.now) : new X509Certificate(pem);
    if (!cert || !validAt(cert, check.now)) return undefined;
    if (!check.subjects.some((name) => cert.checkHost(name, { wildcards: false }) === name)) return undefined;
    return cert.publicKey;
  } catch {
    return undefined;
  }
}
