import { createPayPalTokenClient, paypalRequest, PayPalApiError, type PayPalTokenClient } from '@postsale/paypal';
import { AppError } from '@postsale/runtime';
import type { PayPalOrder } from '../domain/paypal-order.mapper';
import type { PayPalCheckoutApi } from '../domain/ports';

/** The checkout port, plus the token client the webhook verifier shares (one PayPal token cache). */
export interface PayPalCheckoutClient extends PayPalCheckoutApi {
  readonly tokens: PayPalTokenClient;
}

/** Derived from the PayPal order id: a retried capture (after a timeout or crash) replays the first one at PayPal. */
export function captureRequestId(paypalOrderId: string): string {
  return `postsale-capture-${paypalOrderId}`;
}

export function createPayPalCheckoutClient(options: { baseUrl: string; clientId: string; clientSecret: string }): PayPalCheckoutClient {
  const tokens = createPayPalTokenClient({ baseUrl: options.baseUrl, clientId: options.clientId, clientSecret: options.clientSecret });
  const getOrder = async (id: string) => {
    try {
      return (await paypalRequest<PayPalOrder>(options.baseUrl, tokens, { method: 'GET', path: `/v2/checkout/orders/${encodeURIComponent(id)}` })).body;
    } catch (error) {
      if (error instanceof PayPalApiError && error.httpStatus === 404) throw new AppError('NOT_FOUND_AT_MARKETPLACE', 'PayPal does not know this order', { status: 404 });
      throw error;
    }
  };
  return {
    tokens,
    getOrder,
    async capture(id) {
      const send = () =>
        paypalRequest<PayPalOrder>(options.baseUrl, tokens, {
          method: 'POST',
          path: `/v2/checkout/orders/${encodeURIComponent(id)}/capture`,
          body: {},
          headers: { 'PayPal-Request-Id': captureRequestId(id), Prefer: 'return=representation' },
        });
      try {
        let answer;
        try {
          answer = await send();
        } catch (error) {
          // A lost answer (connection cut, timeout) or a 5xx: PayPal may have captured. The Orders API resolves it by
          // replaying the SAME PayPal-Request-Id (kept 6 h; a replay answers 200 with the capture, never a second
          // capture): asked once more here, then the storefront's own retry asks again with the same id.
          if (error instanceof PayPalApiError && error.httpStatus < 500) throw error;
          answer = await send();
        }
        return { kind: 'captured', order: answer.body };
      } catch (error) {
        if (error instanceof PayPalApiError && error.hasIssue('ORDER_ALREADY_CAPTURED')) return { kind: 'already-captured', order: await getOrder(id) };
        if (error instanceof PayPalApiError && error.httpStatus === 404) throw new AppError('NOT_FOUND_AT_MARKETPLACE', 'PayPal does not know this order', { status: 404 });
        if (error instanceof PayPalApiError && error.httpStatus === 422) return { kind: 'refused', issue: error.issues[0] ?? 'UNPROCESSABLE_ENTITY' };
        throw error;
      }
    },
  };
}
