import knex from 'knex';
import { Kafka, logLevel } from 'kafkajs';
import { EventCodec, Streams, type PayoutEvent } from '@postsale/contracts';
import { kafkaClientSecurity, startService, type RunningService } from '@postsale/runtime';
import { collectTopic, uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { payoutsService } from '../../src/service';
import { ADMIN, orderPayouts, PLATFORM, startPayoutsUnderTest, type PayoutsUnderTest, orderShipped, payoutsWithStatus, putPayee, saleRecorded, saleReversed, TopicPublisher } from '../support/payouts-harness';


describe('payouts against the PayPal fake (sandbox mode)', () => {
  let fake: PayPalFake;
  let env: Record<string, string>;
  let service: RunningService;
  let publish: TopicPublisher;

  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest();
    ({ fake, env, service, publish } = under);
  });
  afterAll(() => under?.stop());

  const itemsFor = (orderId: string) => fake.paidItems().filter((i) => i.note?.endsWith(`order ${orderId}`));

  it('when a sale is recorded, then the platform and the seller are each paid their exact amount once', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    expect((await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' })).status).toBe(200);
    const events = await collectTopic<PayoutEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.payouts));
    try {
      await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 310, netMinor: 1245 }));
      await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent' });

      const paid = itemsFor(orderId).map((i) => ({ receiver: i.receiver, amount: i.amount, status: i.status })).sort((a, b) => a.receiver.localeCompare(b.receiver));
      expect(paid).toEqual([
        { receiver: PLATFORM, amount: { value: '3.10', currency: 'USD' }, status: 'SUCCESS' },
        { receiver: sellerEmail, amount: { value: '12.45', currency: 'USD' }, status: 'SUCCESS' },
      ].sort((a, b) => a.receiver.localeCompare(b.receiver)));

      const sent = await waitFor(() => {
        const mine = events.messages.filter((m) => m.event.orderId === orderId && m.event.type === 'PayoutSent');
        return mine.length === 2 ? mine : undefined;
      }, { description: 'two PayoutSent events' });
      const amounts = sent.map((m) => (m.event as PayoutEvent & { type: 'PayoutSent' }).payload).map((p) => [p.recipient, p.amount.amountMinor]).sort();
      expect(amounts).toEqual([['PLATFORM', 310], ['SELLER', 1245]]);
    } finally {
      await events.stop();
    }
  });

  it('when the same SaleRecorded arrives twice (same event and a re-published copy), then one payout per recipient exists', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
    const sale = saleRecorded({ orderId, sellerId, commissionMinor: 200, netMinor: 800 });
    await publish.sale(sale);
    await publish.sale(sale); // redelivery: same event id
    await publish.sale({ ...sale, eventId: saleRecorded({ orderId, sellerId, commissionMinor: 1, netMinor: 1 }).eventId }); // re-published: new id
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'payouts sent' });
    const inbox = await waitFor(async () => {
      const rows = await service.ctx.db('inbox').where('event_type', 'SaleRecorded').whereIn('event_id', [sale.eventId]).count<{ count: string }[]>('* as count');
      return Number(rows[0]!.count) === 1 ? rows : undefined;
    });
    expect(inbox).toBeTruthy();
    expect(await orderPayouts(service, orderId)).toHaveLength(2);
    expect(itemsFor(orderId)).toHaveLength(2);
  });

  it('when PayPal accepts the batch but the answer never arrives, then the batch is looked up and nobody is paid twice', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
    const postsBefore = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length;
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });

    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 150, netMinor: 990 }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'payouts sent after the lost answer' });

    // the create was posted again with the same sender_batch_id and refused as a duplicate: one batch at PayPal
    const posts = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length - postsBefore;
    expect(posts).toBeGreaterThanOrEqual(2);
    const items = itemsFor(orderId);
    expect(items).toHaveLength(2);
    expect(new Set(items.map((i) => i.payoutBatchId)).size).toBe(1);
    expect(fake.payoutBatches().filter((b) => b.items.some((i) => i.note?.endsWith(`order ${orderId}`)))).toHaveLength(1);
    expect(new Set(items.map((i) => i.senderItemId)).size).toBe(2);
  });

  it('when one item fails, then only that item is retried, under a new sender_item_id', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' });
    fake.setPayoutOutcome({ receiver: sellerEmail }, 'FAILED', { errorName: 'RECEIVER_UNREGISTERED' });

    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 120, netMinor: 480 }));
    const failed = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'FAILED' }), { description: 'seller payout failed' });
    const sellerPayout = failed.find((p) => p.recipient === 'SELLER')!;
    expect(sellerPayout.payable).toEqual({ amountMinor: 480, currency: 'USD' }); // still owed

    fake.clearPayoutOutcomes();
    const unauthenticated = await fetch(`${service.url}/admin/payouts/${sellerPayout.id}/retry`, { method: 'POST' });
    expect(unauthenticated.status).toBe(401);
    const retry = await fetch(`${service.url}/admin/payouts/${sellerPayout.id}/retry`, { method: 'POST', headers: ADMIN });
    expect(retry.status).toBe(202);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'seller payout retried' });

    const items = itemsFor(orderId);
    const platformItems = items.filter((i) => i.receiver === PLATFORM);
    const sellerItems = items.filter((i) => i.receiver === sellerEmail);
    expect(platformItems).toHaveLength(1);
    expect(sellerItems.map((i) => i.status)).toEqual(['FAILED', 'SUCCESS']);
    expect(sellerItems[0]!.senderItemId).not.toEqual(sellerItems[1]!.senderItemId);
    expect(sellerItems[1]!.amount).toEqual({ value: '4.80', currency: 'USD' });
    // a SENT payout cannot be retried
    const again = await fetch(`${service.url}/admin/payouts/${sellerPayout.id}/retry`, { method: 'POST', headers: ADMIN });
    expect(again.status).toBe(409);
  });

  it('when the seller has no payee, then the seller payout is held with that reason until a payee is set', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 100, netMinor: 700 }));
    const held = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'HELD' }), { description: 'seller payout held' });
    expect(held.find((p) => p.recipient === 'SELLER')!.hold).toEqual({ reason: 'PAYEE_MISSING', until: null });
    expect(itemsFor(orderId).map((i) => i.receiver)).toEqual([PLATFORM]);

    expect((await putPayee(service, sellerId, { email: 'not-an-email', releasePolicy: 'immediate' })).status).toBe(400);
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'seller paid once the payee exists' });
  });

  it('when a sale is reversed before its payout, then nothing is paid for it', async () => {
    const sellerId = uniqueId('s-');
    const reversedOrder = uniqueId('o-');
    const laterOrder = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'after_shipment' });
    const sale = saleRecorded({ orderId: reversedOrder, sellerId, commissionMinor: 300, netMinor: 1200 });
    await publish.sale(sale);
    const held = await waitFor(payoutsWithStatus(service, reversedOrder, { PLATFORM: 'HELD', SELLER: 'HELD' }));
    expect(held.map((p) => p.hold?.reason)).toEqual(['AWAITING_SHIPMENT', 'AWAITING_SHIPMENT']);

    await publish.sale(saleReversed(sale, { kind: 'CANCELLATION' }));
    await waitFor(payoutsWithStatus(service, reversedOrder, { PLATFORM: 'CANCELLED', SELLER: 'CANCELLED' }), { description: 'payouts cancelled' });
    await publish.fulfillment(orderShipped(reversedOrder, sellerId));

    // a later order of the same seller goes through the same pollers: once it is paid, the cancelled one had its chance
    await publish.sale(saleRecorded({ orderId: laterOrder, sellerId, commissionMinor: 50, netMinor: 250 }));
    await publish.fulfillment(orderShipped(laterOrder, sellerId));
    await waitFor(payoutsWithStatus(service, laterOrder, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'later order paid' });
    expect(itemsFor(reversedOrder)).toHaveLength(0);
    expect((await orderPayouts(service, reversedOrder)).map((p) => p.status)).toEqual(['CANCELLED', 'CANCELLED']);
  });

  it('when a sale\'s reversal arrives before the sale, then the sale\'s payouts are cancelled as it is recorded and nothing is paid', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
    const sale = saleRecorded({ orderId, sellerId, commissionMinor: 300, netMinor: 1200 });
    await publish.sale(saleReversed(sale, { kind: 'CANCELLATION' }));
    await publish.sale(sale);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'CANCELLED', SELLER: 'CANCELLED' }), { description: 'payouts cancelled' });
    const history = await service.ctx.db('intent_history').where({ order_id: orderId }).orderBy('id').select('from_status', 'to_status');
    // due when decided, cancelled by the reversal in the same transaction: never claimed by the batcher
    expect(history.map((h) => `${h.from_status ?? ''}>${h.to_status}`).sort()).toEqual(['>DUE', '>DUE', 'DUE>CANCELLED', 'DUE>CANCELLED']);
    expect(itemsFor(orderId)).toHaveLength(0);
  });

  it('when a sale is reversed after its payout, then a clawback is owed and the next payout is reduced by it', async () => {
    const sellerId = uniqueId('s-');
    const first = uniqueId('o-');
    const second = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' });
    // EUR, so the platform's own clawback does not reach the other tests' USD platform payouts
    const sale = saleRecorded({ orderId: first, sellerId, commissionMinor: 200, netMinor: 1000, currency: 'EUR' });
    await publish.sale(sale);
    await waitFor(payoutsWithStatus(service, first, { PLATFORM: 'SENT', SELLER: 'SENT' }));

    await publish.sale(saleReversed(sale));
    const balance = await waitFor(async () => {
      const body = await (await fetch(`${service.url}/admin/sellers/${sellerId}/balance`, { headers: ADMIN })).json();
      return body.balances?.[0]?.clawbackOwedMinor === 1000 ? body : undefined;
    }, { description: 'clawback visible in the balance' });
    expect(balance.balances[0]).toMatchObject({ currency: 'EUR', clawbackOwedMinor: 1000 });
    expect((await fetch(`${service.url}/admin/sellers/${sellerId}/balance`)).status).toBe(401);

    await publish.sale(saleRecorded({ orderId: second, sellerId, commissionMinor: 500, netMinor: 2500, currency: 'EUR' }));
    await waitFor(payoutsWithStatus(service, second, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'second order paid' });
    const secondItems = itemsFor(second);
    expect(secondItems.find((i) => i.receiver === sellerEmail)!.amount).toEqual({ value: '15.00', currency: 'EUR' });
    expect(secondItems.find((i) => i.receiver === PLATFORM)!.amount).toEqual({ value: '3.00', currency: 'EUR' });
    const after = await (await fetch(`${service.url}/admin/sellers/${sellerId}/balance`, { headers: ADMIN })).json();
    expect(after.balances[0]).toMatchObject({ currency: 'EUR', clawbackOwedMinor: 0 });
    expect(after.entries.map((e: { kind: string; amountMinor: number }) => [e.kind, e.amountMinor])).toEqual([['CLAWBACK', -1000], ['OFFSET', 1000]]);
  });

  it('when the order is looked up and the integrity report is asked for, then both answer for an operator only', async () => {
    const orderId = uniqueId('o-');
    const sellerId = uniqueId('s-');
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 0, netMinor: 0 }));
    const skipped = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SKIPPED', SELLER: 'SKIPPED' }), { description: 'zero shares skipped' });
    expect(skipped).toHaveLength(2);
    const order = await fetch(`${service.url}/admin/orders/${orderId}`, { headers: ADMIN });
    expect(order.status).toBe(200);
    expect(await order.json()).toMatchObject({ orderId, state: 'SETTLED', sales: [{ isLoss: true }] });
    expect((await fetch(`${service.url}/admin/orders/${orderId}`)).status).toBe(401);
    expect((await fetch(`${service.url}/admin/orders/nope-${orderId}`, { headers: ADMIN })).status).toBe(404);
    const integrity = await fetch(`${service.url}/admin/integrity`, { headers: ADMIN });
    expect(integrity.status).toBe(200);
    expect(await integrity.json()).toMatchObject({ service: 'payouts', stage: 'payouts', violations: expect.any(Array) });
    expect((await fetch(`${service.url}/admin/integrity`)).status).toBe(401);
    expect(itemsFor(orderId)).toHaveLength(0);
  });

  // Last: restarts the service.
  it('when the sales and fulfillment topics are replayed from the beginning (inbox lost too), then nothing new is paid', async () => {
    const itemsBefore = fake.paidItems().length;
    const intentsBefore = await service.ctx.db('payout_intents').count<{ count: string }[]>('* as count');
    const groups = service.consumers.map((c) => c.group);
    await service.stop();

    const kafka = new Kafka({ clientId: 'payouts-test-admin', brokers: env.KAFKA_BROKERS!.split(','), ...kafkaClientSecurity(env), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const codec = EventCodec.connect(env.SCHEMA_REGISTRY_URL!, env.TOPIC_NAMESPACE);
    const topics = [codec.topic(Streams.sales), codec.topic(Streams.fulfillment)];
    for (const [i, groupId] of groups.entries()) await admin.resetOffsets({ groupId, topic: topics[i]!, earliest: true });
    await admin.disconnect();
    const db = knex({ client: 'pg', connection: env.DATABASE_URL, searchPath: [env.DB_SCHEMA!] });
    const inboxRows = Number((await db('inbox').count<{ count: string }[]>('* as count'))[0]!.count);
    await db('inbox').delete(); // the strongest replay: even the inbox forgot, only the domain's own keys remain
    await db.destroy();

    service = under.service = await startService(payoutsService, env);
    await waitFor(async () => {
      const rows = await service.ctx.db('inbox').count<{ count: string }[]>('* as count');
      return Number(rows[0]!.count) >= inboxRows;
    }, { timeoutMs: 30_000, description: 'every event consumed again' });
    const pending = await service.ctx.db('payout_intents').whereIn('status', ['DUE', 'SUBMITTED']).count<{ count: string }[]>('* as count');
    expect(Number(pending[0]!.count)).toBe(0);
    expect(fake.paidItems().length).toBe(itemsBefore);
    expect(await service.ctx.db('payout_intents').count<{ count: string }[]>('* as count')).toEqual(intentsBefore);
  });
});
