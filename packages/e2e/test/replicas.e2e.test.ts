import { prepareDemoOrder, replay, SERVICES, waitForReplay, type DemoMarketplace, type ServiceName } from '@postsale/cli';
import { allStreams, topicName } from '@postsale/contracts';
import { waitFor } from '@postsale/runtime/testing';
import { orderIdOf, paidOut, startE2E, type E2E } from '../src';

jest.setTimeout(30 * 60_000);

/** Orders per burst (the issue asks for 200; E2E_CRASH_ORDERS lowers it locally). */
const ORDERS = Number(process.env.E2E_CRASH_ORDERS ?? 200);
const REPLICAS = 2;

/**
 * DESIGN guarantee 6: everything holds with two replicas of every service. Eight OS processes on the real
 * infrastructure; replicas are kill -9ed at random moments while orders flow and started again.
 */
describe('two replicas of every service, killed -9 at random during a burst: bought once, paid once, ledger balanced', () => {
  let e2e: E2E;
  const allOrderIds: string[] = [];

  beforeAll(async () => {
    e2e = await startE2E({ replicas: REPLICAS });
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  /**
   * While orders flow and until they are all paid out (and at least MIN_KILLS kills): kill -9 a random replica of a
   * random service, start it again after a moment, repeat.
   */
  const MIN_KILLS = 8;
  const chaos = () => {
    let finished = false;
    const kills: string[] = [];
    const run = (async () => {
      while (!finished || kills.length < MIN_KILLS) {
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 1500));
        const service = SERVICES[Math.floor(Math.random() * SERVICES.length)] as ServiceName;
        const replica = Math.floor(Math.random() * REPLICAS);
        await e2e.pipeline.kill(service, replica);
        kills.push(`${service}#${replica}`);
        await new Promise((r) => setTimeout(r, Math.random() * 1500));
        await e2e.pipeline.start(service, replica);
      }
    })();
    return { run, kills, finish: () => (finished = true) };
  };

  /** Sends `n` orders, each to a random ingest replica, retrying a delivery (as marketplaces do) until it gets a 2xx. */
  const burst = async (n: number): Promise<string[]> => {
    const { pipeline } = e2e;
    const marketplaces: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const order = prepareDemoOrder(pipeline.world, marketplaces[i % marketplaces.length]!);
      await waitFor(async () => {
        const url = pipeline.replicaUrls.ingest[Math.floor(Math.random() * REPLICAS)]!;
        try {
          return (await order.deliver(url)).every((code) => code >= 200 && code < 300);
        } catch {
          return false; // that replica is down or was cut mid-request
        }
      }, { timeoutMs: 120_000, intervalMs: 100, description: `order ${i} accepted` });
      ids.push(orderIdOf(order.marketplace, order.externalOrderId));
    }
    return ids;
  };

  /** Asks any live payouts replica (one may be down at this moment). */
  const allPaidOut = (ids: string[]) =>
    waitFor(async () => {
      try {
        for (const orderId of ids) if (!(await paidOut(e2e.admin.payouts, orderId))) return false;
        return true;
      } catch {
        return false; // payouts replica 0 is being restarted
      }
    }, { timeoutMs: 15 * 60_000, intervalMs: 2000, description: `all ${ids.length} orders paid out` });

  const expectOnceEach = async (expectedOrders: number) => {
    const { world } = e2e.pipeline;
    // at the supplier: every order ever created (the fake keeps each one), one per out_order_id
    const supplierOrders = world.aliexpress.orders();
    expect(supplierOrders).toHaveLength(expectedOrders);
    expect(new Set(supplierOrders.map((o) => o.outOrderId ?? o.memo)).size).toBe(expectedOrders);
    // at PayPal: every item ever accepted across batches, one per (order, recipient)
    const items = world.paypal.paidItems();
    expect(items).toHaveLength(2 * expectedOrders);
    expect(new Set(items.map((i) => i.senderItemId)).size).toBe(2 * expectedOrders);
    expect(items.filter((i) => i.status === 'SUCCESS')).toHaveLength(2 * expectedOrders);
    // exactly one batch per sender_batch_id
    const batches = world.paypal.payoutBatches();
    expect(new Set(batches.map((b) => b.senderBatchId)).size).toBe(batches.length);
    const trial = (await e2e.admin.sales.get('/admin/ledger/trial-balance')).data as { balanced: boolean; currencies: Array<{ currency: string; totalMinor: number }> };
    expect(trial.balanced).toBe(true);
    for (const c of trial.currencies) expect(c.totalMinor).toBe(0);
  };

  it(`a burst of ${ORDERS} orders while replicas are killed -9 at random: 0 duplicate supplier orders, 0 duplicate payouts, trial balance 0`, async () => {
    const started = Date.now();
    const monkey = chaos();
    try {
      allOrderIds.push(...(await burst(ORDERS)));
      await allPaidOut(allOrderIds);
    } finally {
      monkey.finish();
      await monkey.run;
    }
    for (const s of SERVICES) await e2e.pipeline.start(s); // every replica up again
    expect(monkey.kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    await expectOnceEach(allOrderIds.length);
    console.info(`replicas burst: ${ORDERS} orders, ${monkey.kills.length} kills (${monkey.kills.join(', ')}), ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it(`the same with PayPal acting on every payout batch but losing 10% of its answers: exactly one batch per sender_batch_id`, async () => {
    const started = Date.now();
    const { paypal } = e2e.pipeline.world;
    const batchesBefore = paypal.payoutBatches().length;
    const payoutsPost = /^POST \/v1\/payments\/payouts$/;
    // the first answer is certainly lost, then one in ten
    const stopFirst = paypal.fail({ match: payoutsPost, mode: { kind: 'drop-after-handling' }, times: 1 });
    const stopDropping = paypal.fail({ match: payoutsPost, mode: { kind: 'drop-after-handling' }, rate: 0.1 });
    const posts = () => paypal.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length;
    const postsBefore = posts();
    try {
      const monkey = chaos();
      try {
        allOrderIds.push(...(await burst(ORDERS)));
        await allPaidOut(allOrderIds);
      } finally {
        monkey.finish();
        await monkey.run;
      }
      for (const s of SERVICES) await e2e.pipeline.start(s);
      console.info(`replicas burst with lost PayPal answers: ${ORDERS} orders, ${monkey.kills.length} kills, ${posts() - postsBefore} batch posts for ${paypal.payoutBatches().length - batchesBefore} batches, ${Math.round((Date.now() - started) / 1000)} s`);
    } finally {
      stopFirst();
      stopDropping();
    }
    const newBatches = paypal.payoutBatches().length - batchesBefore;
    expect(newBatches).toBeGreaterThan(0);
    // lost answers were re-posted with the same sender_batch_id (more posts than batches) and never paid twice
    expect(posts() - postsBefore).toBeGreaterThan(newBatches);
    await expectOnceEach(allOrderIds.length);
  });

  it('replaying every topic from offset 0 into every consumer group, with both replicas consuming, makes no new purchase, ledger entry or payout', async () => {
    const { pipeline, kafka, namespace, admin } = e2e;
    const { world } = pipeline;
    const snapshot = async () => ({
      supplierOrders: world.aliexpress.orders().length,
      payoutItems: world.paypal.paidItems().length,
      batches: world.paypal.payoutBatches().length,
      trial: ((await admin.sales.get('/admin/ledger/trial-balance')).data as { currencies: unknown[] }).currencies,
    });
    const before = await snapshot();
    expect(before.supplierOrders).toBe(allOrderIds.length);

    // Kafka repositions only empty groups: stop every replica, rewind every group on every topic it has read, start all.
    for (const s of SERVICES) await pipeline.terminate(s);
    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    const rewound: Array<{ topic: string; group: string }> = [];
    try {
      const groups = (await kafkaAdmin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${namespace}.`));
      for (const group of groups) {
        for (const stream of allStreams()) {
          const topic = topicName(stream, namespace);
          const offsets = await kafkaAdmin.fetchOffsets({ groupId: group, topics: [topic] });
          if (!offsets[0]?.partitions.some((p) => p.offset !== '-1')) continue;
          await replay(kafka, { topic, group, from: '0' });
          rewound.push({ topic, group });
        }
      }
    } finally {
      await kafkaAdmin.disconnect();
    }
    expect(rewound.length).toBeGreaterThanOrEqual(5);
    for (const s of SERVICES) await pipeline.start(s);
    for (const r of rewound) await waitForReplay(kafka, { ...r, timeoutMs: 10 * 60_000 });

    const duplicatesSeen = await waitFor(async () => {
      let total = 0;
      for (const s of SERVICES) {
        for (const url of pipeline.replicaUrls[s]) {
          const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${pipeline.options.adminToken}` } })).text();
          for (const m of text.matchAll(/^events_duplicate_total\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
        }
      }
      return total >= before.supplierOrders ? total : undefined;
    }, { timeoutMs: 120_000, description: 'replayed events skipped as duplicates' });
    expect(duplicatesSeen).toBeGreaterThanOrEqual(before.supplierOrders);
    expect(await snapshot()).toEqual(before);
  });
});
