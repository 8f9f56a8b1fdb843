import { prepareDemoOrder, SERVICES, type DemoMarketplace } from '@postsale/cli';
import { createKafka, createLogger } from '@postsale/runtime';
import { waitFor } from '@postsale/runtime/testing';
import { startPrivateBroker, type PrivateBroker } from '@postsale/runtime/testing';
import { expectNoDeadLetters, orderIdOf, paidOut, startE2E, type E2E } from '../src';

jest.setTimeout(10 * 60_000);

const ORDERS = 9;

/**
 * The four services on a private single-node broker (own ports and data directory; the shared broker on 9092 is never
 * touched), which is kill -9ed while orders flow and started again.
 */
describe('a Kafka broker restart while orders flow through the four services', () => {
  let broker: PrivateBroker | undefined;
  let e2e: E2E | undefined;

  beforeAll(async () => {
    broker = await startPrivateBroker();
    e2e = await startE2E({ extraEnv: Object.fromEntries(SERVICES.map((s) => [s, broker!.env])) }); // its address and SASL user
  });
  afterAll(async () => {
    await e2e?.stop();
    await broker?.stop();
  });

  it('producers and consumers recover without an operator: every order paid once, one supplier order each, 0 dead letters', async () => {
    const { pipeline, admin, namespace } = e2e!;
    const marketplaces: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
    const orderIds: string[] = [];
    for (let i = 0; i < ORDERS; i++) {
      if (i === 3) await broker!.kill9(); // orders 0-2 are mid-pipeline
      if (i === 6) await broker!.restart(); // 3-5 were accepted with no broker: they wait in ingest's outbox
      const order = prepareDemoOrder(pipeline.world, marketplaces[i % marketplaces.length]!);
      await waitFor(async () => {
        try {
          return (await order.deliver(pipeline.urls.ingest)).every((code) => code >= 200 && code < 300);
        } catch {
          return false;
        }
      }, { timeoutMs: 60_000, intervalMs: 250, description: `order ${i} accepted` });
      orderIds.push(orderIdOf(order.marketplace, order.externalOrderId));
    }

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

    const kafka = createKafka({ clientId: 'e2e-kafka-restart', brokers: broker!.brokers, logger: createLogger('e2e', 'error'), security: broker!.env });
    await expectNoDeadLetters(kafka, namespace, admin);
  });
});
