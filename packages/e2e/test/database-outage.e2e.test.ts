import { prepareDemoOrder, SERVICES, type DemoMarketplace } from '@postsale/cli';
import { localInfraEnv } from '@postsale/runtime';
import { startTcpProxy, waitFor, type TcpProxy } from '@postsale/runtime/testing';
import { expectNoDeadLetters, orderIdOf, paidOut, startE2E, type E2E } from '../src';

jest.setTimeout(10 * 60_000);

const ORDERS = 9;
const OUTAGE_MS = 15_000;

describe('Postgres unreachable for 15 s while orders flow through the four services', () => {
  let e2e: E2E | undefined;
  let proxy: TcpProxy | undefined;

  beforeAll(async () => {
    const real = new URL(localInfraEnv().DATABASE_URL!);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(real);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const DATABASE_URL = viaProxy.toString();
    e2e = await startE2E({ extraEnv: Object.fromEntries(SERVICES.map((s) => [s, { DATABASE_URL }])) });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => undefined);
    await e2e?.stop();
    await proxy?.close();
  });

  it('every order is paid out once, nothing is bought twice, the ledger balances and nothing is dead-lettered', async () => {
    const { pipeline, admin, kafka, namespace } = e2e!;
    const marketplaces: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
    const orderIds: string[] = [];
    let outage: Promise<void> | undefined;

    for (let i = 0; i < ORDERS; i++) {
      // The database goes away once a few orders are in the middle of the pipeline; deliveries go on as the
      // marketplaces send them, retried until ingest answers 2xx (it answers 503 while it cannot commit).
      if (i === 3) {
        await proxy!.cut();
        const cutAt = Date.now();
        outage = waitFor(() => Date.now() - cutAt >= OUTAGE_MS, { timeoutMs: OUTAGE_MS + 2_000, intervalMs: 250, description: 'the outage to last 15 s' })
          .then(() => proxy!.restore());
      }
      const order = prepareDemoOrder(pipeline.world, marketplaces[i % marketplaces.length]!);
      await waitFor(async () => {
        try {
          return (await order.deliver(pipeline.urls.ingest)).every((code) => code >= 200 && code < 300);
        } catch {
          return false;
        }
      }, { timeoutMs: 90_000, intervalMs: 250, description: `order ${i} accepted` });
      orderIds.push(orderIdOf(order.marketplace, order.externalOrderId));
    }
    await outage;

    await waitFor(async () => {
      for (const orderId of orderIds) if (!(await paidOut(admin.payouts, orderId))) return false;
      return true;
    }, { timeoutMs: 5 * 60_000, intervalMs: 1000, description: `all ${ORDERS} orders paid out` });

    expect(new Set(orderIds).size).toBe(ORDERS);
    expect(pipeline.world.aliexpress.orders()).toHaveLength(ORDERS);
    const paid = pipeline.world.paypal.paidItems().filter((i) => i.status === 'SUCCESS');
    expect(paid).toHaveLength(2 * ORDERS);
    expect(new Set(paid.map((i) => i.senderItemId)).size).toBe(2 * ORDERS);
    expect((await admin.sales.get('/admin/ledger/trial-balance')).data.balanced).toBe(true);

    await expectNoDeadLetters(kafka, namespace, admin);
    expect(proxy!.accepted).toBeGreaterThan(0);
  });
});
