import { newEvent, Streams, type FulfillmentEvent, type PayloadOf } from '@postsale/contracts';
import type { Logger, OutboxRow, OutboxWriter, Tx } from '@postsale/runtime';
import type { FulfillmentMetrics } from '../metrics';
import type { SupplierApi, WebCheckout } from './gateways';
import type {
  Attempt, CredentialSummary, Fulfillment, FulfillmentHistory, FulfillmentPatch, MarketplaceToken, NewFulfillment, OverdueOrder, OverduePush,
  ProductMapping, SellerPolicy, SupplierSecrets, TrackingPush, TrackingPushOutcome,
} from './records';
import { Reasons, type State } from './states';

export type * from './gateways';
export { BrowserLoginError, MarketplacePushError, SupplierCallError } from './gateways';
export type * from './records';

/**
 * The ports of the fulfillment domain: the stores and gateways its use cases are given (implemented in db/ and
 * clients/, wired in service.ts), and the deps object every use case takes. Methods that write take the transaction
 * the use case opened with `transaction()`; a method whose `trx` is optional runs on its own when none is given.
 */

/** The fulfillment state machine, its purchase attempts and its tracking pushes. */
/** A supplier answer worth showing an operator (supplier_responses). */
export interface SupplierAnswer {
  method: string;
  outcome: string;
  summary: unknown;
}

export interface PurchaseIntent {
  orderId: string;
  from: Extract<State, 'RECEIVED' | 'PURCHASING'>;
  fence: number;
  patch: FulfillmentPatch;
  /** the transitions row of RECEIVED → PURCHASING (a further attempt in PURCHASING changes no state) */
  transition?: { cause: string; details: unknown };
  attempt: { kind: Attempt['kind']; channel: string; outOrderId: string };
  /** the price guard's supplier answers ('price-guard' in supplier_responses) */
  priceCheck?: { outcome: string; summary: unknown };
}

