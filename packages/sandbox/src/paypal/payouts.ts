import type { Express, Request, Response } from 'express';
import { applyRate, fromMinorUnits, isoSeconds, randomHex, randomId, toMinorUnits } from '../fake-utils';
import { baseUrlOf, sendError, sendJson, type PayPalErrorDetail } from './paypal-http';

/**
 * Payouts v1 as PayPal runs it (sources: ../shared/reference/external-apis.md "Corrections", PayPal's OpenAPI
 * specification paypal/paypal-rest-api-specifications payments_payouts_batch_v1, real bodies quoted in
 * plutov/paypal unit_test.go): a batch is accepted PENDING, its items later settle to an outcome (SUCCESS,
 * UNCLAIMED, FAILED…); a batch whose items ALL fail ends DENIED; a reused `sender_batch_id` is refused with HTTP 400
 * USER_BUSINESS_ERROR "Batch with given sender_batch_id already exists" and a link to the original batch (the only
 * idempotency PayPal offers for payouts); a create can also be refused (see `PayoutRefusal`); only UNCLAIMED items
 * can be cancelled.
 */
export type PayoutItemStatus = 'SUCCESS' | 'FAILED' | 'PENDING' | 'UNCLAIMED' | 'RETURNED' | 'ONHOLD' | 'BLOCKED' | 'REFUNDED' | 'REVERSED';
export type PayoutOutcome = 'SUCCESS' | 'UNCLAIMED' | 'RETURNED' | 'FAILED' | 'BLOCKED' | 'ONHOLD';
export type PayoutBatchStatus = 'DENIED' | 'PENDING' | 'PROCESSING' | 'SUCCESS' | 'CANCELED';

export interface PayoutAmount {
  value: string;
  currency: string;
}

/** One accepted payout item, for assertions ("every payout made exactly once"). */
export interface PaidItem {
  payoutBatchId: string;
  payoutItemId: string;
  senderBatchId?: string;
  senderItemId?: string;
  recipientType: string;
  receiver: string;
  amount: PayoutAmount;
  note?: string;
  status: PayoutItemStatus;
  transactionId?: string;
  activityId?: string;
  timeProcessed?: string;
  errors?: PayoutItemError;
  acceptedAt: number;
}

export interface PayoutBatchSummary {
  payoutBatchId: string;
  senderBatchId?: string;
  batchStatus: PayoutBatchStatus;
  timeCreated: string;
  timeCompleted?: string;
  items: PaidItem[];
}

export interface PayoutItemError {
  name: string;
  message: string;
  information_link: string;
  details: unknown[];
}

/** Receiver string, `{receiver}` / `{senderItemId}`, or any predicate over the accepted item. */
export type PayoutMatcher = string | { receiver?: string; senderItemId?: string } | ((item: PaidItem) => boolean);

export interface PayoutOutcomeOptions {
  /** error name reported on FAILED/UNCLAIMED/BLOCKED/RETURNED items; RECEIVER_UNREGISTERED etc. */
  errorName?: string;
  errorMessage?: string;
}

interface BatchRecord {
  payoutBatchId: string;
  senderBatchHeader: Record<string, unknown>;
  status: PayoutBatchStatus;
  timeCreated: string;
  timeCompleted?: string;
  createdAt: number;
  items: PaidItem[];
  fees: Map<string, string>;
}

export type PayoutEvent = { kind: 'item'; item: Record<string, unknown>; status: PayoutItemStatus | 'CANCELED' } | { kind: 'batch'; batch: Record<string, unknown>; status: PayoutBatchStatus };

/**
 * The refusals PayPal documents for `POST /v1/payments/payouts` (Corrections, "PayPal Payouts"), each with its real
 * HTTP status and wording. INTERNAL_ERROR is an unknown outcome for the caller (nothing is created here; PayPal says
 * retry with the same sender_batch_id).
 */
export type PayoutRefusal = 'INSUFFICIENT_FUNDS' | 'AUTHORIZATION_ERROR' | 'SENDER_RESTRICTED' | 'NON_HOLDING_CURRENCY' | 'VALIDATION_ERROR' | 'INTERNAL_ERROR';

