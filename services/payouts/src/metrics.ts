import { safeInteger } from '@postsale/contracts';
import type { Db, Metrics } from '@postsale/runtime';
import type { PayoutsMetrics } from './domain/ports';

/**
 * The metrics: payouts by status, amounts by currency, time from sale to payout, held intents,
 * reconciliation lag and clawbacks owed. Gauges are computed from the data at scrape time.
 */
export function createPayoutsMetrics(metrics: Metrics, db: Db): PayoutsMetrics {
  metrics.gauge('payouts_intents', 'Payout intents by status', ['status'], async function () {
    this.reset();
    for (const r of await db('payout_intents').select('status').count<{ status: string; count: string }[]>('* as count').groupBy('status')) {
      this.set({ status: r.status }, Number(r.count));
    }
  });
  metrics.gauge('payouts_intent_amount_minor', 'Amount of payout intents by status and currency, minor units', ['status', 'currency'], async function () {
    this.reset();
    const rows = await db('payout_intents').select('status', 'currency').sum<{ status: string; currency: string; total: string }[]>('payable_minor as total').groupBy('status', 'currency');
    for (const r of rows) this.set({ status: r.status, currency: r.currency }, safeInteger(r.total));
  });
  metrics.gauge('payouts_held_intents', 'Intents held, by reason', ['reason'], async function () {
    this.reset();
    const rows = await db('payout_intents').where({ status: 'HELD' }).select('hold_reason').count<{ hold_reason: string; count: string }[]>('* as count').groupBy('hold_reason');
    for (const r of rows) this.set({ reason: r.hold_reason }, Number(r.count));
  });
  metrics.gauge('payouts_reconciliation_lag_seconds', 'Age of the oldest payout item submitted to PayPal without a final outcome (0 when none)', [], async function () {
    const row = await db('payout_intents').where({ status: 'SUBMITTED' }).min('status_since as oldest').first();
    const oldest = row?.oldest ? new Date(row.oldest as string).getTime() : undefined;
    this.set(oldest ? Math.max(0, (Date.now() - oldest) / 1000) : 0);
  });
  metrics.gauge('payouts_clawbacks_owed_minor', 'What payees still owe back (clawbacks not yet netted), minor units', ['currency'], async function () {
    this.reset();
    // the running balances (one row per party and currency), not the entries' whole history at every scrape
    const rows = await db('balances').where('balance_minor', '<', 0).select('currency').sum<{ currency: string; total: string }[]>('balance_minor as total').groupBy('currency');
    const owed = new Map<string, number>();
    for (const r of rows) owed.set(r.currency, -safeInteger(r.total));
    for (const [currency, value] of owed) this.set({ currency }, value);
  });
  return {
    outcomes: metrics.counter('payouts_amount_minor_total', 'Amounts that reached a final PayPal outcome, minor units, by status and currency', ['status', 'currency']),
    clawbacks: metrics.counter('payouts_clawbacks_minor_total', 'Clawbacks recorded, minor units', ['currency', 'recipient']),
    batches: metrics.counter('payouts_batches_total', 'Payout batches created', ['outcome']),
    paypalCalls: metrics.counter('payouts_paypal_calls_total', 'PayPal Payouts calls by operation and outcome', ['operation', 'outcome']),
    saleToPayout: metrics.histogram('payouts_sale_to_payout_seconds', 'Time from the recorded sale to PayPal reporting the payout successful', ['recipient'],
      [1, 10, 60, 600, 3600, 6 * 3600, 24 * 3600, 3 * 86400, 7 * 86400, 30 * 86400]),
  };
}
