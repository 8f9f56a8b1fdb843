import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AppError, transientFailure } from '@postsale/runtime';
import type { EbayFulfillmentOrder } from '../domain/ebay-order.mapper';
import { requestJson } from './http-json';

/**
 * eBay: Notification API signature checks (ECDSA/SHA1 over `JSON.stringify(parsedBody)`, public key by `kid`,
 * fetched with an application token and cached) and Fulfillment API order reads with the seller's own token.
 */
export interface EbayClient {
  /** true when X-EBAY-SIGNATURE is valid for this body; throws a retriable error when the key cannot be fetched now */
  verifySignature(signatureHeader: string | undefined, parsedBody: unknown): Promise<boolean>;
  getOrder(orderId: string, sellerToken: string): Promise<EbayFulfillmentOrder>;
}

export function createEbayClient(options: { baseUrl: string; clientId: string; clientSecret: string; keyTtlSeconds: number }): EbayClient {
  let appToken: { token: string; expiresAt: number } | undefined;
  const keys = new Map<string, { key: KeyObject; expiresAt: number }>();

  async function applicationToken(): Promise<string> {
    if (appToken && appToken.expiresAt > Date.now()) return appToken.token;
    if (!options.clientId) throw new AppError('EBAY_NOT_CONFIGURED', 'EBAY_CLIENT_ID / EBAY_CLIENT_SECRET are not set', { status: 503 });
    const basic = Buffer.from(`${options.clientId}:${options.clientSecret}`).toString('base64');
    const body = await requestJson<{ access_token?: string; expires_in?: number }>('EBAY', new URL('/identity/v1/oauth2/token', options.baseUrl).toString(), {
      method: 'POST',
      headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'https://api.ebay.com/oauth/api_scope' }).toString(),
    });
    if (!body.access_token) throw transientFailure('EBAY_BAD_RESPONSE', 'eBay token response has no access_token');
    appToken = { token: body.access_token, expiresAt: Date.now() + Math.max(0, (body.expires_in ?? 7200) - 60) * 1000 };
    return body.access_token;
  }

  async function publicKey(kid: string): Promise<KeyObject | undefined> {
    const cached = keys.get(kid);
    if (cached && cached.expiresAt > Date.now()) return cached.key;
    let body: { key?: string; algorithm?: string };
    try {
      body = await requestJson('EBAY', new URL(`/commerce/notification/v1/public_key/${encodeURIComponent(kid)}`, options.baseUrl).toString(), {
        headers: { Authorization: `Bearer ${await applicationToken()}` },
      });
    } catch (error) {
      if (error instanceof AppError && error.code === 'NOT_FOUND_AT_MARKETPLACE') return undefined; // unknown kid: not eBay's
      if (error instanceof AppError && error.code === 'SELLER_TOKEN_REJECTED') appToken = undefined;
      throw error;
    }
    if (!body.key) return undefined;
    const key = createPublicKey(toPem(body.key));
    keys.set(kid, { key, expiresAt: Date.now() + options.keyTtlSeconds * 1000 });
    return key;
  }

  return {
    async verifySignature(header, parsedBody) {
      if (!header) return false;
      let sig: { alg?: string; kid?: string; signature?: string; digest?: string };
      try {
        sig = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as typeof sig;
      } catch {
        return false;
      }
      if (typeof sig.kid !== 'string' || !sig.kid || typeof sig.signature !== 'string') return false;
      if (sig.alg && sig.alg.toLowerCase() !== 'ecdsa') return false;
      if (sig.digest && sig.digest.toUpperCase() !== 'SHA1') return false;
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

/** eBay publishes the key on one line: put the line breaks PEM needs after BEGIN and before END. */
export function toPem(oneLine: string): string {
  const body = oneLine.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  const wrapped = body.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN PUBLIC KEY-----\n${wrapped}\n-----END PUBLIC KEY-----\n`;
}
