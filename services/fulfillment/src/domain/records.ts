import type { Address, Money, OrderLine } from '@postsale/contracts';
import type { State } from './states';

/** The records the fulfillment domain owns. db/ maps its rows to and from these; nothing here knows a column. */

/** A fulfillment as the domain sees it: typed, money as Money, bigint columns checked. */
export interface Fulfillment {
  orderId: string;
  sellerId: string;
  marketplace: string | null;
  externalOrderId: string | null;
  marketplaceAccountId: string | null;
  state: State;
  stateSince: Date;
  reasonCode: string | null;
  reasonDetails: unknown;
  lines: OrderLine[];
  shipTo: Address | null;
  shipToIssue: string | null;
  saleAmount: Money | null;
  /** the order's marketplace and payment fees (null: the marketplace did not say) */
  marketplaceFee: Money | null;
  paymentFee: Money | null;
  outOrderId: string | null;
  channel: string | null;
  supplierOrderId: string | null;
  supplierCost: Money | null;
  approvedMax: Money | null;
  purchaseAttempts: number;
  statusChecks: number;
  nextRunAt: Date | null;
  carrier: string | null;
  trackingNumber: string | null;
  cancelRequested: boolean;
  receivedAt: Date | null;
  purchasedAt: Date | null;
  shippedAt: Date | null;
  /** the fencing token of the current lease: incremented by every claim, checked by every commit of a claimed job */
  leaseVersion: number;
}

/** One purchase attempt: the intent (channel and idempotency key pinned) committed before the supplier call. */
export interface Attempt {
  id: string;
  attemptNo: number;
  kind: 'CREATE' | 'RESOLVE';
  channel: string;
  outOrderId: string;
  outcome: 'PENDING' | 'CREATED' | 'REJECTED' | 'UNKNOWN' | 'NOT_PLACED' | 'PLACED';
  supplierOrderId: string | null;
  supplierCode: string | null;
  startedAt: Date;
}

export interface NewFulfillment {
  orderId: string;
  sellerId: string;
  marketplace: string;
  externalOrderId: string;
  marketplaceAccountId: string;
  lines: OrderLine[];
  shipTo: Address | null;
  shipToIssue: string | null;
  saleAmount: Money;
  marketplaceFee?: Money | null;
  paymentFee?: Money | null;
  outOrderId: string;
  receivedAt: Date;
}

/** Fields changed together with a transition (or alone, in the same state). */
export interface FulfillmentPatch {
  reasonCode?: string | null;
  reasonDetails?: unknown;
  channel?: string;
  supplierOrderId?: string;
  supplierCost?: Money;
  approvedMax?: Money | null;
  approvedBy?: string | null;
  purchaseAttempts?: number;
  statusChecks?: number;
  nextRunAt?: Date | null;
  carrier?: string;
  trackingNumber?: string;
  cancelRequested?: boolean;
  purchasedAt?: Date;
  shippedAt?: Date;
  deliveredAt?: Date;
}

/** The marketplace step after shipment, claimed with a lease like an order: `fence` is its fencing token. */
export interface TrackingPush {
  id: string;
  orderId: string;
  sellerId: string;
  marketplace: string;
  attempts: number;
  fence: number;
}

export interface TrackingPushOutcome {
  status: 'PENDING' | 'DONE' | 'FAILED';
  attempts: number;
  nextAttemptAt?: Date;
  lastError?: string | null;
  result?: unknown;
}

export interface OverdueOrder {
  orderId: string;
  sellerId: string;
  state: State;
  since: Date;
}

export interface OverduePush {
  orderId: string;
  sellerId: string;
  status: string;
  since: Date;
  lastError: string | null;
}

/** What an operator reads about one order: its transitions, attempts, supplier answers and tracking push, as stored. */
export interface FulfillmentHistory {
  transitions: Array<Record<string, unknown>>;
  attempts: Array<Record<string, unknown>>;
  responses: Array<Record<string, unknown>>;
  push: Record<string, unknown> | undefined;
}

// --- per-seller settings ---

export type PurchaseChannel = 'API' | 'BROWSER';

export interface SellerPolicy {
  sellerId: string;
  minMarginBps: number | null;
  maxCost: Money | null;
  purchaseChannel: PurchaseChannel;
  fxRates: Record<string, string>;
  ratePerSecond: number | null;
  dailyQuota: number | null;
}

export interface ProductMapping {
  sellerId: string;
  listingId: string;
  /** '' = any SKU of the listing */
  sku: string;
  productId: string;
  skuAttr: string;
  logisticsServiceName: string | null;
  purchaseChannel: PurchaseChannel | null;
}

export interface SupplierSecrets {
  api: { appKey: string; appSecret: string; accessToken: string } | null;
  web: { email: string; password: string } | null;
}

export interface MarketplaceToken {
  accessToken: string;
  mlServiceId: number | null;
  ebayCarrierCode: string | null;
}

/** What an operator may see of a seller's credentials: which exist, never their values. */
export interface CredentialSummary {
  api: { appKey: string } | null;
  web: boolean;
  marketplaces: string[];
}
