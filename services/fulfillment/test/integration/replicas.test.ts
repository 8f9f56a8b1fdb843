import { randomUUID } from 'node:crypto';
import type { OrderEvent } from '@postsale/contracts';
import { createSecretBox, startService, type RunningService } from '@postsale/runtime';
import { dropSchema, requireSystemProgram, waitFor } from '@postsale/runtime/testing';
import { AliExpressDsClient, SupplierCallError, type CreateOrderInput } from '../../src/clients/aliexpress-ds.client';
import { CheckoutBrowser } from '../../src/clients/checkout-browser';
import { FulfillmentRepository, type Fulfillment } from '../../src/db/fulfillment.repository';
import { SellerSettingsRepository } from '../../src/db/seller-settings.repository';
import { outOrderIdFor } from '../../src/domain/out-order-id';
import type { FulfillmentDeps, SupplierApi } from '../../src/domain/ports';
import { runPurchase } from '../../src/domain/purchase.use-case';
import { recordOrderEvent } from '../../src/domain/record-order.use-case';
import { runFollowUp } from '../../src/domain/follow-up.use-case';
import { States, type State } from '../../src/domain/states';
import { createFulfillmentMetrics } from '../../src/metrics';
import { fulfillmentService } from '../../src/service';
import { orderReceived, orderState, publishOrders, setUpSeller, startHarness, waitForState, type Harness } from './harness';

/**
 * Two replicas of fulfillment share one database. These tests drive the purchase use case as two workers would, on the
 * real Postgres and the AliExpress fake, and hold each worker's supplier call at a gate the test opens.
 */
function deferred() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

type CreateOrder = SupplierApi['createOrder'];

type GetOrder = SupplierApi['getOrder'];

function workerDeps(
  h: Harness,
  createOrder?: (real: CreateOrder, input: CreateOrderInput) => ReturnType<CreateOrder>,
  leaseMs = 60_000,
  getOrder?: (real: GetOrder, orderId: string) => ReturnType<GetOrder>,
): FulfillmentDeps {
  const ctx = h.service.ctx;
  const repo = new FulfillmentRepository(ctx.db);
  const sellers = new SellerSettingsRepository(ctx.db, createSecretBox(h.env.CREDENTIALS_KEY!));
  return {
    repo,
    sellers,
    outbox: ctx.outbox,
    logger: ctx.logger,
    metrics: createFulfillmentMetrics(ctx.metrics, repo),
    browser: new CheckoutBrowser({ chromiumPath: '/usr/bin/chromium', webUrl: h.ali.url, timeoutMs: 20_000 }),
    async supplierFor(sellerId) {
      const secrets = await sellers.supplierSecrets(sellerId);
      if (!secrets.api) return undefined;
      const api = new AliExpressDsClient({ gatewayUrl: h.ali.gatewayUrl, credentials: secrets.api, timeoutMs: 3000 });
      if (!createOrder && !getOrder) return api;
      return {
        getProduct: api.getProduct.bind(api),
        getFreight: api.getFreight.bind(api),
        getOrder: getOrder ? (id) => getOrder(api.getOrder.bind(api), id) : api.getOrder.bind(api),
        getTracking: api.getTracking.bind(api),
        createOrder: createOrder ? (input) => createOrder(api.createOrder.bind(api), input) : api.createOrder.bind(api),
      };
    },
    settings: {
      defaultMinMarginBps: 0,
      purchaseMaxAttempts: 6,
      purchaseRetryBaseMs: 100,
      purchaseRetryMaxMs: 400,
      outOrderIdWindowMs: 23 * 3600_000,
      statusPollMinMs: 100,
      statusPollMaxMs: 300,
      trackingPollMinMs: 100,
      trackingPollMaxMs: 300,
      pushMaxAttempts: 3,
      pushRetryBaseMs: 100,
      leaseMs,
    },
  };
}

