import type { FxConversion, Marketplace, Money, SaleEvent } from '@postsale/contracts';
import type { AdminAuditEntry, AdminAuditRecord, OutboxRow, Tx } from '@postsale/runtime';
import type { Breakdown } from './money-breakdown';
import type { Posting } from './ledger';

/** Where an order stands in the sales stage. */
export const OrderStates = {
  /** the order is known, the purchase is not (fulfillment's concern: not an integrity violation here) */
  AWAITING_PURCHASE: 'AWAITING_PURCHASE',
  /** a completed purchase is known but the order is not (should never last) */
  AWAITING_ORDER: 'AWAITING_ORDER',
  /** the seller has no commission rate / fee schedule for this sale yet: PUT commercial terms releases it */
  PENDING_TERMS: 'PENDING_TERMS',
  /** the supplier charged another currency and the rate table has no rate for the purchase date yet */
  AWAITING_FX_RATE: 'AWAITING_FX_RATE',
  RECORDED: 'RECORDED',
  LOSS: 'LOSS',
  PARTIALLY_REFUNDED: 'PARTIALLY_REFUNDED',
  REFUNDED: 'REFUNDED',
  CANCELLED: 'CANCELLED',
  NEEDS_REVIEW: 'NEEDS_REVIEW',
} as const;
export type OrderState = (typeof OrderStates)[keyof typeof OrderStates];

/** States in which this stage still owes something: listed by the integrity report once past the deadline. */
export const WAITING_STATES: OrderState[] = [OrderStates.AWAITING_ORDER, OrderStates.PENDING_TERMS, OrderStates.AWAITING_FX_RATE];

export interface OrderFacts {
  marketplace: Marketplace;
  externalOrderId: string;
  saleAmount: Money;
  marketplaceFee: Money | null;
  paymentFee: Money | null;
  receivedAt: Date;
  eventId: string;
}

export interface PurchaseFacts {
  supplier: string;
  supplierOrderId: string;
  supplierCost: Money;
  purchasedAt: Date;
  knownAt: Date;
  eventId: string;
}

export interface OrderRecord {
  orderId: string;
  sellerId: string;
  state: OrderState;
  stateReason: string | null;
  stateSince: Date;
  order: OrderFacts | null;
  purchase: PurchaseFacts | null;
  /** cancellations and refunds known for the order, whatever their status: none means none to read */
  adjustmentCount: number;
}

/** One line of an order's history: the state it was in (or moved to), what happened, and the details. */
export interface HistoryLine {
  state: OrderState;
  cause: string;
  detail?: Record<string, unknown>;
}

/** A state change: the new state, why (null: nothing to say), since when. */
export interface StateMove {
  state: OrderState;
  reason: string | null;
  at: Date;
}

/** The facts an event brings (the order's or the purchase's), and the history line that says so. */
export type NewFacts = ({ order: OrderFacts } | { purchase: PurchaseFacts }) & { cause: string; detail: Record<string, unknown> };

/** A history line for an order's journal entry; `ignored` is added to the detail when the entry already existed. */
export interface EntryNote {
  cause: string;
  detail: Record<string, unknown>;
  ignored: string;
}

export interface SaleRecord {
  saleId: string;
  orderId: string;
  sellerId: string;
  breakdown: Breakdown;
  marketplaceFeeSource: 'MARKETPLACE' | 'SCHEDULE';
  termsSource: 'SELLER' | 'DEFAULT';
  supplierCostCharged: Money;
  fx: FxConversion | null;
  recordedAt: Date;
  refundedMinor: number;
}

export type AdjustmentStatus = 'PENDING' | 'APPLIED' | 'IGNORED' | 'REJECTED';

export interface AdjustmentRecord {
  adjustmentId: string;
  orderId: string;
  kind: 'CANCELLATION' | 'REFUND';
  refundId: string | null;
  amount: Money | null;
  full: boolean;
  reason: string | null;
  occurredAt: Date;
  eventId: string;
  status: AdjustmentStatus;
}

export interface AppliedAmounts {
  reversalKind: 'CANCELLATION' | 'FULL_REFUND' | 'PARTIAL_REFUND';
  refundedMinor: number;
  commissionReversedMinor: number;
  sellerNetReversedMinor: number;
  lossAddedMinor: number;
}

