import { minorDigits, type Money } from '@postsale/contracts';

/**
 * The money arithmetic of a sale, pure and exact: integer minor units, bigint for every product and division, no
 * floats. All amounts of one breakdown are in the sale's currency (supplier cost is converted before, see fx.ts).
 *
 * Identity (true for every input, property-tested):
 *   marketplaceFee + paymentFee + supplierCost + platformCommission + sellerNetProfit - loss = saleAmount
 *
 * Rounding rule for the commission: platformCommission = floor(grossProfit x rateBps / 10000), computed in bigint.
 * The fractional remainder (less than one minor unit) goes to the seller, because sellerNetProfit is defined as
 * grossProfit - platformCommission. Why floor: the platform never charges a fraction it did not earn, the commission can
 * never exceed rate x profit, and it can never be negative; the identity holds by construction, not by adjustment.
 *
 * Loss orders (grossProfit <= 0): no commission, zero net profit, and `loss` = -grossProfit (what the seller is out of
 * pocket). Nothing is paid to anyone from a loss order.
 */
export interface BreakdownInput {
  saleAmount: Money;
  marketplaceFee: Money;
  paymentFee: Money;
  /** already in the sale currency */
  supplierCost: Money;
  commissionRateBps: number;
}

export interface Breakdown {
  saleAmount: Money;
  marketplaceFee: Money;
  paymentFee: Money;
  supplierCost: Money;
  grossProfit: Money;
  commissionRateBps: number;
  platformCommission: Money;
  sellerNetProfit: Money;
  loss: Money;
  isLoss: boolean;
}

export const BPS_DENOMINATOR = 10_000n;

export function computeBreakdown(input: BreakdownInput): Breakdown {
  const currency = input.saleAmount.currency;
  minorDigits(currency); // unknown currency: refuse
  for (const [name, m] of Object.entries({ marketplaceFee: input.marketplaceFee, paymentFee: input.paymentFee, supplierCost: input.supplierCost })) {
    if (m.currency !== currency) throw new RangeError(`${name} is in ${m.currency}, the sale in ${currency}`);
    if (!Number.isSafeInteger(m.amountMinor) || m.amountMinor < 0) throw new RangeError(`${name} must be a non-negative integer of minor units`);
  }
  if (!Number.isSafeInteger(input.saleAmount.amountMinor) || input.saleAmount.amountMinor < 0) {
    throw new RangeError('saleAmount must be a non-negative integer of minor units');
  }
  const rate = input.commissionRateBps;
  if (!Number.isInteger(rate) || rate < 0 || rate > 10_000) throw new RangeError(`commission rate ${rate} bps is outside 0..10000`);

  const sale = BigInt(input.saleAmount.amountMinor);
  const gross = sale - BigInt(input.marketplaceFee.amountMinor) - BigInt(input.paymentFee.amountMinor) - BigInt(input.supplierCost.amountMinor);
  const isLoss = gross <= 0n;
  const commission = isLoss ? 0n : (gross * BigInt(rate)) / BPS_DENOMINATOR; // bigint division truncates = floor for gross > 0
  const net = isLoss ? 0n : gross - commission;
  const loss = isLoss ? -gross : 0n;
  const m = (v: bigint) => toMoney(v, currency);
  return {
    saleAmount: input.saleAmount,
    marketplaceFee: input.marketplaceFee,
    paymentFee: input.paymentFee,
    supplierCost: input.supplierCost,
    grossProfit: m(gross),
    commissionRateBps: rate,
    platformCommission: m(commission),
    sellerNetProfit: m(net),
    loss: m(loss),
    isLoss,
  };
}

/**
 * Marketplace fee from a seller's fee schedule (used only when the marketplace's own data carries no fee):
 * fee = roundHalfUp(saleAmount x percentBps / 10000) + fixed. Half-up because a marketplace charges a whole minor unit
 * on its own side and rounds to the nearest one; the fee is an estimate of what it will withhold, not our revenue.
 */
export function scheduledMarketplaceFee(saleAmount: Money, percentBps: number, fixedMinor: number): Money {
  if (!Number.isInteger(percentBps) || percentBps < 0 || percentBps > 10_000) throw new RangeError(`fee ${percentBps} bps is outside 0..10000`);
  if (!Number.isSafeInteger(fixedMinor) || fixedMinor < 0) throw new RangeError('fixed fee must be a non-negative integer');
  const percentPart = roundHalfUpDiv(BigInt(saleAmount.amountMinor) * BigInt(percentBps), BPS_DENOMINATOR);
  return toMoney(percentPart + BigInt(fixedMinor), saleAmount.currency);
}

/**
 * What a sale looks like after `refundedTotal` of it went back to the buyer. Refunds reduce the sale amount one for one;
 * marketplace fee, payment fee and supplier cost were already incurred and stay (a later fee credit or supplier refund
 * would be its own event). The breakdown is recomputed on the reduced amount with the same rate and rounding rule, so:
 * - the commission clawback of a refund R is about R x rate while profit remains (floor of the cumulative figure, so
 *   several partial refunds never drift: after a full refund exactly the whole commission has been clawed back);
 * - once profit is gone the seller bears the rest as loss, commission and net profit are zero.
 * The ledger after any sequence of refunds therefore always equals `computeBreakdown` of the net sale.
 */
export function breakdownAfterRefunds(original: Breakdown, refundedTotalMinor: number): Breakdown {
  if (!Number.isSafeInteger(refundedTotalMinor) || refundedTotalMinor < 0 || refundedTotalMinor > original.saleAmount.amountMinor) {
    throw new RangeError(`refunded total ${refundedTotalMinor} is outside 0..${original.saleAmount.amountMinor}`);
  }
  return computeBreakdown({
    saleAmount: toMoney(BigInt(original.saleAmount.amountMinor - refundedTotalMinor), original.saleAmount.currency),
    marketplaceFee: original.marketplaceFee,
    paymentFee: original.paymentFee,
    supplierCost: original.supplierCost,
    commissionRateBps: original.commissionRateBps,
  });
}

export interface ReversalAmounts {
  refunded: Money;
  commissionReversed: Money;
  sellerNetReversed: Money;
  /** how much more the seller is now out of pocket */
  lossAdded: Money;
}

/** The difference between the sale after `before` and after `after` refunded minor units (before <= after). */
export function reversalBetween(original: Breakdown, refundedBefore: number, refundedAfter: number): ReversalAmounts {
  const a = breakdownAfterRefunds(original, refundedBefore);
  const b = breakdownAfterRefunds(original, refundedAfter);
  const c = original.saleAmount.currency;
  return {
    refunded: toMoney(BigInt(refundedAfter - refundedBefore), c),
    commissionReversed: toMoney(BigInt(a.platformCommission.amountMinor - b.platformCommission.amountMinor), c),
    sellerNetReversed: toMoney(BigInt(a.sellerNetProfit.amountMinor - b.sellerNetProfit.amountMinor), c),
    lossAdded: toMoney(BigInt(b.loss.amountMinor - a.loss.amountMinor), c),
  };
}

/** n / d rounded half up, for n >= 0 and d > 0. */
export function roundHalfUpDiv(n: bigint, d: bigint): bigint {
  if (n < 0n || d <= 0n) throw new RangeError('roundHalfUpDiv takes n >= 0 and d > 0');
  return (2n * n + d) / (2n * d);
}

export function toMoney(value: bigint, currency: string): Money {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`amount ${value} is beyond safe integer range`);
  return { amountMinor: n, currency };
}