export interface FulfillmentStore {
  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T>;
  /** inserts the order once (undefined when it was already there); with `claimedForMs`, already claimed for that long */
  insertReceived(trx: Tx, f: NewFulfillment, cause: string, claimedForMs?: number): Promise<Fulfillment | undefined>;
  /** a cancellation that arrived before (or without) the order, remembered so a later OrderReceived buys nothing */
  insertCancelledPlaceholder(trx: Tx, orderId: string, sellerId: string, cause: string, details: unknown): Promise<void>;
  erasePersonalData(trx: Tx, orderId: string): Promise<boolean>;
  get(orderId: string, trx?: Tx): Promise<Fulfillment | undefined>;
  /** reads the order and locks it until the transaction ends */
  getForUpdate(trx: Tx, orderId: string): Promise<Fulfillment | undefined>;
  /**
   * The atomic transition from one of `from` to `to`, with `patch`; with a `fence`, only while that lease is current.
   * Undefined when the order was elsewhere (or claimed by another worker): the caller then does nothing. `answer`, the
   * supplier's answer behind the decision, is recorded in the same statement, whether or not the order moved; `event`
   * (outboxEvent) is published by the same statement only when the order moved. Without `trx`, one statement on its own.
   */
  transition(trx: Tx | undefined, orderId: string, from: State[], to: State, cause: string, details: unknown, patch?: FulfillmentPatch, fence?: number, also?: { answer?: SupplierAnswer; event?: OutboxRow }): Promise<Fulfillment | undefined>;
  /** changes fields without changing state, only while the order is in `state` (and the lease `fence` is current) */
  update(trx: Tx | undefined, orderId: string, state: State, patch: FulfillmentPatch, fence?: number): Promise<boolean>;
  /** claims due orders in `states` with a lease: next_run_at moved forward, fencing token incremented */
  claimDue(states: State[], limit: number, leaseMs: number): Promise<Fulfillment[]>;
  /** extends a claimed order's lease while `fence` is current; false: the lease was lost */
  renewLease(orderId: string, fence: number, leaseMs: number): Promise<boolean>;
  mayHaveSupplierOrder(orderId: string, trx?: Tx): Promise<boolean>;
  lastAttempt(orderId: string, trx?: Tx): Promise<Attempt | undefined>;
  firstCreateAttempt(orderId: string): Promise<Attempt | undefined>;
  /**
   * The purchase intent, committed in one statement before the supplier is called: the order moves to PURCHASING
   * (RECEIVED → PURCHASING with its transitions row, or a further attempt in PURCHASING) with `patch`, only while it is
   * in `from` and the lease `fence` is current, and only then is its next attempt recorded, PENDING. The price check's
   * supplier answer is recorded either way. Returns the attempt's id; undefined when the order was moved or claimed.
   */
  recordPurchaseIntent(intent: PurchaseIntent): Promise<string | undefined>;
  /**
   * locks the order and records attempt `id`'s result only while the lease `fence` is current; returns the order as it
   * is now (another leaseVersion: nothing recorded)
   */
  finishAttempt(trx: Tx, orderId: string, fence: number, id: string, r: { outcome: Attempt['outcome']; supplierOrderId?: string; supplierCode?: string; message?: string; response?: unknown }): Promise<Fulfillment | undefined>;
  recordSupplierResponse(orderId: string, method: string, outcome: string, summary: unknown, trx?: Tx): Promise<void>;
  history(orderId: string): Promise<FulfillmentHistory>;
  orderIdsBySupplierOrder(supplierOrderId: string): Promise<string[]>;
  reviewQueue(limit: number): Promise<Fulfillment[]>;
  countByState(state: State): Promise<number>;
  overdue(deadlines: Partial<Record<State, number>>): Promise<OverdueOrder[]>;
  insertTrackingPush(trx: Tx, orderId: string, sellerId: string, marketplace: string, status: 'PENDING' | 'SKIPPED'): Promise<void>;
  /** claims due tracking pushes with a lease, fencing token incremented */
  claimDuePushes(limit: number, leaseMs: number): Promise<TrackingPush[]>;
  /** records a push's outcome while its lease (`push.fence`) is current; false: another worker holds it now */
  finishPush(push: Pick<TrackingPush, 'id' | 'fence'>, outcome: TrackingPushOutcome): Promise<boolean>;
  overduePushes(seconds: number): Promise<OverduePush[]>;
}

/** Per-seller settings: purchase policy, product mappings, sealed credentials and tokens, the daily supplier quota. */
export interface SellerSettingsStore {
  policy(sellerId: string): Promise<SellerPolicy | undefined>;
  putPolicy(p: SellerPolicy): Promise<void>;
  mappingFor(sellerId: string, listingId: string, sku: string | null): Promise<ProductMapping | undefined>;
  mappings(sellerId: string): Promise<ProductMapping[]>;
  putMappings(sellerId: string, mappings: Omit<ProductMapping, 'sellerId'>[]): Promise<void>;
  deleteMapping(sellerId: string, listingId: string, sku: string): Promise<number>;
  putSupplierCredentials(sellerId: string, c: { api?: SupplierSecrets['api']; web?: SupplierSecrets['web'] }): Promise<void>;
  supplierSecrets(sellerId: string): Promise<SupplierSecrets>;
  credentialSummary(sellerId: string): Promise<CredentialSummary>;
  putMarketplaceToken(sellerId: string, marketplace: string, t: MarketplaceToken): Promise<void>;
  marketplaceToken(sellerId: string, marketplace: string): Promise<MarketplaceToken | undefined>;
}

export interface FulfillmentSettings {
  defaultMinMarginBps: number;
  purchaseMaxAttempts: number;
  purchaseRetryBaseMs: number;
  purchaseRetryMaxMs: number;
  outOrderIdWindowMs: number;
  statusPollMinMs: number;
  statusPollMaxMs: number;
  /** PURCHASED and SHIPPED: waiting for tracking and delivery (days), polled far less often than a payment */
  trackingPollMinMs: number;
  trackingPollMaxMs: number;
  pushMaxAttempts: number;
  pushRetryBaseMs: number;
  leaseMs: number;
}

