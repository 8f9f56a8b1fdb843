import { sendDemoOrder, type DemoMarketplace } from '@postsale/cli';
import { DEMO } from '@postsale/sandbox';
import { waitFor } from '@postsale/runtime/testing';
import { orderIdOf, paidOut, startE2E, type E2E } from '../src';

jest.setTimeout(300_000);

interface Money { amountMinor: number; currency: string }

/**
 * Money back, per marketplace, through the whole product (four services as OS processes, real infrastructure): an
 * order is paid out, then refunded or cancelled AT THE FAKE the way each marketplace really does it (eBay: found by
 * re-reading the order; MercadoLibre: the order stays `paid`, the refund is in its payments; PayPal: the refund
 * webhook). The ledger reverses it, payouts claws the seller's share back, both agree to the minor unit, and before the
 * refunds every payable in the ledger was zero.
 */
describe('refunds and cancellations from every marketplace reach the ledger and claw back the payout', () => {
  let e2e: E2E;
  const orders: Partial<Record<DemoMarketplace, { orderId: string; externalOrderId: string }>> = {};
  beforeAll(async () => {
    e2e = await startE2E({ extraEnv: { ingest: { EBAY_RECHECK_MIN_MS: '300', EBAY_RECHECK_MAX_MS: '1000', EBAY_RECHECK_POLL_INTERVAL_MS: '200' } } });
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  const sellerBalance = async () => (await e2e.admin.payouts.get(`/admin/sellers/${DEMO.sellerId}/balance`)).data as { balances: Array<{ currency: string; clawbackOwedMinor: number }> };
  const openPayables = async () => (await e2e.admin.sales.get('/admin/ledger/payables')).data as { settled: boolean; open: Array<{ account: string; sellerId: string; balance: Money }> };

  it('when one order from each marketplace is paid out, then every payable in the ledger is zero', async () => {
    for (const marketplace of ['ebay', 'mercadolibre', 'paypal'] as const) {
      const sent = await sendDemoOrder(e2e.pipeline.world, e2e.pipeline.urls.ingest, marketplace);
      orders[marketplace] = { orderId: orderIdOf(marketplace, sent.externalOrderId), externalOrderId: sent.externalOrderId };
    }
    for (const o of Object.values(orders)) {
      await waitFor(() => paidOut(e2e.admin.payouts, o.orderId), { timeoutMs: 120_000, intervalMs: 300, description: `${o.orderId} paid out` });
    }
    const payables = await waitFor(async () => {
      const p = await openPayables();
      return p.settled ? p : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'every payable settled by the PayoutSent events' });
    expect(payables.open).toEqual([]);
    expect((await e2e.admin.sales.get(`/admin/sellers/${DEMO.sellerId}/payouts`)).data.paid.length).toBeGreaterThan(0);
  });

  it('when each order is refunded or cancelled at its marketplace, then the ledger reverses it and the seller owes back exactly the net profit reversed', async () => {
    const { world } = e2e.pipeline;
    // eBay: cancelled after confirmation (no notification: ingest finds it by re-reading the order)
    world.ebay.cancelOrder(orders.ebay!.externalOrderId);
    // MercadoLibre: half the money returned while the order stays `paid`; MercadoLibre notifies the change
    const ml = world.mercadolibre.order(Number(orders.mercadolibre!.externalOrderId))!;
    world.mercadolibre.refundPayment(ml.id, Math.floor(ml.total_amount / 2));
    expect((await world.mercadolibre.deliver(`${e2e.pipeline.urls.ingest}/webhooks/mercadolibre`, { orderId: ml.id, userId: DEMO.mercadolibre.userId })).status).toBe(200);
    // PayPal storefront: a partial refund of the capture, by webhook
    const capture = world.paypal.captures().find((c) => c.orderId === orders.paypal!.externalOrderId)!;
    const refund = world.paypal.signedWebhook(world.paypal.captureRefundedEvent({ captureId: capture.captureId, amount: '10.00' }), { webhookId: DEMO.paypal.webhookId });
    expect((await world.paypal.deliverWebhook(`${e2e.pipeline.urls.ingest}/webhooks/paypal`, refund)).status).toBe(200);

    const expected = new Map<string, number>();
    for (const [marketplace, o] of Object.entries(orders)) {
      const reversedState = marketplace === 'ebay' ? 'CANCELLED' : 'PARTIALLY_REFUNDED';
      // The order view reads the state and the journal one after the other, not as one snapshot: a read between the
      // two can see the reversal's entry with the state before it. Wait for both (they commit together).
      const reversed = await waitFor(async () => {
        const view = (await e2e.admin.sales.get(`/admin/orders/${o!.orderId}`)).data as { state: string; journal: Array<{ kind: string; postings: Array<{ account: string; amount: Money }> }> };
        const entries = view.journal.filter((e) => e.kind === 'REVERSAL');
        return entries.length > 0 && view.state === reversedState ? { view, entries } : undefined;
      }, { timeoutMs: 120_000, intervalMs: 300, description: `${marketplace} order reversed in the ledger (state ${reversedState})` });
      expect(reversed.view.state).toBe(reversedState);
      for (const e of reversed.entries) {
        for (const p of e.postings.filter((x) => x.account === 'seller_payable')) expected.set(p.amount.currency, (expected.get(p.amount.currency) ?? 0) + p.amount.amountMinor);
      }
    }
    // The ledger: the seller's payable is now a debt (debit) of exactly the net profit reversed, per currency.
    const ledgerDebt = await waitFor(async () => {
      const open = (await openPayables()).open.filter((o) => o.account === 'seller_payable' && o.sellerId === DEMO.sellerId);
      const m = new Map(open.map((o) => [o.balance.currency, o.balance.amountMinor]));
      return [...expected].every(([c, v]) => m.get(c) === v) ? m : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'seller payable shows the clawback' });
    // Payouts: the seller owes back the same amounts, to the minor unit.
    const balance = await waitFor(async () => {
      const b = await sellerBalance();
      return [...expected].every(([c, v]) => b.balances.find((x) => x.currency === c)?.clawbackOwedMinor === v) ? b : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'payouts clawback equals the ledger' });
    for (const [currency, minor] of ledgerDebt) expect(balance.balances.find((x) => x.currency === currency)?.clawbackOwedMinor).toBe(minor);
    expect([...expected.keys()].sort()).toEqual(['CLP', 'USD']);
  });
});
