import { callHttp } from '@postsale/runtime';
import {
  SupplierCallError, type CreateOrderInput, type CreateOrderResult, type FreightOption, type SupplierApi, type SupplierOrderStatus, type SupplierProduct, type TrackingInfo,
} from '../domain/ports';
import { aliExpressSignature } from './aliexpress-sign';

// the port's types and failure, re-exported for callers that build the client
export { SupplierCallError };
export type { CreateOrderInput, CreateOrderResult, FreightOption, SupplierOrderStatus, SupplierProduct, TrackingInfo };

/**
 * AliExpress Dropshipping API client. One instance per seller and job, built from that seller's own credentials: no
 * shared mutable state between sellers (lesson 21). Every answer of the gateway is HTTP 200; success and refusal are
 * told apart by the body. Failures are classified for the caller:
 * - UNKNOWN: we cannot tell whether the call took effect (timeout, dropped connection, 5xx, system errors) — for a
 *   purchase this must be resolved with the supplier before anything else;
 * - RETRIABLE: it certainly did not take effect and may work later (quota, rate limit, "order not found yet");
 * - PERMANENT: a refusal that will not change by itself (bad credentials, unknown product, …).
 */
export interface AliExpressCredentials {
  appKey: string;
  appSecret: string;
  accessToken: string;
}

export interface AliExpressClientOptions {
  gatewayUrl: string;
  credentials: AliExpressCredentials;
  timeoutMs: number;
  /** runs before every call: the seller's rate limit and daily quota (may throw a RETRIABLE SupplierCallError) */
  beforeCall?: (method: string) => Promise<void>;
  /** metrics hook */
  observe?: (method: string, outcome: string, seconds: number) => void;
  now?: () => number;
}

// Gateway error codes that say nothing happened and a later call may work.
const RETRIABLE_GATEWAY_CODES = new Set(['ApiCallLimit', 'AppCallLimit', 'ServiceUnavailable', 'isp.app-call-limited', 'FrequencyLimited']);
const AUTH_CODES = new Set(['IllegalAccessToken', 'InvalidAppKey', 'IncompleteSignature', 'InsufficientPermission']);
/**
 * order.create refusals about the order itself (external-apis.md "Corrections"): Brazilian CPF checks and A001…A006.
 * Whatever the envelope or `type` they arrive with, they are business refusals: nothing was placed and repeating the
 * same request gets the same answer, so never retried as transient — the order goes to review with the code.
 */
export function isBusinessRefusalCode(code: string): boolean {
  return /^B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_/.test(code) || /^A00[1-6]$/.test(code);
}

export class AliExpressDsClient implements SupplierApi {
  constructor(private readonly options: AliExpressClientOptions) {}

  async getProduct(productId: string, shipToCountry: string, targetCurrency?: string): Promise<SupplierProduct> {
    const result = await this.call('aliexpress.ds.product.get', {
      product_id: productId,
      ship_to_country: shipToCountry,
      target_language: 'en',
      ...(targetCurrency ? { target_currency: targetCurrency } : {}),
    });
    const base = record(result.ae_item_base_info_dto);
    const skus = list(result.ae_item_sku_info_dtos).map((raw) => {
      const sku = record(raw);
      const currency = text(sku.currency_code) || text(base.currency_code);
      return {
        skuId: text(sku.sku_id),
        skuAttr: text(sku.sku_attr) || text(sku.id),
        // offer_sale_price is what the order will cost; sku_price is the list price before the discount
        price: text(sku.offer_sale_price) || text(sku.sku_price),
        currency,
        stock: Number(sku.sku_available_stock ?? 0),
      };
    });
    return { productId: text(base.product_id) || productId, onSelling: text(base.product_status_type) === 'onSelling', skus };
  }

