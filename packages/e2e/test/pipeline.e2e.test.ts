import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findOrderIds, sendDemoOrder, type DemoMarketplace, integrityReport, streamIntegrity, freePort, REPO_ROOT } from '@postsale/cli';
import { formatDecimal, minorDigits } from '@postsale/contracts';
import { DEMO } from '@postsale/sandbox';
import { waitFor } from '@postsale/runtime/testing';
import { orderIdOf, paidOut, startE2E, startPrometheus, type E2E } from '../src';

jest.setTimeout(300_000);

describe('the pipeline as one product: the four services as separate OS processes on real Kafka, registry and Postgres', () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E();
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it.each<DemoMarketplace>(['ebay', 'mercadolibre', 'paypal'])(
    'an order from %s ends paid out, with the ledger and PayPal agreeing to the minor unit',
    async (marketplace) => {
      const { pipeline, admin } = e2e;
      const sent = await sendDemoOrder(pipeline.world, pipeline.urls.ingest, marketplace);
      expect(sent.statuses.every((s) => s >= 200 && s < 300)).toBe(true);
      const orderId = orderIdOf(marketplace, sent.externalOrderId);

      const intents = await waitFor(() => paidOut(admin.payouts, orderId), { timeoutMs: 120_000, intervalMs: 300, description: `${orderId} paid out` });

      // The ledger's breakdown adds up exactly to what the buyer paid.
      const sale = (await admin.sales.get(`/admin/sales/${orderId}`)).data;
      const b = sale.breakdown;
      const parts = b.marketplaceFee.amountMinor + b.paymentFee.amountMinor + b.supplierCost.amountMinor
        + b.platformCommission.amountMinor + b.sellerNetProfit.amountMinor - b.loss.amountMinor;
      expect(parts).toBe(b.saleAmount.amountMinor);
      expect(b.isLoss).toBe(false);
      expect(b.platformCommission.amountMinor).toBeGreaterThan(0);
      expect(b.sellerNetProfit.amountMinor).toBeGreaterThan(0);
      // The supplier really charged what the ledger records (in its own currency).
      const supplierOrder = pipeline.world.aliexpress.ordersByOutOrderId(
        (await admin.fulfillment.get(`/admin/orders/${orderId}`)).data.outOrderId,
      );
      expect(supplierOrder).toHaveLength(1);

      // PayPal paid exactly the ledger's commission to the platform and net profit to the seller, once each: in the sale
      // currency when PayPal pays it, else converted at the recorded dated rate and rounded down (CLP → USD).
      const ourItems = new Map(intents.flatMap((i) => i.items.filter((x) => x.status === 'SUCCESS').map((x) => [x.senderItemId, { intent: i, item: x }])));
      expect(ourItems.size).toBe(2);
      const atPayPal = pipeline.world.paypal.paidItems().filter((i) => i.senderItemId && ourItems.has(i.senderItemId));
      expect(atPayPal).toHaveLength(2);
      const ledgerShare = { PLATFORM: b.platformCommission, SELLER: b.sellerNetProfit } as const;
      const receiverOf = { PLATFORM: DEMO.platformPayeeEmail, SELLER: DEMO.payeeEmail } as const;
      for (const paid of atPayPal) {
        const { intent, item } = ourItems.get(paid.senderItemId!)!;
        const owed = ledgerShare[intent.recipient];
        expect(intent.amount).toEqual({ amountMinor: owed.amountMinor, currency: owed.currency });
        expect(paid.receiver).toBe(receiverOf[intent.recipient]);
        expect(paid.status).toBe('SUCCESS');
        expect({ value: paid.amount.value, currency: paid.amount.currency }).toEqual({ value: formatDecimal(item.amount), currency: item.amount.currency });
        if (item.amount.currency === owed.currency) {
          expect(item.amount.amountMinor).toBe(owed.amountMinor);
        } else {
          // converted: minor(paid) = floor(minor(owed) / 10^d(owed) × rate × 10^d(paid))
          expect(item.owed).toEqual({ amountMinor: owed.amountMinor, currency: owed.currency });
          const [whole, frac = ''] = item.fx!.rate.split('.');
          const rateScaled = BigInt(whole! + frac);
          const exact = (BigInt(owed.amountMinor) * rateScaled * 10n ** BigInt(minorDigits(item.amount.currency)))
            / (10n ** BigInt(frac.length) * 10n ** BigInt(minorDigits(owed.currency)));
          expect(BigInt(item.amount.amountMinor)).toBe(exact);
        }
      }
    },
  );

  it('the integrity report is empty after a clean run, and names the stuck order when a service is stopped', async () => {
    const { pipeline, operator, kafka, codec } = e2e;
    const allViolations = async (deadlines = { purchaseSeconds: 1, saleSeconds: 1 }) => [
      ...(await integrityReport(operator)),
      ...(await streamIntegrity(kafka, codec, deadlines)),
    ];
    // Clean: everything sent so far is paid out.
    const clean = await allViolations();
    expect(clean.filter((r) => r.error || r.violations.length > 0)).toEqual([]);

    // Stop sales: a new order gets purchased, but nobody records the sale.
    await pipeline.kill('sales');
    try {
      const sent = await sendDemoOrder(pipeline.world, pipeline.urls.ingest, 'ebay');
      const orderId = orderIdOf('ebay', sent.externalOrderId);
      const reports = await waitFor(async () => {
        const r = await allViolations();
        return r.some((s) => s.violations.some((v) => v.orderId === orderId)) ? r : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500, description: 'the stuck order in the report' });
      const stuck = reports.find((r) => r.violations.some((v) => v.orderId === orderId))!;
      expect(stuck.stage).toContain('purchased → sale');
      expect(stuck.violations.find((v) => v.orderId === orderId)).toMatchObject({ sellerId: DEMO.sellerId, state: 'PURCHASED' });
      expect(reports.find((r) => r.service === 'sales')?.error).toBeDefined(); // and the stopped service is named as unreachable
    } finally {
      await pipeline.start('sales');
    }
    // Once sales is back, the order completes and the report is clean again.
    await waitFor(async () => (await allViolations({ purchaseSeconds: 3600, saleSeconds: 3600 })).every((r) => !r.error && r.violations.length === 0), {
      timeoutMs: 120_000, intervalMs: 500, description: 'a clean report after restart',
    });
  });

  it('a real Prometheus scrapes all four services, every Grafana panel returns data and every alert rule evaluates against their metrics', async () => {
    const { pipeline } = e2e;
    const prometheus = await startPrometheus(Object.values(pipeline.urls).map((u) => new URL(u).host), await freePort());
    try {
      const query = async (q: string) => {
        const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
        return response?.ok ? ((await response.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result : [];
      };
      const up = await waitFor(async () => {
        const r = await query('up{job="postsale"} == 1');
        return r.length === 4 ? r : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500, description: 'four targets up' });
      expect(up).toHaveLength(4);
      // The metrics the alert rules and the dashboard read exist, per service.
      expect(new Set((await query('outbox_lag_seconds')).map((r) => r.metric.service))).toEqual(new Set(['ingest', 'fulfillment', 'sales', 'payouts']));
      expect((await query('sum by (type) (events_consumed_total)')).map((r) => r.metric.type)).toEqual(expect.arrayContaining(['OrderReceived', 'PurchaseCompleted', 'SaleRecorded']));
      // Every panel of the Grafana dashboard returns data from the real series (a panel that never does is broken).
      const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'postsale-pipeline.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
      const panels = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
      expect(panels.length).toBeGreaterThan(0);
      for (const panel of panels) {
        await waitFor(async () => (await query(panel.expr)).length > 0, { timeoutMs: 30_000, intervalMs: 500, description: `data for the panel "${panel.title}": ${panel.expr}` });
      }
      // Every rule loaded and evaluated without error against the real series.
      const groups = await waitFor(async () => {
        const response = await fetch(`${prometheus.url}/api/v1/rules`);
        const body = (await response.json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastEvaluation: string }> }> } };
        const rules = body.data.groups.flatMap((g) => g.rules);
        return rules.length > 0 && rules.every((r) => r.health === 'ok') ? rules : undefined;
      }, { timeoutMs: 30_000, intervalMs: 500, description: 'all rules evaluated healthily' });
      expect(groups.map((r) => r.name)).toEqual(expect.arrayContaining(['ServiceDown', 'OutboxLagging', 'EventsDeadLettered']));
      // ServiceDown really fires when a service stops answering.
      await pipeline.kill('sales');
      try {
        await waitFor(async () => (await query('up{job="postsale"} == 0')).length === 1, { timeoutMs: 30_000, intervalMs: 500, description: 'sales seen down' });
        const pending = await waitFor(async () => {
          const alerts = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
          return alerts.data.alerts.find((a) => a.labels.alertname === 'ServiceDown');
        }, { timeoutMs: 30_000, intervalMs: 500, description: 'ServiceDown pending' });
        expect(pending.labels.instance).toBe(new URL(pipeline.urls.sales).host);
      } finally {
        await pipeline.start('sales');
      }
    } finally {
      await prometheus.stop();
    }
  });

  it('an operator finds an order by its AliExpress order number and by the buyer\'s email, and nothing by a stranger\'s', async () => {
    const { pipeline, admin, operator } = e2e;
    const sent = await sendDemoOrder(pipeline.world, pipeline.urls.ingest, 'paypal');
    const orderId = orderIdOf('paypal', sent.externalOrderId);
    await waitFor(() => paidOut(admin.payouts, orderId), { timeoutMs: 120_000, intervalMs: 300, description: `${orderId} paid out` });
    const { supplierOrderId } = (await admin.fulfillment.get(`/admin/orders/${orderId}`)).data as { supplierOrderId: string };
    expect(await findOrderIds(operator, supplierOrderId)).toEqual([orderId]);
    const buyerEmail = ((await admin.ingest.get(`/admin/orders/${orderId}`, { params: { reveal: 'true', reason: 'e2e: look up by email' } })).data as { received: { buyer: { email: string } } }).received.buyer.email;
    expect(buyerEmail).toContain('@');
    expect(await findOrderIds(operator, buyerEmail.toUpperCase())).toContain(orderId);
    expect(await findOrderIds(operator, 'nobody-at-all@example.org')).toEqual([]);
    // a malformed lookup is a 400 with a code, never a 5xx
    for (const [service, params] of [['ingest', { buyerEmail: 'a\u0000@b' }], ['fulfillment', { supplierOrderId: "1' or '1'='1" }]] as const) {
      const answer = await admin[service].get('/admin/orders', { params, validateStatus: () => true });
      expect([service, answer.status, answer.data.error?.code]).toEqual([service, 400, 'INVALID_QUERY']);
    }
  });

  it('operators need their credential: the integrity report refuses a wrong token', async () => {
    await expect(integrityReport({ ...e2e.operator, POSTSALE_ADMIN_TOKEN: 'not-the-token' })).rejects.toThrow(/refused/);
  });
});