export interface PayoutRefusalOptions {
  /** how many creates it applies to; Infinity by default */
  times?: number;
  /**
   * 'any' (default): every create; 'first': only a create whose sender_batch_id PayPal does not know yet;
   * 'repost': only a create re-using a known sender_batch_id (answered with this refusal instead of the duplicate one)
   */
  on?: 'any' | 'first' | 'repost';
}

/**
 * How a reused sender_batch_id is answered. 'link' (default, Corrections "PayPal Payouts"): the detail links the
 * original batch. 'no-link': the same 400 USER_BUSINESS_ERROR without a link (the link is informational HATEOAS; a
 * client must not depend on it). 'other-batch': the link names a batch of another sender_batch_id (what a wrong link
 * would look like; a client must check what it adopts).
 */
export type DuplicateAnswer = 'link' | 'no-link' | 'other-batch';

export const PAYOUT_REFUSALS: Record<PayoutRefusal, { status: number; message: string; details: PayPalErrorDetail[] }> = {
  // 422, Corrections: "Sender does not have sufficient funds. Please add funds and retry."
  INSUFFICIENT_FUNDS: { status: 422, message: 'Sender does not have sufficient funds. Please add funds and retry.', details: [] },
  // 403, PayPal's common error names (Orders/Payouts OpenAPI "403" responses)
  AUTHORIZATION_ERROR: { status: 403, message: 'Authorization error occurred.', details: [] },
  SENDER_RESTRICTED: { status: 403, message: 'Sender is restricted.', details: [] },
  // 400, payments_payouts_batch_v1 error catalogue
  NON_HOLDING_CURRENCY: { status: 400, message: 'Payouts can only be sent in a currency that is held in the sender account.', details: [] },
  VALIDATION_ERROR: {
    status: 400, message: 'Invalid request - see details',
    details: [{ field: 'items[0].receiver', location: 'body', issue: 'Receiver is invalid or does not match with type' }],
  },
  INTERNAL_ERROR: { status: 500, message: 'An internal server error has occurred.', details: [] },
};

export interface PayoutsState {
  batches: Map<string, BatchRecord>;
  bySenderBatchId: Map<string, string>;
  items: Map<string, { batch: BatchRecord; item: PaidItem }>;
  outcomes: Array<{ matcher: PayoutMatcher; outcome: PayoutOutcome; options: PayoutOutcomeOptions }>;
  refusals: Array<{ refusal: PayoutRefusal; on: 'any' | 'first' | 'repost'; remaining: number }>;
  duplicateAnswer: DuplicateAnswer;
  /** available balance per currency in minor units; a missing currency means unlimited */
  balances: Map<string, bigint>;
  processAfterMs: number;
  feeRate: number;
  baseUrl: string;
  timers: Set<NodeJS.Timeout>;
  /** called for each settled item/batch and cancellation, e.g. to send webhooks */
  notify?: (event: PayoutEvent) => void;
}

export function newPayoutsState(options: { processAfterMs?: number; feeRate?: number }): PayoutsState {
  return {
    batches: new Map(),
    bySenderBatchId: new Map(),
    items: new Map(),
    outcomes: [],
    refusals: [],
    duplicateAnswer: 'link',
    balances: new Map(),
    processAfterMs: options.processAfterMs ?? 0,
    feeRate: options.feeRate ?? 0.02,
    baseUrl: '',
    timers: new Set(),
  };
}

/** Currencies PayPal Payouts accepts; HUF, JPY and TWD have no decimals. */
const CURRENCIES = new Set(['AUD', 'BRL', 'CAD', 'CNY', 'CZK', 'DKK', 'EUR', 'HKD', 'HUF', 'ILS', 'JPY', 'MYR', 'MXN', 'TWD', 'NZD', 'NOK', 'PHP', 'PLN', 'GBP', 'RUB', 'SGD', 'SEK', 'CHF', 'THB', 'USD']);
const payoutDecimals = (currency: string) => (['HUF', 'JPY', 'TWD'].includes(currency) ? 0 : 2);
const MAX_ITEMS = 15_000;
const ERRORS_LINK = 'https://developer.paypal.com/docs/api/payments.payouts-batch/#errors';

// ---- control (used by the fake's handle) ----------------------------------------------------------------------

function matches(matcher: PayoutMatcher, item: PaidItem): boolean {
  if (typeof matcher === 'string') return matcher === item.receiver;
  if (typeof matcher === 'function') return matcher(item);
  return (matcher.receiver === undefined || matcher.receiver === item.receiver)
    && (matcher.senderItemId === undefined || matcher.senderItemId === item.senderItemId);
}

