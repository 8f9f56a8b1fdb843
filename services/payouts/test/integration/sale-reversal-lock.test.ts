import { randomUUID } from 'node:crypto';
import { createDb, migrate, type Db, type Tx } from '@postsale/runtime';
import { dropSchema, testEnv, waitFor } from '@postsale/runtime/testing';
import { migrations } from '../../src/db/migrations';
import { PayoutsRepository } from '../../src/db/payouts.repository';
import type { NewIntent, ReversalRecord, SaleRecord } from '../../src/domain/records';

/**
 * A new sale learns whether a reversal of it arrived first from the statement that inserts its intents, not from a
 * read of its own (issue 15). That is exact only because the sale's insert and a reversal's insert take the order's
 * lock: of the two, recorded concurrently, the second waits for the first to commit and then sees its writes. A
 * shipment (from the other topic, another consumer) takes the same lock: a sale and its shipment recorded at once
 * each missed the other before, and the seller's payout stayed held for a shipment that had come.
 */
describe('a sale and its reversal recorded concurrently', () => {
  const env = testEnv('payouts');
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let repo: PayoutsRepository;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, migrations);
    repo = new PayoutsRepository(db);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const saleOf = (): SaleRecord => ({
    saleId: randomUUID(), orderId: `o-${randomUUID()}`, sellerId: `s-${randomUUID()}`, currency: 'USD', saleAmountMinor: 5000,
    platformCommissionMinor: 300, sellerNetMinor: 1200, isLoss: false, eventId: randomUUID(), recordedAt: new Date(),
  });
  const reversalOf = (sale: SaleRecord): ReversalRecord => ({
    reversalId: `rev-${randomUUID()}`, saleId: sale.saleId, orderId: sale.orderId, kind: 'CANCELLATION', currency: 'USD',
    commissionReversedMinor: 300, sellerNetReversedMinor: 1200, reversedAt: new Date(),
  });
  const intentsOf = (sale: SaleRecord) => (['PLATFORM', 'SELLER'] as const).map((recipient) => {
    const intent: NewIntent = {
      id: randomUUID(), saleId: sale.saleId, orderId: sale.orderId, sellerId: sale.sellerId, recipient, currency: 'USD',
      amountMinor: 100, payableMinor: 100, saleRecordedAt: sale.recordedAt, status: 'DUE', holdReason: null, releaseAt: null,
    };
    return { intent, cause: 'test' };
  });
  /** resolves once a session waits for this sale's order lock (a 64-bit advisory key: high half in classid, low in objid) */
  const waitingForLockOf = (sale: SaleRecord) => waitFor(async () => {
    const { rows } = await db.raw(
      `select 1 from pg_locks where locktype = 'advisory' and not granted and objsubid = 1
          and ((classid::bigint << 32) | objid::bigint) = hashtextextended(?, 0)`,
      [`order:${sale.orderId}`],
    );
    return rows.length > 0;
  }, { description: `a session waits for the lock of sale ${sale.saleId}` });

  /** runs `test` with a transaction of its own that it commits when it chooses; rolled back if the test fails first */
  const withOpenTransaction = async (test: (trx: Tx) => Promise<void>): Promise<void> => {
    const trx: Tx = await db.transaction();
    try {
      await test(trx);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  };

  it('when the sale is recorded first, then the reversal waits for it and finds its intents', async () => {
    const sale = saleOf();
    await withOpenTransaction(async (saleTrx) => {
      expect(await repo.insertSale(saleTrx, sale)).toBe(true);
      const reversal = repo.transaction(async (trx) => {
        const fresh = await repo.insertReversal(trx, reversalOf(sale));
        return { fresh, intents: await repo.intentsForSale(trx, sale.saleId) };
      });
      await waitingForLockOf(sale);
      expect(await repo.insertSaleIntents(saleTrx, sale.saleId, intentsOf(sale))).toEqual({ reversed: false });
      await saleTrx.commit();
      const seen = await reversal;
      expect(seen.fresh).toBe(true);
      expect(seen.intents.map((i) => i.recipient)).toEqual(['PLATFORM', 'SELLER']);
    });
  });

  it('when the reversal is recorded first, then the sale waits for it and its intents insert says it is reversed', async () => {
    const sale = saleOf();
    await withOpenTransaction(async (reversalTrx) => {
      expect(await repo.insertReversal(reversalTrx, reversalOf(sale))).toBe(true);
      expect(await repo.intentsForSale(reversalTrx, sale.saleId)).toEqual([]);
      const recorded = repo.transaction(async (trx) => {
        const fresh = await repo.insertSale(trx, sale);
        return { fresh, ...(await repo.insertSaleIntents(trx, sale.saleId, intentsOf(sale))) };
      });
      await waitingForLockOf(sale);
      await reversalTrx.commit();
      expect(await recorded).toEqual({ fresh: true, reversed: true });
    });
  });

  it('when the sale is recorded first, then its shipment waits for it and releases from its intents', async () => {
    const sale = saleOf();
    await withOpenTransaction(async (saleTrx) => {
      expect(await repo.insertSale(saleTrx, sale)).toBe(true);
      const shipment = repo.transaction(async (trx) => {
        await repo.recordMilestone(trx, sale.orderId, sale.sellerId, 'shipped', new Date());
        return repo.intentsAwaitingRelease(trx, { orderId: sale.orderId });
      });
      await waitingForLockOf(sale);
      await repo.insertSaleIntents(saleTrx, sale.saleId, intentsOf(sale));
      await saleTrx.commit();
      expect((await shipment).map((i) => i.recipient).sort()).toEqual(['PLATFORM', 'SELLER']);
    });
  });

  it('when the shipment is recorded first, then the sale waits for it and decides on the shipped milestone', async () => {
    const sale = saleOf();
    const shippedAt = new Date(Date.now() - 60_000);
    await withOpenTransaction(async (shipmentTrx) => {
      await repo.recordMilestone(shipmentTrx, sale.orderId, sale.sellerId, 'shipped', shippedAt);
      const recorded = repo.transaction(async (trx) => {
        await repo.insertSale(trx, sale);
        return repo.payeeAndMilestones(sale.sellerId, sale.orderId, trx);
      });
      await waitingForLockOf(sale);
      await shipmentTrx.commit();
      expect((await recorded).milestones.shippedAt?.getTime()).toBe(shippedAt.getTime());
    });
  });

  it('when either is recorded again, then it says so', async () => {
    const sale = saleOf();
    const reversal = reversalOf(sale);
    await repo.transaction(async (trx) => {
      expect(await repo.insertSale(trx, sale)).toBe(true);
      expect(await repo.insertSaleIntents(trx, sale.saleId, intentsOf(sale))).toEqual({ reversed: false });
    });
    await repo.transaction(async (trx) => expect(await repo.insertReversal(trx, reversal)).toBe(true));
    await repo.transaction(async (trx) => {
      expect(await repo.insertSale(trx, sale)).toBe(false);
      expect(await repo.insertReversal(trx, reversal)).toBe(false);
    });
  });
});