  async getFreight(input: { productId: string; skuId: string; quantity: number; shipToCountry: string }): Promise<FreightOption[]> {
    const result = await this.call('aliexpress.ds.freight.query', {
      queryDeliveryReq: JSON.stringify({
        productId: input.productId,
        selectedSkuId: input.skuId,
        quantity: input.quantity,
        shipToCountry: input.shipToCountry,
      }),
    });
    if (result.success === false || result.success === 'false') {
      throw new SupplierCallError('PERMANENT', text(result.code) || 'FREIGHT_QUERY_FAILED', text(result.msg) || 'no delivery option');
    }
    // Corrections: no service reaches the address → a flat {code:505, msg:"DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS"}
    if (result.success === undefined && result.delivery_options === undefined && result.code !== undefined) {
      throw new SupplierCallError('PERMANENT', text(result.msg) || `FREIGHT_${text(result.code)}`, `no delivery option to this address (code ${text(result.code)})`);
    }
    return list(result.delivery_options).map((raw) => {
      const option = record(raw);
      const currency = text(option.shipping_fee_currency);
      // "USD 2.50" is unambiguous; shipping_fee_cent's unit is undocumented, so it is only the fallback
      const formatted = /^([A-Z]{3})\s+(\d+(?:\.\d+)?)$/.exec(text(option.shipping_fee_format));
      return {
        code: text(option.code),
        fee: formatted ? formatted[2]! : text(option.shipping_fee_cent),
        currency: formatted ? formatted[1]! : currency,
      };
    });
  }

  async createOrder(input: CreateOrderInput): Promise<CreateOrderResult> {
    const request = {
      out_order_id: input.outOrderId,
      logistics_address: input.address,
      product_items: input.items.map((item) => ({
        product_id: item.productId,
        product_count: item.quantity,
        sku_attr: item.skuAttr,
        ...(item.logisticsServiceName ? { logistics_service_name: item.logisticsServiceName } : {}),
        ...(item.memo ? { order_memo: item.memo } : {}),
      })),
    };
    // try_to_pay: ask AliExpress to charge the account's payment method; settlement is tracked separately
    const payment = { try_to_pay: true, ...(input.payCurrency ? { pay_currency: input.payCurrency } : {}) };
    const result = await this.call('aliexpress.ds.order.create', {
      param_place_order_request4_open_api_d_t_o: JSON.stringify(request),
      ds_extend_request: JSON.stringify({ payment }),
    });
    const success = result.is_success === true || result.is_success === 'true';
    if (!success) {
      return { ok: false, errorCode: text(result.error_code) || 'UNKNOWN_ERROR', errorMsg: text(result.error_msg), raw: result };
    }
    const numbers = list(result.order_list);
    const orderId = text(numbers[0]);
    // accepted without an order number: we cannot know what exists — treat as unknown and resolve
    if (!orderId) throw new SupplierCallError('UNKNOWN', 'NO_ORDER_NUMBER', 'order.create succeeded without an order number');
    return { ok: true, orderId, raw: result };
  }

  async getOrder(orderId: string): Promise<SupplierOrderStatus> {
    const result = await this.call('aliexpress.trade.ds.order.get', { single_order_query: JSON.stringify({ order_id: orderId }) });
    const amount = record(result.order_amount);
    return {
      orderId,
      status: text(result.order_status),
      logisticsStatus: text(result.logistics_status) || null,
      amount: text(amount.amount) ? { amount: text(amount.amount), currency: text(amount.currency_code) } : null,
      endReasons: list(result.child_order_list).map((c) => text(record(c).end_reason)).filter(Boolean),
    };
  }

  async getTracking(orderId: string): Promise<TrackingInfo[]> {
    const result = await this.call('aliexpress.ds.order.tracking.get', { ae_order_id: orderId, language: 'en_US' });
    if (result.ret === false || result.ret === 'false') {
      throw new SupplierCallError('RETRIABLE', text(result.code) || 'TRACKING_UNAVAILABLE', text(result.msg) || 'tracking unavailable');
    }
    const data = record(result.data);
    return list(data.tracking_detail_line_list).map((raw) => {
      const detail = record(raw);
      return {
        carrier: text(detail.carrier_name),
        trackingNumber: text(detail.mail_no),
        events: list(detail.detail_node_list).map((n) => {
          const node = record(n);
          return { at: node.time_stamp === undefined ? null : Number(node.time_stamp), name: text(node.tracking_name), desc: text(node.tracking_detail_desc) };
        }),
      };
    });
  }

