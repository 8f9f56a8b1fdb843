import type { AdminAuditEntry, AdminAuditRecord, Tx } from '@postsale/runtime';
import type { HoldReason, Recipient } from './payout-rules';
import type {
  BalanceEntry, Batch, BatchCheckJob, FxRate, HistoryEntry, Intent, IntentPatch, ItemMove, ItemWithBatchId, Milestones, MovedItem, NewIntent,
  NewItem, Payee, PayeeSettings, PayoutItem, ReversalRecord, SaleRecord,
} from './records';

/** The ports of the payout use cases: PayPal Payouts, the store, metrics. Implemented in clients/, db/ and metrics.ts. */

// ---- PayPal Payouts (clients/paypal-payouts.client.ts) ------------------------------------------------------------

export interface PayoutRequestItem {
  recipient_type: 'EMAIL';
  receiver: string;
  amount: { value: string; currency: string };
  sender_item_id: string;
  note: string;
}

export interface PayoutRequestBody {
  sender_batch_header: { sender_batch_id: string; email_subject: string; email_message: string; recipient_type: 'EMAIL' };
  items: PayoutRequestItem[];
}

export type CreateBatchResult =
  /** PayPal created the batch now */
  | { kind: 'accepted'; payoutBatchId: string; batchStatus: string }
  /** PayPal already has a batch with this sender_batch_id (an earlier call went through); its id when PayPal says it */
  | { kind: 'duplicate'; payoutBatchId: string | null; debugId?: string | null; name?: string; httpStatus?: number }
  /** PayPal refused this request (nothing was created by THIS call): its error name, message and debug_id */
  | { kind: 'rejected'; httpStatus: number; name: string; message: string; debugId?: string | null; details?: string[] }
  /** timeout, dropped connection, 5xx: PayPal may or may not have created it */
  | { kind: 'unknown'; message: string };

export interface PayPalItemState {
  payoutItemId: string;
  payoutBatchId: string;
  senderItemId: string | null;
  senderBatchId: string | null;
  transactionStatus: string;
  transactionId: string | null;
  errorName: string | null;
  errorMessage: string | null;
}

export interface PayPalBatchState {
  payoutBatchId: string;
  batchStatus: string;
  /** the sender_batch_id PayPal has for this batch (null when the answer did not say) */
  senderBatchId?: string | null;
  items: PayPalItemState[];
}

/** One page of a batch read (PayPal pages the items of a batch; `totalPages` from `total_required=true`). */
export interface PayPalBatchPage extends PayPalBatchState {
  page: number;
  totalPages: number;
}

export type CancelItemResult = { kind: 'cancelled'; item: PayPalItemState } | { kind: 'refused'; name: string; message: string };

export interface PayoutsGateway {
  createBatch(body: PayoutRequestBody): Promise<CreateBatchResult>;
  /** the whole batch, every page */
  getBatch(payoutBatchId: string): Promise<PayPalBatchState>;
  /** one page of the batch (1-based) */
  getBatchPage(payoutBatchId: string, page: number): Promise<PayPalBatchPage>;
  getItem(payoutItemId: string): Promise<PayPalItemState>;
  cancelItem(payoutItemId: string): Promise<CancelItemResult>;
}

// ---- the store (db/payouts.repository.ts) -------------------------------------------------------------------------

export type { Tx };

/**
 * What a transaction does about payout items another one holds locked: 'wait' for it, or 'skip' them (the reconciler:
 * whoever holds them is applying PayPal's word already, and the batch's next check reads them again).
 */
export type BusyItems = 'wait' | 'skip';

/**
 * Reads and writes of the payouts schema. Constructed with the database; methods take the transaction the use case
 * opened with `transaction()`: writes and locking reads first (`trx`), plain reads last and optional (`trx?`: the pool
 * when none is given). A write without `trx` is one statement that commits on its own (a batch's PayPal answer);
 * `recordAudit` takes `undefined` for a reveal recorded outside any transaction, `recordWebhookEvents` for webhooks
 * that had nothing to apply.
 */
export interface PayoutsStore {
  transaction<T>(work: (trx: Tx) => Promise<T>): Promise<T>;
  /** runs `then` once `trx` committed (never on rollback) */
  afterCommit(trx: Tx, then: () => void): void;