export interface MarketplaceFeeSchedule {
  percentBps: number;
  /** fixed fee per sale, per currency, exact decimal strings: { USD: "0.30" } */
  fixed?: Record<string, string>;
}

/** The seller's commercial terms as read under the terms lock: `current` undefined when the seller has none. */
export interface TermsRead {
  current: CommercialTerms | undefined;
}

export interface CommercialTerms {
  sellerId: string;
  commissionRateBps: number;
  marketplaceFees: Partial<Record<Marketplace, MarketplaceFeeSchedule>>;
  updatedAt?: Date;
}

import type { FxRate } from '@postsale/contracts';
export type { FxRate };

export interface JournalEntryInput {
  entryKey: string;
  orderId: string;
  sellerId: string;
  kind: 'SALE' | 'REVERSAL' | 'PAYOUT' | 'PAYOUT_RETURN';
  description: string;
  postings: Posting[];
  postedAt: Date;
}

/**
 * Everything the ledger use cases need from storage. Methods that write (and read with locks) take the transaction the
 * use case runs in (the consumer's inbox transaction, or one opened with `transaction()`); a method whose `trx` is
 * optional runs on its own when none is given.
 */
export interface SalesStore {
  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T>;
  /**
   * Serialises ledger work against admin changes of terms and rates: events take `shared` locks on their seller's terms
   * key and on the rate table key, admin changes take the `exclusive` one. Always taken first, before any row lock.
   */
  advisoryLock(trx: Tx, key: string, mode: 'shared' | 'exclusive'): Promise<void>;
  /**
   * One statement for an event's first step: takes the `shared` advisory locks (in the order given), creates the order
   * in `state` if it is new, and locks its row until the transaction ends. With `facts`, the same statement records them
   * and their history line (with the order's state) unless the order already has facts of that kind: `recorded` says
   * whether it did. Returns the order as it now stands. When it recorded them and the order now has both facts (a sale
   * is to be priced), the same statement reads the seller's commercial terms as committed once the locks are held
   * (`terms`; undefined when not read): no admin change of them can commit between that read and this transaction's end.
   */
  lockOrCreateOrder(
    trx: Tx, orderId: string, sellerId: string, state: OrderState, at: Date, sharedLocks: string[], facts?: NewFacts,
  ): Promise<{ order: OrderRecord; recorded: boolean; terms?: TermsRead }>;
  /** reads the order and locks it until the transaction ends */
  lockOrder(trx: Tx, orderId: string): Promise<OrderRecord | undefined>;
  /** writes the order's history lines (in the order given), moving it to `move` first when given: one statement */
  saveHistory(trx: Tx, orderId: string, lines: HistoryLine[], move?: StateMove): Promise<void>;
  findSale(orderId: string, trx?: Tx): Promise<SaleRecord | undefined>;
  /**
   * Inserts the sale and posts its journal entry, in one statement; the same statement writes `also.event`
   * (SaleEvents.row) from the sale it inserted, and the order's history lines (moving it first when `also.move`), as
   * saveHistory would.
   */
  recordSale(trx: Tx, sale: SaleRecord, entry: JournalEntryInput, also?: { event?: OutboxRow; history?: HistoryLine[]; move?: StateMove }): Promise<void>;
  setSaleRefunded(trx: Tx, saleId: string, refundedMinor: number): Promise<void>;
  /** false when this adjustment (same cancellation, same refund id) is already known; the order's count follows */
  insertAdjustment(trx: Tx, adjustment: AdjustmentRecord): Promise<boolean>;
  adjustments(trx: Tx, orderId: string): Promise<AdjustmentRecord[]>;
  markAdjustment(trx: Tx, adjustmentId: string, status: AdjustmentStatus, reason: string | null, applied?: AppliedAmounts, at?: Date): Promise<void>;
  /**
   * False when an entry with this key already exists (nothing posted twice). With `note`, the same statement first locks
   * the order's row and then adds the note to its history with the order's state (no line for an order not known here).
   */
  postEntry(trx: Tx, entry: JournalEntryInput, note?: EntryNote): Promise<boolean>;
  /** the most recent PAYOUT entry of this order's payout (key prefix `payout:<payoutId>:`) not yet mirrored by a return */
  unreturnedPayoutEntry(trx: Tx, orderId: string, payoutId: string): Promise<{ entryKey: string; postings: Posting[] } | undefined>;
  findTerms(sellerId: string, trx?: Tx): Promise<CommercialTerms | undefined>;
  saveTerms(trx: Tx, terms: CommercialTerms): Promise<void>;
  /** the most recent rate for the pair dated within [notBefore, onOrBefore] */
  findFxRate(trx: Tx, from: string, to: string, onOrBefore: string, notBefore: string): Promise<FxRate | undefined>;
  saveFxRate(trx: Tx, rate: FxRate): Promise<void>;
  ordersInState(trx: Tx, state: OrderState, sellerId?: string): Promise<string[]>;
  /** the admin audit trail, written in the admin write's own transaction */
  recordAudit(trx: Tx, entry: AdminAuditEntry): Promise<void>;
}

