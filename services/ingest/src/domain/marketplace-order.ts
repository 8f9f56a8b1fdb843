import type { Money, OrderReceived } from '@postsale/contracts';

/** What a marketplace's own data says about an order, once mapped. Business outcomes, not exceptions. */
export type MarketplaceOrderVerdict =
  | { kind: 'paid'; order: OrderReceived }
  | { kind: 'not-paid'; status: string }
  | { kind: 'cancelled'; reason: string; at: number }
  | { kind: 'unmappable'; reason: string; detail: string };

/** A refund or reversal of money already received. */
export interface RefundFacts {
  refundId: string;
  amount: Money;
  /** cumulative refunded so far when the marketplace says it; else summed from our own records */
  totalRefunded: Money | null;
  reason: string | null;
  at: number;
}

export class MappingError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Exact decimal → Money, or a MappingError naming the field (never a float, never a rounded guess). */
export function exact(parse: (v: string | number, c: string) => Money, value: unknown, currency: unknown, field: string): Money {
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) throw new MappingError('INVALID_CURRENCY', `${field}: currency ${String(currency)}`);
  if (typeof value !== 'string' && typeof value !== 'number') throw new MappingError('INVALID_AMOUNT', `${field}: missing amount`);
  try {
    return parse(value, currency);
  } catch (error) {
    throw new MappingError('INVALID_AMOUNT', `${field}: ${(error as Error).message}`);
  }
}
