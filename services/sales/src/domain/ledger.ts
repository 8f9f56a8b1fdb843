import type { Money } from '@postsale/contracts';
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
