import { formatDecimal, type Money } from '@postsale/contracts';
import { WAITING_STATES, type OrderRecord, type SaleRecord, type SalesDeps } from './ports';

type Row = Record<string, unknown>;

/** One sale as the admin API shows it: the sale, its adjustments and its journal entries. */
export async function saleDetail(deps: SalesDeps, orderId: string): Promise<{ sale: SaleRecord; adjustments: Row[]; journal: Row[] } | undefined> {
  const sale = await deps.store.findSale(orderId);
  if (!sale) return undefined;
  return { sale, adjustments: await deps.reports.adjustmentRows(orderId), journal: await deps.reports.entries(orderId) };
}

/** One order as this stage knows it: its facts, its sale if recorded, adjustments, history and journal entries. */
export async function orderDetail(deps: SalesDeps, orderId: string): Promise<{ order: OrderRecord; sale: SaleRecord | undefined; adjustments: Row[]; history: Row[]; journal: Row[] } | undefined> {
  const order = await deps.reports.findOrder(orderId);
  if (!order) return undefined;
  const sale = await deps.store.findSale(orderId);
  return {
    order, sale,
    adjustments: await deps.reports.adjustmentRows(orderId),
    history: await deps.reports.history(orderId),
    journal: await deps.reports.entries(orderId),
  };
}

/**
 * Every payable account (seller_payable per seller, platform_commission) whose balance is not zero: after a clean run
 * (every sale paid out, every return re-paid) this list is empty.
 */
export async function openPayables(deps: SalesDeps): Promise<Array<{ account: string; sellerId: string; balance: Money }>> {
  return (await deps.reports.openPayables()).map((r) => {
    const balance = { amountMinor: Number(r.total), currency: String(r.currency).trim() };
    // platform_commission is the platform's payable; it is grouped by the seller whose sales earned it
    return { account: r.account_code as string, sellerId: r.seller_id as string, balance };
  });
}

/**
 * "What did we pay seller X": the seller's payout settlement entries (net profit paid, returns), one row per posting,
 * and totals of what left through PayPal per payout currency.
 */
export async function sellerPayouts(deps: SalesDeps, sellerId: string): Promise<{ paid: Money[]; entries: Row[] }> {
  const all = await deps.reports.sellerPayouts(sellerId);
  // only the seller's own payouts (entries settling seller_payable), not the platform's commission on their sales
  const sellersOwn = new Set(all.filter((r) => r.account_code === 'seller_payable').map((r) => r.entry_key));
  const rows = all.filter((r) => sellersOwn.has(r.entry_key));
  const totals = new Map<string, number>();
  for (const r of rows) {
    if (r.account_code !== 'payouts_sent') continue;
    const c = String(r.currency).trim();
    totals.set(c, (totals.get(c) ?? 0) - Number(r.amount_minor));
  }
  return { paid: [...totals.entries()].map(([c, minor]) => ({ amountMinor: minor, currency: c })), entries: rows };
}

export interface TrialBalance {
  generatedAt: string;
  balanced: boolean;
  currencies: Array<{ currency: string; totalMinor: number; balanced: boolean; accounts: Array<{ account: string; balanceMinor: number; balance: string }> }>;
}

/**
 * How long a roll-up waits for the journal's writers in flight: below Postgres's deadlock_timeout (1 s), so that if a
 * sale's transaction and the roll-up ever waited on each other, the roll-up gives up first and no sale is aborted.
 */
const ROLL_UP_LOCK_TIMEOUT_MS = 200;

/**
 * Rolls the postings made since the last roll-up into the balances the trial balance and the open payables start
 * from, so that those reports read the recent postings only, however long the journal. A background worker's run:
 * once per interval (false: nothing more to do at once).
 */
export async function rollUpBalances(deps: SalesDeps): Promise<boolean> {
  await deps.reports.rollUpBalances(ROLL_UP_LOCK_TIMEOUT_MS);
  return false;
}

/** Sum of every posting per currency and account (rolled-up balances plus the postings since); every currency's total must be zero. */
export async function trialBalance(deps: SalesDeps, now: Date): Promise<TrialBalance> {
  const rows = await deps.reports.trialBalance();
  const byCurrency = new Map<string, TrialBalance['currencies'][number]>();
  for (const r of rows) {
    const entry = byCurrency.get(r.currency) ?? { currency: r.currency, totalMinor: 0, balanced: true, accounts: [] };
    entry.totalMinor += r.balanceMinor;
    entry.accounts.push({ account: r.account, balanceMinor: r.balanceMinor, balance: formatDecimal({ amountMinor: r.balanceMinor, currency: r.currency }) });
    byCurrency.set(r.currency, entry);
  }
  const currencies = [...byCurrency.values()].map((c) => ({ ...c, balanced: c.totalMinor === 0 }));
  return { generatedAt: now.toISOString(), balanced: currencies.every((c) => c.balanced), currencies };
}

export const STATEMENT_COLUMNS = [
  'postedAt', 'kind', 'orderId', 'saleId', 'reference', 'currency', 'saleAmount', 'marketplaceFee', 'paymentFee', 'supplierCost',
  'platformCommission', 'sellerNetProfit', 'loss',
] as const;
const AMOUNT_COLUMNS = ['saleAmount', 'marketplaceFee', 'paymentFee', 'supplierCost', 'platformCommission', 'sellerNetProfit', 'loss'] as const;
type AmountColumn = (typeof AMOUNT_COLUMNS)[number];

