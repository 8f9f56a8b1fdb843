import { randomUUID } from 'node:crypto';
import { Streams, type FulfillmentEvent, type SaleEvent } from '@postsale/contracts';
import { startService, type RunningService } from '@postsale/runtime';
import { collectTopic, dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { salesService } from '../../src/service';
import { ADMIN, m, orderCancelled, orderReceived, purchaseCompleted, TestPublisher } from '../support/events';

/** What fulfillment publishes when it gives an order up for good (an operator cancelled it before anything was bought). */
const purchaseAbandoned = (orderId: string, sellerId: string, needsReview = false): FulfillmentEvent => ({
  eventId: randomUUID(), orderId, sellerId, occurredAt: Date.now(), causationId: null, type: 'PurchaseFailed',
  payload: { reasonCode: needsReview ? 'UNMAPPED_LISTING' : 'CANCELLED_BY_OPERATOR', supplierErrorCode: null, message: 'cancelled by an operator before any purchase', needsReview, failedAt: Date.now() },
});

describe('sales: an order fulfillment cancelled before buying ends CANCELLED with no sale and nothing to pay', () => {
  let env: Record<string, string>;
  let service: RunningService;
  let publish: TestPublisher;
  let salesTopic: Awaited<ReturnType<typeof collectTopic<SaleEvent>>>;
  const sellerId = uniqueId('seller-');

  beforeAll(async () => {
    env = testEnv('sales', { SALE_DEADLINE_SECONDS: '1' });
    service = await startService(salesService, env);
    publish = await TestPublisher.connect(service);
    salesTopic = await collectTopic<SaleEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.sales));
    const res = await fetch(`${service.url}/admin/sellers/${sellerId}/commercial-terms`, { method: 'PUT', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ commissionRateBps: 1500, marketplaceFees: {} }) });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await salesTopic?.stop();
    await publish?.stop();
    await service?.stop();
    if (env) await dropSchema(env.DB_SCHEMA!);
  });

  const json = async (path: string) => (await fetch(`${service.url}${path}`, { headers: ADMIN })).json();
  const view = (orderId: string) => json(`/admin/orders/${orderId}`) as Promise<{ state: string; stateReason: string; journal: unknown[]; adjustments: Array<{ kind: string }>; history: Array<{ cause: string }> }>;
  const waitState = (orderId: string, state: string) => waitFor(async () => (await view(orderId).catch(() => undefined))?.state === state, { description: `${orderId} in ${state}` });

  it('when PurchaseFailed (needsReview false) follows the order, then CANCELLED: no journal entry, no sale event, the buyer\'s refund stated in minor units, trial balance balanced', async () => {
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(19990, 'CLP'), marketplace: 'MERCADOLIBRE', marketplaceFee: m(2599, 'CLP') }));
    await publish.fulfillment(purchaseAbandoned(orderId, sellerId));
    await waitState(orderId, 'CANCELLED');
    const v = await view(orderId);
    expect(v.stateReason).toBe("cancelled before any purchase: no sale, no supplier cost, no commission, nothing to pay; the buyer's 19990 CLP (19990 minor units) is refunded by the marketplace");
    expect(v.journal).toHaveLength(0);
    expect(v.adjustments).toEqual([expect.objectContaining({ kind: 'CANCELLATION' })]);
    expect(v.history.map((h) => h.cause)).toContain('PurchaseFailed');
    expect((await fetch(`${service.url}/admin/sales/${orderId}`, { headers: ADMIN })).status).toBe(404);
    const tb = await json('/admin/ledger/trial-balance');
    expect(tb.balanced).toBe(true);
    // no SaleRecorded: payouts (which only reads the sales stream) has nothing to pay anybody for this order
    expect(salesTopic.messages.filter((x) => x.event.orderId === orderId)).toHaveLength(0);
    expect((await json('/admin/integrity')).violations.map((x: { orderId: string }) => x.orderId)).not.toContain(orderId);

    // the marketplace's own cancellation arriving later is the same cancellation: nothing more happens
    await publish.orders(orderCancelled({ orderId, sellerId }));
    await waitFor(async () => (await view(orderId)).history.some((h) => h.cause === 'OrderCancelled'), { description: 'OrderCancelled noted' });
    expect((await view(orderId)).adjustments).toHaveLength(1);
    expect((await view(orderId)).state).toBe('CANCELLED');
  });

  it('when PurchaseFailed (needsReview false) arrives before the order itself, then the order still ends CANCELLED and a purchase completing later is reversed at once', async () => {
    const orderId = uniqueId('o-');
    await publish.fulfillment(purchaseAbandoned(orderId, sellerId));
    await waitState(orderId, 'CANCELLED');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(4000, 'USD'), marketplaceFee: m(400, 'USD') }));
    await waitFor(async () => (await view(orderId)).stateReason.includes('4000 minor units'), { description: 'the reason names the buyer\'s payment once known' });
    expect((await view(orderId)).journal).toHaveLength(0);
    // should a purchase still complete, the sale is recorded and reversed at once: the seller's loss is visible
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(2000, 'USD') }));
    await waitFor(async () => (await view(orderId)).journal.length === 2, { description: 'sale and its reversal' });
    expect((await view(orderId)).state).toBe('CANCELLED');
    expect((await json('/admin/ledger/trial-balance')).balanced).toBe(true);
  });

  it('when PurchaseFailed sends the order to review (needsReview true), then the ledger keeps waiting for a purchase', async () => {
    const orderId = uniqueId('o-');
    await publish.orders(orderReceived({ orderId, sellerId, sale: m(5000, 'USD'), marketplaceFee: m(500, 'USD') }));
    await waitState(orderId, 'AWAITING_PURCHASE');
    await publish.fulfillment(purchaseAbandoned(orderId, sellerId, true));
    // a marker event after it on the same partition proves the PurchaseFailed was consumed
    await publish.fulfillment(purchaseCompleted({ orderId, sellerId, cost: m(2000, 'USD') }));
    await waitState(orderId, 'RECORDED');
    expect((await view(orderId)).adjustments).toHaveLength(0);
  });
});
