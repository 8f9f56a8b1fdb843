import { Streams, type FulfillmentEvent, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import { startService, type RunningService, type Tx } from '@postsale/runtime';
import { dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { SalesRepository } from '../../src/db/sales.repository';
import { lockKeys, type SalesDeps } from '../../src/domain/ports';
import { recordFulfillmentEvent, recordOrderEvent, recordPayoutEvent, retryHeld } from '../../src/domain/sale-ledger.use-case';
import { salesService } from '../../src/service';
import { ADMIN, m, orderCancelled, orderReceived, orderRefunded, payoutSent, purchaseCompleted, redelivered } from '../support/events';

/**
 * What one order costs the ledger in Postgres statements (issue 15: every round trip counts). Each event is applied
 * through the use case in its own transaction, as the consumer would, and the statements that transaction sends are
 * counted (BEGIN/COMMIT and the inbox insert are the consumer's, not counted here).
 */
describe('sales: statements per event', () => {
  let env: Record<string, string>;
  let service: RunningService;
  let deps: SalesDeps;

  beforeAll(async () => {
    env = testEnv('sales');
    service = await startService(salesService, env);
    const repo = new SalesRepository(service.ctx.db);
    deps = {
      store: repo, reports: repo,
      events: {
        publish: (trx, event) => service.ctx.outbox.publish(trx, Streams.sales, event),
        row: (event) => service.ctx.outbox.row(Streams.sales, event),
        written: (trx) => service.ctx.outbox.written(trx),
      },
      observer: { saleRecorded: () => undefined, saleReversed: () => undefined, saleHeld: () => undefined },
      settings: { fxMaxRateAgeDays: 7 },
      now: () => new Date(),
    };
  });
  afterAll(async () => {
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  /** Runs `work` in a transaction and returns the statements it sent, BEGIN and COMMIT left out. */
  const statements = async (work: (trx: Tx) => Promise<void>): Promise<string[]> => {
    const sent: string[] = [];
    await service.ctx.db.transaction(async (trx) => {
      trx.on('query', (q: { sql?: string }) => {
        if (!/^(begin|commit)\b/i.test(q.sql ?? '')) sent.push(q.sql ?? '');
      });
      await work(trx);
    });
    return sent;
  };
  const onOrder = (e: OrderEvent) => statements((trx) => recordOrderEvent(deps, trx, e));
  const onFulfillment = (e: FulfillmentEvent) => statements((trx) => recordFulfillmentEvent(deps, trx, e));
  const onPayout = (e: PayoutEvent) => statements((trx) => recordPayoutEvent(deps, trx, e));
  const putTerms = async (sellerId: string, commissionRateBps: number) => {
    const put = await fetch(`${service.url}/admin/sellers/${sellerId}/commercial-terms`, {
      method: 'PUT', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ commissionRateBps }),
    });
    expect(put.status).toBe(200);
  };

  /**
   * Two replicas at once: `first` runs in a transaction kept open until `second` (in another) is seen waiting on it,
   * then commits; `second` goes on with what `first` committed.
   */
  const concurrently = async (first: (trx: Tx) => Promise<void>, second: (trx: Tx) => Promise<void>) => {
    const db = service.ctx.db;
    let firstPid: number | undefined;
    let commit!: () => void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    const firstDone = db.transaction(async (trx) => {
      await first(trx);
      firstPid = (await trx.raw('select pg_backend_pid() as pid')).rows[0].pid;
      await committing;
    });
    const pid = await waitFor(() => firstPid, { description: 'the first transaction applied its event' });
    const secondDone = db.transaction(second);
    await waitFor(async () => (await db.raw('select 1 from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [pid])).rows.length > 0,
      { description: 'the second transaction waiting on the first' });
    commit();
    await Promise.all([firstDone, secondDone]);
  };
  const historyOf = async (orderId: string) =>
    (await service.ctx.db('order_history').where({ order_id: orderId }).orderBy('id')).map((h) => [h.state, h.cause, h.detail?.ignored ?? null]);

  it('when an order is received, bought, recorded and both payouts are sent, then the ledger sends 5 statements in all', async () => {
    const sellerId = uniqueId('seller-');
    await putTerms(sellerId, 1500);
    const orderId = uniqueId('o-');

    const received = await onOrder(orderReceived({ orderId, sellerId, sale: m(10000, 'USD'), marketplaceFee: m(1300, 'USD'), paymentFee: m(0, 'USD') }));
    const bought = await onFulfillment(purchaseCompleted({ orderId, sellerId, cost: m(5000, 'USD') }));
    const toSeller = await onPayout(payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-s`, recipient: 'SELLER', paid: m(3145, 'USD') }));
    const toPlatform = await onPayout(payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-p`, recipient: 'PLATFORM', paid: m(555, 'USD') }));

    // the work was done: one sale, three entries, every payable settled, one history line per fact in order
    const db = service.ctx.db;
    expect((await db('orders').where({ order_id: orderId }).first()).state).toBe('RECORDED');
    expect(await db('sales').where({ order_id: orderId })).toHaveLength(1);
    expect((await db('journal_entries').where({ order_id: orderId }).orderBy('id')).map((e) => e.kind)).toEqual(['SALE', 'PAYOUT', 'PAYOUT']);
    const payables = await db('postings').where({ order_id: orderId }).whereIn('account_code', ['seller_payable', 'platform_commission']).sum({ total: 'amount_minor' });
    expect(Number(payables[0]!.total)).toBe(0);
    expect((await db('order_history').where({ order_id: orderId }).orderBy('id')).map((h) => [h.state, h.cause])).toEqual([
      ['AWAITING_PURCHASE', 'OrderReceived'],
      ['AWAITING_PURCHASE', 'PurchaseCompleted'],
      ['RECORDED', 'SaleRecorded'],
      ['RECORDED', 'PurchaseCompleted'],
      ['RECORDED', 'PayoutSent'],
      ['RECORDED', 'PayoutSent'],
    ]);

    // OrderReceived: one upsert (shared locks, facts, row lock, history line). PurchaseCompleted: the same upsert, which
    // also reads the seller's terms (the order now has both facts); the sale with its journal entry, its SaleRecorded
    // outbox row, the order's state and its history lines. PayoutSent: the order's row lock, the entry and its history
    // line. (Was 4 + 10 + 3 + 3, then 1 + 5 + 1 + 1.)
    expect(received).toHaveLength(1);
    expect(bought).toHaveLength(2);
    expect(bought[0]).toMatch(/commercial_terms_now/);
    expect(bought.filter((sql) => /commercial_terms/.test(sql) && !/commercial_terms_now/.test(sql))).toEqual([]);
    expect(bought[1]).toMatch(/^with sale as \(insert into "sales".*insert into outbox.*update orders set state.*insert into order_history/s);
    expect(toSeller).toHaveLength(1);
    expect(toPlatform).toHaveLength(1);
  });

  it('when each event of an order is applied again (a replay through a fresh group), then nothing is booked twice and each replay is noted as ignored', async () => {
    const sellerId = uniqueId('seller-');
    await putTerms(sellerId, 1000);
    const orderId = uniqueId('o-');
    const received = orderReceived({ orderId, sellerId, sale: m(8000, 'USD'), marketplaceFee: m(800, 'USD') });
    const bought = purchaseCompleted({ orderId, sellerId, cost: m(4000, 'USD') });
    const sent = payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-s`, recipient: 'SELLER', paid: m(2880, 'USD') });
    for (let round = 0; round < 2; round++) {
      await onOrder(received);
      await onFulfillment(bought);
      await onPayout(sent);
    }

    const db = service.ctx.db;
    expect(await db('sales').where({ order_id: orderId })).toHaveLength(1);
    expect((await db('journal_entries').where({ order_id: orderId }).orderBy('id')).map((e) => e.kind)).toEqual(['SALE', 'PAYOUT']);
    expect(Number((await db('postings').where({ order_id: orderId }).sum({ total: 'amount_minor' }))[0]!.total)).toBe(0);
    const order = await db('orders').where({ order_id: orderId }).first();
    expect([order.state, order.order_event_id, order.purchase_event_id, order.adjustment_count]).toEqual(['RECORDED', received.eventId, bought.eventId, 0]);
    const history = await db('order_history').where({ order_id: orderId }).orderBy('id');
    expect(history.map((h) => [h.state, h.cause, h.detail?.ignored ?? null])).toEqual([
      ['AWAITING_PURCHASE', 'OrderReceived', null],
      ['AWAITING_PURCHASE', 'PurchaseCompleted', null],
      ['RECORDED', 'SaleRecorded', null],
      ['RECORDED', 'PurchaseCompleted', null],
      ['RECORDED', 'PayoutSent', null],
      ['RECORDED', 'OrderReceived', 'order already known'],
      ['RECORDED', 'PurchaseCompleted', 'purchase already known'],
      ['RECORDED', 'PayoutSent', 'payout already settled'],
    ]);
    expect(history.at(-1)!.detail).toEqual({ eventId: sent.eventId, recipient: 'SELLER', amount: m(2880, 'USD'), owed: null, ignored: 'payout already settled' });
  });

  it('when two replicas apply a new order\'s purchase and the order at once, then the second waits, sees the purchase and records the sale once', async () => {
    const sellerId = uniqueId('seller-');
    await putTerms(sellerId, 1000);
    const orderId = uniqueId('o-');
    await concurrently(
      (trx) => recordFulfillmentEvent(deps, trx, purchaseCompleted({ orderId, sellerId, cost: m(3000, 'USD') })),
      (trx) => recordOrderEvent(deps, trx, orderReceived({ orderId, sellerId, sale: m(5000, 'USD'), marketplaceFee: m(500, 'USD') })),
    );
    expect(await service.ctx.db('sales').where({ order_id: orderId })).toHaveLength(1);
    expect(await historyOf(orderId)).toEqual([
      ['AWAITING_ORDER', 'PurchaseCompleted', null],
      ['AWAITING_ORDER', 'OrderReceived', null],
      ['RECORDED', 'SaleRecorded', null],
      ['RECORDED', 'OrderReceived', null],
    ]);
  });

  it('when an admin sets a seller\'s terms while the order\'s last fact waits on the terms lock, then the sale is priced with them (read after the lock, not held)', async () => {
    const sellerId = uniqueId('seller-');
    const orderId = uniqueId('o-');
    await onOrder(orderReceived({ orderId, sellerId, sale: m(10000, 'USD'), marketplaceFee: m(1000, 'USD') }));
    const { store } = deps;
    await concurrently(
      // the admin's write as setCommercialTerms makes it: exclusive lock, terms, held sales released (none yet)
      async (trx) => {
        await store.advisoryLock(trx, lockKeys.terms(sellerId), 'exclusive');
        await store.saveTerms(trx, { sellerId, commissionRateBps: 2000, marketplaceFees: {} });
        expect(await retryHeld(deps, trx, 'PENDING_TERMS', sellerId)).toEqual([]);
      },
      // its statement began before the terms committed: a read with that statement's snapshot would find none
      (trx) => recordFulfillmentEvent(deps, trx, purchaseCompleted({ orderId, sellerId, cost: m(5000, 'USD') })),
    );
    const db = service.ctx.db;
    expect((await db('orders').where({ order_id: orderId }).first()).state).toBe('RECORDED');
    expect(await db('sales').where({ order_id: orderId }).first('commission_rate_bps', 'terms_source')).toEqual({ commission_rate_bps: 2000, terms_source: 'SELLER' });
  });

  it('when two replicas apply the same order re-sent with a new id at once, then the second waits on the locked row and only notes it', async () => {
    const sellerId = uniqueId('seller-');
    const orderId = uniqueId('o-');
    const received = orderReceived({ orderId, sellerId, sale: m(5000, 'USD') });
    await concurrently((trx) => recordOrderEvent(deps, trx, received), (trx) => recordOrderEvent(deps, trx, redelivered(received)));
    expect((await service.ctx.db('orders').where({ order_id: orderId }).first()).order_event_id).toBe(received.eventId);
    expect(await historyOf(orderId)).toEqual([
      ['AWAITING_PURCHASE', 'OrderReceived', null],
      ['AWAITING_PURCHASE', 'OrderReceived', 'order already known'],
    ]);
  });

  it('when an order has cancellations or refunds, then its adjustment count says how many, so events read them only then', async () => {
    const sellerId = uniqueId('seller-');
    const orderId = uniqueId('o-');
    const stored = () => service.ctx.db('orders').where({ order_id: orderId }).first();
    await onOrder(orderReceived({ orderId, sellerId, sale: m(5000, 'USD') }));
    expect((await stored()).adjustment_count).toBe(0);
    // the order's first adjustment is read back by the event that made it: cancelled before any purchase
    await onOrder(orderCancelled({ orderId, sellerId }));
    expect(await stored()).toMatchObject({ adjustment_count: 1, state: 'CANCELLED' });
    await onOrder(orderRefunded({ orderId, sellerId, refundId: 'r1', amount: m(1000, 'USD') }));
    await onOrder(orderRefunded({ orderId, sellerId, refundId: 'r1', amount: m(1000, 'USD') })); // the same refund id: not a second one
    expect((await stored()).adjustment_count).toBe(2);
  });
});
