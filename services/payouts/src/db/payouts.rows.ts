import { safeInteger } from '@postsale/contracts';
import type { HoldReason, IntentStatus, Recipient } from '../domain/payout-rules';
import type { BalanceEntry, Batch, Intent, ItemWithBatchId, Payee, PayoutItem, ReversalRecord, SaleRecord } from '../domain/records';

/** Rows of the payouts schema → the domain's records. Money columns are bigint: `safeInteger()` refuses what does not fit. */
export const date = (v: unknown): Date | null => (v ? new Date(v as string) : null);

export function toIntent(r: Record<string, unknown>): Intent {
  return {
    id: String(r.id),
    saleId: String(r.sale_id),
    orderId: String(r.order_id),
    sellerId: String(r.seller_id),
    recipient: r.recipient as Recipient,
    currency: String(r.currency),
    amountMinor: safeInteger(r.amount_minor),
    reversedMinor: safeInteger(r.reversed_minor),
    offsetMinor: safeInteger(r.offset_minor),
    pendingReversalMinor: safeInteger(r.pending_reversal_minor),
    payableMinor: safeInteger(r.payable_minor),
    status: r.status as IntentStatus,
    holdReason: (r.hold_reason as HoldReason | null) ?? null,
    releaseAt: date(r.release_at),
    attempt: Number(r.attempt),
    batchId: (r.batch_id as string | null) ?? null,
    saleRecordedAt: new Date(r.sale_recorded_at as string),
    statusSince: new Date(r.status_since as string),
    createdAt: new Date(r.created_at as string),
    payoutCurrency: (r.payout_currency as string | null) ?? null,
    fxRate: (r.fx_rate as string | null) ?? null,
    fxRateDate: (r.fx_rate_date as string | null) ?? null,
    fxSource: (r.fx_source as string | null) ?? null,
    skipReason: (r.skip_reason as string | null) ?? null,
  };
}

/** Also a row read as JSON (to_jsonb: timestamps are ISO text, numbers are numbers). */
export function toPayee(r: Record<string, unknown>): Payee {
  return {
    sellerId: String(r.seller_id), email: String(r.email), releasePolicy: String(r.release_policy), releaseDelayDays: Number(r.release_delay_days),
    payoutCurrency: (r.payout_currency as string | null) ?? null, updatedAt: new Date(r.updated_at as string),
  };
}

/** An item read with its batch's PayPal id and status and its intent's order, seller and recipient (`payment_*` columns). */
export function toItemWithBatchId(r: Record<string, unknown>): ItemWithBatchId {
  return {
    ...toItem(r), batchPayPalBatchId: (r.batch_paypal_batch_id as string | null) ?? null, batchStatus: String(r.batch_status),
    payment: { orderId: String(r.payment_order_id), sellerId: String(r.payment_seller_id), recipient: r.payment_recipient as Recipient },
  };
}

export function toItem(r: Record<string, unknown>): PayoutItem {
  return {
    id: String(r.id),
    intentId: String(r.intent_id),
    attempt: Number(r.attempt),
    senderItemId: String(r.sender_item_id),
    batchId: String(r.batch_id),
    receiver: String(r.receiver),
    amountMinor: safeInteger(r.amount_minor),
    currency: String(r.currency),
    sourceAmountMinor: r.source_amount_minor === null || r.source_amount_minor === undefined ? null : safeInteger(r.source_amount_minor),
    sourceCurrency: (r.source_currency as string | null) ?? null,
    fxRate: (r.fx_rate as string | null) ?? null,
    fxRateDate: (r.fx_rate_date as string | null) ?? null,
    status: String(r.status),
    paypalItemId: (r.paypal_item_id as string | null) ?? null,
    transactionId: (r.transaction_id as string | null) ?? null,
    errorName: (r.error_name as string | null) ?? null,
    errorMessage: (r.error_message as string | null) ?? null,
    cancelRequestedAt: date(r.cancel_requested_at),
    createdAt: new Date(r.created_at as string),
    updatedAt: new Date(r.updated_at as string),
  };
}

export function toBatch(r: Record<string, unknown>): Batch {
  return {
    id: String(r.id),
    senderBatchId: String(r.sender_batch_id),
    status: String(r.status),
    paypalBatchId: (r.paypal_batch_id as string | null) ?? null,
    request: typeof r.request === 'string' ? JSON.parse(r.request) : r.request,
    itemCount: Number(r.item_count),
    postAttempts: Number(r.post_attempts),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(r.created_at as string),
  };
}

export function toSale(r: Record<string, unknown>): SaleRecord {
  return {
    saleId: String(r.sale_id), orderId: String(r.order_id), sellerId: String(r.seller_id), currency: String(r.currency),
    saleAmountMinor: safeInteger(r.sale_amount_minor), platformCommissionMinor: safeInteger(r.platform_commission_minor),
    sellerNetMinor: safeInteger(r.seller_net_minor), isLoss: Boolean(r.is_loss), eventId: String(r.event_id), recordedAt: new Date(r.recorded_at as string),
  };
}

export function toReversal(r: Record<string, unknown>): ReversalRecord {
  return {
    reversalId: String(r.reversal_id), saleId: String(r.sale_id), orderId: String(r.order_id), kind: String(r.kind), currency: String(r.currency),
    commissionReversedMinor: safeInteger(r.commission_reversed_minor), sellerNetReversedMinor: safeInteger(r.seller_net_reversed_minor),
    reversedAt: new Date(r.reversed_at as string),
  };
}

export function toBalanceEntry(r: Record<string, unknown>): BalanceEntry {
  return {
    party: String(r.party), currency: String(r.currency), amountMinor: safeInteger(r.amount_minor), kind: r.kind as BalanceEntry['kind'],
    orderId: String(r.order_id), intentId: String(r.intent_id), reference: String(r.reference), at: new Date(r.created_at as string),
  };
}
