import { Streams, type PayoutEvent } from '@postsale/contracts';
import { type RunningService } from '@postsale/runtime';
import { collectTopic, uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { ADMIN, orderPayouts, startPayoutsUnderTest, type PayoutsUnderTest, payoutsWithStatus, putPayee, saleRecorded, saleReversed, TopicPublisher } from '../support/payouts-harness';

/**
 * PayPal's real answers to a payout create (external-apis.md "Corrections"): a duplicate sender_batch_id in PayPal's
 * wording is adopted, any other refusal of a re-post goes to review, a refusal of a first post holds the intents.
 */
describe("payouts on PayPal's real refusals", () => {
  let fake: PayPalFake;
  let service: RunningService;
  let publish: TopicPublisher;
  let under: PayoutsUnderTest;
  const webhookId = 'WH-PAYOUTS-REFUSALS-0001';
  beforeAll(async () => {
    under = await startPayoutsUnderTest({ prepare: (f) => f.registerWebhook(webhookId), env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1' } });
    ({ fake, service, publish } = under);
  });
  afterAll(() => under?.stop());
  afterEach(() => {
    fake.clearFailures();
    fake.clearPayoutOutcomes();
  });

  const itemsFor = (orderId: string) => fake.paidItems().filter((i) => i.note?.endsWith(`order ${orderId}`));
  const postsTo = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payments/payouts').length;
  const history = async (orderId: string) => {
    const res = await fetch(`${service.url}/admin/orders/${orderId}`, { headers: ADMIN });
    return ((await res.json()) as { history: Array<{ to: string; cause: string }> }).history;
  };

  async function newSale(commissionMinor: number, netMinor: number) {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
    const sale = saleRecorded({ orderId, sellerId, commissionMinor, netMinor });
    await publish.sale(sale);
    return { sellerId, orderId, sale };
  }

  it("when a re-post is refused as a duplicate in PayPal's wording, then the original batch is adopted: one batch, both SENT, no FAILED", async () => {
    const events = await collectTopic<PayoutEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.payouts));
    try {
      fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });
      const before = postsTo();
      const { orderId } = await newSale(150, 990);
      await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'payouts sent after the lost answer' });
      expect(postsTo() - before).toBeGreaterThanOrEqual(2); // re-posted and answered "already exists"
      const batches = fake.payoutBatches().filter((b) => b.items.some((i) => i.note?.endsWith(`order ${orderId}`)));
      expect(batches).toHaveLength(1);
      expect(itemsFor(orderId)).toHaveLength(2);
      expect((await history(orderId)).map((h) => h.to)).not.toContain('FAILED');
      const mine = await waitFor(() => {
        const m = events.messages.filter((e) => e.event.orderId === orderId);
        return m.filter((e) => e.event.type === 'PayoutSent').length === 2 ? m : undefined;
      }, { description: 'two PayoutSent' });
      expect(mine.filter((e) => e.event.type === 'PayoutFailed')).toHaveLength(0);
    } finally {
      await events.stop();
    }
  });

  it.each([
    ['no-link', 'PAYPAL_DUPLICATE_WITHOUT_LINK'],
    ['other-batch', 'PAYPAL_DUPLICATE_NOT_OURS'],
  ] as const)("when a re-post is answered as a duplicate with %s, then the payouts need review (%s) with PayPal's name and debug_id, never FAILED, never paid again", async (answer, code) => {
    // another sale's batch exists first, so 'other-batch' has a batch of a different sender_batch_id to link
    const other = await newSale(100, 100);
    await waitFor(payoutsWithStatus(service, other.orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'another sale paid' });
    fake.answerDuplicates(answer);
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    const before = postsTo();
    const { orderId } = await newSale(170, 830);
    const payouts = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'NEEDS_REVIEW', SELLER: 'NEEDS_REVIEW' }), { description: `both in review after '${answer}'` });
    expect(payouts.map((p) => (p as unknown as { review: { reason: string } }).review.reason)).toEqual([code, code]);
    expect(postsTo() - before).toBe(2); // the lost first post and one re-post; no further re-post once in review
    const causes = (await history(orderId)).filter((h) => h.to === 'NEEDS_REVIEW').map((h) => h.cause);
    expect(causes).toHaveLength(2);
    for (const cause of causes) expect(cause).toMatch(/USER_BUSINESS_ERROR \(HTTP 400, debug_id [0-9a-f]{6,}\): Batch with given sender_batch_id already exists/);
    expect((await history(orderId)).map((h) => h.to)).not.toContain('FAILED');
    // the first post's batch is the only one: nothing paid again, and the other sale's batch was not adopted
    expect(fake.payoutBatches().filter((b) => b.items.some((i) => i.note?.endsWith(`order ${orderId}`)))).toHaveLength(1);
    expect(itemsFor(orderId)).toHaveLength(2);
    const row = await service.ctx.db('payout_batches').where({ sender_batch_id: fake.paidItems().find((i) => i.note?.endsWith(`order ${orderId}`))!.senderBatchId }).first();
    expect(row).toMatchObject({ status: 'NEEDS_REVIEW', paypal_batch_id: null });
    // a later batcher run (another sale) does not re-post or pay it
    const later = await newSale(100, 100);
    await waitFor(payoutsWithStatus(service, later.orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'a later sale paid' });
    expect((await orderPayouts(service, orderId)).map((p) => p.status)).toEqual(['NEEDS_REVIEW', 'NEEDS_REVIEW']);
    expect(itemsFor(orderId)).toHaveLength(2);
  });

  it('when a re-post after an unknown outcome is refused with AUTHORIZATION_ERROR, then the payouts need review with the name and debug_id, never FAILED', async () => {
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    fake.refusePayoutCreates('AUTHORIZATION_ERROR', { on: 'repost' });
    const { orderId } = await newSale(210, 790);
    const payouts = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'NEEDS_REVIEW', SELLER: 'NEEDS_REVIEW' }), { description: 'both in review' });
    expect(payouts.map((p) => (p as unknown as { review: { reason: string } }).review.reason)).toEqual(['PAYPAL_REFUSED_REPOST:AUTHORIZATION_ERROR', 'PAYPAL_REFUSED_REPOST:AUTHORIZATION_ERROR']);
    const causes = (await history(orderId)).filter((h) => h.to === 'NEEDS_REVIEW').map((h) => h.cause);
    expect(causes).toHaveLength(2);
    for (const cause of causes) expect(cause).toMatch(/AUTHORIZATION_ERROR \(HTTP 403, debug_id [0-9a-f]{6,}\)/);
    expect((await history(orderId)).map((h) => h.to)).not.toContain('FAILED');
    expect(fake.payoutBatches().filter((b) => b.items.some((i) => i.note?.endsWith(`order ${orderId}`)))).toHaveLength(1);
    // the reconciliation poller does not pay it again on its own either
    const integrity = (await (await fetch(`${service.url}/admin/integrity`, { headers: ADMIN })).json()) as { violations: Array<{ orderId: string; reason: string }> };
    expect(integrity.violations.filter((v) => v.orderId === orderId).map((v) => v.reason)).toEqual([
      expect.stringContaining('PAYPAL_REFUSED_REPOST:AUTHORIZATION_ERROR'), expect.stringContaining('PAYPAL_REFUSED_REPOST:AUTHORIZATION_ERROR'),
    ]);
  });

  it('when a sale is reversed while its payout is under review and PayPal later reports the item paid, then the reversal becomes a clawback', async () => {
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    fake.refusePayoutCreates('AUTHORIZATION_ERROR', { on: 'repost' });
    const { sellerId, orderId, sale } = await newSale(200, 800);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'NEEDS_REVIEW', SELLER: 'NEEDS_REVIEW' }), { description: 'in review' });
    await publish.sale(saleReversed(sale));
    await waitFor(async () => (await history(orderId)).some((h) => /in flight at PayPal/.test(h.cause) && /seller share/.test(h.cause)), { description: 'reversal recorded as pending' });
    // the first post had reached PayPal: its item succeeds and PayPal says so by webhook
    const item = fake.paidItems().find((i) => i.receiver === `${sellerId}@sellers.test`)!;
    const resource = {
      payout_item_id: item.payoutItemId, transaction_id: 'TX-REVIEW-1', transaction_status: 'SUCCESS', payout_batch_id: item.payoutBatchId,
      sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
    };
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(fake.payoutItemEvent('SUCCEEDED', resource), { webhookId }))).status).toBe(200);
    await waitFor(payoutsWithStatus(service, orderId, { SELLER: 'SENT' }), { description: 'seller payout sent' });
    const balance = await waitFor(async () => {
      const b = (await (await fetch(`${service.url}/admin/sellers/${sellerId}/balance`, { headers: ADMIN })).json()) as { balances: Array<{ currency: string; clawbackOwedMinor: number }> };
      return b.balances.find((x) => x.currency === 'USD' && x.clawbackOwedMinor > 0);
    }, { description: 'clawback owed' });
    expect(balance.clawbackOwedMinor).toBe(800);
  });

  it('when the first post is refused with INSUFFICIENT_FUNDS, then the intents are held with that reason until an operator retries them', async () => {
    fake.setBalance('USD', '0.50');
    const { orderId } = await newSale(300, 1200);
    const held = await waitFor(async () => {
      const p = await orderPayouts(service, orderId);
      return p.length === 2 && p.every((x) => x.status === 'HELD') ? p : undefined;
    }, { description: 'held after the refusal' });
    expect(held.map((p) => p.hold?.reason)).toEqual(['PAYPAL_REFUSED:INSUFFICIENT_FUNDS', 'PAYPAL_REFUSED:INSUFFICIENT_FUNDS']);
    expect(itemsFor(orderId)).toHaveLength(0);
    const refusedCause = (await history(orderId)).find((h) => h.to === 'HELD' && /INSUFFICIENT_FUNDS/.test(h.cause))?.cause;
    expect(refusedCause).toMatch(/INSUFFICIENT_FUNDS \(HTTP 422, debug_id [0-9a-f]+\): Sender does not have sufficient funds/);

    // funds come back and another sale is paid: the batcher ran, but the held intents did not go out by themselves
    fake.setBalance('USD', undefined);
    const other = await newSale(100, 100);
    await waitFor(payoutsWithStatus(service, other.orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'another sale paid' });
    expect((await orderPayouts(service, orderId)).map((p) => p.status)).toEqual(['HELD', 'HELD']);

    for (const p of held) expect((await fetch(`${service.url}/admin/payouts/${p.id}/retry`, { method: 'POST', headers: ADMIN })).status).toBe(202);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'paid after the operator retried' });
    expect(itemsFor(orderId).map((i) => i.amount.value).sort()).toEqual(['12.00', '3.00']);
  });

  it.each([
    ['SENDER_RESTRICTED', 403],
    ['NON_HOLDING_CURRENCY', 400],
    ['VALIDATION_ERROR', 400],
  ] as const)('when the first post is refused with %s (HTTP %d), then the intents are held with that name and nothing is paid', async (name, status) => {
    fake.refusePayoutCreates(name, { on: 'first' });
    const { orderId } = await newSale(120, 880);
    const held = await waitFor(async () => {
      const p = await orderPayouts(service, orderId);
      return p.length === 2 && p.every((x) => x.status === 'HELD') ? p : undefined;
    }, { description: `held after ${name}` });
    expect(held.map((p) => p.hold?.reason)).toEqual([`PAYPAL_REFUSED:${name}`, `PAYPAL_REFUSED:${name}`]);
    expect(itemsFor(orderId)).toHaveLength(0);
    expect((await history(orderId)).filter((h) => h.to === 'HELD' && h.cause.includes(`${name} (HTTP ${status}, debug_id`))).toHaveLength(2);
  });

  it('when every item of a batch fails and PayPal ends the batch DENIED, then each payout is FAILED and still owed, nothing is marked sent', async () => {
    const { orderId } = await newSale(110, 890);
    fake.setPayoutOutcome((i) => i.note?.endsWith(`order ${orderId}`) === true, 'FAILED', { errorName: 'RECEIVER_ACCOUNT_INVALID' });
    const failed = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'FAILED', SELLER: 'FAILED' }), { description: 'both failed' });
    expect(failed.map((p) => p.payable.amountMinor)).toEqual([110, 890]);
    const batch = fake.payoutBatches().find((b) => b.items.some((i) => i.note?.endsWith(`order ${orderId}`)))!;
    expect(batch.batchStatus).toBe('DENIED');
    const row = await service.ctx.db('payout_batches').where({ paypal_batch_id: batch.payoutBatchId }).first();
    expect(row.paypal_batch_status).toBe('DENIED');
  });

  it('when the first post answers 500 INTERNAL_ERROR, then it is re-posted with the same sender_batch_id and paid once', async () => {
    fake.refusePayoutCreates('INTERNAL_ERROR', { times: 1 });
    const before = postsTo();
    const { orderId } = await newSale(130, 870);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'paid after the 500' });
    expect(postsTo() - before).toBeGreaterThanOrEqual(2);
    expect(itemsFor(orderId)).toHaveLength(2);
  });
});