/** What every fulfillment use case is given. */
export interface FulfillmentDeps {
  repo: FulfillmentStore;
  sellers: SellerSettingsStore;
  outbox: OutboxWriter;
  /** undefined when the seller has no API credentials */
  supplierFor(sellerId: string): Promise<SupplierApi | undefined>;
  browser: WebCheckout;
  settings: FulfillmentSettings;
  metrics: FulfillmentMetrics;
  logger: Logger;
  /** wakes this process's tracking-push worker: a push was queued (called after its transaction committed) */
  pushQueued?(): void;
  /** wakes this process's follow-up worker at `at`: an order's next check, scheduled by that worker (after the commit) */
  followUpDue?(at: Date): void;
  /**
   * In the transaction recording a new order: this process's purchase worker takes it as it is created when it has a
   * free slot (the runtime's `claimOnCommit`): the order is then inserted claimed, and handed to the worker after the
   * commit — no claim of its own. Undefined (no slot, no worker): the order is inserted due.
   */
  purchaseOnCommit?(trx: Tx): ((order: Fulfillment) => void) | undefined;
}

export async function publish<T extends FulfillmentEvent['type']>(deps: FulfillmentDeps, trx: Tx, f: Pick<Fulfillment, 'orderId' | 'sellerId'>, type: T, payload: PayloadOf<FulfillmentEvent, T>, causationId: string | null = null): Promise<void> {
  await deps.outbox.publish(trx, Streams.fulfillment, newEvent(Streams.fulfillment, type, payload, { orderId: f.orderId, sellerId: f.sellerId, causationId }));
}

/**
 * The outbox row of a fulfillment event, for a transition that publishes it in its own statement (`also.event`): written
 * iff the order moved. The caller then calls `deps.outbox.written(trx)` so the relay is woken after the commit.
 */
export function outboxEvent<T extends FulfillmentEvent['type']>(deps: FulfillmentDeps, f: Pick<Fulfillment, 'orderId' | 'sellerId'>, type: T, payload: PayloadOf<FulfillmentEvent, T>, causationId: string | null = null): OutboxRow {
  return deps.outbox.row(Streams.fulfillment, newEvent(Streams.fulfillment, type, payload, { orderId: f.orderId, sellerId: f.sellerId, causationId }));
}

/**
 * Sends an order to the review queue with a reason, and says so on the fulfillment stream (PurchaseFailed,
 * needsReview), in one statement: the event is written only if the order moved, and `answer` (the supplier's answer
 * behind the decision) whether or not. Without `trx` that statement runs on its own. Returns false when the order was
 * no longer in one of `from`.
 */
export async function sendToReview(
  deps: FulfillmentDeps,
  trx: Tx | undefined,
  f: Pick<Fulfillment, 'orderId' | 'sellerId' | 'channel'>,
  from: State[],
  review: { reason: string; message: string; details?: Record<string, unknown>; supplierCode?: string | null; publishFailure?: boolean; fence?: number; answer?: SupplierAnswer },
  cause: string,
): Promise<boolean> {
  const details = { message: review.message, ...(review.supplierCode ? { supplierCode: review.supplierCode } : {}), ...(review.details ?? {}) };
  const event = (review.publishFailure ?? true)
    ? outboxEvent(deps, f, 'PurchaseFailed', {
      reasonCode: review.reason,
      supplierErrorCode: review.supplierCode ?? null,
      message: review.message,
      needsReview: true,
      failedAt: Date.now(),
    })
    : undefined;
  const moved = await deps.repo.transition(trx, f.orderId, from, 'NEEDS_REVIEW', cause, { reason: review.reason, ...details }, {
    reasonCode: review.reason,
    reasonDetails: details,
    nextRunAt: null,
  }, review.fence, { answer: review.answer, event });
  if (!moved) return false;
  if (event) deps.outbox.written(trx);
  deps.metrics.purchases.inc({ outcome: 'needs_review', reason: review.reason, channel: f.channel ?? 'none' });
  return true;
}

export { Reasons };