const ERROR_MESSAGES: Record<string, string> = {
  RECEIVER_UNREGISTERED: 'Receiver is unregistered',
  RECEIVER_ACCOUNT_LOCKED: 'Receiver account is locked or inactive',
  RECEIVER_UNCONFIRMED: 'Receiver is unconfirmed',
  RISK_DECLINE: 'Transaction declined due to risk',
  BLOCKED_RECEIVER: 'Receiver is blocked',
};

function itemError(outcome: PayoutOutcome, options: PayoutOutcomeOptions): PayoutItemError | undefined {
  const defaults: Partial<Record<PayoutOutcome, string>> = { FAILED: 'RECEIVER_UNREGISTERED', UNCLAIMED: 'RECEIVER_UNREGISTERED', RETURNED: 'RECEIVER_UNREGISTERED', BLOCKED: 'RISK_DECLINE' };
  const name = options.errorName ?? defaults[outcome];
  if (!name) return undefined;
  return { name, message: options.errorMessage ?? ERROR_MESSAGES[name] ?? name, information_link: `${ERRORS_LINK}-${name}`, details: [] };
}

function settleItem(state: PayoutsState, batch: BatchRecord, item: PaidItem): void {
  const rule = [...state.outcomes].reverse().find((r) => matches(r.matcher, item));
  const outcome = rule?.outcome ?? 'SUCCESS';
  item.status = outcome;
  if (!['FAILED', 'BLOCKED'].includes(outcome)) item.transactionId = randomId(17);
  item.activityId = randomId(17);
  const errors = itemError(outcome, rule?.options ?? {});
  if (errors) item.errors = errors;
  // Money that never reached the receiver carries no fee (and comes back to the balance).
  if (['FAILED', 'BLOCKED', 'RETURNED'].includes(outcome)) {
    batch.fees.set(item.payoutItemId, fromMinorUnits(0n, payoutDecimals(item.amount.currency)));
    credit(state, item.amount);
  }
  state.notify?.({ kind: 'item', item: itemView(state.baseUrl, batch, item, true), status: outcome });
}

/** Settles every due batch (or all of them with `force`); idempotent. */
export function settlePayouts(state: PayoutsState, force = false): void {
  const now = Date.now();
  for (const batch of state.batches.values()) {
    if (batch.status !== 'PENDING' && batch.status !== 'PROCESSING') continue;
    if (!force && now < batch.createdAt + state.processAfterMs) continue;
    const processedAt = isoSeconds();
    for (const item of batch.items) {
      if (item.status !== 'PENDING') continue;
      item.timeProcessed = processedAt;
      settleItem(state, batch, item);
    }
    // Corrections: a batch whose items ALL fail ends DENIED (items FAILED, e.g. RECEIVER_ACCOUNT_INVALID).
    const allFailed = batch.items.length > 0 && batch.items.every((i) => i.status === 'FAILED' || i.status === 'BLOCKED');
    batch.status = allFailed ? 'DENIED' : 'SUCCESS';
    batch.timeCompleted = processedAt;
    // Corrections: PAYMENT.PAYOUTSBATCH.* webhooks carry the batch header and links only, no items.
    const { items: _items, ...header } = batchView(state.baseUrl, batch, 1, 1000, false);
    void _items;
    state.notify?.({ kind: 'batch', batch: header, status: batch.status });
  }
}

export function setPayoutOutcome(state: PayoutsState, matcher: PayoutMatcher, outcome: PayoutOutcome, options: PayoutOutcomeOptions = {}): void {
  state.outcomes.push({ matcher, outcome, options });
}

export function paidItems(state: PayoutsState): PaidItem[] {
  return [...state.batches.values()].flatMap((b) => b.items.map((i) => structuredClone(i)));
}

export function payoutBatches(state: PayoutsState): PayoutBatchSummary[] {
  return [...state.batches.values()].map((b) => ({
    payoutBatchId: b.payoutBatchId,
    ...(typeof b.senderBatchHeader.sender_batch_id === 'string' ? { senderBatchId: b.senderBatchHeader.sender_batch_id } : {}),
    batchStatus: b.status,
    timeCreated: b.timeCreated,
    ...(b.timeCompleted ? { timeCompleted: b.timeCompleted } : {}),
    items: b.items.map((i) => structuredClone(i)),
  }));
}

