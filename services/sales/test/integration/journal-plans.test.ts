import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { createDb, localInfraEnv, migrate, type Db } from '@postsale/runtime';
import { dropSchema, planOfSent, statementsSentBy, uniqueId, type SentStatement } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { SalesRepository } from '../../src/db/sales.repository';

/**
 * The balance check runs at every commit, once per posting inserted: its cost must not grow with the journal. It did
 * when the table had no statistics (autovacuum off, or a burst before autoanalyze): the check's query was planned as a
 * walk of the (currency, account_code) index filtered on entry_id, reading every posting, and the 20,000-order
 * benchmark stalled at ~200,000 postings (a sales commit took 25 s). Here: 210,000 postings, never analyzed.
 */
type Row = Record<string, unknown>;

describe('sales: the journal is read by entry and by order, however long it grows', () => {
  const infra = localInfraEnv();
  const schema = uniqueId('t_sales_plan_');
  let db: Db;

  beforeAll(async () => {
    db = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 2 });
    await migrate(db, schema, migrations);
    // history loaded without firing the per-row check (it is what is measured below), as a restore would
    await db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica');
      // ids as wide as real ones: the plan chosen without statistics depends on the table's pages
      await trx.raw(`insert into journal_entries (id, entry_key, order_id, seller_id, kind, description)
        select n, 'sale:ord-' || md5(n::text), 'ord-' || md5(n::text), 'seller-' || md5((n % 50)::text), 'SALE', 'history'
          from generate_series(1, 70000) n`);
      await trx.raw(`insert into postings (entry_id, account_code, seller_id, order_id, currency, amount_minor)
        select n, a.code, 'seller-' || md5((n % 50)::text), 'ord-' || md5(n::text), 'USD', a.amount from generate_series(1, 70000) n,
          (values ('marketplace_receivable', 1000), ('marketplace_fees', 100), ('seller_payable', -1100)) a(code, amount)`);
      await trx.raw(`select setval(pg_get_serial_sequence('journal_entries', 'id'), 70000)`);
    });
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  it('when the postings table has no statistics, then the check is planned on the entry id (an index condition, not a filter)', async () => {
    const plan = await db.transaction(async (trx) => {
      await trx.raw('set local plan_cache_mode = force_generic_plan'); // as the trigger's plpgsql runs it, after a few calls
      await trx.raw(`prepare balance_check(bigint) as select currency, sum(amount_minor) as total from postings
        where entry_id = $1 group by currency having sum(amount_minor) <> 0 limit 1`);
      const result: { rows: Array<{ 'QUERY PLAN': string }> } = await trx.raw('explain execute balance_check(7)');
      await trx.raw('deallocate balance_check');
      return result.rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).toMatch(/Index Cond: \(entry_id = \$1\)/);
    expect(plan).not.toMatch(/Filter: \(entry_id/);
  });

  it('when an unbalanced entry is committed into that history, then the database still refuses it', async () => {
    await expect(db.transaction(async (trx) => {
      const [entry] = await trx('journal_entries').insert({ entry_key: 'sale:bad', order_id: 'bad', seller_id: 's-1', kind: 'SALE', description: 'unbalanced' }).returning('id');
      await trx('postings').insert([
        { entry_id: entry.id, account_code: 'marketplace_receivable', seller_id: 's-1', order_id: 'bad', currency: 'USD', amount_minor: 1000 },
        { entry_id: entry.id, account_code: 'seller_payable', seller_id: 's-1', order_id: 'bad', currency: 'USD', amount_minor: -999 },
      ]);
    })).rejects.toThrow(/unbalanced in USD: 1/);
  });

  it("when an operator opens one order's journal, then its entries and postings are read through indexes, not the whole journal", async () => {
    const { result: journal, statements } = await statementsSentBy(db, () => new SalesRepository(db).entries(`ord-${md5(7)}`));
    expect(journal).toHaveLength(1);
    expect(journal[0]!.postings).toHaveLength(3);
    expect(statements.map((q) => q.sql).join('\n')).toMatch(/journal_entries[\s\S]*postings/);
    for (const q of statements) expect(await wholeTableReads(q)).toEqual([]);
  });

  it("when a payout comes back, then the entry it mirrors is found through the order's entries, not the whole journal", async () => {
    const orderId = `ord-${md5(8)}`;
    await db.transaction(async (trx) => {
      const [entry] = await trx('journal_entries').insert({ entry_key: 'payout:po-8:si-8', order_id: orderId, seller_id: 's-8', kind: 'PAYOUT', description: 'paid' }).returning('id');
      await trx('postings').insert([
        { entry_id: entry.id, account_code: 'seller_payable', seller_id: 's-8', order_id: orderId, currency: 'USD', amount_minor: 900 },
        { entry_id: entry.id, account_code: 'payouts_sent', seller_id: 's-8', order_id: orderId, currency: 'USD', amount_minor: -900 },
      ]);
    });
    const { result: sent, statements } = await statementsSentBy(db, () => db.transaction((trx) => new SalesRepository(db).unreturnedPayoutEntry(trx, orderId, 'po-8')));
    expect(sent?.entryKey).toBe('payout:po-8:si-8');
    expect(statements.length).toBeGreaterThan(0);
    for (const q of statements) expect(await wholeTableReads(q)).toEqual([]);
  });

  describe('the trial balance and the open payables: rolled-up balances plus the postings since', () => {
    const repo = () => new SalesRepository(db);
    const mark = async () => Number((await db('account_balances_through').first('posting_id')).posting_id);
    /** a balanced entry: the marketplace owes the sale, the seller is owed it */
    const post = async (q: Knex, key: string, sellerId: string, amountMinor: number) => {
      const [entry] = await q('journal_entries').insert({ entry_key: `sale:${key}`, order_id: key, seller_id: sellerId, kind: 'SALE', description: 'test' }).returning('id');
      const postings = await q('postings').insert([
        { entry_id: entry.id, account_code: 'marketplace_receivable', seller_id: sellerId, order_id: key, currency: 'USD', amount_minor: amountMinor },
        { entry_id: entry.id, account_code: 'seller_payable', seller_id: sellerId, order_id: key, currency: 'USD', amount_minor: -amountMinor },
      ]).returning('id');
      return Math.max(...postings.map((p: { id: string }) => Number(p.id)));
    };
    /** what every posting ever made sums to, read the old way */
    const everyPosting = async () => ({
      trial: ((await db.raw('select currency, account_code, sum(amount_minor) as total from postings group by 1, 2 order by 1, 2')).rows as Row[])
        .map((r) => ({ currency: String(r.currency).trim(), account: String(r.account_code), balanceMinor: Number(r.total) })),
      payables: ((await db.raw(`select account_code, seller_id, currency, sum(amount_minor) as total from postings
          where account_code in ('seller_payable', 'platform_commission') group by 1, 2, 3 having sum(amount_minor) <> 0 order by 1, 2, 3`)).rows as Row[])
        .map((r) => [r.account_code, r.seller_id, String(r.currency).trim(), Number(r.total)]),
    });
    const reported = async () => ({
      trial: await repo().trialBalance(),
      payables: (await repo().openPayables()).map((r) => [r.account_code, r.seller_id, String(r.currency).trim(), Number(r.total)]),
    });

    it('when the console asks for them, then they read the balances and the postings after the roll-up through the index, never the whole journal, and sum to what every posting sums to', async () => {
      await repo().rollUpBalances(1_000);
      await post(db, `after-rollup-${uniqueId('')}`, 's-after', 4321);
      for (const read of [() => repo().trialBalance(), () => repo().openPayables()]) {
        const { statements } = await statementsSentBy(db, read);
        expect(statements).toHaveLength(1);
        // (the balances' own table grows with sellers, not orders: read whole, it is small)
        expect((await wholeTableReads(statements[0]!)).filter((scan) => !/ on account_balances/.test(scan))).toEqual([]);
      }
      expect(await reported()).toEqual(await everyPosting());
    });

    it('when a posting\'s transaction is still open, then the roll-up takes in nothing after it: it gives up, and the next one, once it committed, takes it in', async () => {
      await repo().rollUpBalances(1_000);
      const before = await mark();
      const open = await db.transaction();
      try {
        const openId = await post(open, `open-${uniqueId('')}`, 's-open', 1500);
        // a posting made after it commits first: its id is larger, and it is visible while the open one is not
        const laterId = await post(db, `later-${uniqueId('')}`, 's-later', 700);
        expect(laterId).toBeGreaterThan(openId);
        await expect(repo().rollUpBalances(100)).rejects.toThrow(/lock timeout/);
        expect(await mark()).toBe(before);
        await open.commit();
      } finally {
        if (!open.isCompleted()) await open.rollback();
      }
      await repo().rollUpBalances(1_000);
      expect(await mark()).toBe(Number((await db('postings').max('id as id').first())!.id));
      expect(await reported()).toEqual(await everyPosting());
    });

    it('when two replicas roll up at once, then each posting is counted once', async () => {
      await post(db, `both-${uniqueId('')}`, 's-both', 900);
      await Promise.all([repo().rollUpBalances(1_000), repo().rollUpBalances(1_000)]);
      expect(await reported()).toEqual(await everyPosting());
      expect((await db.raw('select count(*) as n from postings where id > (select posting_id from account_balances_through)')).rows[0].n).toBe('0');
    });
  });

  /**
   * The scans of a statement's plan that read a whole table: a Seq Scan, or an index walked from end to end with the
   * condition only as a filter (no Index Cond), which costs the same as the journal grows.
   */
  async function wholeTableReads(q: SentStatement): Promise<string[]> {
    return (await planOfSent(db, q))
      .filter((node) => node['Node Type'] === 'Seq Scan' || (/^Index( Only)? Scan$/.test(node['Node Type']) && !node['Index Cond']))
      .map((node) => `${node['Node Type']} on ${node['Relation Name']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}`);
  }
});

function md5(n: number): string {
  return createHash('md5').update(String(n)).digest('hex');
}
