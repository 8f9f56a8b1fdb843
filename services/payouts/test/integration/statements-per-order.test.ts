import { type RunningService } from '@postsale/runtime';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { payoutBatchEvent, type PayPalFake } from '@postsale/sandbox';
import { PayoutsRepository } from '../../src/db/payouts.repository';
import type { PayoutItem } from '../../src/domain/records';
import { PLATFORM, payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest, type TopicPublisher } from '../support/payouts-harness';

interface Statement { sql: string; bindings: unknown[]; txId: string | undefined }

/**
 * What one order costs payouts in statements (issue 15): the history rides on the intent's own insert or update, a
 * sale's two intents share one read of the payee and milestones, a batch locks and reads its payees' balances once
 * and writes its items and moves its intents in one statement each, PayPal's item answers for a batch whose PayPal
 * id is known do not write to the batch, a webhook that repeats what is stored needs no transaction, and one that
 * changes an item moves it as read, locks and moves its intent and records the webhook in one statement (no locked
 * re-read of the item, no record of its own), one that repeats what is stored is recorded by the statement that reads
 * the item (one statement in all), and the reconciler's page moves all its items and their intents the
 * same way (no locked read of the items or the intents, no update per item). Counted by statement text on the
 * service's own pool; only statements this order's work sends are counted (bindings carry its ids).
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

  /** PayPal's item webhook for the order's payment to `receiver` */
  const webhookFor = (orderId: string, receiver: string, type: 'SUCCEEDED' | 'RETURNED', transactionStatus: string) => {
    const item = fake.paidItems().find((i) => i.receiver === receiver && i.note?.endsWith(`order ${orderId}`))!;
    return fake.payoutItemEvent(type, {
      payout_item_id: item.payoutItemId, transaction_id: `TX-${type}`, transaction_status: transactionStatus, payout_batch_id: item.payoutBatchId,
      sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
    });
  };
  const deliverWebhook = async (event: ReturnType<typeof webhookFor>) =>
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(event, { webhookId }))).status).toBe(200);

  it('when a sale is paid and PayPal reports its items, then history, payee, balance and batch statements are the fewest that keep the guarantees', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    statements.length = 0;
    const sale = saleRecorded({ orderId, sellerId, commissionMinor: 310, netMinor: 1245 });
    await publish.sale(sale);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent' });
    const intents = await service.ctx.db('payout_intents').where({ order_id: orderId }).select('id', 'recipient', 'batch_id');
    expect(intents).toHaveLength(2);
    expect(new Set(intents.map((i) => i.batch_id)).size).toBe(1); // claimed together: one batch
    const batchId = String(intents[0]!.batch_id);

    // every state change wrote its history row (created, submitted, sent for each) and none took a statement of its own
    const history = await service.ctx.db('intent_history').where({ order_id: orderId }).orderBy('id').select('to_status');
    expect(history.map((h) => h.to_status).sort()).toEqual(['DUE', 'DUE', 'SENT', 'SENT', 'SUBMITTED', 'SUBMITTED']);
    expect(statements.filter((s) => /^insert into "intent_history"/.test(s.sql))).toEqual([]);

    // whether a reversal arrived before the sale is told by the intents' insert (after the order's lock, taken by the
    // sale's insert): no read of the sale's reversals of its own
    const saleId = sale.payload.saleId;
    expect(mentioning(/^with locked as materialized \(select pg_advisory_xact_lock\(hashtextextended\(.*insert into "sales"/s, `order:${orderId}`)).toHaveLength(1);
    expect(mentioning(/from reversals where sale_id/, saleId).filter((s) => /^with added as \(insert into "payout_intents"/.test(s.sql))).toHaveLength(1);
    expect(mentioning(/^select \* from "reversals"/, saleId)).toEqual([]);

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
    // its first post is counted by the batch's insert (was a write of its own before the call): one write of the batch
    // row around the call, the acceptance
    expect(mentioning(/^update "payout_batches" set "post_attempts"/, batchId)).toEqual([]);
    expect(await service.ctx.db('payout_batches').where({ id: batchId }).first('post_attempts')).toEqual({ post_attempts: 1 });
    expect(mentioning(/^update "payout_batches" set "status" = \$1, "paypal_batch_id"/, batchId)).toHaveLength(1);

    // the reconciler's page that found both items paid: both items, both intents (to SENT, with their history) and
    // their PayoutSent events in one statement; the items are not read again locked, their intents not locked on their
    // own, and no item is updated on its own (was: a locked read of the items, one of the intents, an update per item
    // and per intent: 10 statements in the transaction, then 5 with an outbox insert per event, now 3)
    const items = await service.ctx.db('payout_items').whereIn('intent_id', intents.map((i) => i.id)).orderBy('id').select('id');
    const pageMove = mentioning(/^with seen \(/, ...items.map((i) => String(i.id)));
    expect(pageMove).toHaveLength(1);
    const page = statements.filter((st) => st.txId === pageMove[0]!.txId);
    // ...and the check's record, which closes the batch once every item is final, rides on that transaction: no
    // commit of its own (was a write after the page's COMMIT)
    expect(page.map((st) => st.sql.slice(0, 40))).toEqual([
      'BEGIN;',
      'with seen (id, status, paypal_item_id, t',
      'update "payout_batches" set "paypal_batc',
      'COMMIT;',
    ]);
    expect(page[2]!.bindings.map(String)).toContain(batchId);
    // each event written by that statement, for its own intent's move
    expect(page[1]!.sql).toMatch(/update "payout_intents".*insert into outbox .* from after a join moved m/s);
    expect(page[1]!.bindings.filter((b) => b === 'PayoutSent')).toHaveLength(2);
    expect(mentioning(/^update "payout_items" set/, ...items.map((i) => String(i.id)))).toEqual([]);
    expect(mentioning(/from "payout_items" .* for update of "payout_items"/s, ...items.map((i) => String(i.id)))).toEqual([]);

    // the batch is closed by the statement that records its check, which tells whether every item is final: the
    // batch's items are not read for it
    await waitFor(async () => (await service.ctx.db('payout_batches').where({ id: batchId }).first('status')).status === 'COMPLETED', { description: 'batch completed' });
    expect(mentioning(/^update "payout_batches" set .*"status" = case when not exists \(select 1 from payout_items/s, batchId).length).toBeGreaterThan(0);
    expect(mentioning(/^select \* from "payout_items" where "batch_id" = \$1 order by/, batchId)).toEqual([]);

    // PayPal's item webhooks for this accepted batch never write to the batch row
    const deliver = async (event: ReturnType<typeof webhookFor>) => {
      const from = statements.length;
      await deliverWebhook(event);
      const sent = statements.slice(from);
      const senderItemId = String((event.resource as { payout_item: { sender_item_id: string } }).payout_item.sender_item_id);
      const carrying = (id: string) => sent.filter((st) => st.bindings.some((b) => (Array.isArray(b) ? b.map(String) : [String(b)]).includes(id)));
      // the statements that may record the webhook: the item's read (when the item is already as it says) and the move
      const recorded = carrying(String(event.id)).filter((st) => /insert into "?webhook_events"?/.test(st.sql));
      const inTransaction = recorded.at(-1)?.txId === undefined ? [] : sent.filter((st) => st.txId === recorded.at(-1)!.txId);
      return { recorded, itemReads: carrying(senderItemId).filter((st) => /from "payout_items"/.test(st.sql)), inTransaction, ofEvent: carrying(String(event.id)) };
    };

    // one that repeats what the reconciler already applied: one plain read that also records the event (was a read and
    // the record on its own), no transaction
    const repeated = webhookFor(orderId, `${sellerId}@sellers.test`, 'SUCCEEDED', 'SUCCESS');
    const repeat = await deliver(repeated);
    expect(await service.ctx.db('webhook_events').where({ event_id: repeated.id }).first('event_type')).toEqual({ event_type: repeated.event_type });
    expect(repeat.recorded).toHaveLength(1);
    expect(repeat.recorded[0]!.txId).toBeUndefined();
    expect(repeat.ofEvent).toEqual(repeat.recorded);
    expect(repeat.recorded[0]!.sql).toMatch(/^with incoming .*insert into webhook_events .* from "payout_items"/s);
    expect(repeat.itemReads.length).toBeGreaterThan(0);
    expect(repeat.itemReads.filter((st) => /for update/.test(st.sql) || st.txId !== undefined)).toEqual([]);

    // one that changes the item (the platform's payment came back): applied on the locked item and recorded by the same statement
    const returned = await deliver(webhookFor(orderId, PLATFORM, 'RETURNED', 'RETURNED'));
    // (the item's read records nothing: the item is not as the webhook says)
    expect(returned.recorded.map((st) => st.txId === undefined)).toEqual([true, false]);
    expect(returned.ofEvent).toEqual(returned.recorded);
    expect(returned.recorded[1]!.sql).toMatch(/^with seen \(.*update payout_items .*for update.*insert into webhook_events/s);
    // the item is read once, unlocked (the item is moved only if still as read, its intent locked and the webhook
    // recorded, in one statement): not read again locked, nor its intent locked on its own
    expect(returned.itemReads.length).toBeGreaterThan(0); // (a reconciler's page read may coincide)
    expect(returned.itemReads.filter((st) => st.txId !== undefined)).toEqual([]);
    const itemStatements = returned.inTransaction.filter((st) => /payout_items/.test(st.sql));
    expect(itemStatements).toEqual([returned.recorded[1]]);
    expect(returned.inTransaction.filter((st) => /^select \* from "payout_intents" where "id" in/.test(st.sql))).toEqual([]);
    // the whole transaction: the item moved, its intent locked and the webhook recorded; the intent moved (with its
    // history); its event (was 6 statements, with the webhook's record on its own)
    expect(returned.inTransaction.map((st) => st.sql.slice(0, 40))).toEqual([
      'BEGIN;',
      'with seen (id, status, paypal_item_id, t',
      'with moved as (update "payout_intents" s',
      'insert into "outbox" ("event", "event_id',
      'COMMIT;',
    ]);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'RETURNED' }), { description: 'platform payout returned' });

    expect(mentioning(/update "payout_batches" set "paypal_batch_id"/, batchId)).toEqual([]);
  });

  it('when an item is moved between the unlocked read and the webhook\'s transaction, then the item is read again locked and the answer decided on it', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 320, netMinor: 1255 }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent' });
    const { db } = service.ctx;
    const item = await db('payout_items').join('payout_intents', 'payout_intents.id', 'payout_items.intent_id')
      .where({ 'payout_intents.order_id': orderId, 'payout_intents.recipient': 'PLATFORM' }).first('payout_items.id', 'payout_items.transaction_id');
    expect(item.transaction_id).not.toBeNull();

    // the item is held locked while the webhook reads it (unlocked) and tries to move it as read; then it changes
    const meanwhile = await db.transaction();
    try {
      await meanwhile('payout_items').where({ id: item.id }).forUpdate();
      const from = statements.length;
      const returned = webhookFor(orderId, PLATFORM, 'RETURNED', 'RETURNED');
      const delivered = deliverWebhook(returned);
      const tried = await waitFor(() => statements.slice(from).find((st) => /^with seen \(/.test(st.sql) && st.bindings.map(String).includes(String(item.id))),
        { description: 'the webhook tries to move the item as it read it' });
      await meanwhile('payout_items').where({ id: item.id }).update({ transaction_id: 'TX-MEANWHILE' });
      await meanwhile.commit();
      await delivered;
      // the move as read found nothing; the item was read again locked in the same transaction and moved
      const inTransaction = statements.slice(from).filter((st) => st.txId === tried.txId);
      expect(inTransaction.filter((st) => /from "payout_items" .* for update of "payout_items"/s.test(st.sql))).toHaveLength(1);
      expect(inTransaction.filter((st) => /^with seen \(/.test(st.sql))).toHaveLength(2);
      // the webhook recorded once, by the first try
      // (the events' ids and types are the statement's last bindings: the first try carries this one, the second none)
      expect(inTransaction.filter((st) => /insert into "?webhook_events"?/.test(st.sql)).map((st) => st.bindings.at(-2))).toEqual([[returned.id], []]);
    } finally {
      if (!meanwhile.isCompleted()) await meanwhile.rollback();
    }
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'RETURNED' }), { description: 'platform payout returned' });
    expect(await db('payout_items').where({ id: item.id }).first('status', 'transaction_id')).toEqual({ status: 'RETURNED', transaction_id: 'TX-RETURNED' });
  });
});

