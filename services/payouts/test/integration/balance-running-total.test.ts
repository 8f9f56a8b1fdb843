import { randomUUID } from 'node:crypto';
import { createDb, migrate, type Db } from '@postsale/runtime';
import { dropSchema, planOfSent, statementsSentBy, testEnv } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { PayoutsRepository } from '../../src/db/payouts.repository';
import type { BalanceEntry } from '../../src/domain/records';

type Entry = Omit<BalanceEntry, 'at'>;

/**
 * What a party owes is a running balance per (party, currency), moved in the transaction of each balance entry (issue
 * 15): on real Postgres it equals the sum of the entries after clawbacks, offsets and repeats, the migration backfills
 * it from entries written before it, and the payout decision's query reads that one row, not the party's history.
 */
describe('running balance', () => {
  const env = testEnv('payouts');
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let repo: PayoutsRepository;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    // every migration but the running balance's: entries written now exist before it, as in a database being upgraded
    await migrate(db, schema, migrations.filter((m) => m.name !== '0007_balances_running_total'));
    repo = new PayoutsRepository(db);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const entry = (party: string, currency: string, amountMinor: number, kind: Entry['kind'], reference = randomUUID()): Entry => ({
    party, currency, amountMinor, kind, orderId: `order-${randomUUID()}`, intentId: randomUUID(), reference,
  });
  /** what owed() used to compute: minus the sum of the party's whole history in that currency */
  const owedBySum = async (party: string, currency: string): Promise<number> => {
    const row = await db('balance_entries').where({ party, currency }).sum<{ total: string | null }[]>('amount_minor as total').first();
    return -Number(row?.total ?? 0);
  };
  const add = (e: Entry) => repo.transaction(async (trx) => {
    await repo.lockBalance(trx, e.party, e.currency);
    await repo.addBalanceEntry(trx, e);
  });

  it('equals the sum of the entries after clawbacks, offsets and repeats, including entries from before the migration', async () => {
    // before the running balance exists: written straight into the ledger, as an older version of the service did
    const old = [entry('seller:a', 'USD', -700, 'CLAWBACK'), entry('seller:a', 'USD', 300, 'OFFSET'), entry('platform', 'EUR', -45, 'CLAWBACK')];
    await db('balance_entries').insert(old.map((e) => ({
      party: e.party, currency: e.currency, amount_minor: e.amountMinor, kind: e.kind, order_id: e.orderId, intent_id: e.intentId, reference: e.reference,
    })));
    await migrate(db, schema, migrations);
    expect(await repo.owed('seller:a', 'USD')).toBe(400);
    expect(await repo.owed('platform', 'EUR')).toBe(45);

    const clawback = entry('seller:a', 'USD', -1250, 'CLAWBACK');
    const sequence = [
      clawback,
      entry('seller:a', 'USD', 900, 'OFFSET'),
      clawback, // a re-delivered reversal: recorded once, counted once
      entry('seller:a', 'EUR', -99, 'CLAWBACK'), // another currency of the same party
      entry('seller:b', 'USD', -10, 'CLAWBACK'), // another party
      entry('seller:a', 'USD', 750, 'OFFSET'), // settles the debt exactly
      entry('seller:a', 'USD', -3, 'CLAWBACK'),
      entry('platform', 'EUR', 45, 'OFFSET'),
    ];
    for (const e of sequence) await add(e);
    // a transaction that rolls back moves neither the ledger nor the balance
    await expect(repo.transaction(async (trx) => {
      await repo.addBalanceEntry(trx, entry('seller:a', 'USD', -5000, 'CLAWBACK'));
      throw new Error('rolled back');
    })).rejects.toThrow('rolled back');

    // written without the repository, as a replica still running the version before the running balance does during a
    // rolling deploy: the balance moves all the same (Postgres moves it)
    const fromOlderReplica = entry('seller:a', 'USD', -20, 'CLAWBACK');
    await db('balance_entries').insert({ party: fromOlderReplica.party, currency: fromOlderReplica.currency, amount_minor: fromOlderReplica.amountMinor,
      kind: fromOlderReplica.kind, order_id: fromOlderReplica.orderId, intent_id: fromOlderReplica.intentId, reference: fromOlderReplica.reference });
    await add(entry('seller:a', 'USD', 20, 'OFFSET'));

    const pairs: Array<[string, string]> = [['seller:a', 'USD'], ['seller:a', 'EUR'], ['seller:b', 'USD'], ['platform', 'EUR'], ['seller:none', 'USD']];
    for (const [party, currency] of pairs) {
      expect(await repo.owed(party, currency)).toBe(await owedBySum(party, currency));
    }
    expect(await repo.owed('seller:a', 'USD')).toBe(3); // 400 + 1250 - 900 - 750 + 3
    expect((await repo.owed('platform', 'EUR')) === 0).toBe(true); // settled (-0 as before: minus an empty sum)
    // every running balance is its entries' sum, in integer minor units
    const drift = await db.raw(`select b.party, b.currency, b.balance_minor, e.total from balances b
      full join (select party, currency, sum(amount_minor) as total from balance_entries group by party, currency) e using (party, currency)
      where b.balance_minor is distinct from e.total`);
    expect(drift.rows).toEqual([]);
  });

  it("the payout decision's query reads one row, however long the party's history", async () => {
    const party = 'seller:long-history';
    for (let i = 0; i < 60; i++) await add(entry(party, 'USD', i % 2 === 0 ? -100 : 40, i % 2 === 0 ? 'CLAWBACK' : 'OFFSET'));
    await db.raw('analyze balances');
    await db.raw('analyze balance_entries');

    const { result: owed, statements } = await statementsSentBy(db, () => repo.owed(party, 'USD'));
    expect(owed).toBe(await owedBySum(party, 'USD'));
    expect(statements).toHaveLength(1);
    const statement = statements[0]!;
    expect(statement.sql).not.toContain('balance_entries');

    // its plan, as Postgres runs it (index use forced only so a tiny test table does not pick a sequential scan)
    const plan = await db.transaction(async (trx) => {
      await trx.raw('set local enable_seqscan = off');
      return planOfSent(trx, statement, { analyze: true });
    });
    const scans = plan.filter((n) => n['Relation Name']);
    expect(scans.map((n) => n['Relation Name'])).toEqual(['balances']);
    expect(scans.map((n) => (n['Actual Rows']! + (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) * n['Actual Loops']!)).toEqual([1]);
  });
});