export function answerDuplicates(state: PayoutsState, answer: DuplicateAnswer): void {
  state.duplicateAnswer = answer;
}

/** Makes the next creates answer one of PayPal's refusals (nothing is created). */
export function refusePayoutCreates(state: PayoutsState, refusal: PayoutRefusal, options: PayoutRefusalOptions = {}): void {
  state.refusals.push({ refusal, on: options.on ?? 'any', remaining: options.times ?? Number.POSITIVE_INFINITY });
}

export function setBalance(state: PayoutsState, currency: string, value: string | undefined): void {
  if (value === undefined) {
    state.balances.delete(currency);
    return;
  }
  const minor = toMinorUnits(value, payoutDecimals(currency));
  if (minor === undefined) throw new Error(`setBalance: "${value}" is not a ${currency} amount`);
  state.balances.set(currency, minor);
}

function credit(state: PayoutsState, amount: PayoutAmount): void {
  const balance = state.balances.get(amount.currency);
  if (balance === undefined) return;
  state.balances.set(amount.currency, balance + (toMinorUnits(amount.value, payoutDecimals(amount.currency)) ?? 0n));
}

// ---- views (the JSON PayPal returns) --------------------------------------------------------------------------

function link(href: string, rel: string, method = 'GET') {
  return { href, rel, method, encType: 'application/json' };
}

function itemView(base: string, batch: BatchRecord, item: PaidItem, withSenderBatchId: boolean): Record<string, unknown> {
  return {
    payout_item_id: item.payoutItemId,
    ...(item.transactionId ? { transaction_id: item.transactionId } : {}),
    ...(item.activityId ? { activity_id: item.activityId } : {}),
    transaction_status: item.status,
    payout_item_fee: { currency: item.amount.currency, value: batch.fees.get(item.payoutItemId) },
    payout_batch_id: batch.payoutBatchId,
    ...(withSenderBatchId && item.senderBatchId ? { sender_batch_id: item.senderBatchId } : {}),
    payout_item: {
      recipient_type: item.recipientType,
      amount: { ...item.amount },
      ...(item.note !== undefined ? { note: item.note } : {}),
      receiver: item.receiver,
      ...(item.senderItemId !== undefined ? { sender_item_id: item.senderItemId } : {}),
      recipient_wallet: 'PAYPAL',
    },
    ...(item.timeProcessed ? { time_processed: item.timeProcessed } : {}),
    ...(item.errors ? { errors: item.errors } : {}),
    links: [link(`${base}/v1/payments/payouts-item/${item.payoutItemId}`, 'item')],
  };
}

function sumOf(values: Array<{ value: string; currency: string }>, currency: string): string {
  const decimals = payoutDecimals(currency);
  const total = values.filter((v) => v.currency === currency).reduce((sum, v) => sum + (toMinorUnits(v.value, decimals) ?? 0n), 0n);
  return fromMinorUnits(total, decimals);
}

function batchView(base: string, batch: BatchRecord, page: number, pageSize: number, totalRequired: boolean): Record<string, unknown> {
  const currency = batch.items[0]?.amount.currency ?? 'USD';
  // Corrections: batch fees stay 0 until the batch is PROCESSING.
  const fees = batch.status === 'PENDING' ? [] : batch.items.map((i) => ({ value: batch.fees.get(i.payoutItemId) ?? '0', currency: i.amount.currency }));
  const start = (page - 1) * pageSize;
  const totalPages = Math.max(1, Math.ceil(batch.items.length / pageSize));
  const self = `${base}/v1/payments/payouts/${batch.payoutBatchId}`;
  const pageLink = (p: number, rel: string) => link(`${self}?page_size=${pageSize}&page=${p}&total_required=${totalRequired}`, rel);
  return {
    batch_header: {
      payout_batch_id: batch.payoutBatchId,
      batch_status: batch.status,
      time_created: batch.timeCreated,
      ...(batch.timeCompleted ? { time_completed: batch.timeCompleted, time_closed: batch.timeCompleted } : {}),
      sender_batch_header: batch.senderBatchHeader,
      funding_source: 'BALANCE',
      amount: { currency, value: sumOf(batch.items.map((i) => i.amount), currency) },
      fees: { currency, value: sumOf(fees, currency) },
    },
    items: batch.items.slice(start, start + pageSize).map((i) => itemView(base, batch, i, false)),
    ...(totalRequired ? { total_items: batch.items.length, total_page: totalPages } : {}),
    links: [
      pageLink(page, 'self'),
      ...(page > 1 ? [pageLink(1, 'first'), pageLink(page - 1, 'prev')] : []),
      ...(page < totalPages ? [pageLink(page + 1, 'next'), pageLink(totalPages, 'last')] : []),
    ],
  };
}