describe('statements when PayPal settles only when told: the webhook or the reconciler first to report items paid', () => {
  const webhookId = uniqueId('WH-PAID-');
  let under: PayoutsUnderTest;
  const statements: Statement[] = [];
  const listen = (q: { sql?: string; bindings?: unknown[]; __knexTxId?: string }) => {
    statements.push({ sql: q.sql ?? '', bindings: q.bindings ?? [], txId: q.__knexTxId });
  };

  beforeAll(async () => {
    // PayPal settles nothing by itself and the batch is checked once: the webhook is the first to say the item is paid
    under = await startPayoutsUnderTest({
      fake: { processAfterMs: Infinity },
      prepare: (f) => f.registerWebhook(webhookId),
      // webhooks sent together by a test arrive within this of each other, so they are applied as one set
      env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1', PAYOUTS_RECONCILE_INTERVAL_MS: '600000', PAYPAL_WEBHOOK_BATCH_LINGER_MS: '100' },
    });
    under.service.ctx.db.on('query', listen);
  });
  afterAll(async () => {
    under?.service.ctx.db.off('query', listen);
    await under?.stop();
  });

  it('when the webhook is the first to report the seller\'s item paid, then the item and its intent move in one statement', async () => {
    const { fake, service, publish } = under;
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    expect((await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' })).status).toBe(200);
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 330, netMinor: 1265 }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SUBMITTED' }), { description: 'both payouts submitted' });
    const { db } = service.ctx;
    const intent = await db('payout_intents').where({ order_id: orderId, recipient: 'SELLER' }).first('id', 'batch_id');
    // the batch's one check is done (its next is minutes away): nothing else moves the item meanwhile
    await waitFor(async () => (await db('payout_batches').where({ id: intent.batch_id }).first('last_checked_at')).last_checked_at, { description: 'batch checked once' });
    const item = await waitFor(() => fake.paidItems().find((i) => i.receiver === sellerEmail));

    const from = statements.length;
    const event = fake.payoutItemEvent('SUCCEEDED', {
      payout_item_id: item.payoutItemId, transaction_id: 'TX-PAID', transaction_status: 'SUCCESS', payout_batch_id: item.payoutBatchId,
      sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
    });
    expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(event, { webhookId }))).status).toBe(200);
    const sent = statements.slice(from);
    // (a move records the webhooks it carries from an array of event ids)
    const recorded = sent.filter((st) => /insert into "?webhook_events"?/.test(st.sql) && st.bindings.some((b) => (Array.isArray(b) ? b : [b]).includes(event.id)) && st.txId !== undefined);
    expect(recorded).toHaveLength(1);
    const inTransaction = sent.filter((st) => st.txId !== undefined && st.txId === recorded[0]!.txId);
    // the item moved as read, its intent locked and moved to SENT with its history row, the webhook recorded and its
    // PayoutSent written: one statement (was 5 statements, with the webhook's record on its own, then 2 with the event's)
    // (and the statement that closes the batch if this move finished it, riding with the COMMIT: it did not, the
    // platform's item is still at PayPal)
    expect(inTransaction.map((st) => st.sql.slice(0, 40))).toEqual([
      'BEGIN;',
      'with seen (id, status, paypal_item_id, t',
      "update payout_batches b set status = 'CO",
      'COMMIT;',
    ]);
    expect(await db('payout_batches').where({ id: intent.batch_id }).first('status')).toEqual({ status: 'ACCEPTED' });
    expect(inTransaction[1]!.sql).toMatch(/for update.*update "payout_intents".*insert into intent_history.*insert into webhook_events.*insert into outbox/s);
    expect(inTransaction[1]!.bindings).toContain('PayoutSent');

    const payouts = await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SENT' }), { description: 'seller sent by webhook' });
    expect(payouts.find((p) => p.recipient === 'SELLER')!.items[0]).toMatchObject({ status: 'SUCCESS' });
    const history = await db('intent_history').where({ intent_id: intent.id }).orderBy('id').select('from_status', 'to_status', 'cause');
    expect(history.at(-1)).toMatchObject({ from_status: 'SUBMITTED', to_status: 'SENT', cause: `PayPal webhook PAYMENT.PAYOUTS-ITEM.SUCCEEDED (${event.id})` });
    expect(history.filter((h) => h.to_status === 'SENT')).toHaveLength(1);
  });

  /** An order whose two payouts are submitted in one batch, checked once (the next check is minutes away). */
  async function submittedAndCheckedOnce(commissionMinor: number, netMinor: number) {
    const { service, publish } = under;
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    expect((await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' })).status).toBe(200);
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor, netMinor }));
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SUBMITTED' }), { description: 'both payouts submitted' });
    const { db } = service.ctx;
    const { batch_id: batchId } = await db('payout_intents').where({ order_id: orderId, recipient: 'SELLER' }).first('batch_id');
    await waitFor(async () => (await db('payout_batches').where({ id: batchId }).first('last_checked_at')).last_checked_at, { description: 'batch checked once' });
    return { orderId, batchId: batchId as string, db };
  }

  /** The same, with PayPal's SUCCEEDED webhook for each item. */
  async function submittedOrderWithWebhooks() {
    const { fake, service } = under;
    const { orderId, batchId } = await submittedAndCheckedOnce(350, 1285);
    const items = await waitFor(() => {
      const paid = fake.paidItems().filter((i) => i.note?.endsWith(`order ${orderId}`));
      return paid.length === 2 ? paid : undefined;
    }, { description: 'both items at PayPal' });
    const webhooks = items.map((item) => ({
      senderItemId: item.senderItemId,
      event: fake.payoutItemEvent('SUCCEEDED', {
        payout_item_id: item.payoutItemId, transaction_id: `TX-${item.senderItemId}`, transaction_status: 'SUCCESS', payout_batch_id: item.payoutBatchId,
        sender_batch_id: item.senderBatchId, payout_item: { recipient_type: 'EMAIL', amount: item.amount, receiver: item.receiver, sender_item_id: item.senderItemId },
      }),
    }));
    const deliver = async (event: (typeof webhooks)[number]['event']) =>
      expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(event, { webhookId }))).status).toBe(200);
    return { orderId, batchId, webhooks, deliver };
  }

  it('when a batch\'s item webhooks arrive together, then they are applied as one set: one read, and one transaction moving both items and their intents and closing the batch they finish', async () => {
    const { orderId, batchId, webhooks, deliver } = await submittedOrderWithWebhooks();
    const { db } = under.service.ctx;
    const checked = await db('payout_batches').where({ id: batchId }).first('status', 'last_checked_at');
    expect(checked.status).toBe('ACCEPTED');
    const from = statements.length;
    await Promise.all(webhooks.map((w) => deliver(w.event)));
    const sent = statements.slice(from);
    const carriesAll = (st: Statement) => webhooks.every((w) => st.bindings.some((b) => (Array.isArray(b) ? b : [b]).includes(w.senderItemId)));
    // (was a read and a transaction for each webhook)
    const reads = sent.filter((st) => /^with incoming /.test(st.sql));
    expect(reads).toHaveLength(1);
    expect(carriesAll(reads[0]!)).toBe(true);
    const moves = sent.filter((st) => /^with seen \(/.test(st.sql));
    expect(moves).toHaveLength(1);
    expect(moves[0]!.bindings.filter((b) => b === 'PayoutSent')).toHaveLength(2);
    // both webhooks recorded by the statement that moved their items
    expect(moves[0]!.bindings.some((b) => Array.isArray(b) && webhooks.every((w) => b.includes(w.event.id)))).toBe(true);
    // the batch these moves finished is closed by a statement riding with the COMMIT (writeWithNext: no round trip)
    const transaction = sent.filter((st) => st.txId === moves[0]!.txId);
    expect(transaction.map((st) => st.sql.slice(0, 40))).toEqual([
      'BEGIN;',
      'with seen (id, status, paypal_item_id, t',
      "update payout_batches b set status = 'CO",
      'COMMIT;',
    ]);
    expect(transaction[2]!.bindings[0]).toEqual([batchId]);
    await waitFor(payoutsWithStatus(under.service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both sent by their webhooks' });
    // closed by the webhooks, not by a check at PayPal: its one check is still the last
    expect(await db('payout_batches').where({ id: batchId }).first('status', 'last_checked_at')).toEqual({ status: 'COMPLETED', last_checked_at: checked.last_checked_at });
    expect((await db('webhook_events').whereIn('event_id', webhooks.map((w) => w.event.id))).length).toBe(2);
    const history = await db('intent_history').where({ order_id: orderId, to_status: 'SENT' }).select('cause');
    expect(history.map((h) => h.cause).sort()).toEqual(webhooks.map((w) => `PayPal webhook PAYMENT.PAYOUTS-ITEM.SUCCEEDED (${w.event.id})`).sort());
  });

  it('when the same item\'s webhook arrives twice at once, then that set is applied one webhook at a time: the item moves once and both are answered 200', async () => {
    const { orderId, webhooks, deliver } = await submittedOrderWithWebhooks();
    const seller = webhooks[0]!;
    const from = statements.length;
    await Promise.all([deliver(seller.event), deliver(seller.event)]); // two transmissions of one event (PayPal retrying)
    const sent = statements.slice(from);
    // no set carried the item twice: each went on its own
    const reads = sent.filter((st) => /^with incoming /.test(st.sql) && st.bindings.includes(seller.senderItemId));
    expect(reads).toHaveLength(2);
    for (const read of reads) expect(read.bindings.filter((b) => b === seller.senderItemId)).toHaveLength(1);
    const { db } = under.service.ctx;
    const moved = await db('payout_items').where({ sender_item_id: seller.senderItemId }).first('status', 'intent_id');
    expect(moved.status).toBe('SUCCESS');
    expect(await db('intent_history').where({ intent_id: moved.intent_id, to_status: 'SENT' }).count<{ n: string }[]>('* as n')).toEqual([{ n: '1' }]);
    expect((await db('webhook_events').where({ event_id: seller.event.id })).length).toBe(1);
    expect((await db('payout_intents').where({ order_id: orderId, status: 'SENT' })).length).toBe(1);
  });

  it('when one of a page\'s items is held by another transaction (a webhook applying it), then the reconciler moves the others without waiting and the batch\'s next check moves that one', async () => {
    const { fake, service } = under;
    const { orderId, batchId, db } = await submittedAndCheckedOnce(340, 1275);
    fake.processPayouts(); // both paid at PayPal; no webhook: the reconciler's next page brings them
    const items = await db('payout_items').join('payout_intents', 'payout_intents.id', 'payout_items.intent_id')
      .where({ 'payout_intents.order_id': orderId }).orderBy('payout_items.id').select('payout_items.id', 'payout_intents.recipient');
    const platformItem = items.find((i) => i.recipient === 'PLATFORM')!;
    // PayPal's batch webhook makes the open batch due (the grace is 0 here) and wakes the reconciler
    const checkNow = async () => {
      const { paypal_batch_id: paypalBatchId } = await db('payout_batches').where({ id: batchId }).first('paypal_batch_id');
      const batchWebhook = payoutBatchEvent('SUCCESS', { batch_header: { payout_batch_id: paypalBatchId } });
      expect((await fake.deliverWebhook(`${service.url}/webhooks/paypal`, fake.signedWebhook(batchWebhook, { webhookId }))).status).toBe(200);
    };

    const meanwhile = await db.transaction();
    try {
      await meanwhile('payout_items').where({ id: platformItem.id }).forUpdate();
      const from = statements.length;
      await checkNow();
      // the seller's item and intent move while the platform's item is still held (waiting for it, nothing would)
      await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SUBMITTED', SELLER: 'SENT' }), { timeoutMs: 10_000, description: 'the seller sent by the reconciler while the platform item is held' });
      const tried = statements.slice(from).find((st) => /^with seen \(/.test(st.sql) && items.every((i) => st.bindings.map(String).includes(String(i.id))))!;
      expect(tried.sql).toMatch(/for update skip locked/);
      // the check recorded in the same transaction (the batch not done: one of its items is unfinished)
      expect(statements.filter((st) => st.txId === tried.txId).map((st) => st.sql.slice(0, 40))).toEqual([
        'BEGIN;',
        'with seen (id, status, paypal_item_id, t',
        'update "payout_batches" set "paypal_batc',
        'COMMIT;',
      ]);
      // the check is recorded, the batch not done: one of its items is unfinished
      await waitFor(async () => (await db('payout_batches').where({ id: batchId }).first('next_check_at')).next_check_at > new Date(), { description: 'the check recorded' });
      expect(await db('payout_batches').where({ id: batchId }).first('status')).toEqual({ status: 'ACCEPTED' });
      await meanwhile('payout_items').where({ id: platformItem.id }).update({ transaction_id: 'TX-MEANWHILE' });
      await meanwhile.commit();
    } finally {
      if (!meanwhile.isCompleted()) await meanwhile.rollback();
    }
    await checkNow();
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'the platform sent by the next check' });
    expect(await db('payout_items').where({ id: platformItem.id }).first('status', 'transaction_id')).toEqual({ status: 'SUCCESS', transaction_id: expect.stringMatching(/^(?!TX-MEANWHILE)/) });
    expect(await db('intent_history').where({ order_id: orderId, to_status: 'SENT' }).count<{ n: string }[]>('* as n')).toEqual([{ n: '2' }]);
    await waitFor(async () => (await db('payout_batches').where({ id: batchId }).first('status')).status === 'COMPLETED', { description: 'the batch done' });
  });

  it('when busy items are skipped and another item changed after it was read, then none moves (all or none of those locked), and the locked read again leaves the busy one out', async () => {
    const { orderId, db } = await submittedAndCheckedOnce(345, 1280);
    const repo = new PayoutsRepository(db);
    const senderItemIds = (await db('payout_items').join('payout_intents', 'payout_intents.id', 'payout_items.intent_id')
      .where({ 'payout_intents.order_id': orderId }).pluck('payout_items.sender_item_id')) as string[];
    const read = await repo.peekItemsBySenderItemIds(senderItemIds);
    const [platform, seller] = ['PLATFORM', 'SELLER'].map((r) => read.find((i) => i.payment.recipient === r)!);
    const refused = (item: PayoutItem) => ({ seen: item, outcome: { status: 'FAILED', paypalItemId: item.paypalItemId, transactionId: null, errorName: 'TEST', errorMessage: 'test' } });
    // the platform's item changes after the read; the seller's is held by another transaction
    await db('payout_items').where({ id: platform!.id }).update({ transaction_id: 'TX-CHANGED' });
    const holder = await db.transaction();
    const trx = await db.transaction();
    try {
      await holder('payout_items').where({ id: seller!.id }).forUpdate();
      await trx.raw("set local lock_timeout = '5s'"); // waiting for the held item would fail, not hang
      expect(await repo.moveItemsAsSeen(trx, [refused(platform!), refused(seller!)], [], 'skip')).toBeUndefined();
      const again = await repo.itemsBySenderItemIds(trx, senderItemIds, 'skip');
      expect(again.map((i) => [i.id, i.transactionId])).toEqual([[platform!.id, 'TX-CHANGED']]);
      const moved = await repo.moveItemsAsSeen(trx, [refused(again[0]!)], [], 'skip');
      expect(moved?.map((m) => m.itemId)).toEqual([platform!.id]);
      expect(await trx('payout_items').whereIn('id', [platform!.id, seller!.id]).orderBy('id').pluck('status')).toEqual(
        [platform!, seller!].sort((a, b) => Number(a.id) - Number(b.id)).map((i) => (i === platform ? 'FAILED' : i.status)),
      );
    } finally {
      await trx.rollback();
      await holder.rollback();
    }
  });
});
