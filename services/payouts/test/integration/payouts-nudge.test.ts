import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

describe('payouts in sets: the batcher is nudged when intents become due and lingers to fill a batch', () => {
  let under: PayoutsUnderTest;
  beforeAll(async () => {
    // a batching interval far longer than the test: only the nudge after the commit can start these runs
    under = await startPayoutsUnderTest({ env: { PAYOUTS_BATCH_INTERVAL_MS: '600000', PAYOUT_BATCH_LINGER_MS: '300' } });
  });
  afterAll(() => under?.stop());

  it('when sales are recorded close together, then they are paid without waiting for the interval, in batches rather than one per intent', async () => {
    const sellerId = uniqueId('s-');
    const orders = [uniqueId('o-'), uniqueId('o-')];
    expect((await putPayee(under.service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    const postsBefore = under.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length;
    for (const orderId of orders) await under.publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 100, netMinor: 400 }));
    for (const orderId of orders) {
      await waitFor(payoutsWithStatus(under.service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: `order ${orderId} paid after a nudge` });
    }
    // four intents, at most two batches (the two sales may be consumed either side of one linger), never one per intent
    const posts = under.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length - postsBefore;
    expect(posts).toBeGreaterThanOrEqual(1);
    expect(posts).toBeLessThanOrEqual(2);
  });
});
