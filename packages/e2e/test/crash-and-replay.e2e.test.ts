import { prepareDemoOrder, type DemoMarketplace, replay, waitForReplay, SERVICES, type ServiceName } from '@postsale/cli';
import { allStreams, topicName } from '@postsale/contracts';
import { waitFor } from '@postsale/runtime/testing';
import { orderIdOf, paidOut, startE2E, type E2E } from '../src';

jest.setTimeout(30 * 60_000);

/** How many orders the burst sends (the issue asks for 200; lower it locally with E2E_CRASH_ORDERS). */
const ORDERS = Number(process.env.E2E_CRASH_ORDERS ?? 200);

describe('crashes and replays change nothing: four services as OS processes, killed with SIGKILL mid-flight', () => {
  let e2e: E2E;
  const orderIds: string[] = [];

  beforeAll(async () => {
    e2e = await startE2E();
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  const counts = async () => {
    const { world } = e2e.pipeline;
    const trial = (await e2e.admin.sales.get('/admin/ledger/trial-balance')).data as { balanced: boolean; currencies: Array<{ accounts: unknown[] }> };
    return {
      supplierOrders: world.aliexpress.orders().length,
      payoutItems: world.paypal.paidItems().length,
      ledgerBalanced: trial.balanced,
      ledgerEntries: await ledgerEntryCount(),
    };
  };
  const ledgerEntryCount = async () => {
    let total = 0;
    for (const orderId of orderIds) {
      const sale = await e2e.admin.sales.get(`/admin/sales/${orderId}`);
      total += sale.status === 200 ? (sale.data.journal as unknown[]).length : 0;
    }
    return total;
  };

  it(`during a burst of ${ORDERS} orders, every service is killed -9 at random moments and restarted; every order is paid out exactly once`, async () => {
    const { pipeline, admin } = e2e;
    const marketplaces: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];

    // The chaos monkey: while orders flow, kill each service twice (random order, random moments) and restart it.
    // A kill is SIGKILL: no shutdown hook runs, in-flight transactions and calls are cut wherever they are.
    const chaos = (async () => {
      const victims = [...SERVICES, ...SERVICES].sort(() => Math.random() - 0.5) as ServiceName[];
      for (const victim of victims) {
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 2000));
        await pipeline.kill(victim);
        await pipeline.start(victim);
      }
    })();

    // A delivery to ingest while it is down (or cut mid-request) fails; the marketplace retries the same delivery
    // until it gets a 2xx, and so do we.
    for (let i = 0; i < ORDERS; i++) {
      const order = prepareDemoOrder(pipeline.world, marketplaces[i % marketplaces.length]!);
      await waitFor(async () => {
        try {
          return (await order.deliver(pipeline.urls.ingest)).every((code) => code >= 200 && code < 300);
        } catch {
          return false; // connection refused or reset while ingest restarts
        }
      }, { timeoutMs: 120_000, intervalMs: 200, description: `order ${i} accepted` });
      orderIds.push(orderIdOf(order.marketplace, order.externalOrderId));
    }
    await chaos;

    // Every accepted order reaches its terminal state: both recipients paid.
    await waitFor(async () => {
      for (const orderId of orderIds) if (!(await paidOut(admin.payouts, orderId))) return false;
      return true;
    }, { timeoutMs: 15 * 60_000, intervalMs: 2000, description: `all ${ORDERS} orders paid out` });

    // Counted at the outside systems: one supplier order per order, one payout per (order, recipient).
    const supplierOrders = pipeline.world.aliexpress.orders();
    expect(new Set(orderIds).size).toBe(ORDERS);
    expect(supplierOrders).toHaveLength(ORDERS);
    const paid = pipeline.world.paypal.paidItems().filter((i) => i.status === 'SUCCESS');
    expect(paid).toHaveLength(2 * ORDERS);
    expect(new Set(paid.map((i) => i.senderItemId)).size).toBe(2 * ORDERS);
    expect((await counts()).ledgerBalanced).toBe(true);
    // A re-post after a crash is answered in PayPal's real wording ("Batch with given sender_batch_id already exists")
    // and adopted: no payout ever became FAILED-and-owed on the way (which is how a double payout used to start).
    for (const orderId of orderIds) {
      const history = ((await admin.payouts.get(`/admin/orders/${orderId}`)).data as { history: Array<{ to: string }> }).history;
      expect(history.filter((h) => h.to === 'FAILED' || h.to === 'NEEDS_REVIEW')).toEqual([]);
    }
    // and every payable in the ledger is settled by the payouts
    await waitFor(async () => ((await admin.sales.get('/admin/ledger/payables')).data as { settled: boolean }).settled, {
      timeoutMs: 120_000, intervalMs: 1000, description: 'every payable settled in the ledger',
    });
  });

  it('replaying every topic from offset 0 into every consumer group makes no new purchase, ledger entry or payout', async () => {
    const { pipeline, kafka, namespace } = e2e;
    const before = await counts();
    expect(before.supplierOrders).toBeGreaterThan(0);

    // Kafka repositions only empty groups: stop the consumers, rewind every group on every topic, start again.
    for (const s of SERVICES) await pipeline.terminate(s);
    const admin = kafka.admin();
    await admin.connect();
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${namespace}.`));
    await admin.disconnect();
    expect(groups.length).toBeGreaterThanOrEqual(4);
    const rewound: Array<{ topic: string; group: string }> = [];
    for (const group of groups) {
      for (const stream of allStreams()) {
        const topic = topicName(stream, namespace);
        const committed = await (async () => {
          const a = kafka.admin();
          await a.connect();
          try {
            return (await a.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions.some((p) => p.offset !== '-1');
          } finally {
            await a.disconnect();
          }
        })();
        if (!committed) continue;
        await replay(kafka, { topic, group, from: '0' });
        rewound.push({ topic, group });
      }
    }
    expect(rewound.length).toBeGreaterThanOrEqual(5); // fulfillment←orders, sales←orders+fulfillment, payouts←sales+fulfillment
    for (const s of SERVICES) await pipeline.start(s);
    for (const r of rewound) await waitForReplay(kafka, { ...r, timeoutMs: 10 * 60_000 });

    // Every replayed event reached a consumer and was recognised as already applied (the inbox), ...
    const duplicatesSeen = await waitFor(async () => {
      let total = 0;
      for (const s of SERVICES) {
        const text = (await e2e.admin[s].get('/metrics')).data as string;
        for (const m of text.matchAll(/^events_duplicate_total\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
      }
      return total > 0 ? total : undefined;
    }, { description: 'replayed events skipped as duplicates' });
    expect(duplicatesSeen).toBeGreaterThanOrEqual(before.supplierOrders);
    // ... so nothing changed at the supplier, in the ledger or at PayPal.
    const after = await counts();
    expect(after).toEqual(before);
  });
});