  /**
   * false when the sale was already recorded (a re-delivered or re-published SaleRecorded). This, insertReversal
   * and recordMilestone take the order's lock until the transaction ends: a sale, its reversal and its shipment or
   * delivery recorded concurrently are recorded one after the other.
   */
  insertSale(trx: Tx, sale: SaleRecord): Promise<boolean>;
  salesForOrder(orderId: string, trx?: Tx): Promise<SaleRecord[]>;
  /** false when the reversal was already recorded (takes the order's lock, as insertSale does) */
  insertReversal(trx: Tx, reversal: ReversalRecord): Promise<boolean>;
  reversalsForSale(saleId: string, trx?: Tx): Promise<ReversalRecord[]>;
  reversalsForOrder(orderId: string, trx?: Tx): Promise<ReversalRecord[]>;
  /** keeps the earliest time: a re-delivered or replayed event changes nothing */
  recordMilestone(trx: Tx, orderId: string, sellerId: string, milestone: 'shipped' | 'delivered', at: Date): Promise<void>;
  milestones(orderId: string, trx?: Tx): Promise<Milestones>;

  payee(sellerId: string, trx?: Tx): Promise<Payee | undefined>;
  /** the payees of these sellers that exist, in one read */
  payees(sellerIds: string[], trx?: Tx): Promise<Payee[]>;
  /** what an intent is decided on, in one read: the seller's payee and the order's milestones */
  payeeAndMilestones(sellerId: string, orderId: string, trx?: Tx): Promise<{ payee: Payee | undefined; milestones: Milestones }>;
  upsertPayee(trx: Tx, payee: PayeeSettings): Promise<void>;
  /** one admin write (or reveal of personal data) in the audit trail; never a secret */
  recordAudit(trx: Tx | undefined, entry: AdminAuditEntry): Promise<void>;
  audit(filter: { target?: string; limit: number }, trx?: Tx): Promise<AdminAuditRecord[]>;

  /** the most recent rate from→to dated on or before `onOrBefore` and not before `notBefore` (YYYY-MM-DD) */
  findFxRate(from: string, to: string, onOrBefore: string, notBefore: string, trx?: Tx): Promise<FxRate | undefined>;
  saveFxRate(trx: Tx, rate: FxRate): Promise<void>;
  listFxRates(filter: { from?: string; to?: string; limit: number }, trx?: Tx): Promise<FxRate[]>;

  /**
   * a sale's intents with their first history rows (a (sale, recipient) intent that exists already gets none), in one
   * statement that also says whether a reversal of the sale is recorded (seen reliably once insertSale took its lock)
   */
  insertSaleIntents(trx: Tx, saleId: string, entries: Array<{ intent: NewIntent; cause: string }>): Promise<{ reversed: boolean }>;
  /** the intent, locked for the rest of the transaction */
  intentForUpdate(trx: Tx, id: string): Promise<Intent | undefined>;
  /** locked for the rest of the transaction */
  intentsForSale(trx: Tx, saleId: string): Promise<Intent[]>;
  intentsForOrder(orderId: string, trx?: Tx): Promise<Intent[]>;
  /** HELD or DUE intents, locked, skipping rows another transaction holds */
  intentsAwaitingRelease(trx: Tx, where: { orderId?: string; sellerId?: string; recipient?: Recipient; currency?: string; holdReason?: HoldReason; limit?: number }): Promise<Intent[]>;
  /** whether any intent is HELD for this reason (a cheap look before a locking sweep) */
  anyHeldFor(holdReason: HoldReason, trx?: Tx): Promise<boolean>;
  listIntents(filter: { status?: string; sellerId?: string; limit: number }, trx?: Tx): Promise<Intent[]>;
  /** every intent without a final status (the integrity report) */
  openIntents(trx?: Tx): Promise<Intent[]>;
  /** DUE intents whose release time has passed, locked for this batch (others skip them) */
  claimDueIntents(trx: Tx, limit: number): Promise<Intent[]>;
  /** updates the intent and appends its history in one statement; returns the intent as stored */
  updateIntent(trx: Tx, before: Intent, patch: IntentPatch, cause: string): Promise<Intent>;
  /** the same patch on several intents, each with its own history cause, in one statement; returns them as stored, in order */
  updateIntents(trx: Tx, entries: Array<{ before: Intent; cause: string }>, patch: IntentPatch): Promise<Intent[]>;
  history(orderId: string, trx?: Tx): Promise<HistoryEntry[]>;
  /** payable amounts of a seller's own intents in these statuses, per currency */
  sellerPayableTotals(sellerId: string, statuses: string[], trx?: Tx): Promise<Array<{ currency: string; totalMinor: number }>>;