// ---- routes -----------------------------------------------------------------------------------------------------

export function configurePayoutRoutes(app: Express, state: PayoutsState): void {
  app.post('/v1/payments/payouts', (req, res) => createBatch(req, res, state));
  app.get('/v1/payments/payouts/:batchId', (req, res) => {
    settlePayouts(state);
    const batch = state.batches.get(String(req.params.batchId));
    if (!batch) return notFound(req, res);
    const pageSize = clampInt(req.query.page_size, 1000, 1, 1000);
    const page = clampInt(req.query.page, 1, 1, Number.MAX_SAFE_INTEGER);
    sendJson(req, res, 200, batchView(baseUrlOf(req), batch, page, pageSize, req.query.total_required === 'true'));
  });
  app.get('/v1/payments/payouts-item/:itemId', (req, res) => {
    settlePayouts(state);
    const found = state.items.get(String(req.params.itemId));
    if (!found) return notFound(req, res);
    sendJson(req, res, 200, itemView(baseUrlOf(req), found.batch, found.item, true));
  });
  app.post('/v1/payments/payouts-item/:itemId/cancel', (req, res) => cancelItem(req, res, state));
}

function clampInt(raw: unknown, fallback: number, min: number, max: number): number {
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : fallback;
  return Math.min(max, Math.max(min, n));
}

function notFound(req: Request, res: Response): void {
  sendError(req, res, 404, 'INVALID_RESOURCE_ID', 'Requested resource ID was not found.', [], `${ERRORS_LINK}-INVALID_RESOURCE_ID`);
}

interface ParsedItem {
  recipientType: string;
  receiver: string;
  amount: PayoutAmount;
  note?: string;
  senderItemId?: string;
}

function validateReceiver(type: string, receiver: unknown): string | undefined {
  if (typeof receiver !== 'string' || receiver === '') return 'Receiver is required';
  if (type === 'EMAIL' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(receiver)) return 'Receiver must be a valid email address';
  if (type === 'PHONE' && !/^\+?\d{6,15}$/.test(receiver)) return 'Receiver must be a valid phone number';
  if (type === 'PAYPAL_ID' && !/^[A-Z0-9]{13}$/.test(receiver)) return 'Receiver must be a valid PayPal account id';
  return undefined;
}

function validateAmount(amount: unknown): string | undefined {
  const a = (amount ?? {}) as { value?: unknown; currency?: unknown };
  if (typeof a.currency !== 'string' || !CURRENCIES.has(a.currency)) return 'Currency is not supported';
  if (typeof a.value !== 'string') return 'Amount value must be a string';
  const decimals = payoutDecimals(a.currency);
  const minor = toMinorUnits(a.value, decimals);
  if (minor === undefined) return `Amount value must have ${decimals} decimal places for currency ${a.currency}`;
  if (minor <= 0n) return 'Amount value must be greater than zero';
  return undefined;
}

