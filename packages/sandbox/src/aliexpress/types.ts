import type { FailureMode } from '../fake-server';

/** Order statuses as `aliexpress.trade.ds.order.get` reports them (the subset this fake moves through). */
export type AliExpressOrderStatus =
  | 'PLACE_ORDER_SUCCESS' // created, awaiting payment
  | 'PAYMENT_PROCESSING'
  | 'RISK_CONTROL'
  | 'WAIT_SELLER_SEND_GOODS' // paid
  | 'WAIT_BUYER_ACCEPT_GOODS' // shipped
  | 'FINISH' // completed OR closed: `end_reason` on the child orders says which (Corrections)
  | 'IN_CANCEL'
  // Corrections: more statuses exist; a hold (risk review, group buy) waits, an incomplete address needs the buyer
  | 'RISK_CONTROL_HOLD'
  | 'WAIT_GROUP'
  | 'WAIT_COMPLETE_ADDRESS';

/**
 * `end_reason` on a FINISH order's child orders (Corrections: "FINISH means completed OR closed"). A completed order
 * ends with buyer_accept_goods (or its timeout); every other value is a closed order — nothing was delivered.
 */
export type AliExpressEndReason =
  | 'buyer_accept_goods'
  | 'buyer_accept_goods_timeout'
  | 'cancel_order_close_trade'
  | 'seller_send_goods_timeout'
  | 'buyer_cancel_notpay_order'
  | 'risk_reject_closed'
  | 'pay_timeout';

/** What happens to orders created from now on that ask to be paid (`try_to_pay: true`, or any web order). */
export type PaymentOutcome = 'settle' | 'stay-unpaid' | 'risk-control';

/** A price or stock table keyed by ship-to country (ISO 2); `default` applies to every other country. */
export type CountryTable<T> = { default: T } & Partial<Record<string, T>>;

export interface SkuSeed {
  skuId: string;
  /** AliExpress's attribute string, e.g. "14:193#Black;5:100014064"; what order.create's `sku_attr` must match */
  skuAttr: string;
  /** decimal strings, e.g. { US: "10.00", CL: "11.00", default: "10.50" } */
  prices: CountryTable<string>;
  /** the list price before the sale price (`sku_price`); the sale price (`offer_sale_price`) is `prices` */
  listPrices?: CountryTable<string>;
  currency?: string; // default USD
  /** a number applies to every country; a table lets stock differ per ship-to country */
  stock: number | CountryTable<number>;
  /** freight of the product's standard service for one unit, per country; default "0.00" (free shipping) */
  shippingCost?: CountryTable<string>;
}

export interface ProductSeed {
  productId: string;
  subject: string;
  skus: SkuSeed[];
  /** delivery services one can name in `logistics_service_name`; default ["CAINIAO_STANDARD"] */
  logisticsServices?: string[];
  /** estimated delivery days per country; default { default: 15 } */
  deliveryDays?: CountryTable<number>;
  shipFromCountry?: string; // default CN
  /** ship-to countries no delivery option reaches: freight.query answers {code:505, msg:"DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS"} */
  undeliverableTo?: string[];
}

export interface LogisticsAddress {
  address?: string;
  address2?: string;
  city?: string;
  province?: string;
  country?: string;
  zip?: string;
  contact_person?: string;
  full_name?: string;
  mobile_no?: string;
  phone_country?: string;
  cpf?: string;
  tax_number?: string;
  [extra: string]: string | undefined;
}

export interface SupplierOrderItem {
  productId: string;
  skuId: string;
  skuAttr: string;
  quantity: number;
  unitPrice: string;
  freight: string;
  logisticsServiceName: string;
  memo?: string;
}

export interface TrackingEvent {
  at: number;
  name: string;
  desc: string;
}

/** A supplier order as the fake stores it; accessors hand out copies. */
export interface SupplierOrder {
  /** 16 digits, below 2^53 so a JSON number survives JSON.parse */
  orderId: string;
  account: string;
  channel: 'api' | 'web';
  /** the app that created it (API orders only) */
  appKey?: string;
  /** the API's idempotency key (API orders) */
  outOrderId?: string;
  /** the web checkout's "note to seller" (web orders); the bot puts our out_order_id there */
  memo?: string;
  items: SupplierOrderItem[];
  address: LogisticsAddress;
  amount: { amount: string; currency: string };
  status: AliExpressOrderStatus;
  tryToPay: boolean;
  createdAt: number;
  paidAt?: number;
  cancelledAt?: number;
  /** set when the order is FINISH: how it ended (completed or closed) */
  endReason?: AliExpressEndReason;
  shipment?: { carrier: string; trackingNumber: string; shippedAt: number; events: TrackingEvent[] };
}

/**
 * Failure injection for one API method (the gateway is a single route, so path-based rules cannot tell
 * order.create from product.get). The HTTP modes behave as in fake-server; two more answer like AliExpress does.
 */
export type MethodFailureMode =
  | FailureMode
  /** answer `{"error_response": {...}}` before the handler runs */
  | { kind: 'gateway-error'; code: string; msg?: string; subCode?: string; subMsg?: string; type?: 'ISV' | 'ISP' | 'SYSTEM' }
  /**
   * answer `{"<method>_response": {"result": {"is_success": false, error_code, error_msg}}}` without side effects; also
   * the codes the Corrections list for order.create: `B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_*`, `A001`…`A006`
   */
  | { kind: 'business-error'; errorCode: string; errorMsg?: string }
  /**
   * answer an error FLAT, `{type, code, message, request_id}` with no envelope: the shape the `/rest` system endpoints
   * use (external-apis.md "Corrections", "AliExpress Dropshipping"); no side effects
   */
  | { kind: 'flat-error'; code: string; message?: string; type?: 'ISV' | 'ISP' | 'SYSTEM' };

export interface AliExpressFakeOptions {
  port?: number;
  /** calls per app per day (the day ends at midnight Beijing time, UTC+8); default 1,000,000 */
  dailyQuota?: number;
  /**
   * A repeated `out_order_id` (same account, within the idempotency window). 'repeated-order-error' (DEFAULT, the real
   * behaviour: external-apis.md "Corrections", AliExpress's `ds.order.create` doc page and IOP SDK) answers
   * is_success:false, error_code REPEATED_ORDER_ERROR, "Repeated placed order – request already been handled
   * successfully", and NO order id. 'return-existing' (not what AliExpress does; kept only to show the old
   * assumption) answers the same success with the existing order id.
   */
  duplicateOutOrderIdBehaviour?: 'return-existing' | 'repeated-order-error';
  /** time from a paid-for order's creation until its payment settles (PAYMENT_PROCESSING → WAIT_SELLER_SEND_GOODS); default 0 */
  paymentSettleAfterMs?: number;
  /** order.get fails for this long after an order is created (a real quirk, ~10 s); default 0 */
  orderQueryLagMs?: number;
  /** how long an out_order_id (or web memo) stays an idempotency key; default 24 h */
  idempotencyWindowMs?: number;
  /** the fake's clock, for tests that move time instead of sleeping; default Date.now */
  now?: () => number;
}

export interface WebCheckoutSwitches {
  /** placing an order shows "payment declined" and creates no order */
  paymentDeclined?: boolean;
  /** the checkout page shows a captcha instead of the place-order form */
  captcha?: boolean;
  /** the confirmation is answered this much later, AFTER the order was created */
  slowMs?: number;
}
