import type { Marketplace, OrderReceived } from '@postsale/contracts';

/** ingest's records: what the use cases work on. db/ maps its rows to these (and back); nothing here is a column name. */

export type DeliveryStatus = 'pending' | 'accepted' | 'duplicate' | 'ignored' | 'rejected' | 'parked';

/** A marketplace message (or our own scheduled read) persisted before anything else happens, worked from its raw body. */
export interface Delivery {
  id: string;
  marketplace: Marketplace;
  kind: string;
  /** the marketplace's own message id (eBay notificationId, MercadoLibre _id, PayPal event id) or our derived key */
  dedupeKey: string;
  accountId: string | null;
  externalOrderId: string | null;
  orderId: string | null;
  status: DeliveryStatus;
  reason: string | null;
  detail: string | null;
  headers: Record<string, string>;
  rawBody: string;
  sourceIp: string | null;
  attempts: number;
  receivedAt: Date;
  nextAttemptAt: Date;
  processedAt: Date | null;
  statusChangedAt: Date;
  /** the fencing token of the delivery's current lease: bumped by every claim, required by every decision */
  fence: number;
}

export type NewDelivery = Pick<Delivery, 'id' | 'marketplace' | 'kind' | 'dedupeKey' | 'accountId' | 'externalOrderId' | 'orderId' | 'headers' | 'rawBody' | 'sourceIp'>;

/**
 * Thrown when a decision finds the delivery's fence moved on: another worker claimed it after this one's lease ran
 * out. The transaction rolls back; what the other worker decides stands.
 */
export class LeaseLostError extends Error {
  constructor(readonly deliveryId: string) {
    super(`the lease on delivery ${deliveryId} was lost: another worker holds it`);
  }
}

/** Fields a decision may set on a delivery besides its status. */
export interface DecisionFields {
  /** the lease the decision is made under: the update lands only while it is current (else LeaseLostError) */
  fence?: number;
  reason?: string | null;
  detail?: string | null;
  orderId?: string | null;
  accountId?: string | null;
  externalOrderId?: string | null;
  /** the event this decision emitted, recorded in order_events by the decision's own statement */
  event?: { orderId: string; eventId: string; type: string; cause: string };
}

export type OrderState = 'RECEIVED' | 'CANCELLED' | 'PARTIALLY_REFUNDED' | 'REFUNDED';

/** An order as received: one per (marketplace, external order id). */
export interface OrderRecord {
  orderId: string;
  marketplace: Marketplace;
  externalOrderId: string;
  sellerId: string;
  accountId: string;
  state: OrderState;
  saleAmountMinor: number;
  refundedAmountMinor: number;
  currency: string;
  paymentReference: string | null;
  receivedPayload: OrderReceived;
  receivedAt: Date;
}

/** One line of an order's history: an event ingest committed for it. */
export interface OrderEventRecord {
  eventId: string;
  eventType: string;
  cause: string;
  deliveryId: string | null;
  refundId: string | null;
  at: Date;
}

/** A seller's marketplace account; its token / capture secret stay sealed until a use case opens them. */
export interface SellerAccount {
  marketplace: Marketplace;
  accountId: string;
  sellerId: string;
  tokenSealed: string | null;
  secretSealed: string | null;
  updatedAt: Date;
}

export interface SellerRecord {
  sellerId: string;
  displayName: string | null;
  createdAt: Date;
  updatedAt: Date;
  accounts: SellerAccount[];
}

export type ErasureCause = 'EBAY_ACCOUNT_DELETION' | 'ADMIN' | 'RETENTION';

export interface ErasedOrder {
  orderId: string;
  sellerId: string;
  marketplace: Marketplace;
  externalOrderId: string;
}

export interface ErasureRecord {
  cause: string;
  requestedBy: string;
  reason: string | null;
  at: Date;
}


export interface DroppedCount {
  marketplace: string;
  reason: string;
  day: string | Date;
  count: number;
}
