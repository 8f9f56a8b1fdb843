import { Streams, type SaleEvent } from '@postsale/contracts';
import { startService, type RunningService } from '@postsale/runtime';
import { collectTopic, dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { salesService } from '../../src/service';
import { ADMIN, m, orderReceived, orderRefunded, payoutReturned, payoutSent, purchaseCompleted, redelivered, TestPublisher } from '../support/events';

/**
 * The ledger settles payouts: sales consumes the payouts stream; PayoutSent debits the payable it paid off, a return
 * re-credits it, FX rounding is booked; after a clean run every payable is zero.
 */
describe('sales: payout settlement on real Kafka, registry and Postgres', () => {
  let env: Record<string, string>;
  let service: RunningService;
  let publish: TestPublisher;
  let salesTopic: Awaited<ReturnType<typeof collectTopic<SaleEvent>>>;

  beforeAll(async () => {
    env = testEnv('sales');
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
  const newSeller = async (commissionRateBps: number) => {
    const sellerId = uniqueId('seller-');
    expect((await api(`/admin/sellers/${sellerId}/commercial-terms`, { method: 'PUT', body: JSON.stringify({ commissionRateBps, marketplaceFees: {} }) })).status).toBe(200);
    return sellerId;
  };
  const recordedSale = async (sellerId: string, sale: number, currency: string, cost: number, fee: number) => {
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(sale, currency), marketplaceFee: m(fee, currency), paymentFee: m(0, currency) }));
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(cost, currency) }));
    const recorded = await waitFor(() => salesTopic.messages.map((x) => x.event).find((e) => e.orderId === orderId && e.type === 'SaleRecorded'), { description: 'SaleRecorded' });
    if (recorded.type !== 'SaleRecorded') throw new Error('unexpected');
    return { orderId, commission: recorded.payload.platformCommission, net: recorded.payload.sellerNetProfit };
  };
  const openFor = async (sellerId: string) => ((await json('/admin/ledger/payables')).open as Array<{ account: string; sellerId: string; balance: { amountMinor: number; currency: string } }>).filter((o) => o.sellerId === sellerId);
  const entriesOf = async (orderId: string) => (await json(`/admin/orders/${orderId}`)).journal as Array<{ entryKey: string; kind: string; postings: Array<{ account: string; amount: { amountMinor: number; currency: string } }> }>;
  const waitEntries = (orderId: string, n: number) => waitFor(async () => ((await entriesOf(orderId)).length >= n ? entriesOf(orderId) : undefined), { description: `${n} entries for ${orderId}` });

  it('when both payouts of a sale are sent, then its payables are zero and "what did we pay the seller" is one query; replays change nothing', async () => {
    const sellerId = await newSeller(1500);
    const { orderId, commission, net } = await recordedSale(sellerId, 10000, 'USD', 5000, 1300);
    expect((await openFor(sellerId)).map((o) => [o.account, o.balance.amountMinor])).toEqual([['platform_commission', -commission.amountMinor], ['seller_payable', -net.amountMinor]]);

    const toSeller = payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-s`, recipient: 'SELLER', paid: net });
    const toPlatform = payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-p`, recipient: 'PLATFORM', paid: commission });
    await publish.payouts(toSeller, toPlatform, toSeller, redelivered(toSeller));
    await waitEntries(orderId, 3);
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'payables settled' });
    const paid = await json(`/admin/sellers/${sellerId}/payouts`);
    expect(paid.paid).toEqual([expect.objectContaining({ amountMinor: net.amountMinor, currency: 'USD' })]);
    expect((await json('/admin/ledger/trial-balance')).balanced).toBe(true);
    // a marker event after the replays proves they were consumed: still three entries
    const marker = await recordedSale(sellerId, 2000, 'USD', 1000, 100);
    await waitEntries(marker.orderId, 1);
    expect((await entriesOf(orderId)).map((e) => e.kind)).toEqual(['SALE', 'PAYOUT', 'PAYOUT']);
  });

  it('when a payout is returned and paid again, then the payable is re-credited by the return and settled by the second payout', async () => {
    const sellerId = await newSeller(1000);
    const { orderId, commission, net } = await recordedSale(sellerId, 8000, 'USD', 4000, 800);
    const payoutId = `p-${orderId}-s`;
    await publish.payouts(payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-p`, recipient: 'PLATFORM', paid: commission }), payoutSent({ orderId, sellerId, payoutId, recipient: 'SELLER', paid: net }));
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'settled' });
    await publish.payouts(payoutReturned({ orderId, sellerId, payoutId, recipient: 'SELLER', amount: net }));
    const reopened = await waitFor(async () => { const o = await openFor(sellerId); return o.length === 1 ? o : undefined; }, { description: 'payable re-credited' });
    expect(reopened.map((o) => [o.account, o.balance.amountMinor])).toEqual([['seller_payable', -net.amountMinor]]);
    await publish.payouts(payoutSent({ orderId, sellerId, payoutId, recipient: 'SELLER', paid: net, attempt: 2 }));
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'settled again' });
    expect((await entriesOf(orderId)).map((e) => e.kind)).toEqual(['SALE', 'PAYOUT', 'PAYOUT', 'PAYOUT_RETURN', 'PAYOUT']);
    expect((await json(`/admin/sellers/${sellerId}/payouts`)).paid).toEqual([expect.objectContaining({ amountMinor: net.amountMinor, currency: 'USD' })]);
  });

  it('when a CLP debt is paid in USD rounded down, then the payable is exactly zero and the rounding is booked in fx_rounding', async () => {
    const sellerId = await newSeller(1000);
    const { orderId, commission, net } = await recordedSale(sellerId, 19990, 'CLP', 7125, 2599);
    // payouts converts at 0.00105 USD per CLP, rounding down: floor(net × 0.105) cents
    const paidNet = Math.floor((net.amountMinor * 105) / 1000);
    const paidCommission = Math.floor((commission.amountMinor * 105) / 1000);
    await publish.payouts(
      payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-s`, recipient: 'SELLER', paid: m(paidNet, 'USD'), owed: net, fxRate: '0.00105', fxRateDate: '2026-11-26' }),
      payoutSent({ orderId, sellerId, payoutId: `p-${orderId}-p`, recipient: 'PLATFORM', paid: m(paidCommission, 'USD'), owed: commission, fxRate: '0.00105', fxRateDate: '2026-11-26' }),
    );
    const entries = await waitEntries(orderId, 3);
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'CLP payables settled' });
    const sellerEntry = entries.find((e) => e.kind === 'PAYOUT' && e.postings.some((p) => p.account === 'seller_payable'))!;
    const byKey = (account: string, currency: string) => sellerEntry.postings.filter((p) => p.account === account && p.amount.currency === currency).reduce((t, p) => t + p.amount.amountMinor, 0);
    const back = Math.min(Math.round((paidNet * 1000) / 105), net.amountMinor);
    expect(byKey('seller_payable', 'CLP')).toBe(net.amountMinor);
    expect(byKey('fx_conversion', 'CLP')).toBe(-back);
    expect(byKey('fx_rounding', 'CLP')).toBe(-(net.amountMinor - back));
    expect(byKey('fx_conversion', 'USD')).toBe(paidNet);
    expect(byKey('payouts_sent', 'USD')).toBe(-paidNet);
    expect((await json('/admin/ledger/trial-balance')).balanced).toBe(true);
  });

  it('when a sale is refunded after its payout and the clawback is netted from the next payout, then every payable of the seller ends at zero', async () => {
    const sellerId = await newSeller(2000);
    const first = await recordedSale(sellerId, 10000, 'USD', 4000, 1000);
    await publish.payouts(
      payoutSent({ orderId: first.orderId, sellerId, payoutId: `p-${first.orderId}-s`, recipient: 'SELLER', paid: first.net }),
      payoutSent({ orderId: first.orderId, sellerId, payoutId: `p-${first.orderId}-p`, recipient: 'PLATFORM', paid: first.commission }),
    );
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'first settled' });
    await publish.orders(orderRefunded({ orderId: first.orderId, sellerId, refundId: 'r1', amount: m(10000, 'USD'), full: true }));
    const reversed = await waitFor(() => salesTopic.messages.map((x) => x.event).find((e) => e.orderId === first.orderId && e.type === 'SaleReversed'), { description: 'reversed' });
    if (reversed.type !== 'SaleReversed') throw new Error('unexpected');
    // the seller and the platform now owe what was clawed back (debit balances)
    await waitFor(async () => (await openFor(sellerId)).length === 2, { description: 'clawback owed' });
    const second = await recordedSale(sellerId, 20000, 'USD', 8000, 2000);
    // payouts nets the clawbacks against the next payouts of each party
    await publish.payouts(
      payoutSent({ orderId: second.orderId, sellerId, payoutId: `p-${second.orderId}-s`, recipient: 'SELLER', paid: m(second.net.amountMinor - reversed.payload.sellerNetReversed.amountMinor, 'USD') }),
      payoutSent({ orderId: second.orderId, sellerId, payoutId: `p-${second.orderId}-p`, recipient: 'PLATFORM', paid: m(second.commission.amountMinor - reversed.payload.commissionReversed.amountMinor, 'USD') }),
    );
    await waitFor(async () => (await openFor(sellerId)).length === 0, { description: 'all payables of the seller at zero' });
    expect((await json('/admin/ledger/trial-balance')).balanced).toBe(true);
  });
});
