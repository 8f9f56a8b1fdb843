import { randomUUID } from 'node:crypto';
import { createDb, migrate, type Db } from '@postsale/runtime';
import { dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { FulfillmentRepository, type NewFulfillment } from '../../src/db/fulfillment.repository';
import { migrations } from '../../src/db/migrations';

/**
 * The repository's hot writes on real Postgres, each one statement: a state change writes its transitions row in the
 * same statement (none when the guard or the fence stops it), a claim is one UPDATE with SKIP LOCKED that two replicas
 * never share, and an attempt numbers itself. Statements are counted on the repository's own pool.
 */
describe('fulfillment repository: one statement per step', () => {
  const env = testEnv('fulfillment', { SUPPLIER_MODE: 'sandbox' });
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let other: Db;
  let repo: FulfillmentRepository;
  let statements: string[] = [];

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    other = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, migrations);
    db.on('query', (q: { sql: string }) => statements.push(q.sql));
    repo = new FulfillmentRepository(db);
  });
  afterAll(async () => {
    await db.destroy();
    await other.destroy();
    await dropSchema(schema);
  });

  /** `sql`: the statements `work` sent besides BEGIN and COMMIT; `all`: every one */
  const counted = async <T>(work: () => Promise<T>): Promise<{ result: T; sql: string[]; all: string[] }> => {
    statements = [];
    const result = await work();
    return { result, sql: statements.filter((s) => !/^(begin|commit)/i.test(s)), all: statements };
  };
  const newOrder = (sellerId = 'seller-a'): NewFulfillment => {
    const orderId = uniqueId('ord-');
    return {
      orderId, sellerId, marketplace: 'EBAY', externalOrderId: `ext-${orderId}`, marketplaceAccountId: 'acct', lines: [], shipTo: null, shipToIssue: null,
      saleAmount: { amountMinor: 2000, currency: 'USD' }, outOrderId: `PS${orderId}`, receivedAt: new Date(),
    };
  };
  /** true once some backend waits for a lock that transaction `trx` holds (the intent behind the row lock) */
  const waitForBlockedBy = (trx: Db) =>
    waitFor(async () => {
      const { rows } = await trx.raw('select count(*)::int as n from pg_stat_activity where pg_backend_pid() = any(pg_blocking_pids(pid))');
      return rows[0].n > 0 ? true : undefined;
    }, { timeoutMs: 5_000, description: 'the intent waiting for the row lock' });
  const transitions = (orderId: string) => db('transitions').where({ order_id: orderId }).orderBy('id').select('from_state', 'to_state', 'cause', 'details');

  it('records a new order and its first transition in one statement, once', async () => {
    const f = newOrder();
    const first = await counted(() => repo.transaction((trx) => repo.insertReceived(trx, f, 'OrderReceived e1')));
    expect(first.result).toMatchObject({ orderId: f.orderId, state: 'RECEIVED', leaseVersion: 0 });
    expect(first.sql).toHaveLength(1);
    const again = await repo.transaction((trx) => repo.insertReceived(trx, f, 'OrderReceived e2'));
    expect(again).toBeUndefined();
    expect(await transitions(f.orderId)).toEqual([{ from_state: null, to_state: 'RECEIVED', cause: 'OrderReceived e1', details: null }]);

    const placeholder = newOrder();
    await repo.transaction((trx) => repo.insertCancelledPlaceholder(trx, placeholder.orderId, placeholder.sellerId, 'OrderCancelled e3', { by: 'buyer' }));
    await repo.transaction((trx) => repo.insertCancelledPlaceholder(trx, placeholder.orderId, placeholder.sellerId, 'OrderCancelled e4', { by: 'buyer' }));
    expect(await transitions(placeholder.orderId)).toEqual([{ from_state: null, to_state: 'CANCELLED', cause: 'OrderCancelled e3', details: { by: 'buyer' } }]);
  });

  it('moves an order and writes its transition in one statement; a stale fence or another state writes neither', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    // as if three claims had come and gone: the holder of fence 3 is the current one
    await db('fulfillments').where({ order_id: f.orderId }).update({ lease_version: 3 });

    const fencedOff = await counted(() => repo.transaction((trx) => repo.transition(trx, f.orderId, ['RECEIVED'], 'PURCHASING', 'intent', { channel: 'API' }, { channel: 'API' }, 2)));
    expect(fencedOff.result).toBeUndefined();
    expect(fencedOff.sql).toHaveLength(1);
    const wrongState = await repo.transaction((trx) => repo.transition(trx, f.orderId, ['PURCHASING'], 'AWAITING_PAYMENT', 'accepted', null));
    expect(wrongState).toBeUndefined();
    expect((await repo.get(f.orderId))).toMatchObject({ state: 'RECEIVED', channel: null });
    expect(await transitions(f.orderId)).toHaveLength(1);

    const moved = await counted(() => repo.transaction((trx) => repo.transition(trx, f.orderId, ['RECEIVED'], 'PURCHASING', 'intent', { channel: 'API' }, { channel: 'API', purchaseAttempts: 1 }, 3)));
    expect(moved.sql).toHaveLength(1);
    expect(moved.result).toMatchObject({ orderId: f.orderId, state: 'PURCHASING', channel: 'API', purchaseAttempts: 1, leaseVersion: 3 });
    // with several possible sources, the previous state is the last recorded transition's target
    const review = await repo.transaction((trx) => repo.transition(trx, f.orderId, ['RECEIVED', 'PURCHASING'], 'NEEDS_REVIEW', 'review', { reason: 'X' }));
    expect(review?.state).toBe('NEEDS_REVIEW');
    expect(await transitions(f.orderId)).toEqual([
      { from_state: null, to_state: 'RECEIVED', cause: 'received', details: null },
      { from_state: 'RECEIVED', to_state: 'PURCHASING', cause: 'intent', details: { channel: 'API' } },
      { from_state: 'PURCHASING', to_state: 'NEEDS_REVIEW', cause: 'review', details: { reason: 'X' } },
    ]);
  });

  it('records the supplier answer behind a transition in the transition\'s own statement, also when the fence stops the change', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    await db('fulfillments').where({ order_id: f.orderId }).update({ state: 'AWAITING_PAYMENT', lease_version: 2 });
    const answer = (n: number) => ({ method: 'aliexpress.trade.ds.order.get', outcome: 'WAIT_SELLER_SEND_GOODS', summary: { check: n } });
    const answers = () => db('supplier_responses').where({ order_id: f.orderId }).orderBy('id').select('method', 'outcome', 'summary');

    const fencedOff = await counted(() => repo.transaction((trx) => repo.transition(trx, f.orderId, ['AWAITING_PAYMENT'], 'PURCHASED', 'paid', null, {}, 1, { answer: answer(1) })));
    expect(fencedOff.sql).toHaveLength(1);
    expect(fencedOff.result).toBeUndefined();
    const moved = await counted(() => repo.transaction((trx) => repo.transition(trx, f.orderId, ['AWAITING_PAYMENT'], 'PURCHASED', 'paid', null, {}, 2, { answer: answer(2) })));
    expect(moved.sql).toHaveLength(1);
    expect(moved.result).toMatchObject({ state: 'PURCHASED' });
    expect(await answers()).toEqual([
      { method: 'aliexpress.trade.ds.order.get', outcome: 'WAIT_SELLER_SEND_GOODS', summary: { check: 1 } },
      { method: 'aliexpress.trade.ds.order.get', outcome: 'WAIT_SELLER_SEND_GOODS', summary: { check: 2 } },
    ]);
    expect((await transitions(f.orderId)).map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASED']);
  });

  it('publishes a transition\'s event in the transition\'s own statement, on its own (no BEGIN/COMMIT), only when the order moved', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    await db('fulfillments').where({ order_id: f.orderId }).update({ state: 'AWAITING_PAYMENT', lease_version: 2 });
    const event = () => {
      const eventId = randomUUID();
      return { event_id: eventId, topic: 't.fulfillment', stream: 'fulfillment', key: f.orderId, event_type: 'PurchaseCompleted', event: JSON.stringify({ eventId, type: 'PurchaseCompleted' }) };
    };
    const outbox = () => db('outbox').where({ key: f.orderId }).pluck('event_type');
    const answer = { method: 'aliexpress.trade.ds.order.get', outcome: 'WAIT_SELLER_SEND_GOODS', summary: null };

    const fencedOff = await counted(() => repo.transition(undefined, f.orderId, ['AWAITING_PAYMENT'], 'PURCHASED', 'paid', null, {}, 1, { answer, event: event() }));
    expect(fencedOff.all).toHaveLength(1);
    expect(fencedOff.result).toBeUndefined();
    expect(await outbox()).toEqual([]);
    const moved = await counted(() => repo.transition(undefined, f.orderId, ['AWAITING_PAYMENT'], 'PURCHASED', 'paid', null, {}, 2, { answer, event: event() }));
    expect(moved.all).toHaveLength(1);
    expect(moved.result).toMatchObject({ state: 'PURCHASED' });
    expect(await outbox()).toEqual(['PurchaseCompleted']);
    expect((await transitions(f.orderId)).map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASED']);
    expect(await db('supplier_responses').where({ order_id: f.orderId }).count<{ n: string }[]>('* as n')).toEqual([{ n: '2' }]);
  });

  it('numbers attempts after the order\'s last one, in the insert itself', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    const ids: string[] = [];
    for (const kind of ['CREATE', 'RESOLVE', 'CREATE'] as const) {
      const { result, sql } = await counted(() => repo.transaction((trx) => repo.insertAttempt(trx, { orderId: f.orderId, kind, channel: 'API', outOrderId: f.outOrderId })));
      expect(sql).toHaveLength(1);
      ids.push(result);
    }
    const rows = await db('purchase_attempts').where({ order_id: f.orderId }).orderBy('attempt_no').select('id', 'attempt_no', 'kind', 'outcome');
    expect(rows.map((r) => [String(r.id), r.attempt_no, r.kind, r.outcome])).toEqual([
      [ids[0], 1, 'CREATE', 'PENDING'],
      [ids[1], 2, 'RESOLVE', 'PENDING'],
      [ids[2], 3, 'CREATE', 'PENDING'],
    ]);
  });

  it('finishes an attempt with the order locked, in one statement, only while the lease is current', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    await db('fulfillments').where({ order_id: f.orderId }).update({ lease_version: 5 });
    const id = await repo.transaction((trx) => repo.insertAttempt(trx, { orderId: f.orderId, kind: 'CREATE', channel: 'API', outOrderId: f.outOrderId }));
    const outcome = () => db('purchase_attempts').where({ id }).first('outcome', 'supplier_order_id').then((r) => [r.outcome, r.supplier_order_id]);

    const stale = await counted(() => repo.transaction((trx) => repo.finishAttempt(trx, f.orderId, 4, id, { outcome: 'CREATED', supplierOrderId: 'late-1' })));
    expect(stale.sql).toHaveLength(1);
    expect(stale.result).toMatchObject({ orderId: f.orderId, leaseVersion: 5, state: 'RECEIVED' });
    expect(await outcome()).toEqual(['PENDING', null]);

    const current = await counted(() => repo.transaction((trx) => repo.finishAttempt(trx, f.orderId, 5, id, { outcome: 'CREATED', supplierOrderId: 'so-1' })));
    expect(current.sql).toHaveLength(1);
    expect(current.result).toMatchObject({ orderId: f.orderId, leaseVersion: 5 });
    expect(await outcome()).toEqual(['CREATED', 'so-1']);

    // the order row stays locked until the transaction ends (a cancellation on the orders topic waits for it)
    await repo.transaction(async (trx) => {
      await repo.finishAttempt(trx, f.orderId, 5, id, { outcome: 'CREATED', supplierOrderId: 'so-1' });
      await expect(other.raw('select 1 from fulfillments where order_id = ? for update nowait', [f.orderId])).rejects.toMatchObject({ code: '55P03' });
    });
    await expect(other.raw('select 1 from fulfillments where order_id = ? for update nowait', [f.orderId])).resolves.toBeDefined();
    expect(await repo.transaction((trx) => repo.finishAttempt(trx, 'no-such-order', 5, id, { outcome: 'UNKNOWN' }))).toBeUndefined();
    expect(await outcome()).toEqual(['CREATED', 'so-1']);
  });

  it('records the purchase intent in one autocommit statement: order, transition and attempt only under the current lease, the price answer always', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    await db('fulfillments').where({ order_id: f.orderId }).update({ lease_version: 7 });
    const intent = (fence: number, from: 'RECEIVED' | 'PURCHASING' = 'RECEIVED', kind: 'CREATE' | 'RESOLVE' = 'CREATE') => repo.recordPurchaseIntent({
      orderId: f.orderId,
      from,
      fence,
      patch: from === 'RECEIVED' ? { channel: 'API', purchaseAttempts: 1, reasonCode: null, reasonDetails: null } : { purchaseAttempts: 2 },
      transition: from === 'RECEIVED' ? { cause: 'purchase intent', details: { channel: 'API' } } : undefined,
      attempt: { kind, channel: 'API', outOrderId: f.outOrderId },
      priceCheck: { outcome: 'PASSED', summary: { fence } },
    });
    const attempts = () => db('purchase_attempts').where({ order_id: f.orderId }).orderBy('attempt_no').select('attempt_no', 'kind', 'channel', 'outcome');
    const answers = () => db('supplier_responses').where({ order_id: f.orderId, method: 'price-guard' }).orderBy('id').pluck('summary');

    // a worker whose lease was taken over records the answer it read, and nothing else
    const stale = await counted(() => intent(6));
    expect(stale.all).toHaveLength(1);
    expect(stale.result).toBeUndefined();
    expect(await repo.get(f.orderId)).toMatchObject({ state: 'RECEIVED', channel: null, purchaseAttempts: 0 });
    expect(await attempts()).toEqual([]);
    expect(await transitions(f.orderId)).toHaveLength(1);
    expect(await answers()).toEqual([{ fence: 6 }]);

    const current = await counted(() => intent(7));
    expect(current.all).toHaveLength(1);
    expect(current.result).toEqual(expect.any(String));
    expect(await repo.get(f.orderId)).toMatchObject({ state: 'PURCHASING', channel: 'API', purchaseAttempts: 1, leaseVersion: 7 });
    expect(await attempts()).toEqual([{ attempt_no: 1, kind: 'CREATE', channel: 'API', outcome: 'PENDING' }]);
    expect(await transitions(f.orderId)).toEqual([
      { from_state: null, to_state: 'RECEIVED', cause: 'received', details: null },
      { from_state: 'RECEIVED', to_state: 'PURCHASING', cause: 'purchase intent', details: { channel: 'API' } },
    ]);
    // the same intent again finds the order no longer RECEIVED
    expect(await intent(7)).toBeUndefined();

    // a further attempt in PURCHASING: no transition, numbered after the last one
    const again = await counted(() => intent(7, 'PURCHASING', 'RESOLVE'));
    expect(again.all).toHaveLength(1);
    expect(await attempts()).toEqual([
      { attempt_no: 1, kind: 'CREATE', channel: 'API', outcome: 'PENDING' },
      { attempt_no: 2, kind: 'RESOLVE', channel: 'API', outcome: 'PENDING' },
    ]);
    expect(await transitions(f.orderId)).toHaveLength(2);
    expect(await answers()).toEqual([{ fence: 6 }, { fence: 7 }, { fence: 7 }, { fence: 7 }]);
  });

  it('records no intent for an order a concurrent transaction moves: the intent waits for its row lock, then finds it moved', async () => {
    const f = newOrder();
    await repo.transaction((trx) => repo.insertReceived(trx, f, 'received'));
    let pending: Promise<string | undefined> | undefined;
    await other.transaction(async (trx) => {
      // as a cancellation on the orders topic does: the row locked, the order moved, not committed yet
      await trx('fulfillments').where({ order_id: f.orderId }).forUpdate().first();
      await trx('fulfillments').where({ order_id: f.orderId }).update({ state: 'CANCELLED' });
      pending = repo.recordPurchaseIntent({ orderId: f.orderId, from: 'RECEIVED', fence: 0, patch: { channel: 'API', purchaseAttempts: 1 }, transition: { cause: 'purchase intent', details: null }, attempt: { kind: 'CREATE', channel: 'API', outOrderId: f.outOrderId } });
      // the intent is blocked on the row lock: it has not answered while this transaction is open
      const blocked = await waitForBlockedBy(trx);
      expect(blocked).toBe(true);
    });
    expect(await pending).toBeUndefined();
    expect(await db('purchase_attempts').where({ order_id: f.orderId })).toEqual([]);
    expect(await repo.get(f.orderId)).toMatchObject({ state: 'CANCELLED', purchaseAttempts: 0 });
  });

  it('claims due orders in one statement: two replicas claiming at once never share one, and every claim takes a new fence', async () => {
    const sellerId = uniqueId('seller-');
    const orders = Array.from({ length: 40 }, () => newOrder(sellerId));
    await repo.transaction(async (trx) => {
      for (const f of orders) await repo.insertReceived(trx, f, 'received');
    });
    const mine = new Set(orders.map((f) => f.orderId));
    const replica = new FulfillmentRepository(other);
    // the earlier tests' orders are due too: only this test's are counted
    const claimAll = async (r: FulfillmentRepository) => {
      const got: Array<{ orderId: string; leaseVersion: number }> = [];
      for (let round = 0; round < 20; round++) {
        const claimed = (await r.claimDue(['RECEIVED'], 3, 60_000)).filter((f) => mine.has(f.orderId));
        got.push(...claimed);
      }
      return got;
    };
    // one autocommit statement, no BEGIN/COMMIT around it
    const first = await counted(() => repo.claimDue(['RECEIVED'], 1, 60_000));
    expect(first.all).toHaveLength(1);
    expect(first.result).toHaveLength(1);
    const [a, b] = await Promise.all([claimAll(repo), claimAll(replica)]);
    const claimed = [...first.result.filter((f) => mine.has(f.orderId)), ...a, ...b];
    expect(claimed.map((f) => f.orderId).sort()).toEqual([...mine].sort());
    expect(claimed.every((f) => f.leaseVersion === 1)).toBe(true);
    // leased: not due again until the lease runs out; then claimed again with the next fence
    expect((await repo.claimDue(['RECEIVED'], 100, 60_000)).filter((f) => mine.has(f.orderId))).toEqual([]);
    await db('fulfillments').whereIn('order_id', [...mine]).update({ next_run_at: db.fn.now() });
    const reclaimed = await claimAll(repo);
    expect(reclaimed.map((f) => f.orderId).sort()).toEqual([...mine].sort());
    expect(reclaimed.every((f) => f.leaseVersion === 2)).toBe(true);
  });

  it('claims due tracking pushes in one statement, each with a new fence, never twice at once', async () => {
    const sellerId = uniqueId('seller-');
    const orderIds = Array.from({ length: 20 }, () => uniqueId('ord-'));
    await repo.transaction(async (trx) => {
      for (const orderId of orderIds) await repo.insertTrackingPush(trx, orderId, sellerId, 'EBAY', 'PENDING');
    });
    const mine = new Set(orderIds);
    const replica = new FulfillmentRepository(other);
    const claimAll = async (r: FulfillmentRepository) => {
      const got: Array<{ orderId: string; fence: number; attempts: number; sellerId: string; marketplace: string }> = [];
      for (let round = 0; round < 15; round++) got.push(...(await r.claimDuePushes(2, 60_000)).filter((p) => mine.has(p.orderId)));
      return got;
    };
    const first = await counted(() => repo.claimDuePushes(1, 60_000));
    expect(first.all).toHaveLength(1);
    expect(first.result).toHaveLength(1);
    const [a, b] = await Promise.all([claimAll(repo), claimAll(replica)]);
    const claimed = [...first.result, ...a, ...b];
    expect(claimed.map((p) => p.orderId).sort()).toEqual([...mine].sort());
    expect(claimed.every((p) => p.fence === 1 && p.attempts === 0 && p.sellerId === sellerId && p.marketplace === 'EBAY')).toBe(true);
  });
});
