/**
 * Pure payout rules: intent states, release policies, item outcomes, reversal arithmetic. No I/O here; the use cases
 * apply these decisions to the database.
 */
export type Recipient = 'PLATFORM' | 'SELLER';

/**
 * HELD       cannot be paid yet (hold_reason says why; release_at, when set, says until when)
 * DUE        will go into the next batch once release_at has passed
 * SUBMITTED  in a PayPal batch, outcome not final yet (PENDING/ONHOLD/UNCLAIMED at PayPal)
 * SENT       PayPal reported SUCCESS (terminal unless PayPal later returns/reverses it)
 * FAILED     FAILED/BLOCKED/rejected: still owed, retried by policy or operator
 * RETURNED   RETURNED/REFUNDED/REVERSED: the money came back, still owed, retried by policy or operator
 * CANCELLED  reversed before payout (terminal)
 * SKIPPED    nothing to pay: a zero share (loss order) (terminal)
 * OFFSET     fully used to settle what the payee owed (terminal)
 * DRY_RUN    dry-run recorded what it would have paid (terminal)
 * NEEDS_REVIEW  the batch outcome could not be established within PayPal's duplicate window (operator)
 */
export type IntentStatus = 'HELD' | 'DUE' | 'SUBMITTED' | 'SENT' | 'FAILED' | 'RETURNED' | 'CANCELLED' | 'SKIPPED' | 'OFFSET' | 'DRY_RUN' | 'NEEDS_REVIEW';

export const TERMINAL_STATUSES: IntentStatus[] = ['SENT', 'CANCELLED', 'SKIPPED', 'OFFSET', 'DRY_RUN'];
/** statuses in which nothing is at PayPal and the payable amount can still change */
export const UNPAID_STATUSES: IntentStatus[] = ['HELD', 'DUE', 'FAILED', 'RETURNED'];

/**
 * FX_RATE_MISSING     the payee is paid in another currency and no rate dated on or before the sale's day exists
 *                     (released automatically when PUT /admin/fx-rates sets one)
 * PAYOUT_NOT_PAYABLE  the batcher found an amount PayPal would refuse (defensive: never put into a batch)
 */
export type HoldReason = 'PAYEE_MISSING' | 'PLATFORM_PAYEE_MISSING' | 'FX_RATE_MISSING' | 'PAYOUT_NOT_PAYABLE' | 'AWAITING_SHIPMENT' | 'AWAITING_DELIVERY'
  /** PayPal refused the batch on its first post (e.g. PAYPAL_REFUSED:INSUFFICIENT_FUNDS): released by an operator's retry only */
  | `PAYPAL_REFUSED:${string}`;

/** Held because PayPal refused it: only an operator's retry releases it (never a payee/rate/milestone re-decision). */
export const isPayPalRefusal = (reason: string | null | undefined): boolean => Boolean(reason?.startsWith('PAYPAL_REFUSED:'));

/** Holds that need an operator's configuration (payee, rate), as opposed to waiting for fulfillment. */
export const CONFIGURATION_HOLDS: HoldReason[] = ['PAYEE_MISSING', 'PLATFORM_PAYEE_MISSING', 'FX_RATE_MISSING', 'PAYOUT_NOT_PAYABLE'];

export type ReleasePolicy = { kind: 'immediate' } | { kind: 'after_shipment' } | { kind: 'after_delivery_plus_days'; days: number };

export function parseReleasePolicy(text: string): ReleasePolicy {
  if (text === 'immediate') return { kind: 'immediate' };
  if (text === 'after_shipment') return { kind: 'after_shipment' };
  const m = /^after_delivery_plus_days:(\d{1,3})$/.exec(text);
  if (m) return { kind: 'after_delivery_plus_days', days: Number(m[1]) };
  throw new RangeError(`unknown release policy ${text}`);
}

export function describePolicy(p: ReleasePolicy): string {
  return p.kind === 'after_delivery_plus_days' ? `after_delivery_plus_days:${p.days}` : p.kind;
}

export interface ReleaseInputs {
  recipient: Recipient;
  /** the receiver is known (platform payee configured / seller payee set) */
  payeeKnown: boolean;
  /** no conversion is needed, or a rate for it was found (default true) */
  fxRateKnown?: boolean;
  policy: ReleasePolicy;
  saleRecordedAt: Date;
  shippedAt: Date | null;
  deliveredAt: Date | null;
}

export type ReleaseDecision = { status: 'HELD'; holdReason: HoldReason; releaseAt: null } | { status: 'DUE'; holdReason: null; releaseAt: Date };

const DAY_MS = 24 * 3600 * 1000;

/**
 * When an intent may be paid. A missing payee comes first (nothing can be sent anywhere), then a missing FX rate
 * (nothing can be computed), then the release policy.
 * "after delivery + N days" is DUE with a future release_at: the admin API shows it as held until that time.
 */
export function decideRelease(input: ReleaseInputs): ReleaseDecision {
  if (!input.payeeKnown) {
    return { status: 'HELD', holdReason: input.recipient === 'PLATFORM' ? 'PLATFORM_PAYEE_MISSING' : 'PAYEE_MISSING', releaseAt: null };
  }
  if (input.fxRateKnown === false) return { status: 'HELD', holdReason: 'FX_RATE_MISSING', releaseAt: null };
  const p = input.policy;
  if (p.kind === 'immediate') return { status: 'DUE', holdReason: null, releaseAt: input.saleRecordedAt };
  if (p.kind === 'after_shipment') {
    if (!input.shippedAt) return { status: 'HELD', holdReason: 'AWAITING_SHIPMENT', releaseAt: null };
    return { status: 'DUE', holdReason: null, releaseAt: input.shippedAt };
  }
  if (!input.deliveredAt) return { status: 'HELD', holdReason: 'AWAITING_DELIVERY', releaseAt: null };
  return { status: 'DUE', holdReason: null, releaseAt: new Date(input.deliveredAt.getTime() + p.days * DAY_MS) };
}

