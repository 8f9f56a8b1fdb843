import { prepareDemoOrder } from '@postsale/cli';
import { waitFor } from '@postsale/runtime/testing';
import { orderIdOf, startE2E, type E2E } from '../src';

jest.setTimeout(10 * 60_000);

describe('a crash while a supplier call is in flight: resolved by asking the supplier, never bought twice', () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E();
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('when fulfillment is killed -9 while order.create is in flight (the supplier has acted and holds its answer 2 s), then after restart there is one supplier order and the order is PURCHASED or in review with the reason', async () => {
    const { pipeline, admin } = e2e;
    const ali = pipeline.world.aliexpress;
    const createsBefore = ali.callCount('aliexpress.ds.order.create');
    const ordersBefore = ali.orders().length;
    ali.failMethod('aliexpress.ds.order.create', { kind: 'hold-answer', ms: 2000 }, 1);

    const order = prepareDemoOrder(pipeline.world, 'ebay');
    await waitFor(async () => (await order.deliver(pipeline.urls.ingest)).every((code) => code >= 200 && code < 300), { description: 'order accepted' });
    const orderId = orderIdOf(order.marketplace, order.externalOrderId);

    // the create reached the supplier, which has placed the order and holds the answer: kill -9 now
    await waitFor(() => ali.orders().length > ordersBefore, { intervalMs: 20, description: 'order.create in flight, the order placed' });
    await pipeline.kill('fulfillment');
    expect(ali.callCount('aliexpress.ds.order.create')).toBe(createsBefore + 1);

    await pipeline.start('fulfillment');
    const settled = await waitFor(async () => {
      const r = await admin.fulfillment.get(`/admin/orders/${orderId}`);
      const state = r.status === 200 ? (r.data as { state: string }).state : undefined;
      return state && ['PURCHASED', 'SHIPPED', 'DELIVERED', 'NEEDS_REVIEW'].includes(state) ? (r.data as { state: string; reason?: { code: string }; attempts: Array<{ kind: string; outcome: string; out_order_id: string }> }) : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, description: 'the order resolved after the restart' });

    // one supplier order, whatever the path
    expect(ali.orders().length).toBe(ordersBefore + 1);
    if (settled.state === 'NEEDS_REVIEW') expect(['SUPPLIER_ORDER_ID_UNKNOWN', 'UNRESOLVED_PURCHASE']).toContain(settled.reason?.code);
    // the crashed attempt is resolved with the same key (a RESOLVE), never a second CREATE
    expect(settled.attempts.map((a) => a.kind)).toEqual(['CREATE', 'RESOLVE']);
    expect(new Set(settled.attempts.map((a) => a.out_order_id)).size).toBe(1);
    if (settled.state !== 'NEEDS_REVIEW') {
      const [supplierOrder] = ali.orders().slice(ordersBefore);
      expect((settled as unknown as { supplierOrderId: string }).supplierOrderId).toBe(supplierOrder!.orderId);
    }
  });
});
