import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AppError, transientFailure } from '@postsale/runtime';
import type { EbayFulfillmentOrder } from '../domain/ebay-order.mapper';
import type { EbayApi } from '../domain/ports';
import { requestJson } from './http-json';

/**
 * eBay: Notification API signature checks (ECDSA/SHA1 over `JSON.stringify(parsedBody)`, public key by `kid`,
 * fetched with an application token and cached) and Fulfillment API order reads with the seller's own token.
 */
export type EbayClient = EbayApi;

export interface EbayClientOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  keyTtlSeconds: number;
  /** how long a kid eBay does not know stays known as unknown (no second call for it) */
  unknownKidTtlSeconds?: number;
  /** at most this many key lookups for kids not in the cache per minute; beyond it a new kid is refused (412) */
  keyLookupsPerMinute?: number;
  /** bound on each cache (known keys, unknown kids) */
  maxCachedKids?: number;
  now?: () => number;
}

/** A kid as eBay issues them (UUID-like); anything else is refused without asking eBay. */
const KID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_SIGNATURE_HEADER = 4096;

export function createEbayClient(options: EbayClientOptions): EbayClient {
  const now = options.now ?? Date.now;
  const maxCached = options.maxCachedKids ?? 1000;
  const unknownTtlMs = (options.unknownKidTtlSeconds ?? 600) * 1000;
  const lookupsPerMinute = options.keyLookupsPerMinute ?? 30;
  let appToken: { token: string; expiresAt: number } | undefined;
  // Insertion-ordered maps used as bounded caches: the oldest entry goes first.
  const keys = new Map<string, { key: KeyObject; expiresAt: number }>();
  const unknownKids = new Map<string, number>();
  const inFlight = new Map<string, Promise<KeyObject | undefined>>();
  let lookupWindow = { startedAt: 0, used: 0 };
  const remember = <V>(map: Map<string, V>, k: string, v: V) => {
    map.delete(k);
    map.set(k, v);
    while (map.size > maxCached) map.delete(map.keys().next().value as string);
  };

  async function applicationToken(): Promise<string> {
    if (appToken && appToken.expiresAt > now()) return appToken.token;
    if (!options.clientId) throw new AppError('EBAY_NOT_CONFIGURED', 'EBAY_CLIENT_ID / EBAY_CLIENT_SECRET are not set', { status: 503 });
    const basic = Buffer.from(`${options.clientId}:${options.clientSecret}`).toString('base64');
    const body = await requestJson<{ access_token?: string; expires_in?: number }>('EBAY', new URL('/identity/v1/oauth2/token', options.baseUrl).toString(), {
      method: 'POST',
      headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'https://api.ebay.com/oauth/api_scope' }).toString(),
    });
    if (!body.access_token) throw transientFailure('EBAY_BAD_RESPONSE', 'eBay token response has no access_token');
    appToken = { token: body.access_token, expiresAt: now() + Math.max(0, (body.expires_in ?? 7200) - 60) * 1000 };
    return body.access_token;
  }

  function publicKey(kid: string): Promise<KeyObject | undefined> {
    const cached = keys.get(kid);
    if (cached && cached.expiresAt > now()) return Promise.resolve(cached.key);
    const unknownUntil = unknownKids.get(kid);
    if (unknownUntil !== undefined && unknownUntil > now()) return Promise.resolve(undefined);
    const pending = inFlight.get(kid);
    if (pending) return pending;
    // A flood of made-up kids must not turn into a flood of calls to eBay (and spend the app's quota).
    if (now() - lookupWindow.startedAt >= 60_000) lookupWindow = { startedAt: now(), used: 0 };
    if (lookupWindow.used >= lookupsPerMinute) return Promise.resolve(undefined);
    lookupWindow.used += 1;
    const lookup = fetchPublicKey(kid).finally(() => inFlight.delete(kid));
    inFlight.set(kid, lookup);
    return lookup;
  }

  async function fetchPublicKey(kid: string): Promise<KeyObject | undefined> {
    let body: { key?: string; algorithm?: string };
    try {
      body = await requestJson('EBAY', new URL(`/commerce/notification/v1/public_key/${encodeURIComponent(kid)}`, options.baseUrl).toString(), {
        headers: { Authorization: `Bearer ${await applicationToken()}` },
      });
    } catch (error) {
      if (error instanceof AppError && error.code === 'SELLER_TOKEN_REJECTED') {
        appToken = undefined;
        throw transientFailure('EBAY_APP_TOKEN_REJECTED', 'eBay refused the application token', error);
      }
      if (error instanceof AppError && !error.retriable) {
        // 404 (or another refusal of this kid): not eBay's key. Remembered, so asking again costs nothing.
        remember(unknownKids, kid, now() + unknownTtlMs);
        return undefined;
      }
      throw error;
    }
    let key: KeyObject;
    try {
      if (typeof body?.key !== 'string') throw new Error('no key');
      key = createPublicKey(toPem(body.key));
    } catch {
      remember(unknownKids, kid, now() + unknownTtlMs);
      return undefined;
    }
    remember(keys, kid, { key, expiresAt: now() + options.keyTtlSeconds * 1000 });
    unknownKids.delete(kid);
    return key;
  }

  return {
    async verifySignature(header, parsedBody) {
      const sig = parseSignatureHeader(header);
      if (!sig) return false;
      const key = await publicKey(sig.kid);
      if (!key) return false;
      try {
        return verify('sha1', Buffer.from(JSON.stringify(parsedBody), 'utf8'), key, Buffer.from(sig.signature, 'base64'));
      } catch {
        return false;
      }
    },
    getOrder(orderId, sellerToken) {
      return requestJson<EbayFulfillmentOrder>('EBAY', new URL(`/sell/fulfillment/v1/order/${encodeURIComponent(orderId)}`, options.baseUrl).toString(), {
        headers: { Authorization: `Bearer ${sellerToken}`, Accept: 'application/json' },
      });
    },
  };
}

/**
 * X-EBAY-SIGNATURE: base64 of `{alg, kid, signature, digest}`. Anything else — not base64 JSON, `null`, an array,
 * fields of the wrong type, an unusual kid — is undefined (the caller answers 412), never an exception.
 */
export function parseSignatureHeader(header: string | undefined): { kid: string; signature: string } | undefined {
  if (!header || header.length > MAX_SIGNATURE_HEADER) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { alg, kid, signature, digest } = parsed as Record<string, unknown>;
  if (typeof kid !== 'string' || !KID.test(kid)) return undefined;
  if (typeof signature !== 'string' || signature.length === 0 || signature.length > 1024) return undefined;
  if (alg !== undefined && (typeof alg !== 'string' || alg.toLowerCase() !== 'ecdsa')) return undefined;
  if (digest !== undefined && (typeof digest !== 'string' || digest.toUpperCase() !== 'SHA1')) return undefined;
  return { kid, signature };
}

/** eBay publishes the key on one line: put the line breaks PEM needs after BEGIN and before END. */
export function toPem(oneLine: string): string {
  const body = oneLine.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  const wrapped = body.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN PUBLIC KEY-----\n${wrapped}\n-----END PUBLIC KEY-----\n`;
}