  /** serialises every change to one party's balance in one currency for the rest of the transaction */
  lockBalance(trx: Tx, party: string, currency: string): Promise<void>;
  /** the same for several balances, in one statement (taken in a fixed order: overlapping sets never deadlock) */
  lockBalances(trx: Tx, balances: Array<{ party: string; currency: string }>): Promise<void>;
  /** what the party owes (positive) in this currency: clawbacks minus what netting already settled (one row read) */
  owed(party: string, currency: string, trx?: Tx): Promise<number>;
  /** owed() of each of these balances, in one read, in the order asked */
  owedMany(balances: Array<{ party: string; currency: string }>, trx?: Tx): Promise<Array<{ party: string; currency: string; owedMinor: number }>>;
  /** appends the entry once (a repeated kind/intent/reference changes nothing) and moves the running balance with it */
  addBalanceEntry(trx: Tx, entry: Omit<BalanceEntry, 'at'>): Promise<void>;
  balanceEntries(party: string, trx?: Tx): Promise<BalanceEntry[]>;

  /** returns the batch as stored */
  insertBatch(trx: Tx, batch: { id: string; senderBatchId: string; status: string; request: unknown; itemCount: number; postAttempts: number }): Promise<Batch>;
  batch(id: string, trx?: Tx): Promise<Batch | undefined>;
  batchesWithStatus(status: string, limit: number, trx?: Tx): Promise<Batch[]>;
  recordPostAttempt(batchId: string, postAttempts: number): Promise<void>;
  setBatchError(batchId: string, lastError: string): Promise<void>;
  /** the batch is at PayPal: its first check is due after `firstCheckInMs`; returns when that is */
  markBatchAccepted(batchId: string, accepted: { paypalBatchId: string; paypalBatchStatus: string; lastError: string | null; firstCheckInMs: number }): Promise<Date>;
  markBatchRejected(trx: Tx, batchId: string, lastError: string): Promise<void>;
  markBatchNeedsReview(trx: Tx, batchId: string, lastError: string): Promise<void>;
  /**
   * Claims up to `limit` ACCEPTED batches (with a PayPal id) whose next check is due, for `leaseMs`: the next check
   * moves to now + leaseMs and the fence goes up, in one statement (FOR UPDATE SKIP LOCKED: replicas never share one).
   */
  claimBatchesToCheck(limit: number, leaseMs: number): Promise<BatchCheckJob[]>;
  /**
   * PayPal's status of the batch as last read, only while `fence` is current (false: another worker claimed it since);
   * the same statement closes it when every item of the batch is in one of `finalItemStatuses`, else it is checked again
   * after `nextCheckInMs`
   */
  recordBatchCheck(job: BatchCheckJob, paypalBatchStatus: string, finalItemStatuses: readonly string[], nextCheckInMs: number, trx?: Tx): Promise<boolean>;
  /** a check that failed: the batch is due again after `inMs` instead of when its lease runs out (only while `fence` is current) */
  deferBatchCheck(job: BatchCheckJob, inMs: number): Promise<void>;
  /** makes an accepted batch due for a check now (an operator asked to cancel one of its items) */
  checkBatchSoon(trx: Tx, batchId: string): Promise<void>;
  /**
   * A batch webhook: the accepted, unfinished batch with this PayPal id is checked at most `inMs` from now (sooner if it
   * was due sooner). Returns when its check is due; undefined when no such batch is open (its items' webhooks closed it).
   */
  checkBatchWithin(paypalBatchId: string, inMs: number): Promise<Date | undefined>;
  /**
   * Closes (COMPLETED) those of these accepted batches whose every item is now in one of `finalItemStatuses`, in the
   * caller's transaction, riding with its COMMIT: the items' webhooks finished them, so no check at PayPal is needed.
   */
  closeFinishedBatches(trx: Tx, batchIds: string[], finalItemStatuses: readonly string[]): Promise<void>;
  /** learns PayPal's id of a batch that did not know it yet (a single statement, no lock on the batch row) */
  learnPayPalBatchId(trx: Tx, batchId: string, paypalBatchId: string): Promise<void>;

