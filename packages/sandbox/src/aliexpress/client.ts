import { withAliExpressSignature, type AliExpressParams } from './sign';

/**
 * A minimal signed call, for tests, the demo and the benchmark that need to talk to the fake without the real
 * fulfillment client. It is deliberately thin: no retries, no parsing beyond JSON.
 */
export interface AliExpressCallOptions {
  gatewayUrl: string;
  appKey: string;
  appSecret: string;
  accessToken?: string;
  /** POST sends a form body (default); GET puts everything in the query string */
  httpMethod?: 'GET' | 'POST';
  /** epoch ms; default Date.now() */
  timestamp?: number;
  signal?: AbortSignal;
  /** send the token as `session` (what the official IOP SDKs do) instead of `access_token` */
  tokenParam?: 'access_token' | 'session';
}

export async function callAliExpress(
  options: AliExpressCallOptions,
  method: string,
  businessParams: AliExpressParams = {},
): Promise<Record<string, unknown>> {
  const params = withAliExpressSignature(
    {
      ...businessParams,
      method,
      app_key: options.appKey,
      [options.tokenParam ?? 'access_token']: options.accessToken,
      timestamp: String(options.timestamp ?? Date.now()),
      sign_method: 'sha256',
    },
    options.appSecret,
  );
  const body = new URLSearchParams(params);
  const response =
    options.httpMethod === 'GET'
      ? await fetch(`${options.gatewayUrl}?${body.toString()}`, { signal: options.signal })
      : await fetch(options.gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
          body,
          signal: options.signal,
        });
  return (await response.json()) as Record<string, unknown>;
}

export interface OrderCreateInput {
  outOrderId?: string;
  address: Record<string, string>;
  items: Array<{ productId: string; quantity: number; skuAttr?: string; logisticsServiceName?: string; memo?: string }>;
  tryToPay?: boolean;
  payCurrency?: string;
}

/** The two JSON-string parameters of aliexpress.ds.order.create, built the documented way. */
export function orderCreateParams(input: OrderCreateInput): Record<string, string> {
  const request = {
    ...(input.outOrderId !== undefined ? { out_order_id: input.outOrderId } : {}),
    logistics_address: input.address,
    product_items: input.items.map((i) => ({
      product_id: i.productId,
      product_count: i.quantity,
      ...(i.skuAttr !== undefined ? { sku_attr: i.skuAttr } : {}),
      ...(i.logisticsServiceName !== undefined ? { logistics_service_name: i.logisticsServiceName } : {}),
      ...(i.memo !== undefined ? { order_memo: i.memo } : {}),
    })),
  };
  const payment = { try_to_pay: input.tryToPay ?? false, ...(input.payCurrency ? { pay_currency: input.payCurrency } : {}) };
  return {
    param_place_order_request4_open_api_d_t_o: JSON.stringify(request),
    ds_extend_request: JSON.stringify({ payment }),
  };
}
