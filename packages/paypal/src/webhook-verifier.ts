import { X509Certificate, verify as verifySignature, type KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { transientFailure } from '@postsale/runtime';
import { paypalRequest } from './http';
import type { PayPalTokenClient } from './token-client';

/** The hosts PayPal serves webhook certificates from. Production code fetches certificates from nowhere else. */
export const PAYPAL_CERT_HOSTS: readonly string[] = ['api.paypal.com', 'api.sandbox.paypal.com', 'api-m.paypal.com', 'api-m.sandbox.paypal.com'];

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
  const allowedHosts = new Set((options.allowedCertHosts ?? PAYPAL_CERT_HOSTS).map((h) => h.toLowerCase()));
  const certificates = new Map<string, Promise<KeyObject | undefined>>();

  function certificateKey(certUrl: string): Promise<KeyObject | undefined> {
    let pending = certificates.get(certUrl);
    if (!pending) {
      pending = downloadCertificateKey(certUrl, options.timeoutMs ?? 10_000);
      certificates.set(certUrl, pending);
      // Only a usable key stays cached; failures are retried on the next delivery.
      pending.then(
        (key) => {
          if (!key) certificates.delete(certUrl);
        },
        () => certificates.delete(certUrl),
      );
    }
    return pending;
  }

  async function verifyOffline(h: TransmissionHeaders, rawBody: Buffer): Promise<boolean> {
    if (h.authAlgo && h.authAlgo !== 'SHA256withRSA') return false;
    if (!certUrlAllowed(h.certUrl, allowedHosts)) return false;
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
      const h = transmissionHeaders(input.headers);
      if (!h) return false;
      const raw = typeof input.rawBody === 'string' ? Buffer.from(input.rawBody, 'utf8') : input.rawBody;
      return options.mode === 'online' ? verifyOnline(h, input.parsedBody) : verifyOffline(h, raw);
    },
  };
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
  if (url.username || url.password) return false;
  const loopback = host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  return url.protocol === 'https:' || (url.protocol === 'http:' && loopback);
}

async function downloadCertificateKey(certUrl: string, timeoutMs: number): Promise<KeyObject | undefined> {
  let response: Response;
  try {
    response = await fetch(certUrl, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw transientFailure('PAYPAL_CERT_UNREACHABLE', 'the PayPal webhook certificate could not be downloaded', error);
  }
  if (response.status >= 500 || response.status === 429) {
    throw transientFailure('PAYPAL_CERT_UNAVAILABLE', `certificate host answered ${response.status}`);
  }
  if (!response.ok) return undefined;
  try {
    const cert = new X509Certificate(await response.text());
    const now = Date.now();
    if (new Date(cert.validFrom).getTime() > now || new Date(cert.validTo).getTime() < now) return undefined;
    return cert.publicKey;
  } catch {
    return undefined;
  }
}
