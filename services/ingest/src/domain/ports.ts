import type { Marketplace } from '@postsale/contracts';
import type { AdminAuditEntry, AdminAuditRecord, Tx } from '@postsale/runtime';
import type { EbayFulfillmentOrder } from './ebay-order.mapper';
import type { MlOrderResource, MlShipmentResource } from './mercadolibre-order.mapper';
import type { PayPalOrder } from './paypal-order.mapper';
import type {
  DecisionFields, Delivery, DeliveryStatus, DroppedCount, ErasedOrder, ErasureCause, ErasureRecord, NewDelivery,
  OrderEventRecord, OrderRecord, OrderState, SellerAccount, SellerRecord,
} from './records';

/** Runs `fn` in one database transaction; the stores' methods that take `trx` join it. */
export type Transaction = <T>(fn: (trx: Tx) => Promise<T>) => Promise<T>;

/** What storing a delivery found: it is new (and stored pending), or the same message is already held. */
export type StoreResult =
  | { kind: 'stored'; delivery: Delivery }
  | { kind: 'duplicate'; deliveryId: string; duplicateOf: string | null; orderId: string | null }
  /** not stored: no seller registered the account (only with `dropUnregisteredAs`; counted under that reason) */
  | { kind: 'dropped'; reason: string };
export interface StoreOptions {
  /** stored as ignored with this reason (needs no work) */
  ignored?: string;
  /** a sender nobody can verify: store only for an account a seller registered, else only count it under this reason */
  dropUnregisteredAs?: string;
}

export interface DeliveryStore {
  /**
   * Stores a delivery as pending in ONE statement, deduplicated on (marketplace, dedupe key): when the same message is
   * already held (pending, parked or decided), the delivery is stored as a `duplicate` of it instead. `claimMs` keeps
   * the worker off a new delivery while the request processes it inline.
   */
  storeNew(d: NewDelivery, claimMs: number, options?: Omit<StoreOptions, 'ignored'>): Promise<StoreResult>;
  /** Stores a delivery that needs no work (e.g. an unsupported topic) as ignored, deduplicated like storeNew. */
  insertIgnored(d: NewDelivery, reason: string, options?: Omit<StoreOptions, 'ignored'>): Promise<StoreResult>;
  /** Our own scheduled work (an eBay re-read), pending for the worker; a dedupe key already held is not stored again. */
  enqueue(d: NewDelivery): Promise<void>;
  get(id: string): Promise<Delivery | undefined>;
  /**
   * Claims up to `limit` due deliveries of at most `maxAccounts` accounts, at most `perAccount` of any one, skipping the
   * accounts in `exclude` (`<marketplace>:<accountId>`, being worked here); each claim bumps the delivery's fence.
   */
  claimBatch(claimMs: number, limit: number, perAccount: number, options?: { maxAccounts?: number; exclude?: string[] }): Promise<Delivery[]>;
  /** Decides the delivery; with `fields.fence`, only under that lease (else LeaseLostError, and the transaction rolls back). */
  decide(trx: Tx, id: string, status: DeliveryStatus, fields?: DecisionFields): Promise<void>;
  decideNow(id: string, status: DeliveryStatus, fields?: DecisionFields): Promise<void>;
  /** Leaves the delivery pending and schedules another attempt after `delayMs` (only under lease `fence` when given). */
  retryLater(id: string, attempts: number, delayMs: number, error: { code: string; message: string }, fence?: number): Promise<void>;
  /** A parked delivery becomes pending again; false when it is not parked (or its data was erased). */
  requeue(id: string): Promise<boolean>;
  requeueUnroutable(accounts: Array<{ marketplace: Marketplace; accountId: string }>): Promise<number>;
  list(filter: { status?: DeliveryStatus; marketplace?: Marketplace; limit: number }): Promise<Delivery[]>;
  forOrder(orderId: string): Promise<Delivery[]>;
  countByStatus(status: DeliveryStatus): Promise<number>;
  /** Deliveries in this status for longer than the deadline (integrity report). */
  stuck(status: 'pending' | 'parked', olderThanSeconds: number): Promise<Delivery[]>;
  /** A notification answered but not kept: one counter per marketplace, reason and day. */
  countDropped(marketplace: Marketplace, reason: string): Promise<void>;
  droppedCounts(): Promise<DroppedCount[]>;
}