  /** one statement for all; ids follow the order given */
  insertItems(trx: Tx, items: NewItem[]): Promise<void>;
  /**
   * the items with these sender_item_ids, locked in id order, each with its batch's PayPal id as known (the batch is not
   * locked); `busy` 'skip': items another transaction holds are left out (not waited for)
   */
  itemsBySenderItemIds(trx: Tx, senderItemIds: string[], busy?: BusyItems): Promise<ItemWithBatchId[]>;
  /** the same, read without a lock (to find out whether there is anything to apply) */
  peekItemsBySenderItemIds(senderItemIds: string[], trx?: Tx): Promise<ItemWithBatchId[]>;
  /**
   * Webhooks' items (by their sender_item_ids), read without a lock, and in the same statement each webhook recorded
   * whose item is already as it says (same status and PayPal item id): a repeat needs no other statement.
   */
  peekWebhookItems(webhooks: Array<{ state: PayPalItemState; event: { id: string; type: string } }>): Promise<ItemWithBatchId[]>;
  itemsOfBatch(batchId: string, trx?: Tx): Promise<PayoutItem[]>;
  itemsOfIntents(intentIds: string[], trx?: Tx): Promise<PayoutItem[]>;
  currentItem(intent: Intent, trx?: Tx): Promise<PayoutItem | undefined>;
  /** the batch's UNCLAIMED items an operator asked to cancel */
  itemsWithCancelRequested(batchId: string, trx?: Tx): Promise<PayoutItem[]>;
  /**
   * Items' outcomes, applied only if every item is still as `seen` (status, PayPal item id and transaction id, read
   * without a lock), and their intents locked — one statement. The items are locked first, in id order, then their
   * intents in id order. With an `intentMove` (the moves of one call share its `from` and `patch`), the same statement
   * also moves the item's intent (with its history row) when it is at the item's attempt and in one of `from`, and
   * writes the move's `event` (an outbox row) only if the intent moved. With `webhookEvents`, the same statement records
   * them (whatever the outcome). One entry per item moved, or undefined when any item was not as seen: then nothing moved
   * and no intent is locked, but the items stay locked (read them again with itemsBySenderItemIds and try again).
   * `busy` 'skip': items another transaction holds are skipped (not waited for, not moved, no entry): the rule applies to
   * the others.
   */
  moveItemsAsSeen(trx: Tx, moves: ItemMove[], webhookEvents?: Array<{ id: string; type: string }>, busy?: BusyItems): Promise<MovedItem[] | undefined>;
  requestItemCancel(trx: Tx, itemId: string): Promise<void>;
  recordCancelRefused(itemId: string, message: string): Promise<void>;
  rejectItemsOfBatch(trx: Tx, batchId: string, errorName: string, errorMessage: string): Promise<void>;
  /** events recorded before are left as they are */
  recordWebhookEvents(trx: Tx | undefined, events: Array<{ id: string; type: string }>): Promise<void>;
}

// ---- metrics (metrics.ts) -----------------------------------------------------------------------------------------

/** The counters the use cases move; created in metrics.ts (prom-client). */
export interface PayoutsMetrics {
  /** amounts (minor units) by final PayPal outcome and currency */
  outcomes: { inc(labels: { status: string; currency: string }, value: number): void };
  clawbacks: { inc(labels: { currency: string; recipient: string }, value: number): void };
  batches: { inc(labels: { outcome: string }): void };
  paypalCalls: { inc(labels: { operation: string; outcome: string }): void };
  saleToPayout: { observe(labels: { recipient: string }, value: number): void };
}

// ---- the background workers (service.ts) --------------------------------------------------------------------------

export interface PayoutsNudges {
  /** run the batcher now (an operator released intents) */
  batcher(): void;
  /** `count` intents became due (call after commit): the batcher runs once a batch is full or the linger is over */
  intentsDue(count: number): void;
  /** wake the reconciler (a batch was accepted, a cancel requested) */
  reconciler(): void;
  /** wake the reconciler when a batch this process scheduled falls due at `at` */
  reconcilerAt(at: Date): void;
}
