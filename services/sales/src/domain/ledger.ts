import { minorDigits, parseRate, type Money } from '@postsale/contracts';
import { roundHalfUpDiv } from './money-breakdown';
import type { Breakdown, ReversalAmounts } from './money-breakdown';

/**
 * Double-entry postings. Sign convention: debit positive, credit negative; the postings of one journal entry sum to
 * zero in every currency (the database refuses a commit otherwise, see migrations). The sale is booked as an
 * allocation of the money the marketplace owes us:
 *   debit  marketplace_receivable  saleAmount        (what the buyer paid, collected by the marketplace)
 *   debit  seller_loss             loss              (loss orders: the shortfall the seller bears)
 *   credit marketplace_fees        marketplaceFee
 *   credit payment_fees            paymentFee
 *   credit supplier_payable        supplierCost      (in the supplier's currency; see fx_conversion below)
 *   credit platform_commission     platformCommission
 *   credit seller_payable          sellerNetProfit
 * When the supplier charged another currency, the sale currency's side credits fx_conversion with the converted
 * cost and the supplier's currency debits fx_conversion and credits supplier_payable with the charged cost, so each
 * currency balances on its own and no amount is ever added across currencies.
 */
export const ACCOUNTS = {
  marketplace_receivable: 'Marketplace receivable: sale amounts the marketplace collected for us',
  marketplace_fees: 'Marketplace fees withheld',
  payment_fees: 'Payment processor fees',
  supplier_payable: 'Supplier cost to settle (in the currency the supplier charged)',
  fx_conversion: 'Currency conversion clearing (one leg per currency)',
  platform_commission: 'Platform commission earned',
  seller_payable: 'Net profit owed to the seller',
  seller_loss: 'Losses borne by the seller (loss orders, refunds beyond profit)',
  payouts_sent: 'Money paid out through PayPal Payouts (in the payout currency)',
  fx_rounding: 'Remainders kept when a payout is converted (or cut to whole units) and rounded down',
} as const;
export type AccountCode = keyof typeof ACCOUNTS;

export interface Posting {
  account: AccountCode;
  amount: Money;
}

export function salePostings(breakdown: Breakdown, supplierCostCharged: Money): Posting[] {
  const postings: Posting[] = [
    { account: 'marketplace_receivable', amount: breakdown.saleAmount },
    { account: 'seller_loss', amount: breakdown.loss },
    { account: 'marketplace_fees', amount: neg(breakdown.marketplaceFee) },
    { account: 'payment_fees', amount: neg(breakdown.paymentFee) },
    { account: 'platform_commission', amount: neg(breakdown.platformCommission) },
    { account: 'seller_payable', amount: neg(breakdown.sellerNetProfit) },
  ];
  if (supplierCostCharged.currency === breakdown.saleAmount.currency) {
    postings.push({ account: 'supplier_payable', amount: neg(breakdown.supplierCost) });
  } else {
    postings.push(
      { account: 'fx_conversion', amount: neg(breakdown.supplierCost) },
      { account: 'fx_conversion', amount: supplierCostCharged },
      { account: 'supplier_payable', amount: neg(supplierCostCharged) },
    );
  }
  return nonZero(postings);
}

/** A refund or cancellation: the marketplace owes us less; commission and net profit are clawed back; the rest is loss. */
export function reversalPostings(reversal: ReversalAmounts): Posting[] {
  return nonZero([
    { account: 'marketplace_receivable', amount: neg(reversal.refunded) },
    { account: 'platform_commission', amount: reversal.commissionReversed },
    { account: 'seller_payable', amount: reversal.sellerNetReversed },
    { account: 'seller_loss', amount: reversal.lossAdded },
  ]);
}

/**
 * A payout PayPal reports SENT settles what was owed: the payee's account (seller_payable, or platform_commission for
 * the platform) is debited with the OWED amount in the sale currency, `payouts_sent` is credited with what was PAID
 * in the payout currency. When they differ (conversion at the pinned rate, or a cut to whole HUF/TWD units, both
 * rounded down by payouts), the owed side credits `fx_conversion` with the paid amount valued back in the sale
 * currency (roundHalfUp(paid / rate), never above owed) and `fx_rounding` with the remainder, and the payout currency
 * side debits `fx_conversion` with the paid amount: each currency balances, the payable reaches exactly zero, and the
 * rounding is booked as such. A return (PayoutReturned) is the mirror entry.
 */
export function payoutPostings(input: { recipient: 'PLATFORM' | 'SELLER'; paid: Money; owed: Money | null; fxRate: string | null }): Posting[] {
  const account: AccountCode = input.recipient === 'SELLER' ? 'seller_payable' : 'platform_commission';
  const paid = input.paid;
  const owed = input.owed ?? paid;
  if (owed.currency === paid.currency) {
    if (paid.amountMinor > owed.amountMinor) throw new RangeError(`paid ${paid.amountMinor} is more than owed ${owed.amountMinor}`);
    return nonZero([
      { account, amount: owed },
      { account: 'payouts_sent', amount: neg(paid) },
      { account: 'fx_rounding', amount: neg({ amountMinor: owed.amountMinor - paid.amountMinor, currency: owed.currency }) },
    ]);
  }
  if (!input.fxRate) throw new RangeError(`a payout in ${paid.currency} of a debt in ${owed.currency} needs its rate`);
  const { numerator, scale } = parseRate(input.fxRate);
  // paid / rate, in minor units of the owed currency
  const back = roundHalfUpDiv(
    BigInt(paid.amountMinor) * 10n ** BigInt(scale) * 10n ** BigInt(minorDigits(owed.currency)),
    numerator * 10n ** BigInt(minorDigits(paid.currency)),
  );
  const backMinor = Math.min(Number(back), owed.amountMinor);
  return nonZero([
    { account, amount: owed },
    { account: 'fx_conversion', amount: neg({ amountMinor: backMinor, currency: owed.currency }) },
    { account: 'fx_rounding', amount: neg({ amountMinor: owed.amountMinor - backMinor, currency: owed.currency }) },
    { account: 'fx_conversion', amount: paid },
    { account: 'payouts_sent', amount: neg(paid) },
  ]);
}

/** The mirror of an entry: every posting with the opposite sign (a payout returned re-credits what it settled). */
export function mirrorPostings(postings: Posting[]): Posting[] {
  return postings.map((p) => ({ account: p.account, amount: neg(p.amount) }));
}

/** Sum per currency; every value must be zero for a balanced entry. */
export function balanceByCurrency(postings: Posting[]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const p of postings) totals[p.amount.currency] = (totals[p.amount.currency] ?? 0) + p.amount.amountMinor;
  return totals;
}

export function assertBalanced(postings: Posting[]): void {
  const unbalanced = Object.entries(balanceByCurrency(postings)).filter(([, total]) => total !== 0);
  if (unbalanced.length > 0) throw new Error(`unbalanced journal entry: ${JSON.stringify(Object.fromEntries(unbalanced))}`);
}

function neg(m: Money): Money {
  return { amountMinor: m.amountMinor === 0 ? 0 : -m.amountMinor, currency: m.currency };
}

function nonZero(postings: Posting[]): Posting[] {
  return postings.filter((p) => p.amount.amountMinor !== 0);
}