describe('fulfillment with two workers on one database: fenced leases, pinned attempts, cancellations never lost', () => {
  let h: Harness;
  let deps: FulfillmentDeps;
  beforeAll(async () => {
    // the service's own workers stay idle (one tick per hour): the test is the two workers
    h = await startHarness({ WORKER_INTERVAL_MS: '3600000' });
    deps = workerDeps(h);
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  const record = (event: OrderEvent) => h.service.ctx.db.transaction((trx) => recordOrderEvent(deps, event, trx));
  const cancelOf = (event: OrderEvent): OrderEvent => ({
    ...event, eventId: randomUUID(), type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: `ext-${event.orderId}`, reason: 'buyer asked', cancelledAt: Date.now() },
  } as OrderEvent);
  /** A worker's claim of this order (the lease and its fencing token), after whatever lease it had has run out. */
  const claim = async (orderId: string, states: State[] = [States.RECEIVED, States.PURCHASING]): Promise<Fulfillment> => {
    await h.service.ctx.db('fulfillments').where({ order_id: orderId }).update({ next_run_at: new Date(Date.now() - 1000) });
    const claimed = await deps.repo.claimDue(states, 100, 60_000);
    const mine = claimed.find((f) => f.orderId === orderId);
    if (!mine) throw new Error(`order ${orderId} was not claimable`);
    return mine;
  };
  const attempts = (orderId: string) => h.service.ctx.db('purchase_attempts').where({ order_id: orderId }).orderBy('attempt_no');
  const row = (orderId: string) => deps.repo.get(orderId);
  const newOrder = async () => {
    const s = await setUpSeller(h);
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    await record(event);
    return { s, event };
  };

  it('when a worker\'s lease expires and another worker claims the order, then the first worker\'s late answer commits nothing (fencing token) and the order is bought once', async () => {
    const { event } = await newOrder();
    const gateA = deferred();
    const gateB = deferred();
    // worker A's call hangs, then comes back refused; worker B's resolution goes to the supplier for real
    const workerA = workerDeps(h, async () => {
      await gateA.promise;
      return { ok: false, errorCode: 'INVENTORY_HOLD_ERROR', errorMsg: 'inventory hold failed', raw: {} };
    });
    const workerB = workerDeps(h, async (real, input) => {
      await gateB.promise;
      return real(input);
    });

    const claimA = await claim(event.orderId);
    const a = runPurchase(workerA, claimA);
    await waitFor(async () => (await attempts(event.orderId)).length === 1, { description: 'A committed its intent' });
    const claimB = await claim(event.orderId); // A's lease ran out (A stalled): B claims with a new token
    expect(claimB.leaseVersion).toBe(claimA.leaseVersion + 1);
    const b = runPurchase(workerB, claimB);
    await waitFor(async () => (await attempts(event.orderId)).length === 2, { description: 'B committed its RESOLVE intent' });

    gateA.open();
    await a;
    // A's refusal arrived after its lease was lost: not committed (no review, no PurchaseFailed), kept for the operator
    expect((await row(event.orderId))!.state).toBe(States.PURCHASING);
    const late = await h.service.ctx.db('supplier_responses').where({ order_id: event.orderId, method: 'late-purchase-answer' });
    expect(late).toHaveLength(1);
    expect(late[0].outcome).toBe('REJECTED');

    gateB.open();
    await b;
    // B's first payment check found it paid (the fake settles at once): recorded with B's outcome
    const after = await row(event.orderId);
    expect(after!.state).toBe(States.PURCHASED);
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    const history = await deps.repo.history(event.orderId);
    expect(history.transitions.map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASING', 'AWAITING_PAYMENT', 'PURCHASED']);
    // channel and key pinned on both attempts; B resolved A's call with A's key on A's channel
    expect((await attempts(event.orderId)).map((r) => [r.kind, r.channel, r.out_order_id, r.outcome])).toEqual([
      ['CREATE', 'API', outOrderIdFor(event.orderId), 'PENDING'],
      ['RESOLVE', 'API', outOrderIdFor(event.orderId), 'CREATED'],
    ]);
  });

  it('when a follow-up worker\'s lease expired, then its late "not paid yet" commits nothing: the next check stays where the new holder\'s lease put it', async () => {
    const { event } = await newOrder();
    // bought, and the purchase's own first payment check finds it not paid yet
    const notPaidYet = workerDeps(h, undefined, 60_000, async (_real, id) => ({ orderId: id, status: 'PLACE_ORDER_SUCCESS', logisticsStatus: null, amount: null, endReasons: [] }));
    await runPurchase(notPaidYet, await claim(event.orderId));
    expect((await row(event.orderId))).toMatchObject({ state: States.AWAITING_PAYMENT, statusChecks: 1 });
    const gate = deferred();
    let asked = false;
    const workerA = workerDeps(h, undefined, 60_000, async (_real, id) => {
      asked = true;
      await gate.promise;
      return { orderId: id, status: 'PAYMENT_PROCESSING', logisticsStatus: null, amount: null, endReasons: [] };
    });
    const a = runFollowUp(workerA, await claim(event.orderId, [States.AWAITING_PAYMENT]));
    await waitFor(() => asked, { description: 'A asks the supplier' });
    const claimB = await claim(event.orderId, [States.AWAITING_PAYMENT]); // B holds the order for 60 s now
    gate.open();
    await a;
    const after = await h.service.ctx.db('fulfillments').where({ order_id: event.orderId }).first();
    expect(Number(after.lease_version)).toBe(claimB.leaseVersion);
    expect(Number(after.status_checks)).toBe(claimB.statusChecks);
    expect(new Date(after.next_run_at).getTime()).toBeGreaterThan(Date.now() + 30_000);
  });

  it('when a RESOLVE fails with a retriable error, then the outcome stays UNKNOWN; a cancellation then sends the order to review UNRESOLVED_PURCHASE, never CANCELLED, and nothing is re-sent', async () => {
    const { event } = await newOrder();
    // the create's answer is lost
    await runPurchase(workerDeps(h, async () => {
      throw new SupplierCallError('UNKNOWN', 'TIMEOUT', 'no answer within 3000 ms');
    }), await claim(event.orderId));
    // the resolution cannot be made now (quota used up, before any request)
    await runPurchase(workerDeps(h, async () => {
      throw new SupplierCallError('RETRIABLE', 'DAILY_QUOTA_EXHAUSTED', 'the seller\'s daily supplier call quota is used up');
    }), await claim(event.orderId));
    expect((await attempts(event.orderId)).map((r) => [r.kind, r.outcome])).toEqual([['CREATE', 'UNKNOWN'], ['RESOLVE', 'UNKNOWN']]);

    await record(cancelOf(event));
    expect((await row(event.orderId))).toMatchObject({ state: States.PURCHASING, cancelRequested: true });
    const createsBefore = h.ali.callCount('aliexpress.ds.order.create');
    await runPurchase(deps, await claim(event.orderId));
    const review = await orderState(h, event.orderId);
    expect(review).toMatchObject({ state: 'NEEDS_REVIEW', reason: { code: 'UNRESOLVED_PURCHASE', details: expect.objectContaining({ outOrderId: outOrderIdFor(event.orderId), cancelRequested: true }) } });
    // re-sending the create to resolve it could buy a cancelled order: not done
    expect(h.ali.callCount('aliexpress.ds.order.create')).toBe(createsBefore);

    // a second cancellation (re-sent by the marketplace) does not turn it into CANCELLED either
    await record(cancelOf(event));
    expect((await row(event.orderId))!.state).toBe(States.NEEDS_REVIEW);
    expect((await row(event.orderId))!.reasonCode).toBe('UNRESOLVED_PURCHASE');
  });

  it('when an order in review after an unknown outcome is cancelled, then it stays in review (it may exist at the supplier), never CANCELLED', async () => {
    const { event } = await newOrder();
    const always = workerDeps(h, async () => {
      throw new SupplierCallError('UNKNOWN', 'HTTP_502', 'gateway answered HTTP 502');
    });
    always.settings.purchaseMaxAttempts = 2;
    await runPurchase(always, await claim(event.orderId));
    await runPurchase(always, await claim(event.orderId));
    await runPurchase(always, await claim(event.orderId));
    expect((await row(event.orderId))).toMatchObject({ state: States.NEEDS_REVIEW, reasonCode: 'UNRESOLVED_PURCHASE' });
    await record(cancelOf(event));
    expect((await row(event.orderId))).toMatchObject({ state: States.NEEDS_REVIEW, reasonCode: 'UNRESOLVED_PURCHASE', cancelRequested: true });
  });

  it('when a cancellation commits while the purchase worker is committing its outcome, then the cancellation is not lost: review CANCEL_AT_SUPPLIER_REQUIRED with the supplier order', async () => {
    const { event } = await newOrder();
    const gate = deferred();
    const worker = workerDeps(h, async (real, input) => {
      await gate.promise;
      return real(input);
    });
    const purchasing = runPurchase(worker, await claim(event.orderId));
    await waitFor(async () => (await attempts(event.orderId)).length === 1, { description: 'intent committed' });

    // The cancellation's inbox transaction is open when the supplier answers; the worker must wait for it and see it.
    await h.service.ctx.db.transaction(async (trx) => {
      await recordOrderEvent(deps, cancelOf(event), trx);
      const pid = Number((await trx.raw('select pg_backend_pid() as pid')).rows[0].pid);
      gate.open();
      await waitFor(async () => {
        const blocked = await h.service.ctx.db.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [pid]);
        return blocked.rows[0].n > 0;
      }, { description: 'the worker waits for the cancellation\'s row lock', timeoutMs: 10_000 });
    });
    await purchasing;
    const after = await row(event.orderId);
    const [order] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    expect(after).toMatchObject({ state: States.NEEDS_REVIEW, reasonCode: 'CANCEL_AT_SUPPLIER_REQUIRED', supplierOrderId: order!.orderId, cancelRequested: true });
  });

  it('when a worker stalls in the first payment check (the supplier accepted, nothing recorded yet) and another claims the order, then the supplier order is found with the same key, never bought twice, and the stalled answer commits nothing', async () => {
    const { event } = await newOrder();
    const gate = deferred();
    let asked = false;
    // worker A's order.create goes through; its payment check then hangs, as a process dying there would leave it
    const workerA = workerDeps(h, undefined, 60_000, async (real, id) => {
      asked = true;
      await gate.promise;
      return real(id);
    });
    const claimA = await claim(event.orderId);
    const a = runPurchase(workerA, claimA);
    await waitFor(() => asked, { description: 'A checks the payment of the order the supplier accepted' });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    expect((await attempts(event.orderId)).map((r) => [r.kind, r.outcome])).toEqual([['CREATE', 'PENDING']]);

    // A's lease ran out: B resolves A's attempt with A's key (REPEATED_ORDER_ERROR, then the seller's orders page)
    await runPurchase(deps, await claim(event.orderId));
    gate.open();
    await a;
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    const [order] = h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId));
    expect(await row(event.orderId)).toMatchObject({ state: States.PURCHASED, supplierOrderId: order!.orderId });
    expect((await attempts(event.orderId)).map((r) => [r.kind, r.outcome, r.out_order_id])).toEqual([
      ['CREATE', 'PENDING', outOrderIdFor(event.orderId)],
      ['RESOLVE', 'CREATED', outOrderIdFor(event.orderId)],
    ]);
    const history = await deps.repo.history(event.orderId);
    expect(history.transitions.map((t) => t.to_state)).toEqual(['RECEIVED', 'PURCHASING', 'AWAITING_PAYMENT', 'PURCHASED']);
    const late = await h.service.ctx.db('supplier_responses').where({ order_id: event.orderId, method: 'late-purchase-answer' });
    expect(late.map((r) => r.outcome)).toEqual(['CREATED']);
  });
});

