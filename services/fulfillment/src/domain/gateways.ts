import type { MarketplaceToken } from './records';

/**
 * The outside systems as the fulfillment domain needs them: the supplier's API, its web checkout and the marketplaces'
 * tracking endpoints. clients/ implements these; the failure types are part of each port's contract.
 */

// --- the supplier API (AliExpress Dropshipping), one per seller and job, from that seller's credentials ---

/**
 * How a supplier call failed:
 * - UNKNOWN: we cannot tell whether the call took effect (timeout, dropped connection, 5xx, system errors) — for a
 *   purchase this must be resolved with the supplier before anything else;
 * - RETRIABLE: it certainly did not take effect and may work later (quota, rate limit, "order not found yet");
 * - PERMANENT: a refusal that will not change by itself (bad credentials, unknown product, …).
 */
export type SupplierFailureKind = 'UNKNOWN' | 'RETRIABLE' | 'PERMANENT';

export class SupplierCallError extends Error {
  constructor(
    readonly kind: SupplierFailureKind,
    readonly code: string,
    message: string,
    readonly auth = false,
  ) {
    super(message);
    this.name = 'SupplierCallError';
  }
}

export interface SupplierSku {
  skuId: string;
  skuAttr: string;
  /** decimal string as the supplier wrote it */
  price: string;
  currency: string;
  stock: number;
}

export interface SupplierProduct {
  productId: string;
  onSelling: boolean;
  skus: SupplierSku[];
}

export interface FreightOption {
  code: string;
  fee: string;
  currency: string;
}

export interface CreateOrderInput {
  outOrderId: string;
  address: Record<string, string>;
  items: Array<{ productId: string; quantity: number; skuAttr: string; logisticsServiceName?: string; memo?: string }>;
  payCurrency?: string;
}

export type CreateOrderResult = { ok: true; orderId: string; raw: unknown } | { ok: false; errorCode: string; errorMsg: string; raw: unknown };

export interface SupplierOrderStatus {
  orderId: string;
  status: string;
  logisticsStatus: string | null;
  amount: { amount: string; currency: string } | null;
  /** `end_reason` of each child order that has one: with FINISH it tells completed from closed (external-apis.md "Corrections") */
  endReasons: string[];
}

export interface TrackingInfo {
  carrier: string;
  trackingNumber: string;
  events: Array<{ at: number | null; name: string; desc: string }>;
}

/** The supplier API as the use cases need it. Failures throw SupplierCallError. */
export interface SupplierApi {
  getProduct(productId: string, shipToCountry: string, targetCurrency?: string): Promise<SupplierProduct>;
  getFreight(input: { productId: string; skuId: string; quantity: number; shipToCountry: string }): Promise<FreightOption[]>;
  createOrder(input: CreateOrderInput): Promise<CreateOrderResult>;
  getOrder(orderId: string): Promise<SupplierOrderStatus>;
  getTracking(orderId: string): Promise<TrackingInfo[]>;
}

// --- the supplier's web checkout (the browser fallback) ---

export interface WebLogin {
  email: string;
  password: string;
}

export interface BrowserOrderInput {
  productId: string;
  skuAttr: string;
  quantity: number;
  /** the idempotency key, typed into the "note to seller" */
  memo: string;
  address: { full_name: string; address: string; address2?: string; city: string; province?: string; zip: string; country: string; mobile_no?: string };
}

export type BrowserCheckoutResult =
  | { outcome: 'PLACED'; orderId: string; amount: string | null; currency: string | null; status: string | null; duplicate: boolean }
  /** the site refused (captcha, payment declined, validation error): nothing was bought */
  | { outcome: 'REFUSED'; code: string; message: string }
  /** we could not see the confirmation: an order may or may not exist; resolve by memo */
  | { outcome: 'UNKNOWN'; code: string; message: string };

export interface WebOrderRow {
  orderId: string;
  status: string;
  memo: string;
  total: string;
}

export interface WebCheckout {
  placeOrder(login: WebLogin, input: BrowserOrderInput): Promise<BrowserCheckoutResult>;
  findOrdersByMemo(login: WebLogin, memo: string): Promise<WebOrderRow[]>;
}

/** The web login was refused: nothing was attempted. */
export class BrowserLoginError extends Error {
  constructor() {
    super('the supplier web login was refused');
    this.name = 'BrowserLoginError';
  }
}

// --- the marketplaces' tracking endpoints ---

export interface TrackingPushInput {
  externalOrderId: string;
  lines: Array<{ lineId: string; quantity: number }>;
  carrier: string;
  trackingNumber: string;
  shippedAt: Date;
}

export class MarketplacePushError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** worth trying again: transient, or fixable by an operator (a token) */
    readonly retriable: boolean,
    /** the cause passes by itself (network, timeout, 5xx, 429): retried for as long as it lasts, never given up */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'MarketplacePushError';
  }
}

/** Pushes tracking to the marketplace an order came from, with the seller's own token; failures throw MarketplacePushError. */
export interface MarketplaceTracking {
  push(marketplace: string, token: MarketplaceToken, input: TrackingPushInput): Promise<Record<string, unknown>>;
}
