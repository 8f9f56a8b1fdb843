import { type RunningService } from '@postsale/runtime';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { PLATFORM, payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest, type TopicPublisher } from '../support/payouts-harness';

interface Statement { sql: string; bindings: unknown[]; txId: string | undefined }

/**
 * What one order costs payouts in statements (issue 15): the history rides on the intent's own insert or update, a
 * sale's two intents share one read of the payee and milestones, a batch locks and reads its payees' balances once
 * and writes its items and moves its intents in one statement each, PayPal's item answers for a batch whose PayPal
 * id is known do not write to the batch, and a webhook that repeats what is stored needs no transaction. Counted by
 * statement text on the service's own pool; only statements this order's work sends are counted (bindings carry its
 * ids).
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
    expect(mentioning(/order_milestones/, orderId).filter((s) => /^select/.test(s.sql) && s.txId !== undefined)).toHaveLength(1);

    // the batch locks both parties' balances in one statement and reads them in one
    const locks = mentioning(/pg_advisory_xact_lock/, `balance:seller:${sellerId}:USD`);
    expect(locks).toHaveLength(1);
    expect(locks[0]!.bindings).toEqual([[`balance:platform:USD`, `balance:seller:${sellerId}:USD`].sort()]);
    expect(mentioning(/from "balances"/, `seller:${sellerId}`)).toHaveLength(1);

    // the batch row, its items and the intents' move to SUBMITTED: one statement each, and the batch is not read back
    expect(mentioning(/^insert into "payout_items"/, batchId)).toHaveLength(1);
    expect(mentioning(/update "payout_intents"/, batchId, ...intents.map((i) => String(i.id)))).toHaveLength(1);
    expect(mentioning(/^select \* from "payout_batches" where "id"/, batchId)).toEqual([]);

    // PayPal's item webhooks for this accepted batch never write to the batch row
    const webhookFor = (receiver: string, type: 'SUCCEEDED' | 'RETURNED', transactionStatus: string) => {
      const item = fake.paidItems().find((i) => i.receiver === receiver && i.note?.endsWith(`order ${orderId}`))!;
      return fake.payoutItemEvent(type, {
        payout_item_id: item.payoutItemId, transaction_id: `TX-${type}`, transaction_status: transactionStatus, payout_batch_id: item.payoutBatchId,
        sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
      });
    };
    const deliver = async (event: ReturnType<typeof webhookFor>) => {
      const from = statements.length;
      expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(event, { webhookId }))).status).toBe(200);
      const sent = statements.slice(from);
      const senderItemId = String((event.resource as { payout_item: { sender_item_id: string } }).payout_item.sender_item_id);
      const carrying = (id: string) => sent.filter((st) => st.bindings.some((b) => (Array.isArray(b) ? b.map(String) : [String(b)]).includes(id)));
      return { recorded: carrying(String(event.id)).filter((st) => /^insert into "webhook_events"/.test(st.sql)), itemReads: carrying(senderItemId).filter((st) => /from "payout_items"/.test(st.sql)) };
    };

    // one that repeats what the reconciler already applied: one plain read, the event recorded on its own, no transaction
    const repeat = await deliver(webhookFor(`${sellerId}@sellers.test`, 'SUCCEEDED', 'SUCCESS'));
    expect(repeat.recorded).toHaveLength(1);
    expect(repeat.recorded[0]!.txId).toBeUndefined();
    expect(repeat.itemReads.length).toBeGreaterThan(0);
    expect(repeat.itemReads.filter((st) => /for update/.test(st.sql) || st.txId !== undefined)).toEqual([]);

    // one that changes the item (the platform's payment came back): applied on the locked item and recorded in the same transaction
    const returned = await deliver(webhookFor(PLATFORM, 'RETURNED', 'RETURNED'));
    expect(returned.recorded).toHaveLength(1);
    expect(returned.recorded[0]!.txId).toBeDefined();
    expect(returned.itemReads.filter((st) => /for update/.test(st.sql)).map((st) => st.txId)).toEqual([returned.recorded[0]!.txId]);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'RETURNED' }), { description: 'platform payout returned' });

    expect(mentioning(/update "payout_batches" set "paypal_batch_id"/, batchId)).toEqual([]);
  });
});
