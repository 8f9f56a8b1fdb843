import { type RunningService } from '@postsale/runtime';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest, type TopicPublisher } from '../support/payouts-harness';

interface Statement { sql: string; bindings: unknown[]; txId: string | undefined }

/**
 * What one order costs payouts in statements (issue 15): the history rides on the intent's own insert or update, a
 * sale's two intents share one read of the payee and milestones, a batch locks and reads its payees' balances once
 * and writes its items and moves its intents in one statement each, and PayPal's item answers for a batch whose PayPal id is known do not write to the batch. Counted by statement text
 * on the service's own pool; only statements this order's work sends are counted (bindings carry its ids).
 */
describe('statements per order', () => {
  const webhookId = uniqueId('WH-STMT-');
  let under: PayoutsUnderTest;
  let fake: PayPalFake;
  let service: RunningService;
  let publish: TopicPublisher;
  const statements: Statement[] = [];
  const listen = (q: { sql?: string; bindings?: unknown[]; __knexTxId?: string }) => {
    statements.push({ sql: q.sql ?? '', bindings: q.bindings ?? [], txId: q.__knexTxId });
  };

  beforeAll(async () => {
    under = await startPayoutsUnderTest({ prepare: (f) => f.registerWebhook(webhookId), env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1' } });
    ({ fake, service, publish } = under);
    service.ctx.db.on('query', listen);
  });
  afterAll(async () => {
    service?.ctx.db.off('query', listen);
    await under?.stop();
  });

  const mentioning = (text: RegExp, ...ids: string[]) =>
    statements.filter((s) => text.test(s.sql) && ids.every((id) => s.bindings.some((b) => (Array.isArray(b) ? b.some((x) => String(x).includes(id)) : String(b).includes(id)))));

  it('when a sale is paid and PayPal reports its items, then history, payee, balance and batch statements are the fewest that keep the guarantees', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    statements.length = 0;
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 310, netMinor: 1245 }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent' });
    const intents = await service.ctx.db('payout_intents').where({ order_id: orderId }).select('id', 'recipient', 'batch_id');
    expect(intents).toHaveLength(2);
    expect(new Set(intents.map((i) => i.batch_id)).size).toBe(1); // claimed together: one batch
    const batchId = String(intents[0]!.batch_id);

    // every state change wrote its history row (created, submitted, sent for each) and none took a statement of its own
    const history = await service.ctx.db('intent_history').where({ order_id: orderId }).orderBy('id').select('to_status');
    expect(history.map((h) => h.to_status).sort()).toEqual(['DUE', 'DUE', 'SENT', 'SENT', 'SUBMITTED', 'SUBMITTED']);
    expect(statements.filter((s) => /^insert into "intent_history"/.test(s.sql))).toEqual([]);

    // the seller's payee: once for the sale's two decisions (with the order's milestones), once for the batch's receivers
    const payeeReads = mentioning(/\bpayees\b/, sellerId).filter((s) => s.txId !== undefined);
    expect(payeeReads).toHaveLength(2);
    expect(mentioning(/order_milestones/, orderId).filter((s) => /^select/.test(s.sql))).toHaveLength(1);

    // the batch locks both parties' balances in one statement and reads them in one
    const locks = mentioning(/pg_advisory_xact_lock/, `balance:seller:${sellerId}:USD`);
    expect(locks).toHaveLength(1);
    expect(locks[0]!.bindings).toEqual([[`balance:platform:USD`, `balance:seller:${sellerId}:USD`].sort()]);
    expect(mentioning(/from "balances"/, `seller:${sellerId}`)).toHaveLength(1);

    // the batch row, its items and the intents' move to SUBMITTED: one statement each, and the batch is not read back
    expect(mentioning(/^insert into "payout_items"/, batchId)).toHaveLength(1);
    expect(mentioning(/update "payout_intents"/, batchId, ...intents.map((i) => String(i.id)))).toHaveLength(1);
    expect(mentioning(/^select \* from "payout_batches" where "id"/, batchId)).toEqual([]);

    // an item webhook of this accepted batch: applied and recorded in one transaction, the batch row untouched
    const item = fake.paidItems().find((i) => i.receiver === `${sellerId}@sellers.test`)!;
    const resource = {
      payout_item_id: item.payoutItemId, transaction_id: 'TX-STMT-1', transaction_status: 'SUCCESS', payout_batch_id: item.payoutBatchId,
      sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
    };
    const event = fake.payoutItemEvent('SUCCEEDED', resource);
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(event, { webhookId }))).status).toBe(200);
    const recorded = mentioning(/^insert into "webhook_events"/, String(event.id));
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.txId).toBeDefined();
    const itemRead = mentioning(/from "payout_items"/, String(item.senderItemId)).filter((s) => s.txId === recorded[0]!.txId);
    expect(itemRead).toHaveLength(1); // the same transaction as the item it applied
    expect(mentioning(/update "payout_batches" set "paypal_batch_id"/, batchId)).toEqual([]);
  });
});