type Row = Record<string, unknown>;

/** Read side used by the admin API (on the pool, outside any transaction); implemented by the repository. */
export interface ReportStore {
  findOrder(orderId: string): Promise<OrderRecord | undefined>;
  history(orderId: string): Promise<Row[]>;
  adjustmentRows(orderId: string): Promise<Row[]>;
  entries(orderId: string): Promise<Row[]>;
  /** Balances of the payable accounts (seller_payable per seller, platform_commission) that are not zero. */
  openPayables(): Promise<Row[]>;
  /** What was paid to a seller through PayPal: the seller's PAYOUT / PAYOUT_RETURN entries and their postings. */
  sellerPayouts(sellerId: string): Promise<Row[]>;
  audit(filter: { target?: string; limit: number }): Promise<AdminAuditRecord[]>;
  trialBalance(): Promise<Array<{ currency: string; account: string; balanceMinor: number }>>;
  /**
   * Adds the postings made since the last roll-up to the balances the two reports above start from. Fails with a lock
   * timeout when a write held the journal longer than `lockTimeoutMs` (nothing changed; the next roll-up tries again).
   */
  rollUpBalances(lockTimeoutMs: number): Promise<void>;
  statementSales(sellerId: string, from: Date, to: Date): Promise<Row[]>;
  statementReversals(sellerId: string, from: Date, to: Date): Promise<Row[]>;
  stuckOrders(states: string[], before: Date): Promise<Row[]>;
}

/** Who made an admin write (from the credential) and why. */
export interface AuditContext {
  actor: string;
  reason: string | null;
}

export const lockKeys = {
  terms: (sellerId: string) => `sales:terms:${sellerId}`,
  fxRates: 'sales:fx-rates',
};

export interface SaleEventPublisher {
  /** through the outbox, in the transaction of the state change */
  publish(trx: Tx, event: SaleEvent): Promise<void>;
  /** the event's outbox row (checked against its schema), for the statement that makes the change to write it */
  row(event: SaleEvent): OutboxRow;
  /** a statement of `trx` wrote a `row()`: the relay is woken once `trx` commits */
  written(trx: Tx): void;
}

/** Metrics hooks; implementations count only once `trx` committed. */
export interface SalesObserver {
  saleRecorded(trx: Tx, sale: SaleRecord, purchasedAt: Date): void;
  saleReversed(trx: Tx, sale: SaleRecord, applied: AppliedAmounts): void;
  saleHeld(trx: Tx, state: OrderState, reason: string): void;
}

export interface LedgerSettings {
  /** commission for sellers without commercial terms; undefined = hold their sales in PENDING_TERMS */
  defaultCommissionRateBps?: number;
  /** how old the newest rate before the purchase date may be */
  fxMaxRateAgeDays: number;
}

/** What every sales use case is given: the ports, built once in service.ts. */
export interface SalesDeps {
  store: SalesStore;
  reports: ReportStore;
  events: SaleEventPublisher;
  observer: SalesObserver;
  settings: LedgerSettings;
  now: () => Date;
}
