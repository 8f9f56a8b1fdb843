import { createHash } from 'node:crypto';
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