/** Validates items the way PayPal reports them: one detail per problem, with a JSON-path-like field. */
function parseItems(rawItems: unknown, header: Record<string, unknown>, details: PayPalErrorDetail[]): ParsedItem[] {
  if (!Array.isArray(rawItems) || rawItems.length === 0) {
    details.push({ field: 'items', location: 'body', issue: 'Items are required and cannot be empty' });
    return [];
  }
  if (rawItems.length > MAX_ITEMS) {
    details.push({ field: 'items', location: 'body', issue: `Number of items exceeds the limit of ${MAX_ITEMS}` });
    return [];
  }
  return rawItems.map((raw: unknown, i) => {
    const item = (raw ?? {}) as Record<string, unknown>;
    const type = String(item.recipient_type ?? header.recipient_type ?? 'EMAIL');
    const problem = (field: string, issue: string | undefined) => issue && details.push({ field: `items[${i}].${field}`, location: 'body', issue });
    problem('recipient_type', ['EMAIL', 'PHONE', 'PAYPAL_ID', 'USER_HANDLE'].includes(type) ? undefined : 'Invalid recipient type');
    problem('receiver', validateReceiver(type, item.receiver));
    problem('amount', validateAmount(item.amount));
    const senderItemId = item.sender_item_id;
    problem('sender_item_id', senderItemId === undefined || (typeof senderItemId === 'string' && senderItemId.length <= 63) ? undefined : 'sender_item_id must be a string of at most 63 characters');
    const amount = (item.amount ?? {}) as PayoutAmount;
    return {
      recipientType: type,
      receiver: String(item.receiver),
      amount: { value: String(amount.value), currency: String(amount.currency) },
      ...(typeof item.note === 'string' ? { note: item.note } : {}),
      ...(typeof senderItemId === 'string' ? { senderItemId } : {}),
    };
  });
}

function createBatch(req: Request, res: Response, state: PayoutsState): void {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const header = body.sender_batch_header;
  const details: PayPalErrorDetail[] = [];
  if (typeof header !== 'object' || header === null) details.push({ field: 'sender_batch_header', location: 'body', issue: 'sender_batch_header is required' });
  const h = (header ?? {}) as Record<string, unknown>;
  const senderBatchId = h.sender_batch_id;
  if (senderBatchId !== undefined && (typeof senderBatchId !== 'string' || senderBatchId.length === 0 || senderBatchId.length > 256)) {
    details.push({ field: 'sender_batch_header.sender_batch_id', location: 'body', issue: 'sender_batch_id must be a string of 1 to 256 characters' });
  }
  const items = parseItems(body.items, h, details);
  if (details.length > 0) return sendError(req, res, 400, 'VALIDATION_ERROR', 'Invalid request - see details', details, ERRORS_LINK);
  const duplicateOf = typeof senderBatchId === 'string' ? state.bySenderBatchId.get(senderBatchId) : undefined;
  const refusal = state.refusals.find((r) => r.remaining > 0 && (r.on === 'any' || (r.on === 'repost') === Boolean(duplicateOf)));
  if (refusal) {
    refusal.remaining -= 1;
    const r = PAYOUT_REFUSALS[refusal.refusal];
    return sendError(req, res, r.status, refusal.refusal, r.message, structuredClone(r.details), `${ERRORS_LINK}-${refusal.refusal}`);
  }
  if (duplicateOf) return duplicateBatch(req, res, state, senderBatchId as string, duplicateOf);
  if (!debit(state, items)) {
    const r = PAYOUT_REFUSALS.INSUFFICIENT_FUNDS;
    return sendError(req, res, r.status, 'INSUFFICIENT_FUNDS', r.message, [], `${ERRORS_LINK}-INSUFFICIENT_FUNDS`);
  }
  const batch = storeBatch(state, h, items);
  const base = baseUrlOf(req);
  sendJson(req, res, 201, {
    batch_header: { payout_batch_id: batch.payoutBatchId, batch_status: 'PENDING', sender_batch_header: batch.senderBatchHeader },
    links: [link(`${base}/v1/payments/payouts/${batch.payoutBatchId}`, 'self')],
  });
}

/**
 * PayPal's answer to a reused sender_batch_id, exactly as in the Corrections section (source: a real response body in
 * plutov/paypal unit_test.go; PayPal's payouts docs "sender_batch_id … duplicate"): HTTP 400 USER_BUSINESS_ERROR,
 * issue "Batch with given sender_batch_id already exists", and a link to the original batch.
 */
function duplicateBatch(req: Request, res: Response, state: PayoutsState, senderBatchId: string, original: string): void {
  const base = baseUrlOf(req);
  let linked: string | undefined = original;
  if (state.duplicateAnswer === 'no-link') linked = undefined;
  if (state.duplicateAnswer === 'other-batch') {
    linked = [...state.batches.values()].reverse().find((b) => b.senderBatchHeader.sender_batch_id !== senderBatchId)?.payoutBatchId;
    if (!linked) throw new Error("duplicateAnswer 'other-batch' needs another batch to link to");
  }
  sendJson(req, res, 400, {
    name: 'USER_BUSINESS_ERROR',
    message: 'User business error.',
    debug_id: randomHex(7).slice(0, 13),
    information_link: 'https://developer.paypal.com/docs/api/payments.payouts-batch/#errors',
    details: [
      {
        field: 'SENDER_BATCH_ID',
        location: 'body',
        issue: 'Batch with given sender_batch_id already exists',
        ...(linked ? { link: [{ href: `${base}/v1/payments/payouts/${linked}`, rel: 'self', method: 'GET' }] } : {}),
      },
    ],
    links: [],
  });
}

