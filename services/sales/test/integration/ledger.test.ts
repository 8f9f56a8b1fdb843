import { Streams, type SaleEvent } from '@postsale/contracts';
import { startService, type RunningService } from '@postsale/runtime';
import { collectTopic, dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { salesService } from '../../src/service';
import { ADMIN, m, orderCancelled, orderReceived, orderRefunded, purchaseCompleted, redelivered, TestPublisher } from '../support/events';

describe('sales ledger on real Kafka, registry and Postgres', () => {
  let env: Record<string, string>;
  let service: RunningService;
  let publish: TestPublisher;
  let salesTopic: Awaited<ReturnType<typeof collectTopic<SaleEvent>>>;

  beforeAll(async () => {
    env = testEnv('sales', { SALE_DEADLINE_SECONDS: '1' });
    service = await startService(salesService, env);
    publish = await TestPublisher.connect(service);
    salesTopic = await collectTopic<SaleEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.sales));
  });
  afterAll(async () => {
    await salesTopic.stop();
    await publish.stop();
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  const api = (path: string, init: RequestInit = {}) => fetch(`${service.url}${path}`, { ...init, headers: { ...ADMIN, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const json = async (path: string) => (await api(path)).json();
  const putTerms = async (sellerId: string, body: unknown) => {
    const res = await api(`/admin/sellers/${sellerId}/commercial-terms`, { method: 'PUT', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return res.json();
  };
  const stateOf = async (orderId: string) => {
    const res = await api(`/admin/orders/${orderId}`);
    return res.status === 200 ? ((await res.json()).state as string) : undefined;
  };
  const waitState = (orderId: string, state: string) =>
    waitFor(async () => (await stateOf(orderId)) === state, { description: `${orderId} in ${state}` });
  const eventsFor = (orderId: string) => salesTopic.messages.filter((msg) => msg.event.orderId === orderId).map((msg) => msg.event);
  const newSeller = async (commissionRateBps: number, marketplaceFees: unknown = {}) => {
    const sellerId = uniqueId('seller-');
    await putTerms(sellerId, { commissionRateBps, marketplaceFees });
    return sellerId;
  };

  it('when an order and its purchase arrive (USD), then the sale is recorded with the exact breakdown and SaleRecorded says so', async () => {
    const sellerId = await newSeller(1500);
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(10000, 'USD'), marketplaceFee: m(1325, 'USD'), paymentFee: m(379, 'USD') }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(5210, 'USD') }));
    await waitState(orderId, 'RECORDED');

    const sale = await json(`/admin/sales/${orderId}`);
    expect(sale.breakdown).toMatchObject({
      saleAmount: { amountMinor: 10000, currency: 'USD', decimal: '100.00' }, marketplaceFee: { amountMinor: 1325 }, paymentFee: { amountMinor: 379 },
      supplierCost: { amountMinor: 5210 }, grossProfit: { amountMinor: 3086 }, commissionRateBps: 1500,
      platformCommission: { amountMinor: 462 }, sellerNetProfit: { amountMinor: 2624 }, loss: { amountMinor: 0 }, isLoss: false,
    });
    expect(sale.marketplaceFeeSource).toBe('MARKETPLACE');
    expect(sale.journal).toHaveLength(1);
    const postings = sale.journal[0].postings as Array<{ account: string; amount: { amountMinor: number } }>;
    expect(postings.reduce((t, p) => t + p.amount.amountMinor, 0)).toBe(0);
    expect(Object.fromEntries(postings.map((p) => [p.account, p.amount.amountMinor]))).toEqual({
      marketplace_receivable: 10000, marketplace_fees: -1325, payment_fees: -379, supplier_payable: -5210, platform_commission: -462, seller_payable: -2624,
    });

    const recorded = await waitFor(() => eventsFor(orderId).find((e) => e.type === 'SaleRecorded'), { description: 'SaleRecorded on the topic' });
    expect(recorded.type === 'SaleRecorded' && recorded.payload).toMatchObject({
      saleAmount: m(10000, 'USD'), platformCommission: m(462, 'USD'), sellerNetProfit: m(2624, 'USD'), supplierCostCharged: m(5210, 'USD'), fx: null, isLoss: false,
    });

    expect((await fetch(`${service.url}/admin/sales/${orderId}`)).status).toBe(401);
    expect((await fetch(`${service.url}/admin/orders/${orderId}`)).status).toBe(401);
  });

  it('when a CLP sale was bought in USD, then it waits for a dated rate (integrity violation) and records with the rate it used once set', async () => {
    const sellerId = await newSeller(1500, { MERCADOLIBRE: { percentBps: 1300, fixed: { CLP: '700' } } });
    const orderId = uniqueId('o-');
    const purchasedAt = Date.parse('2025-03-10T15:00:00Z');
    await publish.orders(orderReceived({ orderId, sellerId, marketplace: 'MERCADOLIBRE', sale: m(25990, 'CLP') }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(1234, 'USD'), purchasedAt }));
    await waitState(orderId, 'AWAITING_FX_RATE');
    const violation = await waitFor(async () => (await json('/admin/integrity')).violations.find((v: { orderId: string }) => v.orderId === orderId),
      { description: 'integrity violation for the held sale' });
    expect(violation).toMatchObject({ sellerId, state: 'AWAITING_FX_RATE', deadlineSeconds: 1, reason: expect.stringContaining('NO_FX_RATE') });
    expect((await api(`/admin/sales/${orderId}`)).status).toBe(404);

    // A rate dated after the purchase is not used; the one for the day before is.
    expect((await api('/admin/fx-rates/USD/CLP/2025-03-11', { method: 'PUT', body: JSON.stringify({ rate: '999.99' }) })).status).toBe(200);
    expect(await stateOf(orderId)).toBe('AWAITING_FX_RATE');
    const put = await api('/admin/fx-rates/USD/CLP/2025-03-09', { method: 'PUT', body: JSON.stringify({ rate: '947.35', source: 'central-bank' }) });
    expect(put.status).toBe(200);
    expect(await stateOf(orderId)).toBe('RECORDED');

    const sale = await json(`/admin/sales/${orderId}`);
    // fee = round(25990 x 13%) + 700 = 3379 + 700; cost = 12.34 x 947.35 = 11690.299 -> 11690; commission floor(10221 x 15%) = 1533
    expect(sale.breakdown).toMatchObject({
      saleAmount: { amountMinor: 25990, currency: 'CLP' }, marketplaceFee: { amountMinor: 4079 }, paymentFee: { amountMinor: 0 },
      supplierCost: { amountMinor: 11690, currency: 'CLP' }, supplierCostCharged: { amountMinor: 1234, currency: 'USD' }, grossProfit: { amountMinor: 10221 },
      platformCommission: { amountMinor: 1533 }, sellerNetProfit: { amountMinor: 8688 },
    });
    expect(sale.fx).toEqual({ fromCurrency: 'USD', toCurrency: 'CLP', rate: '947.35', rateDate: '2025-03-09', source: 'central-bank' });
    expect(sale.marketplaceFeeSource).toBe('SCHEDULE');
    const postings = sale.journal[0].postings as Array<{ account: string; amount: { amountMinor: number; currency: string } }>;
    for (const currency of ['CLP', 'USD']) {
      expect(postings.filter((p) => p.amount.currency === currency).reduce((t, p) => t + p.amount.amountMinor, 0)).toBe(0);
    }
    expect(postings).toContainEqual({ account: 'supplier_payable', amount: { amountMinor: -1234, currency: 'USD' } });
    const recorded = await waitFor(() => eventsFor(orderId).find((e) => e.type === 'SaleRecorded'), { description: 'SaleRecorded' });
    expect(recorded.type === 'SaleRecorded' && recorded.payload.fx?.rate).toBe('947.35');
    expect((await json('/admin/integrity')).violations.map((v: { orderId: string }) => v.orderId)).not.toContain(orderId);
  });

  it('when the purchase arrives before the order, then the sale is still recorded once', async () => {
    const sellerId = await newSeller(1000);
    const orderId = uniqueId('o-');
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(3000, 'USD') }));
    await waitState(orderId, 'AWAITING_ORDER');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(5000, 'USD'), marketplaceFee: m(500, 'USD'), paymentFee: m(150, 'USD') }));
    await waitState(orderId, 'RECORDED');
    const sale = await json(`/admin/sales/${orderId}`);
    expect(sale.breakdown.platformCommission.amountMinor).toBe(135); // floor(1350 x 10%)
    expect(sale.breakdown.sellerNetProfit.amountMinor).toBe(1215);
  });

  it('when the same events arrive twice (same ids and re-sent with new ids), then there is one sale, one entry and one SaleRecorded', async () => {
    const sellerId = await newSeller(1000);
    const orderId = uniqueId('o-');
    const order = orderReceived({ orderId, sellerId, sale: m(8000, 'USD'), marketplaceFee: m(800, 'USD') });
    const purchase = purchaseCompleted({ orderId, sellerId, cost: m(4000, 'USD') });
    await publish.orders(order, order, redelivered(order));
    await publish.fulfillment(purchase, redelivered(purchase), purchase);
    await waitState(orderId, 'RECORDED');
    const marker = uniqueId('o-'); // a later order on the same topics: once it is recorded, every duplicate above was consumed
    await publish.orders(orderReceived({ orderId: marker, sellerId, sale: m(100, 'USD'), marketplaceFee: m(0, 'USD') }));
    await publish.fulfillment(purchaseCompleted({ orderId: marker, sellerId, cost: m(10, 'USD') }));
    await waitState(marker, 'RECORDED');
    await waitFor(() => eventsFor(marker).length === 1, { description: 'marker event' });
    const view = await json(`/admin/orders/${orderId}`);
    expect(view.journal).toHaveLength(1);
    expect(eventsFor(orderId).filter((e) => e.type === 'SaleRecorded')).toHaveLength(1);
    expect(await service.ctx.db('sales').where({ order_id: orderId })).toHaveLength(1);
  });

  it('when a sale is partly refunded twice and then fully refunded, then reversals claw back commission exactly and the trial balance stays zero', async () => {
    const sellerId = await newSeller(2000);
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(10000, 'USD'), marketplaceFee: m(1000, 'USD'), paymentFee: m(300, 'USD') }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(4000, 'USD') }));
    await waitState(orderId, 'RECORDED'); // gross 4700, commission 940, net 3760

    const first = orderRefunded({ orderId, sellerId, refundId: 'r1', amount: m(2500, 'USD') });
    await publish.orders(first, redelivered(first), orderRefunded({ orderId, sellerId, refundId: 'r2', amount: m(1000, 'USD') }));
    await waitFor(() => eventsFor(orderId).filter((e) => e.type === 'SaleReversed').length === 2, { description: 'two partial reversals' });
    expect(await stateOf(orderId)).toBe('PARTIALLY_REFUNDED');
    expect((await json('/admin/ledger/trial-balance')).balanced).toBe(true);

    await publish.orders(orderRefunded({ orderId, sellerId, refundId: 'r3', amount: m(6500, 'USD'), full: true }));
    await waitState(orderId, 'REFUNDED');
    // the state commits with its event in the outbox; the event reaches this test's consumer a moment later
    await waitFor(() => eventsFor(orderId).filter((e) => e.type === 'SaleReversed').length === 3, { description: 'the full refund\'s reversal published' });
    const reversals = eventsFor(orderId).flatMap((e) => (e.type === 'SaleReversed' ? [e.payload] : []));
    expect(reversals.map((r) => [r.kind, r.refundedAmount.amountMinor, r.commissionReversed.amountMinor, r.sellerNetReversed.amountMinor])).toEqual([
      ['PARTIAL_REFUND', 2500, 500, 2000],
      ['PARTIAL_REFUND', 1000, 200, 800],
      ['FULL_REFUND', 6500, 240, 960],
    ]);
    expect(reversals.reduce((t, r) => t + r.commissionReversed.amountMinor, 0)).toBe(940);

    const view = await json(`/admin/orders/${orderId}`);
    expect(view.journal.map((e: { kind: string }) => e.kind)).toEqual(['SALE', 'REVERSAL', 'REVERSAL', 'REVERSAL']);
    const byAccount: Record<string, number> = {};
    for (const e of view.journal) for (const p of e.postings) byAccount[p.account] = (byAccount[p.account] ?? 0) + p.amount.amountMinor;
    // Nothing left to collect or to pay the platform or the seller; the seller bore fees and cost as loss.
    expect(byAccount).toMatchObject({ marketplace_receivable: 0, platform_commission: 0, seller_payable: 0, seller_loss: 5300 });

    const tb = await json('/admin/ledger/trial-balance');
    expect(tb.balanced).toBe(true);
    for (const c of tb.currencies) expect(c.totalMinor).toBe(0);

    const statement = await json(`/admin/sellers/${sellerId}/statement?from=2000-01-01&to=2999-01-01`);
    expect(statement.lines.map((l: { kind: string }) => l.kind)).toEqual(['SALE', 'PARTIAL_REFUND', 'PARTIAL_REFUND', 'FULL_REFUND']);
    expect(statement.totals).toEqual([expect.objectContaining({ currency: 'USD', saleAmount: m(0, 'USD'), platformCommission: m(0, 'USD'), sellerNetProfit: m(0, 'USD'), loss: m(5300, 'USD') })]);
    const csv = await api(`/admin/sellers/${sellerId}/statement`, { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toBe('postedAt,kind,orderId,saleId,reference,currency,saleAmount,marketplaceFee,paymentFee,supplierCost,platformCommission,sellerNetProfit,loss');
    expect(rows[1]).toContain(`,SALE,${orderId},sale-${orderId},,USD,100.00,10.00,3.00,40.00,9.40,37.60,0.00`);
    expect(rows[2]).toContain(',PARTIAL_REFUND,');
    expect(rows[2]).toContain(',r1,USD,-25.00,0.00,0.00,0.00,-5.00,-20.00,0.00');
    expect(rows).toHaveLength(5);
    const empty = await json(`/admin/sellers/${sellerId}/statement?from=2000-01-01&to=2000-02-01`);
    expect(empty.lines).toHaveLength(0);
  });

  it('when gross profit is negative, then the sale is a flagged loss: no commission, nothing to pay, and the loss metric counts it', async () => {
    const sellerId = await newSeller(1500);
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(5000, 'USD'), marketplaceFee: m(800, 'USD'), paymentFee: m(200, 'USD') }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(4500, 'USD') }));
    await waitState(orderId, 'LOSS');
    const sale = await json(`/admin/sales/${orderId}`);
    expect(sale.breakdown).toMatchObject({ grossProfit: { amountMinor: -500 }, platformCommission: { amountMinor: 0 }, sellerNetProfit: { amountMinor: 0 }, loss: { amountMinor: 500 }, isLoss: true });
    const accounts = sale.journal[0].postings.map((p: { account: string }) => p.account);
    expect(accounts).not.toContain('platform_commission');
    expect(accounts).not.toContain('seller_payable');
    expect(accounts).toContain('seller_loss');
    const recorded = await waitFor(() => eventsFor(orderId).find((e) => e.type === 'SaleRecorded'), { description: 'SaleRecorded' });
    expect(recorded.type === 'SaleRecorded' && recorded.payload).toMatchObject({ isLoss: true, platformCommission: m(0, 'USD'), sellerNetProfit: m(0, 'USD'), loss: m(500, 'USD') });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/sales_loss_orders_total\{[^}]*currency="USD"[^}]*\} [1-9]/);
  });

  it('when an order is cancelled before any purchase, then no sale exists and nothing is owed', async () => {
    const sellerId = await newSeller(1500);
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(4000, 'USD'), marketplaceFee: m(400, 'USD') }), orderCancelled({ orderId, sellerId }));
    await waitState(orderId, 'CANCELLED');
    expect((await api(`/admin/sales/${orderId}`)).status).toBe(404);
    const view = await json(`/admin/orders/${orderId}`);
    expect(view.journal).toHaveLength(0);
    expect(view.stateReason).toContain('nothing to pay');
    expect(eventsFor(orderId)).toHaveLength(0);
    expect((await json('/admin/integrity')).violations.map((v: { orderId: string }) => v.orderId)).not.toContain(orderId);
  });

  it('when a refund arrives before the purchase, then it is remembered and applied right after the sale is recorded', async () => {
    const sellerId = await newSeller(1000);
    const orderId = uniqueId('o-');
    await publish.orders(
      orderReceived({ orderId, sellerId, sale: m(6000, 'USD'), marketplaceFee: m(600, 'USD') }),
      orderRefunded({ orderId, sellerId, refundId: 'early', amount: m(1000, 'USD') }),
    );
    await waitFor(async () => (await json(`/admin/orders/${orderId}`)).adjustments.length === 1, { description: 'refund remembered' });
    expect(await stateOf(orderId)).toBe('AWAITING_PURCHASE');
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(2400, 'USD') }));
    await waitState(orderId, 'PARTIALLY_REFUNDED');
    await waitFor(() => eventsFor(orderId).length === 2, { description: 'SaleRecorded then SaleReversed' });
    expect(eventsFor(orderId).map((e) => e.type)).toEqual(['SaleRecorded', 'SaleReversed']);
    const reversed = eventsFor(orderId)[1]!;
    // gross 3000 -> 2000 after the refund: commission 300 -> 200
    expect(reversed.type === 'SaleReversed' && reversed.payload).toMatchObject({ kind: 'PARTIAL_REFUND', refundedAmount: m(1000, 'USD'), commissionReversed: m(100, 'USD'), sellerNetReversed: m(900, 'USD') });
  });

  it('when a seller has no commercial terms, then the sale is held (never a silent zero commission) and released when terms are set', async () => {
    const sellerId = uniqueId('seller-');
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(20000, 'USD'), marketplaceFee: m(2000, 'USD') }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(10000, 'USD') }));
    await waitState(orderId, 'PENDING_TERMS');
    await waitFor(async () => (await json('/admin/integrity')).violations.some((v: { orderId: string; state: string }) => v.orderId === orderId && v.state === 'PENDING_TERMS'),
      { description: 'integrity lists the held sale' });

    // Bad input: 4xx with a code, nothing written.
    for (const body of [{ commissionRateBps: -1 }, { commissionRateBps: 10001 }, { commissionRateBps: 1.5 }, { commissionRateBps: 100, marketplaceFees: { AMAZON: { percentBps: 1 } } },
      { commissionRateBps: 100, marketplaceFees: { EBAY: { percentBps: 100, fixed: { USD: '0.305' } } } }]) {
      const res = await api(`/admin/sellers/${sellerId}/commercial-terms`, { method: 'PUT', body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('INVALID_TERMS');
    }
    expect((await api(`/admin/sellers/${sellerId}/commercial-terms`)).status).toBe(404);
    expect((await fetch(`${service.url}/admin/sellers/${sellerId}/commercial-terms`, { method: 'PUT', body: '{}' })).status).toBe(401);
    expect(await stateOf(orderId)).toBe('PENDING_TERMS');

    const put = await putTerms(sellerId, { commissionRateBps: 1200 });
    expect(put.releasedOrders).toEqual([orderId]);
    expect(await stateOf(orderId)).toBe('RECORDED');
    expect((await json(`/admin/sales/${orderId}`)).breakdown.platformCommission.amountMinor).toBe(960);
  });

  it('refuses malformed admin input with a 4xx code and never a 5xx', async () => {
    const bad = [
      ['/admin/fx-rates/USD/USD/2025-01-01', { rate: '1' }], ['/admin/fx-rates/USD/XXX/2025-01-01', { rate: '1' }],
      ['/admin/fx-rates/USD/CLP/2025-02-30', { rate: '1' }], ['/admin/fx-rates/USD/CLP/2025-01-01', { rate: '1e3' }],
      ['/admin/fx-rates/USD/CLP/2025-01-01', { rate: 950 }], ['/admin/fx-rates/USD/CLP/2025-01-01', { rate: '0' }],
    ] as const;
    for (const [path, body] of bad) {
      const res = await api(path, { method: 'PUT', body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('INVALID_FX_RATE');
    }
    expect(await service.ctx.db('fx_rates').where({ rate_date: '2025-01-01' })).toHaveLength(0);
    expect((await api('/admin/sellers/s/statement?from=garbage')).status).toBe(400);
    expect((await api('/admin/sellers/s/statement?from=2025-02-01&to=2025-01-01')).status).toBe(400);
    expect((await api('/admin/orders/nope')).status).toBe(404);
    expect((await fetch(`${service.url}/admin/integrity`)).status).toBe(401);
    expect((await fetch(`${service.url}/admin/ledger/trial-balance`)).status).toBe(401);
    const integrity = await json('/admin/integrity');
    expect(integrity).toMatchObject({ service: 'sales', stage: 'sale', generatedAt: expect.any(String), violations: expect.any(Array) });
  });
});