/** What the entry door needs to store a delivery (group-committed in production: db/ack-store.ts). */
export type AckStore = Pick<DeliveryStore, 'storeNew' | 'insertIgnored' | 'countDropped'>;

export interface OrderStore {
  /** Claims the next open eBay order due for a re-read and schedules the one after it (backoff from min to max). */
  claimEbayRecheck(o: { windowSeconds: number; minMs: number; maxMs: number }): Promise<{ orderId: string; recheckCount: number } | undefined>;
  get(orderId: string, trx?: Tx, lock?: boolean): Promise<OrderRecord | undefined>;
  orderIdsByBuyerEmail(email: string): Promise<string[]>;
  byPaymentReference(marketplace: Marketplace, reference: string): Promise<OrderRecord | undefined>;
  update(trx: Tx, orderId: string, fields: { state: OrderState; refundedMinor?: number }): Promise<void>;
  /** Records an emitted event; false when this refund id was already recorded for the order. */
  addEvent(trx: Tx, e: { orderId: string; eventId: string; type: string; cause: string; deliveryId: string | null; refundId?: string; amountMinor?: number }): Promise<boolean>;
  events(orderId: string): Promise<OrderEventRecord[]>;
}

export interface SellerStore {
  /** Replaces the seller's accounts; an account owned by another seller is a conflict and nothing changes. */
  put(sellerId: string, displayName: string | null, accounts: Array<{ marketplace: Marketplace; accountId: string; tokenSealed: string | null; secretSealed: string | null }>): Promise<void>;
  account(marketplace: Marketplace, accountId: string): Promise<SellerAccount | undefined>;
  /** The account and, in the same read, the order (our id) when it is received already. */
  accountAndOrder(marketplace: Marketplace, accountId: string, orderId: string): Promise<{ account: SellerAccount | undefined; order: OrderRecord | undefined }>;
  seller(sellerId: string): Promise<SellerRecord | undefined>;
}

export interface ErasureStore {
  transaction: Transaction;
  ebayOrdersOfBuyer(trx: Tx, username: string): Promise<string[]>;
  ordersPastRetention(days: number, limit: number): Promise<string[]>;
  eraseOrders(trx: Tx, orderIds: string[]): Promise<{ orders: number; deliveries: number; erased: ErasedOrder[] }>;
  addEvent(trx: Tx, e: { orderId: string; eventId: string; cause: string }): Promise<void>;
  eraseAccount(trx: Tx, marketplace: Marketplace, accountId: string): Promise<{ deliveries: number; accountRemoved: boolean }>;
  record(trx: Tx, e: { cause: ErasureCause; subjectHash?: string | null; orderId?: string | null; orders: number; deliveries: number; requestedBy: string; reason?: string | null }): Promise<void>;
  forOrder(orderId: string): Promise<ErasureRecord[]>;
  deleteDecidedDeliveriesOlderThan(days: number, limit: number): Promise<number>;
}

export interface AuditLog {
  record(e: AdminAuditEntry): Promise<void>;
  forOrder(orderId: string): Promise<AdminAuditRecord[]>;
}

/** eBay: Notification API signatures and Fulfillment API order reads with the seller's own token. */
export interface EbayApi {
  /** true when X-EBAY-SIGNATURE is valid for this body; throws a retriable error when the key cannot be fetched now */
  verifySignature(signatureHeader: string | undefined, parsedBody: unknown): Promise<boolean>;
  getOrder(orderId: string, sellerToken: string): Promise<EbayFulfillmentOrder>;
}

/** MercadoLibre orders and shipments, always read with the owning seller's token (that is the authenticity check). */
export interface MercadoLibreApi {
  getOrder(orderId: string, sellerToken: string): Promise<MlOrderResource>;
  getShipment(shipmentId: string, sellerToken: string): Promise<MlShipmentResource>;
}

export type CaptureResult = { kind: 'captured'; order: PayPalOrder } | { kind: 'already-captured'; order: PayPalOrder } | { kind: 'refused'; issue: string };

/** PayPal Orders v2 for storefront checkouts: capture (idempotent by PayPal-Request-Id) and order look-up. */
export interface PayPalCheckoutApi {
  capture(paypalOrderId: string): Promise<CaptureResult>;
  getOrder(paypalOrderId: string): Promise<PayPalOrder>;
}
