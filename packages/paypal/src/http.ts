import { AppError, callHttp, transientFailure, type OutboundResponse } from '@postsale/runtime';
import type { PayPalTokenClient } from './token-client';

/** PayPal's error body `{name, message, debug_id, details[{issue, field, description}]}` as a typed error. */
export class PayPalApiError extends AppError {
  constructor(
    readonly httpStatus: number,
    readonly paypalName: string | undefined,
    readonly issues: string[],
    readonly debugId: string | undefined,
    message: string,
  ) {
    // 5xx and 429 may pass; other answers are PayPal's verdict on the request.
    const retriable = httpStatus >= 500 || httpStatus === 429;
    super(retriable ? 'PAYPAL_UNAVAILABLE' : 'PAYPAL_REJECTED', message, { status: retriable ? 503 : 502, retriable });
  }

  hasIssue(issue: string): boolean {
    return this.issues.includes(issue);
  }
}

export interface PayPalRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * One authenticated JSON call to PayPal. A 401 (stale token) invalidates the cached token and retries once with a new
 * one; network failures and 5xx become retriable errors; other non-2xx become a `PayPalApiError` with PayPal's issues.
 */
export async function paypalRequest<T = unknown>(baseUrl: string, tokens: PayPalTokenClient, request: PayPalRequest): Promise<{ status: number; body: T }> {
  for (let attempt = 0; ; attempt++) {
    const token = await tokens.getToken();
    let response: OutboundResponse;
    try {
      response = await callHttp(new URL(request.path, baseUrl), {
        method: request.method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json', ...request.headers },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        timeoutMs: request.timeoutMs ?? 15_000,
      });
    } catch (error) {
      throw transientFailure('PAYPAL_UNREACHABLE', `PayPal ${request.method} ${request.path} could not be completed`, error);
    }
    const text = response.text;
    if (response.status === 401 && attempt === 0) {
      tokens.invalidate();
      continue;
    }
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = { raw: text.slice(0, 200) };
    }
    if (response.ok) return { status: response.status, body: body as T };
    const err = body as { name?: string; message?: string; debug_id?: string; details?: Array<{ issue?: string }> };
    const issues = (err.details ?? []).map((d) => d.issue).filter((i): i is string => typeof i === 'string');
    throw new PayPalApiError(response.status, err.name, issues, err.debug_id, `PayPal ${request.method} ${request.path} answered ${response.status}${err.name ? ` ${err.name}` : ''}${issues.length ? ` (${issues.join(', ')})` : ''}`);
  }
}
