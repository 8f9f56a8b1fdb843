/**
 * The fulfillment state machine. Terminal: DELIVERED, NEEDS_REVIEW (with a reason), CANCELLED. Every transition is a
 * conditional update from one of the listed states, so two workers (or a worker and an operator) cannot both move an
 * order (lesson 5).
 */
export const States = {
  RECEIVED: 'RECEIVED', // recorded; the purchase worker will check it and buy
  PURCHASING: 'PURCHASING', // an attempt exists; its outcome may be unknown until resolved with the supplier
  AWAITING_PAYMENT: 'AWAITING_PAYMENT', // the supplier accepted the order; payment not settled: NOT purchased (lesson 16)
  PURCHASED: 'PURCHASED', // accepted and paid; PurchaseCompleted published
  SHIPPED: 'SHIPPED',
  DELIVERED: 'DELIVERED',
  NEEDS_REVIEW: 'NEEDS_REVIEW',
  CANCELLED: 'CANCELLED',
} as const;
export type State = (typeof States)[keyof typeof States];

export const TERMINAL_STATES: State[] = [States.DELIVERED, States.NEEDS_REVIEW, States.CANCELLED];
/** states in which no supplier order can exist yet */
export const BEFORE_PURCHASE: State[] = [States.RECEIVED];

/** Reason codes an operator sees in the review queue. */
export const Reasons = {
  INCOMPLETE_ADDRESS: 'INCOMPLETE_ADDRESS',
  UNMAPPED_LISTING: 'UNMAPPED_LISTING',
  PRICE_ABOVE_MAX: 'PRICE_ABOVE_MAX',
  FX_RATE_MISSING: 'FX_RATE_MISSING',
  OUT_OF_STOCK: 'OUT_OF_STOCK',
  PRODUCT_UNAVAILABLE: 'PRODUCT_UNAVAILABLE',
  SUPPLIER_CREDENTIALS_MISSING: 'SUPPLIER_CREDENTIALS_MISSING',
  SUPPLIER_REJECTED: 'SUPPLIER_REJECTED',
  SUPPLIER_AUTH_FAILED: 'SUPPLIER_AUTH_FAILED',
  RETRIES_EXHAUSTED: 'RETRIES_EXHAUSTED',
  UNRESOLVED_PURCHASE: 'UNRESOLVED_PURCHASE',
  SUPPLIER_PAYMENT_FAILED: 'SUPPLIER_PAYMENT_FAILED',
  SUPPLIER_ORDER_CANCELLED: 'SUPPLIER_ORDER_CANCELLED',
  /** FINISH with a close end_reason: the supplier closed the order without delivering it */
  SUPPLIER_ORDER_CLOSED: 'SUPPLIER_ORDER_CLOSED',
  /** REPEATED_ORDER_ERROR: AliExpress says our out_order_id was placed but not which order; never re-placed */
  SUPPLIER_ORDER_ID_UNKNOWN: 'SUPPLIER_ORDER_ID_UNKNOWN',
  CANCEL_AT_SUPPLIER_REQUIRED: 'CANCEL_AT_SUPPLIER_REQUIRED',
  BROWSER_CHECKOUT_FAILED: 'BROWSER_CHECKOUT_FAILED',
} as const;

/**
 * `end_reason`s of a FINISH order that mean it was completed (received by the buyer). Every other end_reason is a
 * closed order (cancelled, timed out, risk): FINISH is NOT "delivered" by itself (external-apis.md "Corrections").
 */
export const COMPLETED_END_REASONS = new Set(['buyer_accept_goods', 'buyer_accept_goods_timeout']);

/** FINISH closed without delivery: some child order ended for another reason than the buyer accepting the goods. */
export function closeReasonOf(order: { status: string; endReasons: string[] }): string | undefined {
  if (order.status !== 'FINISH') return undefined;
  return order.endReasons.find((r) => !COMPLETED_END_REASONS.has(r));
}

/** Reasons an operator may override with `approve` (buy despite the guard, up to a limit). */
export const APPROVABLE_REASONS: string[] = [Reasons.PRICE_ABOVE_MAX, Reasons.FX_RATE_MISSING];
