import { loadConfig, startService, type RunningService } from '@postsale/runtime';
import { testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { configSchema } from '../../src/config';
import { payoutsService } from '../../src/service';
import { ADMIN, PLATFORM, startPayoutsUnderTest, type PayoutsUnderTest, payoutsWithStatus, putPayee, saleRecorded, TopicPublisher } from '../support/payouts-harness';

const LIVE = { PAYOUTS_MODE: 'live', PAYPAL_BASE_URL: 'https://api-m.paypal.com', PAYPAL_CLIENT_ID: 'live-id', PAYPAL_CLIENT_SECRET: 'live-secret' };

describe('payout modes', () => {
  it('when live mode has no platform payee, then the service refuses to start and says why', async () => {
    const env = testEnv('payouts', LIVE);
    await expect(startService(payoutsService, env)).rejects.toThrow(/PLATFORM_PAYEE_EMAIL.*PAYOUTS_MODE=live/);
    // the same configuration with the payee is accepted: the refusal is about the payee, nothing else
    expect(loadConfig(configSchema, { ...env, PLATFORM_PAYEE_EMAIL: PLATFORM }).PAYOUTS_MODE).toBe('live');
  });

  it('when live mode points at a sandbox or loopback PayPal, then it refuses to start', () => {
    for (const url of ['http://127.0.0.1:8080', 'https://api-m.sandbox.paypal.com', 'https://localhost']) {
      expect(() => loadConfig(configSchema, testEnv('payouts', { ...LIVE, PLATFORM_PAYEE_EMAIL: PLATFORM, PAYPAL_BASE_URL: url }))).toThrow(/PAYPAL_BASE_URL/);
    }
  });

  it('when no mode is given, then the service refuses to start (no implicit default)', () => {
    expect(() => loadConfig(configSchema, testEnv('payouts'))).toThrow(/PAYOUTS_MODE/);
  });

  describe('dry-run', () => {
    let fake: PayPalFake;
    let service: RunningService;
    let publish: TopicPublisher;
    let under: PayoutsUnderTest;
    beforeAll(async () => {
      under = await startPayoutsUnderTest({ env: { PAYOUTS_MODE: 'dry-run' } });
      ({ fake, service, publish } = under);
    });
    afterAll(() => under?.stop());

    it('when a sale is recorded in dry-run, then what would be paid is recorded and PayPal is never called', async () => {
      const sellerId = uniqueId('s-');
      const orderId = uniqueId('o-');
      await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
      await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 250, netMinor: 1000 }));
      const payouts = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'DRY_RUN', SELLER: 'DRY_RUN' }), { description: 'dry-run recorded' });
      expect(payouts.map((p) => [p.recipient, p.items[0]?.amount.amountMinor, p.items[0]?.status])).toEqual([['PLATFORM', 250, 'DRY_RUN'], ['SELLER', 1000, 'DRY_RUN']]);
      expect(fake.requests).toHaveLength(0);
      expect(fake.paidItems()).toHaveLength(0);
    });
  });

  describe('PayPal payout webhooks', () => {
    const webhookId = 'WH-PAYOUTS-TEST-0001';
    let fake: PayPalFake;
    let service: RunningService;
    let publish: TopicPublisher;
    let under: PayoutsUnderTest;
    beforeAll(async () => {
      under = await startPayoutsUnderTest({
        fake: { processAfterMs: Number.POSITIVE_INFINITY }, // items stay PENDING unless told
        prepare: (f) => f.registerWebhook(webhookId),
        env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1' },
      });
      ({ fake, service, publish } = under);
    });
    afterAll(() => under?.stop());

    it('when PayPal signs an item SUCCEEDED webhook, then that payout is sent; a forged one is refused and changes nothing', async () => {
      const sellerId = uniqueId('s-');
      const orderId = uniqueId('o-');
      const sellerEmail = `${sellerId}@sellers.test`;
      await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' });
      await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 100, netMinor: 900 }));
      await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SUBMITTED' }), { description: 'submitted' });
      const item = await waitFor(() => fake.paidItems().find((i) => i.receiver === sellerEmail));
      const resource = {
        payout_item_id: item.payoutItemId, transaction_id: 'TX123456789', transaction_status: 'SUCCESS', payout_batch_id: item.payoutBatchId,
        sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
      };
      const url = `${service.url}/webhooks/paypal`;

      const forged = fake.signedWebhook(fake.payoutItemEvent('SUCCEEDED', resource), { webhookId: 'WH-SOMEONE-ELSE' });
      expect((await fake.deliverWebhook(url, forged)).status).toBe(401);
      const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: forged.rawBody });
      expect(unsigned.status).toBe(401);
      expect((await payoutsWithStatus(service, orderId, { SELLER: 'SUBMITTED' })())).toBeTruthy();

      const genuine = fake.signedWebhook(fake.payoutItemEvent('SUCCEEDED', resource), { webhookId });
      const delivered = await fake.deliverWebhook(url, genuine);
      expect(delivered.status).toBe(200);
      const after = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SENT' }), { description: 'seller sent by webhook' });
      expect(after.find((p) => p.recipient === 'SELLER')!.items[0]).toMatchObject({ status: 'SUCCESS' });
      // the same delivery again is harmless
      expect((await fake.deliverWebhook(url, genuine)).status).toBe(200);
      const integrity = await (await fetch(`${service.url}/admin/integrity`, { headers: ADMIN })).json();
      expect(integrity.violations).toEqual([]); // submitted minutes ago: within its deadline
    });
  });
});