export interface StatementLine {
  postedAt: string;
  kind: 'SALE' | 'CANCELLATION' | 'FULL_REFUND' | 'PARTIAL_REFUND';
  orderId: string;
  saleId: string;
  reference: string;
  currency: string;
  /** signed minor units: a refund shows as a negative sale amount and negative commission / net profit */
  amounts: Record<AmountColumn, number>;
}

export interface Statement {
  sellerId: string;
  from: string;
  to: string;
  lines: StatementLine[];
  totals: Array<{ currency: string } & Record<AmountColumn, Money>>;
}

/**
 * A seller's statement for [from, to): every sale and reversal posted in the window, and totals per currency
 * (never across currencies). The seller's net for the window is totals.sellerNetProfit; loss is what they bore.
 */
export async function sellerStatement(deps: SalesDeps, sellerId: string, from: Date, to: Date): Promise<Statement> {
  const sales = await deps.reports.statementSales(sellerId, from, to);
  const reversals = await deps.reports.statementReversals(sellerId, from, to);
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
  const lines: StatementLine[] = [
    ...sales.map((s) => ({
      postedAt: new Date(s.posted_at as string).toISOString(), kind: 'SALE' as const, orderId: String(s.order_id), saleId: String(s.sale_id),
      reference: '', currency: String(s.currency).trim(),
      amounts: {
        saleAmount: n(s.sale_amount_minor), marketplaceFee: n(s.marketplace_fee_minor), paymentFee: n(s.payment_fee_minor), supplierCost: n(s.supplier_cost_minor),
        platformCommission: n(s.platform_commission_minor), sellerNetProfit: n(s.seller_net_profit_minor), loss: n(s.loss_minor),
      },
    })),
    ...reversals.map((r) => ({
      postedAt: new Date(r.posted_at as string).toISOString(), kind: r.reversal_kind as StatementLine['kind'], orderId: String(r.order_id),
      saleId: String(r.sale_id), reference: String(r.refund_id ?? r.adjustment_id), currency: String(r.currency).trim(),
      amounts: {
        saleAmount: -n(r.refunded_minor), marketplaceFee: 0, paymentFee: 0, supplierCost: 0, platformCommission: -n(r.commission_reversed_minor),
        sellerNetProfit: -n(r.seller_net_reversed_minor), loss: n(r.loss_added_minor),
      },
    })),
  ].sort((a, b) => a.postedAt.localeCompare(b.postedAt) || a.orderId.localeCompare(b.orderId));
  const totals = new Map<string, Record<AmountColumn, number>>();
  for (const line of lines) {
    const t = totals.get(line.currency) ?? Object.fromEntries(AMOUNT_COLUMNS.map((c) => [c, 0])) as Record<AmountColumn, number>;
    for (const c of AMOUNT_COLUMNS) t[c] += line.amounts[c];
    totals.set(line.currency, t);
  }
  return {
    sellerId, from: from.toISOString(), to: to.toISOString(), lines,
    totals: [...totals.entries()].map(([currency, t]) => ({
      currency, ...Object.fromEntries(AMOUNT_COLUMNS.map((c) => [c, { amountMinor: t[c], currency }])),
    }) as Statement['totals'][number]),
  };
}

/** CSV (RFC 4180): amounts as exact decimal strings in each line's own currency. */
export function statementCsv(statement: Statement): string {
  const escape = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const rows = [STATEMENT_COLUMNS.join(',')];
  for (const l of statement.lines) {
    const amounts = AMOUNT_COLUMNS.map((c) => formatDecimal({ amountMinor: l.amounts[c], currency: l.currency }));
    rows.push([l.postedAt, l.kind, l.orderId, l.saleId, l.reference, l.currency, ...amounts].map(escape).join(','));
  }
  return `${rows.join('\r\n')}\r\n`;
}

export interface IntegrityReport {
  service: 'sales';
  stage: 'sale';
  generatedAt: string;
  violations: Array<{ orderId: string; sellerId: string; state: string; since: string; ageSeconds: number; deadlineSeconds: number; reason: string }>;
}

/**
 * Orders this stage still owes a sale for, past the deadline: a purchase completed but the sale is held (no terms, no
 * rate) or the order never arrived. Orders still waiting for their purchase are fulfillment's concern, not listed here.
 */
export async function integrityReport(deps: SalesDeps, now: Date, deadlineSeconds: number): Promise<IntegrityReport> {
  const rows = await deps.reports.stuckOrders(WAITING_STATES, new Date(now.getTime() - deadlineSeconds * 1000));
  return {
    service: 'sales', stage: 'sale', generatedAt: now.toISOString(),
    violations: rows.map((r) => {
      const since = new Date(r.state_since as string);
      return {
        orderId: String(r.order_id), sellerId: String(r.seller_id), state: String(r.state), since: since.toISOString(),
        ageSeconds: Math.floor((now.getTime() - since.getTime()) / 1000), deadlineSeconds,
        reason: String(r.state_reason ?? (r.state === 'AWAITING_ORDER' ? 'purchase completed but the order was never received' : r.state)),
      };
    }),
  };
}