/** The sender_item_id of one attempt: deterministic, unique per attempt, at most 63 characters as PayPal requires. */
export function senderItemId(intentId: string, attempt: number): string {
  return `${intentId.replace(/-/g, '')}-a${attempt}`;
}

/** The sender_batch_id of a batch row: deterministic, so re-posting the same row is refused by PayPal as a duplicate. */
export function senderBatchId(batchId: string): string {
  return `postsale-${batchId.replace(/-/g, '')}`;
}

/** The item statuses PayPal never moves on from (classifyItemStatus: not IN_FLIGHT): a batch whose items are all in one is done. */
export const FINAL_ITEM_STATUSES = ['SUCCESS', 'FAILED', 'BLOCKED', 'DENIED', 'RETURNED', 'REFUNDED', 'REVERSED', 'CANCELED'] as const;

/** What a PayPal item status means for us. */
export type ItemOutcome = 'IN_FLIGHT' | 'SENT' | 'FAILED' | 'RETURNED';

export function classifyItemStatus(status: string): ItemOutcome {
  switch (status) {
    case 'SUCCESS':
      return 'SENT';
    case 'FAILED':
    case 'BLOCKED':
    case 'DENIED':
      return 'FAILED';
    case 'RETURNED':
    case 'REFUNDED':
    case 'REVERSED':
    case 'CANCELED':
      return 'RETURNED';
    // UNCLAIMED stays in flight on purpose: the receiver can still claim it (SUCCESS) until PayPal returns it after
    // 30 days (RETURNED) or an operator cancels it. Treating it as returned and paying again could pay twice.
    default:
      return 'IN_FLIGHT'; // PENDING, ONHOLD, UNCLAIMED, NEW
  }
}

/** Webhook event type → PayPal item status, for events whose resource lacks transaction_status. */
export function statusFromWebhookEvent(eventType: string): string | undefined {
  const map: Record<string, string> = {
    'PAYMENT.PAYOUTS-ITEM.SUCCEEDED': 'SUCCESS',
    'PAYMENT.PAYOUTS-ITEM.FAILED': 'FAILED',
    'PAYMENT.PAYOUTS-ITEM.BLOCKED': 'BLOCKED',
    'PAYMENT.PAYOUTS-ITEM.RETURNED': 'RETURNED',
    'PAYMENT.PAYOUTS-ITEM.REFUNDED': 'REFUNDED',
    'PAYMENT.PAYOUTS-ITEM.UNCLAIMED': 'UNCLAIMED',
    'PAYMENT.PAYOUTS-ITEM.HELD': 'ONHOLD',
    'PAYMENT.PAYOUTS-ITEM.CANCELED': 'RETURNED',
    'PAYMENT.PAYOUTS-ITEM.DENIED': 'DENIED',
  };
  return map[eventType];
}

/**
 * Applies a reversal share to an intent. Before payment the payable amount shrinks (to zero: cancelled); whatever the
 * reversal takes beyond what is still unpaid was already paid out and becomes a clawback the payee owes.
 * While the intent is in flight at PayPal the split is decided when the outcome is known (pending).
 */
export function applyReversal(intent: { status: IntentStatus; payableMinor: number }, reversedMinor: number):
  { payableMinor: number; clawbackMinor: number; pendingMinor: number; cancel: boolean } {
  if (reversedMinor <= 0) return { payableMinor: intent.payableMinor, clawbackMinor: 0, pendingMinor: 0, cancel: false };
  // In flight at PayPal — SUBMITTED, or NEEDS_REVIEW (its batch may have paid): the reversal is RECORDED as pending and
  // settled when the outcome is known (SENT → clawback, FAILED/RETURNED → less is owed again). Never dropped.
  if (intent.status === 'SUBMITTED' || intent.status === 'NEEDS_REVIEW') return { payableMinor: intent.payableMinor, clawbackMinor: 0, pendingMinor: reversedMinor, cancel: false };
  if (UNPAID_STATUSES.includes(intent.status)) {
    const remaining = intent.payableMinor - reversedMinor;
    if (remaining > 0) return { payableMinor: remaining, clawbackMinor: 0, pendingMinor: 0, cancel: false };
    return { payableMinor: 0, clawbackMinor: -remaining, pendingMinor: 0, cancel: true };
  }
  if (intent.status === 'SENT' || intent.status === 'OFFSET') {
    // paid (in money or by settling a debt): all of it comes back as a clawback
    return { payableMinor: intent.payableMinor, clawbackMinor: reversedMinor, pendingMinor: 0, cancel: false };
  }
  // CANCELLED / SKIPPED / DRY_RUN: nothing was or will be paid; nothing to claw back
  return { payableMinor: intent.payableMinor, clawbackMinor: 0, pendingMinor: 0, cancel: false };
}

/** How much of a payee's debt a payment of `payableMinor` settles by netting. */
export function offsetAgainstDebt(payableMinor: number, owedMinor: number): number {
  if (owedMinor <= 0 || payableMinor <= 0) return 0;
  return Math.min(payableMinor, owedMinor);
}

export function partyOf(recipient: Recipient, sellerId: string): string {
  return recipient === 'PLATFORM' ? 'platform' : `seller:${sellerId}`;
}
