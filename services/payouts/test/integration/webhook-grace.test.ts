import { freePort } from '@postsale/runtime';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { payoutBatchEvent } from '@postsale/sandbox';
import { payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

/**
 * A payouts service whose PayPal fake settles only when told and sends no webhook of its own (the webhook is
 * registered, so the service waits for webhooks), started for the describe block it is called in.
 */
function payoutsWithSilentPayPal(webhookId: string, env: Record<string, string>): () => PayoutsUnderTest {
  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest({
      fake: { processAfterMs: Infinity },
      prepare: (f) => f.registerWebhook(webhookId),
      env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1', PAYOUTS_RECONCILE_INTERVAL_MS: '600000', ...env },
    });
  });
  afterAll(async () => {
    await under?.stop();
  });
  return () => under;
}

/** A sale whose two payouts PayPal accepted in one batch (SUBMITTED): its order and batch ids. */
async function saleSubmitted({ service, publish }: PayoutsUnderTest, amounts: { commissionMinor: number; netMinor: number }) {
  const sellerId = uniqueId('s-');
  const orderId = uniqueId('o-');
  expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
  await publish.sale(saleRecorded({ orderId, sellerId, ...amounts }));
  await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SUBMITTED' }), { description: 'both payouts submitted' });
  const { batch_id: batchId } = await service.ctx.db('payout_intents').where({ order_id: orderId, recipient: 'SELLER' }).first('batch_id');
  return { orderId, batchId: batchId as string };
}

/**
 * With PayPal's webhooks configured, a batch is not checked at PayPal right after its acceptance (a real batch is still
 * PENDING then): its items' webhooks bring the outcomes and close the batch they finish. A check is the fallback, once
 * PAYOUTS_WEBHOOK_GRACE_MS has passed since the acceptance or since a batch webhook.
 */
describe('a batch whose items PayPal reports by webhook', () => {
  const webhookId = uniqueId('WH-GRACE-');
  let under: PayoutsUnderTest;

  beforeAll(async () => {
    // the fake POSTs its item and batch webhooks to the service, as PayPal does once the webhook is configured
    const port = await freePort();
    under = await startPayoutsUnderTest({
      fake: { webhookUrl: `http://127.0.0.1:${port}/webhooks/paypal`, webhookId },
      prepare: (f) => f.registerWebhook(webhookId),
      // a grace no test waits out: a check during the test would be the immediate check this change removed
      env: { PORT: String(port), PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1', PAYOUTS_WEBHOOK_GRACE_MS: '600000' },
    });
  });
  afterAll(async () => {
    await under?.stop();
  });

  it('when the items\' webhooks report every item paid, then both payouts are SENT and the batch is closed by them, never checked at PayPal', async () => {
    const { service, publish, fake } = under;
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 410, netMinor: 1390 }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent by their webhooks' });
    const { db } = service.ctx;
    const { batch_id: batchId } = await db('payout_intents').where({ order_id: orderId, recipient: 'SELLER' }).first('batch_id');
    const batch = await waitFor(async () => {
      const row = await db('payout_batches').where({ id: batchId }).first('status', 'last_checked_at', 'accepted_at', 'next_check_at', 'paypal_batch_id');
      return row.status === 'COMPLETED' ? row : undefined;
    }, { description: 'the batch closed' });
    expect(batch.last_checked_at).toBeNull();
    // the check it would have had, had the webhooks not come: the grace after its acceptance
    expect(new Date(batch.next_check_at).getTime() - new Date(batch.accepted_at).getTime()).toBeGreaterThanOrEqual(599_000);
    const history = await db('intent_history').where({ order_id: orderId, to_status: 'SENT' }).pluck('cause');
    expect(history).toHaveLength(2);
    for (const cause of history) expect(cause).toMatch(/^PayPal webhook PAYMENT\.PAYOUTS-ITEM\.SUCCEEDED/);
    // PayPal's batch webhook came too (accepted, 200) and found nothing left to check
    await waitFor(() => fake.webhookDeliveries().find((d) => d.eventType === 'PAYMENT.PAYOUTSBATCH.SUCCESS' && d.status === 200), { description: 'the batch webhook answered' });
    expect(await db('payout_batches').where({ id: batchId }).first('status', 'last_checked_at')).toEqual({ status: 'COMPLETED', last_checked_at: null });
  });
});

