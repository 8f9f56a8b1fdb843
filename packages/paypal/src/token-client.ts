import { AppError, callHttp, transientFailure, type OutboundResponse } from '@postsale/runtime';

/**
 * PayPal REST access tokens (OAuth2 client credentials). One token is cached per client until shortly before it
 * expires; concurrent callers share one in-flight request. Create one client per PayPal app (credentials), never
 * share one across sellers with different apps.
 */
export interface PayPalTokenClient {
  /** a valid access token, fetched or from cache */
  getToken(): Promise<string>;
  /** forget the cached token (after a 401 from an API call) */
  invalidate(): void;
}

export interface PayPalTokenClientOptions {
  /** e.g. https://api-m.paypal.com or the sandbox fake's url */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** renew this many seconds before `expires_in` runs out (default 60) */
  refreshMarginSeconds?: number;
  timeoutMs?: number;
  now?: () => number;
}

export function createPayPalTokenClient(options: PayPalTokenClientOptions): PayPalTokenClient {
  const margin = (options.refreshMarginSeconds ?? 60) * 1000;
  const now = options.now ?? Date.now;
  let cached: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const basic = Buffer.from(`${options.clientId}:${options.clientSecret}`).toString('base64');
    let response: OutboundResponse;
    try {
      response = await callHttp(new URL('/v1/oauth2/token', options.baseUrl), {
        method: 'POST',
        headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: 'grant_type=client_credentials',
        timeoutMs: options.timeoutMs ?? 10_000,
      });
    } catch (error) {
      throw transientFailure('PAYPAL_UNREACHABLE', 'PayPal token endpoint could not be reached', error);
    }
    const text = response.text;
    if (response.status === 401 || response.status === 400) {
      // Wrong credentials do not fix themselves: not retriable.
      throw new AppError('PAYPAL_AUTH_FAILED', `PayPal refused the client credentials (${response.status})`, { status: 502 });
    }
    if (!response.ok) throw transientFailure('PAYPAL_UNAVAILABLE', `PayPal token endpoint answered ${response.status}`);
    let body: { access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (error) {
      throw transientFailure('PAYPAL_BAD_RESPONSE', 'PayPal token response is not JSON', error);
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw transientFailure('PAYPAL_BAD_RESPONSE', 'PayPal token response has no access_token');
    }
    const ttlMs = (typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in ?? 0)) * 1000;
    cached = { token: body.access_token, expiresAt: now() + Math.max(0, ttlMs - margin) };
    return body.access_token;
  }

  return {
    async getToken() {
      if (cached && cached.expiresAt > now()) return cached.token;
      inFlight ??= fetchToken().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
    invalidate() {
      cached = undefined;
    },
  };
}
