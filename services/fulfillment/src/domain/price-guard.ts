import { formatDecimal, minorDigits, money, type Money } from '@postsale/contracts';
import { Reasons } from './states';

/**
 * The price guard: buy only when the supplier's cost (items + shipping, for the order's own destination) fits the
 * seller's policy. Exact integer arithmetic throughout. Amounts in different currencies are never compared without an
 * explicitly configured rate: without one the order goes to review (FX_RATE_MISSING) instead of guessing.
 */
export interface GuardPolicy {
  /**
   * minimum margin AFTER fees — (sale − marketplace fee − payment fee − cost) — as basis points of the sale amount.
   * 0 (the default) = never buy at a loss; negative only when the seller's policy explicitly allows a loss.
   */
  minMarginBps: number;
  /** absolute ceiling on the supplier cost, in its own currency */
  maxCost: Money | null;
  /** "FROM:TO" → exact decimal string, units of TO per unit of FROM */
  fxRates: Record<string, string>;
}

export type GuardVerdict =
  | { ok: true; costInSaleCurrency: Money; checks: Record<string, string> }
  | { ok: false; reason: string; message: string; details: Record<string, unknown> };

/** Converts exactly, rounding UP (a cost must never look cheaper than it is). Undefined when no rate is configured. */
export function convert(amount: Money, to: string, fxRates: Record<string, string>): Money | undefined {
  if (amount.currency === to) return amount;
  const rate = fxRates[`${amount.currency}:${to}`];
  if (rate === undefined) return undefined;
  const match = /^(\d+)(?:\.(\d+))?$/.exec(rate.trim());
  if (!match) throw new RangeError(`invalid fx rate ${rate}`);
  const scale = (match[2] ?? '').length;
  const rateUnits = BigInt(`${match[1]}${match[2] ?? ''}`);
  const numerator = BigInt(amount.amountMinor) * rateUnits * 10n ** BigInt(minorDigits(to));
  const denominator = 10n ** BigInt(scale + minorDigits(amount.currency));
  const quotient = numerator / denominator;
  const rounded = numerator % denominator === 0n || numerator < 0n ? quotient : quotient + 1n;
  return money(Number(rounded), to);
}

const show = (m: Money) => `${formatDecimal(m)} ${m.currency}`;

export function evaluatePriceGuard(input: {
  supplierCost: Money;
  sale: Money;
  /** the order's marketplace and payment fees, in the sale currency (null: the marketplace reported none) */
  fees?: { marketplaceFee: Money | null; paymentFee: Money | null };
  policy: GuardPolicy;
  /** an operator's approval: buy if the cost is at most this, whatever the policy says */
  approvedMax?: Money | null;
}): GuardVerdict {
  const { supplierCost, sale, policy } = input;
  const costInSale = convert(supplierCost, sale.currency, policy.fxRates);
  const numbers = {
    supplierCost: show(supplierCost),
    saleAmount: show(sale),
    ...(costInSale && costInSale.currency !== supplierCost.currency ? { supplierCostInSaleCurrency: show(costInSale) } : {}),
  };
  const fxMissing = (to: string): GuardVerdict => ({
    ok: false,
    reason: Reasons.FX_RATE_MISSING,
    message: `supplier charges ${supplierCost.currency}, comparison needs ${to}, and no ${supplierCost.currency}:${to} rate is configured`,
    details: { ...numbers, missingRate: `${supplierCost.currency}:${to}` },
  });

  if (input.approvedMax) {
    const cost = convert(supplierCost, input.approvedMax.currency, policy.fxRates);
    if (!cost) return fxMissing(input.approvedMax.currency);
    if (cost.amountMinor > input.approvedMax.amountMinor) {
      return {
        ok: false,
        reason: Reasons.PRICE_ABOVE_MAX,
        message: `supplier cost ${show(cost)} is above the operator's approved limit ${show(input.approvedMax)}`,
        details: { ...numbers, approvedMax: show(input.approvedMax) },
      };
    }
    if (!costInSale) return fxMissing(sale.currency);
    return { ok: true, costInSaleCurrency: costInSale, checks: { ...numbers, approvedMax: show(input.approvedMax) } };
  }

  if (policy.maxCost) {
    const cost = convert(supplierCost, policy.maxCost.currency, policy.fxRates);
    if (!cost) return fxMissing(policy.maxCost.currency);
    if (cost.amountMinor > policy.maxCost.amountMinor) {
      return {
        ok: false,
        reason: Reasons.PRICE_ABOVE_MAX,
        message: `supplier cost ${show(cost)} is above the seller's maximum ${show(policy.maxCost)}`,
        details: { ...numbers, maxCost: show(policy.maxCost) },
      };
    }
  }

  if (!costInSale) return fxMissing(sale.currency);
  // Fees the marketplace and the payment processor keep come off the sale before the margin: a sale of 100 with 13
  // of fees and a cost of 95 is a LOSS of 8, not a margin of 5.
  const feeList = [input.fees?.marketplaceFee, input.fees?.paymentFee].filter((f): f is Money => Boolean(f) && f!.amountMinor !== 0);
  const foreignFee = feeList.find((f) => f.currency !== sale.currency);
  if (foreignFee) {
    return { ok: false, reason: Reasons.FX_RATE_MISSING, message: `a fee is in ${foreignFee.currency} but the sale in ${sale.currency}`, details: { ...numbers, fee: show(foreignFee) } };
  }
  const feesMinor = feeList.reduce((t, f) => t + BigInt(f.amountMinor), 0n);
  const feeNumbers = { fees: show(money(Number(feesMinor), sale.currency)) };
  // margin = sale − fees − cost; required: margin · 10000 ≥ minMarginBps · sale (integers, no division)
  const margin = BigInt(sale.amountMinor) - feesMinor - BigInt(costInSale.amountMinor);
  if (margin * 10_000n < BigInt(policy.minMarginBps) * BigInt(sale.amountMinor)) {
    const marginMoney = money(Number(margin), sale.currency);
    return {
      ok: false,
      reason: Reasons.PRICE_ABOVE_MAX,
      message: `margin after fees ${show(marginMoney)} on a sale of ${show(sale)} is below the minimum of ${policy.minMarginBps} bps`,
      details: { ...numbers, ...feeNumbers, margin: show(marginMoney), minMarginBps: policy.minMarginBps },
    };
  }
  return {
    ok: true,
    costInSaleCurrency: costInSale,
    checks: { ...numbers, ...feeNumbers, marginAfterFees: show(money(Number(margin), sale.currency)), minMarginBps: String(policy.minMarginBps), ...(policy.maxCost ? { maxCost: show(policy.maxCost) } : {}) },
  };
}