describe('a batch whose items\' webhooks never come', () => {
  // checks after the first are minutes apart
  const webhookId = uniqueId('WH-LOST-');
  const payouts = payoutsWithSilentPayPal(webhookId, { PAYOUTS_WEBHOOK_GRACE_MS: '1500' });

  it('when the grace passes, then the batch is checked at PayPal; when PayPal\'s batch webhook comes, then it is checked again within the grace and its items move', async () => {
    const under = payouts();
    const { service, fake } = under;
    const { orderId, batchId } = await saleSubmitted(under, { commissionMinor: 420, netMinor: 1400 });
    const { db } = service.ctx;
    // the first check comes once the grace has passed (both times are Postgres's)
    const first = await waitFor(async () => {
      const row = await db('payout_batches').where({ id: batchId }).first('accepted_at', 'last_checked_at', 'paypal_batch_id', 'status');
      return row.last_checked_at ? row : undefined;
    }, { timeoutMs: 20_000, description: 'the batch checked once the grace passed' });
    expect(new Date(first.last_checked_at).getTime() - new Date(first.accepted_at).getTime()).toBeGreaterThanOrEqual(1500);
    expect(first.status).toBe('ACCEPTED'); // PayPal had not settled it yet

    // PayPal settles the batch and says so with a batch webhook only (its header, no items): the open batch is checked
    // within the grace, not after the reconcile interval (ten minutes here)
    fake.processPayouts();
    const batchWebhook = payoutBatchEvent('SUCCESS', { batch_header: { payout_batch_id: first.paypal_batch_id, batch_status: 'SUCCESS' } });
    const sentAt = Date.now();
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(batchWebhook, { webhookId }))).status).toBe(200);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { timeoutMs: 20_000, description: 'both sent by the check the batch webhook brought forward' });
    expect(Date.now() - sentAt).toBeLessThan(60_000);
    await waitFor(async () => (await db('payout_batches').where({ id: batchId }).first('status')).status === 'COMPLETED', { description: 'the batch closed by that check' });

    // a batch webhook naming no batch of ours changes nothing and is still acknowledged
    const unknown = payoutBatchEvent('SUCCESS', { batch_header: { payout_batch_id: 'NOTOURS123' } });
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(unknown, { webhookId }))).status).toBe(200);
    // and one whose batch id is not an id is refused with the webhook's own code
    const bad = payoutBatchEvent('SUCCESS', { batch_header: { payout_batch_id: 'not an id!' } });
    const refused = await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(bad, { webhookId }));
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'INVALID_WEBHOOK' } });
  });
});

describe('a batch webhook for a batch whose check is due within the grace already', () => {
  // a grace longer than the test
  const webhookId = uniqueId('WH-SOON-');
  const payouts = payoutsWithSilentPayPal(webhookId, { PAYOUTS_WEBHOOK_GRACE_MS: '600000' });

  it('when it comes, then the batch row is not written (no commit); when the check is due later than the grace, then it is brought forward', async () => {
    const under = payouts();
    const { service, fake } = under;
    const { batchId } = await saleSubmitted(under, { commissionMinor: 430, netMinor: 1410 });
    const { db } = service.ctx;
    // xmin: the transaction that wrote the row's current version (a write, even of the same values, changes it)
    const version = async () => db('payout_batches').where({ id: batchId }).first(db.raw('xmin::text as xmin'), 'next_check_at', 'paypal_batch_id', 'status');
    const accepted = await version();
    expect(accepted.status).toBe('ACCEPTED');
    const batchWebhook = () => fake.signedWebhook(payoutBatchEvent('SUCCESS', { batch_header: { payout_batch_id: accepted.paypal_batch_id, batch_status: 'PROCESSING' } }), { webhookId });

    // due at acceptance + grace, which is sooner than now + grace: nothing to write
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, batchWebhook())).status).toBe(200);
    expect(await version()).toEqual(accepted);

    // due an hour from now (as after a check that found it pending): brought within the grace, written once
    await db('payout_batches').where({ id: batchId }).update({ next_check_at: db.raw("now() + interval '1 hour'") });
    const later = await version();
    const sentAt = Date.now();
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, batchWebhook())).status).toBe(200);
    const forward = await version();
    expect(forward.xmin).not.toBe(later.xmin);
    expect(new Date(forward.next_check_at).getTime()).toBeLessThanOrEqual(sentAt + 600_000 + 5_000);
    expect(new Date(forward.next_check_at).getTime()).toBeGreaterThan(sentAt + 500_000);
  });
});
