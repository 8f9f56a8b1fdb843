import { startService, type RunningService } from '@postsale/runtime';
import { dropSchema, outboxEventCount, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { salesService } from '../../src/service';
import { ADMIN, m, orderCancelled, orderReceived, orderRefunded, purchaseCompleted, TestPublisher } from '../support/events';

describe('replay of both input topics', () => {
  let env: Record<string, string>;
  let service: RunningService | undefined;
  let publish: TestPublisher | undefined;
  afterAll(async () => {
    await publish?.stop();
    await service?.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  const count = async (table: string) => Number((await service!.ctx.db(table).count<{ count: string }[]>('* as count'))[0]!.count);

  it('when a fresh consumer group reads orders and fulfillment from offset 0, then no new sale, entry, adjustment or event appears', async () => {
    env = testEnv('sales');
    service = await startService(salesService, env);
    publish = await TestPublisher.connect(service);
    const sellerId = uniqueId('seller-');
    const put = await fetch(`${service.url}/admin/sellers/${sellerId}/commercial-terms`, {
      method: 'PUT', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ commissionRateBps: 1500 }),
    });
    expect(put.status).toBe(200);
    const [sold, refunded, cancelledLate] = [uniqueId('o-'), uniqueId('o-'), uniqueId('o-')];
    await publish.orders(
      orderReceived({ orderId: sold, sellerId, sale: m(10000, 'USD'), marketplaceFee: m(1000, 'USD') }),
      orderReceived({ orderId: refunded, sellerId, sale: m(9000, 'USD'), marketplaceFee: m(900, 'USD') }),
      orderRefunded({ orderId: refunded, sellerId, refundId: 'r1', amount: m(3000, 'USD') }),
      orderReceived({ orderId: cancelledLate, sellerId, sale: m(7000, 'USD'), marketplaceFee: m(700, 'USD') }),
      orderCancelled({ orderId: cancelledLate, sellerId }),
    );
    await publish.fulfillment(
      purchaseCompleted({ orderId: sold, sellerId, cost: m(5000, 'USD') }),
      purchaseCompleted({ orderId: refunded, sellerId, cost: m(4000, 'USD') }),
      // bought although the order was cancelled meanwhile: the sale is recorded and reversed, the seller bears the cost
      purchaseCompleted({ orderId: cancelledLate, sellerId, cost: m(3000, 'USD') }),
    );
    const state = async (orderId: string) => (await service!.ctx.db('orders').where({ order_id: orderId }).first())?.state;
    // CANCELLED is reached before the late purchase too: wait for the late sale itself, fully reversed.
    const late = await waitFor(() => service!.ctx.db('sales').where({ order_id: cancelledLate }).first(), { description: 'late sale recorded' });
    await waitFor(async () => (await state(sold)) === 'RECORDED' && (await state(refunded)) === 'PARTIALLY_REFUNDED' && (await state(cancelledLate)) === 'CANCELLED',
      { description: 'all three orders settled' });
    expect(Number(late.refunded_minor)).toBe(7000);
    await waitFor(async () => Number((await service!.ctx.db('outbox').whereNull('published_at').count<{ count: string }[]>('* as count'))[0]!.count) === 0,
      { description: 'outbox drained' });
    const before = { sales: await count('sales'), entries: await count('journal_entries'), postings: await count('postings'), adjustments: await count('adjustments') };
    expect(before).toMatchObject({ sales: 3, entries: 5, adjustments: 2 });
    expect(await outboxEventCount(service!)).toBe(5);
    const firstGroupInbox = await count('inbox');
    await publish.stop();
    publish = undefined;
    await service.stop();

    // Same database and topics, new consumer group: every input event is read again from the beginning.
    service = await startService(salesService, { ...env, SALES_CONSUMER_GROUP: 'sales.ledger-replay' });
    await waitFor(async () => (await count('inbox')) === firstGroupInbox * 2, { description: 'replay group processed every event', timeoutMs: 30_000 });
    expect({ sales: await count('sales'), entries: await count('journal_entries'), postings: await count('postings'), adjustments: await count('adjustments') })
      .toEqual(before);
    expect(await outboxEventCount(service!)).toBe(0); // the replay wrote no event (published or waiting)
    const tb = await (await fetch(`${service.url}/admin/ledger/trial-balance`, { headers: ADMIN })).json();
    expect(tb.balanced).toBe(true);
  });
});
