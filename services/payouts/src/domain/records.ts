import type { FxRate } from '@postsale/contracts';
import type { OutboxRow } from '@postsale/runtime';
import type { HoldReason, IntentStatus, Recipient } from './payout-rules';

/** The records the payout use cases work on; the store (db/payouts.repository.ts) reads and writes them. */
export type { FxRate };

/** The payout currency and pinned rate of an intent (all null fields: not decided / no conversion). */
export interface PayoutTerms {
  payoutCurrency: string | null;
  fxRate: string | null;
  fxRateDate: string | null;
  fxSource: string | null;
}

/** One (sale, recipient) payout: what is owed, what is payable now, and where it stands. */
export interface Intent extends PayoutTerms {
  id: string;
  saleId: string;
  orderId: string;
  sellerId: string;
  recipient: Recipient;
  currency: string;
  amountMinor: number;
  reversedMinor: number;
  offsetMinor: number;
  pendingReversalMinor: number;
  payableMinor: number;
  status: IntentStatus;
  holdReason: HoldReason | null;
  releaseAt: Date | null;
  attempt: number;
  batchId: string | null;
  saleRecordedAt: Date;
  statusSince: Date;
  createdAt: Date;
  skipReason: string | null;
}

export interface NewIntent extends Partial<PayoutTerms> {
  id: string; saleId: string; orderId: string; sellerId: string; recipient: Recipient; currency: string; amountMinor: number;
  payableMinor: number; status: IntentStatus; holdReason: HoldReason | null; releaseAt: Date | null; saleRecordedAt: Date;
  skipReason?: string | null;
}

export interface IntentPatch extends Partial<PayoutTerms> {
  skipReason?: string | null;
  status?: IntentStatus;
  holdReason?: HoldReason | null;
  releaseAt?: Date | null;
  payableMinor?: number;
  reversedMinor?: number;
  offsetMinor?: number;
  pendingReversalMinor?: number;
  attempt?: number;
  batchId?: string | null;
}

/** A move of an intent that applies only while it is in one of `from` (a rule of the domain, carried out by the store). */
export interface IntentMove {
  from: IntentStatus[];
  patch: IntentPatch;
  cause: string;
}

/**
 * An item's outcome, to apply if the item is still as `seen`; with `intentMove`, its intent moves in the same statement,
 * and `event` (OutboxWriter.row, built before) is written by that statement only if the intent moved.
 */
export interface ItemMove {
  seen: PayoutItem;
  outcome: ItemOutcome;
  intentMove?: IntentMove;
  event?: OutboxRow;
}

/** An item moved: its intent as locked (`before`) and as moved with it (`after`; undefined when not moved). */
export interface MovedItem {
  itemId: string;
  before: Intent;
  after: Intent | undefined;
}

/**
 * An item with its batch's PayPal id as known when it was read (null: not learnt yet), and whose payment it is (its
 * intent's order, seller and recipient: never change, so an unlocked read of them stays true).
 */
export type ItemWithBatchId = PayoutItem & { batchPayPalBatchId: string | null; batchStatus: string; payment: { orderId: string; sellerId: string; recipient: Recipient } };

export interface Payee {
  sellerId: string;
  email: string;
  releasePolicy: string;
  releaseDelayDays: number;
  /** explicit payout currency; null = default rule (see payout-currency.ts) */
  payoutCurrency: string | null;
  updatedAt: Date;
}

export interface PayeeSettings {
  sellerId: string; email: string; releasePolicy: string; releaseDelayDays: number; payoutCurrency: string | null;
}

/** One attempt of an intent inside a batch (sender_item_id = `<intent id>-a<attempt>`). */
export interface PayoutItem {
  id: string;
  intentId: string;
  attempt: number;
  senderItemId: string;
  batchId: string;
  receiver: string;
  amountMinor: number;
  currency: string;
  /** what this item converted (sale currency) and at which rate; null when paid in the sale's currency */
  sourceAmountMinor: number | null;
  sourceCurrency: string | null;
  fxRate: string | null;
  fxRateDate: string | null;
  status: string;
  paypalItemId: string | null;
  transactionId: string | null;
  errorName: string | null;
  errorMessage: string | null;
  cancelRequestedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewItem {
  intentId: string; attempt: number; senderItemId: string; batchId: string; receiver: string; amountMinor: number; currency: string; status: string;
  source: { amountMinor: number; currency: string; fxRate: string; fxRateDate: string | null } | null;
}

/** What PayPal said about an item, as stored on it. */
export interface ItemOutcome {
  status: string;
  paypalItemId: string | null;
  transactionId: string | null;
  errorName: string | null;
  errorMessage: string | null;
}

export interface Batch {
  id: string;
  senderBatchId: string;
  status: string;
  paypalBatchId: string | null;
  request: unknown;
  itemCount: number;
  postAttempts: number;
  lastError: string | null;
  createdAt: Date;
}

/** An accepted batch claimed for a check at PayPal: `fence` is the claim's fencing token (see createJobWorker). */
export interface BatchCheckJob {
  batchId: string;
  paypalBatchId: string;
  fence: number;
}

export interface SaleRecord {
  saleId: string; orderId: string; sellerId: string; currency: string; saleAmountMinor: number;
  platformCommissionMinor: number; sellerNetMinor: number; isLoss: boolean; eventId: string; recordedAt: Date;
}

export interface ReversalRecord {
  reversalId: string; saleId: string; orderId: string; kind: string; currency: string;
  commissionReversedMinor: number; sellerNetReversedMinor: number; reversedAt: Date;
}

export interface Milestones {
  shippedAt: Date | null;
  deliveredAt: Date | null;
}

export interface HistoryEntry {
  intentId: string; from: string | null; to: string; cause: string; at: Date;
}

export interface BalanceEntry {
  party: string; currency: string; amountMinor: number; kind: 'CLAWBACK' | 'OFFSET'; orderId: string; intentId: string; reference: string; at: Date;
}