describe('fulfillment as two OS-level replicas: a slow web checkout outlasts the lease', () => {
  let h: Harness;
  let second: RunningService;
  beforeAll(async () => {
    h = await startHarness({ JOB_LEASE_MS: '2000', BROWSER_TIMEOUT_MS: '20000' });
    second = await startService(fulfillmentService, h.env);
  });
  afterAll(async () => {
    await second?.stop();
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  it('when the web checkout holds "place order" for 3 lease lengths, then the buying replica renews its lease, the other never claims it, and exactly one supplier order exists', async () => {
    requireSystemProgram('chromium', 'chromium');
    const s = await setUpSeller(h, { channel: 'BROWSER' });
    const event = orderReceived({ sellerId: s.sellerId, listingId: s.listingId, sale: { amountMinor: 2000, currency: 'USD' } });
    // the place-order request is held 6 s BEFORE the order is created: a search by memo meanwhile finds nothing
    h.ali.fail({ match: /^POST \/checkout\/[^/]+\/place$/, mode: { kind: 'latency', ms: 6000 }, times: 1 });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'PURCHASED', 90_000);
    await waitFor(async () => {
      const rows = await h.service.ctx.db('purchase_attempts').where({ order_id: event.orderId });
      return rows.length > 0 && rows.every((r) => r.finished_at !== null);
    }, { description: 'every attempt finished', timeoutMs: 60_000 });
    expect(h.ali.ordersByOutOrderId(outOrderIdFor(event.orderId))).toHaveLength(1);
    const attempts = await h.service.ctx.db('purchase_attempts').where({ order_id: event.orderId }).orderBy('attempt_no');
    expect(attempts.map((r) => [r.kind, r.channel, r.outcome])).toEqual([['CREATE', 'BROWSER', 'CREATED']]);
  });
});
