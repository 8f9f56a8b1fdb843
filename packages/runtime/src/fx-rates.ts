import type { FxRate } from '@postsale/contracts';
import type { Db, Tx } from './db';

/**
 * The `fx_rates` table that sales and payouts each keep in their own schema (an admin enters the rates; each service
 * reads the one that was valid for a sale's day). One reader and writer, so "the most recent rate on or before the
 * day, not older than the allowed age" means the same thing in both. Rates stay exact decimal text.
 */
export const fxRates = {
  /** The most recent rate from→to dated on or before `onOrBefore` and not before `notBefore` (YYYY-MM-DD). */
  async find(q: Db | Tx, from: string, to: string, onOrBefore: string, notBefore: string): Promise<FxRate | undefined> {
    const row = await q('fx_rates')
      .where({ from_currency: from, to_currency: to })
      .andWhere('rate_date', '<=', onOrBefore)
      .andWhere('rate_date', '>=', notBefore)
      .orderBy('rate_date', 'desc')
      .select('rate', 'source', q.raw(`to_char(rate_date, 'YYYY-MM-DD') as day`))
      .first();
    return row ? { from, to, rateDate: String(row.day), rate: String(row.rate), source: String(row.source) } : undefined;
  },

  /** Enters or corrects the rate of one day (the last write of a day wins). */
  async save(q: Db | Tx, r: FxRate): Promise<void> {
    await q('fx_rates')
      .insert({ from_currency: r.from, to_currency: r.to, rate_date: r.rateDate, rate: r.rate, source: r.source, updated_at: q.fn.now() })
      .onConflict(['from_currency', 'to_currency', 'rate_date'])
      .merge();
  },
};