  /** One signed gateway call; returns `<method>_response.result` or throws a classified SupplierCallError. */
  private async call(method: string, business: Record<string, string>): Promise<Record<string, unknown>> {
    const { credentials } = this.options;
    await this.options.beforeCall?.(method);
    const params: Record<string, string> = {
      ...business,
      method,
      app_key: credentials.appKey,
      // the official IOP SDKs send the token as `session` (external-apis.md "Corrections"); so do we
      session: credentials.accessToken,
      timestamp: String((this.options.now ?? Date.now)()),
      sign_method: 'sha256',
    };
    params.sign = aliExpressSignature(params, credentials.appSecret);
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    let body: string;
    try {
      const response = await callHttp(this.options.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
        body: new URLSearchParams(params),
        timeoutMs: this.options.timeoutMs,
      });
      body = response.text;
      if (response.status >= 500) {
        this.options.observe?.(method, 'http_5xx', seconds());
        throw new SupplierCallError('UNKNOWN', `HTTP_${response.status}`, `gateway answered HTTP ${response.status}`);
      }
      if (response.status >= 400) {
        this.options.observe?.(method, 'http_4xx', seconds());
        throw new SupplierCallError(response.status === 429 ? 'RETRIABLE' : 'PERMANENT', `HTTP_${response.status}`, `gateway answered HTTP ${response.status}`);
      }
    } catch (error) {
      if (error instanceof SupplierCallError) throw error;
      const timeout = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      this.options.observe?.(method, timeout ? 'timeout' : 'network_error', seconds());
      throw new SupplierCallError('UNKNOWN', timeout ? 'TIMEOUT' : 'NETWORK_ERROR', timeout ? `no answer within ${this.options.timeoutMs} ms` : 'connection failed');
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = record(JSON.parse(quoteLongIntegers(body)));
    } catch {
      this.options.observe?.(method, 'bad_body', seconds());
      throw new SupplierCallError('UNKNOWN', 'UNPARSEABLE_RESPONSE', 'the gateway answered something that is not JSON');
    }
    const envelopeKey = `${method.replace(/\./g, '_')}_response`;
    // Errors come as the gateway's {error_response:{type, code, msg, sub_code, sub_msg}} or FLAT as the /rest endpoints
    // answer them, {type, code, message, request_id} (Corrections): a body with a `code` and no success envelope.
    const flat = !parsed.error_response && parsed[envelopeKey] === undefined && parsed.code !== undefined && parsed.code !== null && text(parsed.code) !== '0';
    const error = parsed.error_response ? record(parsed.error_response) : flat ? parsed : undefined;
    if (error) {
      const code = text(error.code);
      const subCode = text(error.sub_code);
      this.options.observe?.(method, 'gateway_error', seconds());
      const message = [text(error.msg) || text(error.message), text(error.sub_msg)].filter(Boolean).join(': ') || code;
      if (AUTH_CODES.has(code)) throw new SupplierCallError('PERMANENT', code, message, true);
      const business = [code, subCode].find(isBusinessRefusalCode);
      if (business) throw new SupplierCallError('PERMANENT', business, message);
      if (code === 'ORDER_NOT_FOUND') throw new SupplierCallError('RETRIABLE', code, message);
      if (RETRIABLE_GATEWAY_CODES.has(code) || RETRIABLE_GATEWAY_CODES.has(subCode)) throw new SupplierCallError('RETRIABLE', code, message);
      // SYSTEM/ISP errors: the platform failed; whether a write happened is unknown
      if (text(error.type) === 'SYSTEM' || text(error.type) === 'ISP') throw new SupplierCallError('UNKNOWN', code || 'GATEWAY_ERROR', message);
      throw new SupplierCallError('PERMANENT', code || 'GATEWAY_ERROR', message);
    }
    const envelope = record(parsed[envelopeKey]);
    this.options.observe?.(method, 'ok', seconds());
    return record(envelope.result ?? envelope);
  }
}

/** 16+ digit integers lose digits in JSON.parse; supplier order ids are such numbers, so they are read as text. */
function quoteLongIntegers(json: string): string {
  return json.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"');
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

/** Real responses wrap lists in a type-named object ({number: [...]}); documentation samples show bare arrays. */
function list(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  const entries = Object.values(record(value));
  const inner = entries.find(Array.isArray);
  return (inner as unknown[] | undefined) ?? (entries.length === 1 && entries[0] !== undefined ? [entries[0]] : []);
}