/** Takes the batch total from a limited balance; false when it does not cover it. */
function debit(state: PayoutsState, items: ParsedItem[]): boolean {
  const needed = new Map<string, bigint>();
  for (const i of items) {
    needed.set(i.amount.currency, (needed.get(i.amount.currency) ?? 0n) + (toMinorUnits(i.amount.value, payoutDecimals(i.amount.currency)) ?? 0n));
  }
  for (const [currency, amount] of needed) {
    const balance = state.balances.get(currency);
    if (balance !== undefined && balance < amount) return false;
  }
  for (const [currency, amount] of needed) {
    const balance = state.balances.get(currency);
    if (balance !== undefined) state.balances.set(currency, balance - amount);
  }
  return true;
}

function storeBatch(state: PayoutsState, header: Record<string, unknown>, items: ParsedItem[]): BatchRecord {
  const payoutBatchId = randomId(13);
  const senderBatchId = typeof header.sender_batch_id === 'string' ? header.sender_batch_id : undefined;
  const batch: BatchRecord = {
    payoutBatchId,
    senderBatchHeader: structuredClone(header),
    status: 'PENDING',
    timeCreated: isoSeconds(),
    createdAt: Date.now(),
    items: [],
    fees: new Map(),
  };
  for (const parsed of items) {
    const item: PaidItem = {
      payoutBatchId,
      payoutItemId: randomId(13),
      ...(senderBatchId ? { senderBatchId } : {}),
      ...parsed,
      status: 'PENDING',
      acceptedAt: Date.now(),
    };
    batch.items.push(item);
    batch.fees.set(item.payoutItemId, itemFee(state, item.amount));
    state.items.set(item.payoutItemId, { batch, item });
  }
  state.batches.set(payoutBatchId, batch);
  if (senderBatchId) state.bySenderBatchId.set(senderBatchId, payoutBatchId);
  scheduleSettlement(state);
  return batch;
}

/** 2 % of the amount, capped at 20 in the item's currency (PayPal's domestic payout pricing, simplified). */
function itemFee(state: PayoutsState, amount: PayoutAmount): string {
  const decimals = payoutDecimals(amount.currency);
  const fee = toMinorUnits(applyRate(amount.value, state.feeRate, amount.currency), decimals) ?? 0n;
  const cap = 20n * 10n ** BigInt(decimals);
  return fromMinorUnits(fee > cap ? cap : fee, decimals);
}

function scheduleSettlement(state: PayoutsState): void {
  if (!Number.isFinite(state.processAfterMs)) return;
  const timer = setTimeout(() => {
    state.timers.delete(timer);
    settlePayouts(state);
  }, state.processAfterMs);
  timer.unref();
  state.timers.add(timer);
}

function cancelItem(req: Request, res: Response, state: PayoutsState): void {
  settlePayouts(state);
  const found = state.items.get(String(req.params.itemId));
  if (!found) return notFound(req, res);
  const { batch, item } = found;
  if (item.status !== 'UNCLAIMED') {
    const name = item.status === 'RETURNED' ? 'ITEM_ALREADY_CANCELLED' : 'ITEM_INCORRECT_STATUS';
    const message = item.status === 'RETURNED' ? 'Item has already been cancelled.' : `Item status is ${item.status}; only UNCLAIMED items can be cancelled.`;
    return sendError(req, res, 400, name, message, [], `${ERRORS_LINK}-${name}`);
  }
  item.status = 'RETURNED';
  batch.fees.set(item.payoutItemId, fromMinorUnits(0n, payoutDecimals(item.amount.currency)));
  credit(state, item.amount);
  const view = itemView(baseUrlOf(req), batch, item, true);
  state.notify?.({ kind: 'item', item: itemView(state.baseUrl, batch, item, true), status: 'CANCELED' });
  sendJson(req, res, 200, view);
}
