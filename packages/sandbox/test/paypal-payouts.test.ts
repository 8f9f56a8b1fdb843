import * as paypal from '@paypal/payouts-sdk';
import { createPublicKey, verify } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { startPayPalFake, type PayPalFake } from '../src/paypal/paypal-fake';
import { accessToken, call, payoutBody, type Json } from './paypal-helpers';

// The SDK caches tokens per client id for the whole process; a distinct id per fake keeps tests independent.
let clientSeq = 0;
const nextClientId = () => `payouts-test-client-${++clientSeq}-${process.pid}`;

function sdkClient(fake: PayPalFake) {
  const env = new paypal.core.PayPalEnvironment(fake.clientId, fake.clientSecret, fake.url, fake.url);
  return new paypal.core.PayPalHttpClient(env);
}

describe('PayPal fake: payouts', () => {
  let fake: PayPalFake;
  beforeEach(async () => {
    fake = await startPayPalFake({ clientId: nextClientId(), clientSecret: 'shh' });
  });
  afterEach(() => fake.stop());

  test('the real @paypal/payouts-sdk creates and reads a batch against the fake (gzip, trailing "?", token)', async () => {
    const client = sdkClient(fake);
    const created = await client.execute<Json>(
      new paypal.payouts.PayoutsPostRequest().requestBody(payoutBody('batch-sdk-1', [
        { receiver: 'alice@example.com', value: '10.00' },
        { receiver: 'bob@example.com', value: '2.50' },
      ])),
    );
    expect(created.statusCode).toBe(201);
    expect(created.headers['content-encoding']).toBe('gzip');
    expect(created.result.batch_header).toMatchObject({ batch_status: 'PENDING', sender_batch_header: { sender_batch_id: 'batch-sdk-1' } });
    const batchId: string = created.result.batch_header.payout_batch_id;
    expect(batchId).toMatch(/^[A-Z0-9]{13}$/);
    expect(created.result.links[0]).toMatchObject({ rel: 'self', href: `${fake.url}/v1/payments/payouts/${batchId}` });

    const read = await client.execute<Json>(new paypal.payouts.PayoutsGetRequest(batchId).page(1).pageSize(10).totalRequired(true));
    expect(read.statusCode).toBe(200);
    expect(read.result.batch_header).toMatchObject({
      payout_batch_id: batchId,
      batch_status: 'SUCCESS',
      amount: { currency: 'USD', value: '12.50' },
      fees: { currency: 'USD', value: '0.25' },
    });
    expect(read.result.total_items).toBe(2);
    const [first] = read.result.items;
    expect(first).toMatchObject({
      transaction_status: 'SUCCESS',
      payout_batch_id: batchId,
      payout_item_fee: { currency: 'USD', value: '0.20' },
      payout_item: { recipient_type: 'EMAIL', amount: { value: '10.00', currency: 'USD' }, receiver: 'alice@example.com', sender_item_id: 'batch-sdk-1-0' },
    });
    expect(first.transaction_id).toEqual(expect.any(String));
    expect(first.time_processed).toEqual(expect.any(String));

    const item = await client.execute<Json>(new paypal.payouts.PayoutsItemGetRequest(first.payout_item_id));
    expect(item.result).toMatchObject({ payout_item_id: first.payout_item_id, transaction_status: 'SUCCESS', sender_batch_id: 'batch-sdk-1' });
    // One token served every call: the SDK cached it.
    expect(fake.issuedTokenCount()).toBe(1);
  });

  test('the SDK refreshes its token once after a 401 and the call succeeds', async () => {
    const client = sdkClient(fake);
    await client.execute(new paypal.payouts.PayoutsPostRequest().requestBody(payoutBody('batch-refresh-1', [{ receiver: 'a@example.com', value: '1.00' }])));
    fake.expireTokens();
    const second = await client.execute<Json>(new paypal.payouts.PayoutsPostRequest().requestBody(payoutBody('batch-refresh-2', [{ receiver: 'a@example.com', value: '1.00' }])));
    expect(second.statusCode).toBe(201);
    expect(fake.requests.filter((r) => r.path === '/v1/oauth2/token')).toHaveLength(2);
    expect(fake.payoutBatches()).toHaveLength(2);
  });

  test('a duplicate sender_batch_id is rejected the way PayPal does (USER_BUSINESS_ERROR, also through the SDK)', async () => {
    const token = await accessToken(fake);
    const body = payoutBody('batch-dup', [{ receiver: 'alice@example.com', value: '10.00' }]);
    const first = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect(first.status).toBe(201);
    const again = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect(again.status).toBe(400);
    expect(again.headers.get('content-type')).toMatch(/^application\/json/);
    // Exactly the body in the Corrections section (PayPal's real wording, not an invented one).
    expect(again.body).toEqual({
      name: 'USER_BUSINESS_ERROR',
      message: 'User business error.',
      debug_id: expect.any(String),
      information_link: expect.any(String),
      details: [{
        field: 'SENDER_BATCH_ID', location: 'body', issue: 'Batch with given sender_batch_id already exists',
        // The detail links to the original batch so a client can look it up instead of paying again.
        link: [{ href: `${fake.url}/v1/payments/payouts/${first.body.batch_header.payout_batch_id}`, rel: 'self', method: 'GET' }],
      }],
      links: [],
    });

    const sdkError = await sdkClient(fake).execute(new paypal.payouts.PayoutsPostRequest().requestBody(body)).catch((e: unknown) => e);
    expect((sdkError as { statusCode: number }).statusCode).toBe(400);
    expect(JSON.parse((sdkError as Error).message).details[0].issue).toBe('Batch with given sender_batch_id already exists');
    expect(fake.paidItems()).toHaveLength(1);
  });

  test("duplicate answers can leave out the link ('no-link') or link a batch of another sender_batch_id ('other-batch')", async () => {
    const token = await accessToken(fake);
    const other = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-other', [{ receiver: 'carol@example.com', value: '3.00' }]));
    const body = payoutBody('batch-dup-modes', [{ receiver: 'alice@example.com', value: '10.00' }]);
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).status).toBe(201);

    fake.answerDuplicates('no-link');
    const noLink = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect(noLink.status).toBe(400);
    expect(noLink.body).toMatchObject({ name: 'USER_BUSINESS_ERROR', debug_id: expect.any(String) });
    expect(noLink.body.details).toEqual([{ field: 'SENDER_BATCH_ID', location: 'body', issue: 'Batch with given sender_batch_id already exists' }]);

    fake.answerDuplicates('other-batch');
    const wrong = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect(wrong.status).toBe(400);
    expect(wrong.body.details[0].link).toEqual([{ href: `${fake.url}/v1/payments/payouts/${other.body.batch_header.payout_batch_id}`, rel: 'self', method: 'GET' }]);

    fake.clearPayoutOutcomes(); // back to the default: the original batch is linked
    const original = fake.payoutBatches().find((b) => b.senderBatchId === 'batch-dup-modes')!.payoutBatchId;
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).body.details[0].link[0].href).toBe(`${fake.url}/v1/payments/payouts/${original}`);
    expect(fake.paidItems()).toHaveLength(2);
  });

  test('a dropped response after acceptance leaves exactly one batch, and the retry is refused as duplicate', async () => {
    const token = await accessToken(fake);
    const body = payoutBody('batch-drop', [
      { receiver: 'alice@example.com', value: '10.00' },
      { receiver: 'bob@example.com', value: '20.00' },
    ]);
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    await expect(call(fake, token, 'POST', '/v1/payments/payouts', body)).rejects.toThrow();
    expect(fake.payoutBatches()).toHaveLength(1);

    const retry = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect(retry.status).toBe(400);
    expect(retry.body.details[0].issue).toBe('Batch with given sender_batch_id already exists');
    expect(fake.payoutBatches()).toHaveLength(1);
    expect(fake.paidItems().map((i) => i.senderItemId)).toEqual(['batch-drop-0', 'batch-drop-1']);
  });

  test('an injected 503 does not create a batch, so a retry with the same sender_batch_id pays once', async () => {
    const token = await accessToken(fake);
    const body = payoutBody('batch-503', [{ receiver: 'alice@example.com', value: '10.00' }]);
    fake.fail({ match: /^POST \/v1\/payments\/payouts$/, mode: { kind: 'status', status: 503 }, times: 1 });
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).status).toBe(503);
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).status).toBe(201);
    expect(fake.paidItems()).toHaveLength(1);
  });

  test('items settle to the outcome configured per receiver or sender_item_id; FAILED carries errors; batch ends SUCCESS', async () => {
    fake.setPayoutOutcome('ghost@example.com', 'FAILED', { errorName: 'RECEIVER_UNREGISTERED' });
    fake.setPayoutOutcome({ senderItemId: 'batch-mix-2' }, 'UNCLAIMED');
    fake.setPayoutOutcome((i) => i.amount.value === '7.77', 'BLOCKED');
    const token = await accessToken(fake);
    const created = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-mix', [
      { receiver: 'alice@example.com', value: '10.00' },
      { receiver: 'ghost@example.com', value: '5.00' },
      { receiver: 'carol@example.com', value: '3.00' },
      { receiver: 'dave@example.com', value: '7.77' },
    ]));
    const batch = await call(fake, token, 'GET', `/v1/payments/payouts/${created.body.batch_header.payout_batch_id}`);
    expect(batch.body.batch_header.batch_status).toBe('SUCCESS');
    expect(batch.body.batch_header.time_completed).toEqual(expect.any(String));
    const byReceiver = Object.fromEntries(batch.body.items.map((i: Json) => [i.payout_item.receiver, i]));
    expect(byReceiver['alice@example.com'].transaction_status).toBe('SUCCESS');
    expect(byReceiver['ghost@example.com']).toMatchObject({ transaction_status: 'FAILED', errors: { name: 'RECEIVER_UNREGISTERED', message: expect.any(String) } });
    expect(byReceiver['ghost@example.com'].transaction_id).toBeUndefined();
    expect(byReceiver['ghost@example.com'].payout_item_fee.value).toBe('0.00');
    expect(byReceiver['carol@example.com'].transaction_status).toBe('UNCLAIMED');
    expect(byReceiver['dave@example.com'].transaction_status).toBe('BLOCKED');
    expect(fake.paidItems().map((i) => i.status)).toEqual(['SUCCESS', 'FAILED', 'UNCLAIMED', 'BLOCKED']);
  });

  test('only UNCLAIMED items can be cancelled (→ RETURNED); others get a PayPal error', async () => {
    fake.setPayoutOutcome('nobody@example.com', 'UNCLAIMED');
    const token = await accessToken(fake);
    const created = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-cancel', [
      { receiver: 'nobody@example.com', value: '4.00' },
      { receiver: 'alice@example.com', value: '4.00' },
    ]));
    const batch = await call(fake, token, 'GET', `/v1/payments/payouts/${created.body.batch_header.payout_batch_id}`);
    const [unclaimed, paid] = batch.body.items as Json[];

    const sdk = sdkClient(fake);
    const cancelled = await sdk.execute<Json>(new paypal.payouts.PayoutsItemCancelRequest(unclaimed.payout_item_id));
    expect(cancelled.result.transaction_status).toBe('RETURNED');
    const refused = await call(fake, token, 'POST', `/v1/payments/payouts-item/${paid.payout_item_id}/cancel`);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ name: 'ITEM_INCORRECT_STATUS', debug_id: expect.any(String) });
    const twice = await call(fake, token, 'POST', `/v1/payments/payouts-item/${unclaimed.payout_item_id}/cancel`);
    expect(twice.status).toBe(400);
    expect((await call(fake, token, 'GET', '/v1/payments/payouts-item/NOPE')).status).toBe(404);
  });

  test('with processAfterMs: Infinity items stay PENDING until processPayouts()', async () => {
    await fake.stop();
    fake = await startPayPalFake({ clientId: nextClientId(), processAfterMs: Number.POSITIVE_INFINITY });
    const token = await accessToken(fake);
    const created = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-slow', [{ receiver: 'alice@example.com', value: '1.00' }]));
    const path = `/v1/payments/payouts/${created.body.batch_header.payout_batch_id}`;
    const pending = await call(fake, token, 'GET', path);
    expect(pending.body.batch_header.batch_status).toBe('PENDING');
    expect(pending.body.items[0].transaction_status).toBe('PENDING');
    fake.processPayouts();
    expect((await call(fake, token, 'GET', path)).body.items[0].transaction_status).toBe('SUCCESS');
  });

  test('invalid items are rejected with VALIDATION_ERROR details and nothing is stored', async () => {
    const token = await accessToken(fake);
    const bad = await call(fake, token, 'POST', '/v1/payments/payouts', {
      sender_batch_header: { sender_batch_id: 'batch-bad' },
      items: [
        { recipient_type: 'EMAIL', amount: { value: '1.5', currency: 'USD' }, receiver: 'a@example.com' },
        { recipient_type: 'EMAIL', amount: { value: '100.00', currency: 'JPY' }, receiver: 'b@example.com' },
        { recipient_type: 'EMAIL', amount: { value: 3, currency: 'USD' }, receiver: 'c@example.com' },
        { recipient_type: 'EMAIL', amount: { value: '1.00', currency: 'USD' } },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.name).toBe('VALIDATION_ERROR');
    expect(bad.body.details.map((d: Json) => d.field)).toEqual(['items[0].amount', 'items[1].amount', 'items[2].amount', 'items[3].receiver']);

    const tooMany = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-huge', Array.from({ length: 15_001 }, (_, i) => ({ receiver: `r${i}@example.com`, value: '1.00' }))));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.details[0].field).toBe('items');
    expect(fake.payoutBatches()).toHaveLength(0);
    // Rejected batches do not consume the sender_batch_id.
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-bad', [{ receiver: 'a@example.com', value: '1.50' }]))).status).toBe(201);
  });

  test('each documented refusal of a create answers its real status and name, and creates nothing', async () => {
    const token = await accessToken(fake);
    const cases: Array<[Parameters<PayPalFake['refusePayoutCreates']>[0], number]> = [
      ['INSUFFICIENT_FUNDS', 422], ['AUTHORIZATION_ERROR', 403], ['SENDER_RESTRICTED', 403],
      ['NON_HOLDING_CURRENCY', 400], ['VALIDATION_ERROR', 400], ['INTERNAL_ERROR', 500],
    ];
    for (const [name, status] of cases) {
      fake.refusePayoutCreates(name, { times: 1 });
      const refused = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody(`b-${name}`, [{ receiver: 'a@example.com', value: '1.00' }]));
      expect([refused.status, refused.body.name, typeof refused.body.debug_id]).toEqual([status, name, 'string']);
    }
    expect(fake.payoutBatches()).toHaveLength(0);
  });

  test("a refusal limited to re-posts answers a known sender_batch_id with it instead of the duplicate error", async () => {
    const token = await accessToken(fake);
    const body = payoutBody('b-repost', [{ receiver: 'a@example.com', value: '1.00' }]);
    fake.refusePayoutCreates('AUTHORIZATION_ERROR', { on: 'repost', times: 1 });
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).status).toBe(201);
    const refused = await call(fake, token, 'POST', '/v1/payments/payouts', body);
    expect([refused.status, refused.body.name]).toEqual([403, 'AUTHORIZATION_ERROR']);
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', body)).body.name).toBe('USER_BUSINESS_ERROR');
    expect(fake.payoutBatches()).toHaveLength(1);
  });

  test('a batch whose items all fail ends DENIED; fees read 0 while the batch is PENDING', async () => {
    await fake.stop();
    fake = await startPayPalFake({ clientId: nextClientId(), processAfterMs: Number.POSITIVE_INFINITY });
    fake.setPayoutOutcome(() => true, 'FAILED', { errorName: 'RECEIVER_ACCOUNT_INVALID' });
    const token = await accessToken(fake);
    const created = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('b-denied', [
      { receiver: 'a@example.com', value: '10.00' }, { receiver: 'b@example.com', value: '10.00' },
    ]));
    const path = `/v1/payments/payouts/${created.body.batch_header.payout_batch_id}`;
    expect((await call(fake, token, 'GET', path)).body.batch_header.fees.value).toBe('0.00');
    fake.processPayouts();
    const batch = await call(fake, token, 'GET', path);
    expect(batch.body.batch_header.batch_status).toBe('DENIED');
    expect(batch.body.items.map((i: Json) => [i.transaction_status, i.errors.name])).toEqual([['FAILED', 'RECEIVER_ACCOUNT_INVALID'], ['FAILED', 'RECEIVER_ACCOUNT_INVALID']]);
  });

  test('a limited balance refuses a batch it cannot cover with INSUFFICIENT_FUNDS', async () => {
    fake.setBalance('USD', '15.00');
    const token = await accessToken(fake);
    expect((await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('b1', [{ receiver: 'a@example.com', value: '10.00' }]))).status).toBe(201);
    const refused = await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('b2', [{ receiver: 'a@example.com', value: '10.00' }]));
    expect(refused.status).toBe(422);
    expect(refused.body.name).toBe('INSUFFICIENT_FUNDS');
  });

  test('tokens: bad client credentials get invalid_client; missing or unknown bearer gets 401', async () => {
    const res = await fetch(`${fake.url}/v1/oauth2/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${fake.clientId}:wrong`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'Client Authentication failed' });
    const token = await accessToken(fake);
    expect((await call(fake, 'nope', 'GET', '/v1/payments/payouts/X')).status).toBe(401);
    expect((await fetch(`${fake.url}/v1/payments/payouts/X`)).status).toBe(401);
    expect((await call(fake, token, 'GET', '/v1/payments/payouts/X')).status).toBe(404);
  });

  test('payout item webhooks are delivered signed when a webhook URL is configured', async () => {
    const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    let done: () => void = () => {};
    const allArrived = new Promise<void>((resolve) => (done = resolve));
    const endpoint: Server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: data });
        res.writeHead(200).end();
        if (received.length === 3) done();
      });
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', () => r()));
    try {
      await fake.stop();
      const webhookUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/paypal`;
      fake = await startPayPalFake({ clientId: nextClientId(), webhookUrl, webhookId: 'WH-PAYOUTS' });
      fake.setPayoutOutcome('ghost@example.com', 'UNCLAIMED');
      const token = await accessToken(fake);
      await call(fake, token, 'POST', '/v1/payments/payouts', payoutBody('batch-wh', [
        { receiver: 'alice@example.com', value: '1.00' },
        { receiver: 'ghost@example.com', value: '1.00' },
      ]));
      await allArrived;
      const types = received.map((r) => JSON.parse(r.body).event_type).sort();
      expect(types).toEqual(['PAYMENT.PAYOUTS-ITEM.SUCCEEDED', 'PAYMENT.PAYOUTS-ITEM.UNCLAIMED', 'PAYMENT.PAYOUTSBATCH.SUCCESS']);
      // Corrections: batch webhooks carry the header and links only, no items.
      const batchEvent = received.map((r) => JSON.parse(r.body)).find((e) => e.event_type === 'PAYMENT.PAYOUTSBATCH.SUCCESS');
      expect(batchEvent.resource.batch_header.batch_status).toBe('SUCCESS');
      expect(batchEvent.resource.items).toBeUndefined();
      const key = createPublicKey(fake.certificatePem);
      for (const r of received) {
        const h = r.headers;
        const message = `${h['paypal-transmission-id']}|${h['paypal-transmission-time']}|WH-PAYOUTS|${crc32(Buffer.from(r.body))}`;
        expect(verify('sha256', Buffer.from(message), key, Buffer.from(String(h['paypal-transmission-sig']), 'base64'))).toBe(true);
      }
    } finally {
      await new Promise<void>((r) => endpoint.close(() => r()));
    }
  });
});
