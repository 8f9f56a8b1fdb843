import { Streams, type PayoutEvent } from '@postsale/contracts';
import { type RunningService } from '@postsale/runtime';
import { collectTopic, uniqueId, waitFor } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { ADMIN, PLATFORM, startPayoutsUnderTest, type PayoutsUnderTest, orderPayouts, payoutsWithStatus, putPayee, saleRecorded, TopicPublisher } from '../support/payouts-harness';


/** a CLP sale recorded at a given time (rates are chosen by the sale's day) */
function clpSale(orderId: string, sellerId: string, recordedAt: string, commissionMinor: number, netMinor: number) {
  const sale = saleRecorded({ orderId, sellerId, commissionMinor, netMinor, currency: 'CLP' });
  return { ...sale, payload: { ...sale.payload, recordedAt: Date.parse(recordedAt) } };
}

async function putRate(service: RunningService, from: string, to: string, date: string, rate: string, auth = true): Promise<Response> {
  return fetch(`${service.url}/admin/fx-rates/${from}/${to}/${date}`, {
    method: 'PUT', headers: { ...(auth ? ADMIN : {}), 'content-type': 'application/json' }, body: JSON.stringify({ rate, source: 'test table' }),
  });
}

interface FxPayoutView {
  recipient: string;
  status: string;
  hold: { reason: string } | null;
  payout: { currency: string; amountMinor: number | null; fx: { rate: string; rateDate: string } | null } | null;
  items: Array<{ amount: { amountMinor: number; currency: string }; owed: { amountMinor: number; currency: string } | null; fx: { rate: string; rateDate: string } | null }>;
}

describe('payouts in a currency PayPal cannot pay (CLP), converted at the payouts FX table', () => {
  let fake: PayPalFake;
  let service: RunningService;
  let publish: TopicPublisher;

  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest();
    ({ fake, service, publish } = under);
  });
  afterAll(() => under?.stop());

  const itemsFor = (orderId: string) => fake.paidItems().filter((i) => i.note?.endsWith(`order ${orderId}`));

  it('a CLP sale is paid in USD at the configured dated rate, rounded down, with the rate recorded', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    // the most recent rate on or before the sale's day (01-15) is the one of 01-13; 01-10 is older, 01-16 is after the sale
    expect((await putRate(service, 'CLP', 'USD', '2024-01-10', '0.001')).status).toBe(200);
    expect((await putRate(service, 'CLP', 'USD', '2024-01-13', '0.00105263')).status).toBe(200);
    expect((await putRate(service, 'CLP', 'USD', '2024-01-16', '0.002')).status).toBe(200);
    expect((await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' })).status).toBe(200);
    const events = await collectTopic<PayoutEvent>(service.ctx.kafka, service.ctx.codec, service.ctx.codec.topic(Streams.payouts));
    try {
      // 10000 CLP x 0.00105263 = 10.5263 USD -> 10.52; 1900 CLP -> 1.999997 USD -> 1.99 (rounded down, never up)
      await publish.sale(clpSale(orderId, sellerId, '2024-01-15T18:00:00Z', 1900, 10_000));
      await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent in USD' });

      const paid = itemsFor(orderId).map((i) => [i.receiver, i.amount.value, i.amount.currency]).sort();
      expect(paid).toEqual([[PLATFORM, '1.99', 'USD'], [sellerEmail, '10.52', 'USD']].sort());

      const views = (await orderPayouts(service, orderId)) as unknown as FxPayoutView[];
      const seller = views.find((v) => v.recipient === 'SELLER')!;
      expect(seller.payout).toEqual({ currency: 'USD', amountMinor: 1052, fx: expect.objectContaining({ rate: '0.00105263', rateDate: '2024-01-13', source: 'test table' }) });
      expect(seller.items).toEqual([expect.objectContaining({
        amount: { amountMinor: 1052, currency: 'USD' }, owed: { amountMinor: 10_000, currency: 'CLP' }, fx: expect.objectContaining({ rate: '0.00105263', rateDate: '2024-01-13' }),
      })]);

      const sent = await waitFor(() => {
        const mine = events.messages.filter((m) => m.event.orderId === orderId && m.event.type === 'PayoutSent');
        return mine.length === 2 ? mine.map((m) => (m.event as PayoutEvent & { type: 'PayoutSent' }).payload) : undefined;
      }, { description: 'two PayoutSent events' });
      const sellerSent = sent.find((p) => p.recipient === 'SELLER')!;
      expect(sellerSent.amount).toEqual({ amountMinor: 1052, currency: 'USD' });
      expect(sellerSent.owedAmount).toEqual({ amountMinor: 10_000, currency: 'CLP' });
      expect([sellerSent.fxRate, sellerSent.fxRateDate]).toEqual(['0.00105263', '2024-01-13']);
      expect(sent.find((p) => p.recipient === 'PLATFORM')!.amount).toEqual({ amountMinor: 199, currency: 'USD' });
    } finally {
      await events.stop();
    }
  });

  it('a CLP sale without a rate is held with FX_RATE_MISSING and paid once the rate is set', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate' });
    await publish.sale(clpSale(orderId, sellerId, '2024-03-10T12:00:00Z', 500, 20_000));
    const held = await waitFor(async () => {
      const views = (await orderPayouts(service, orderId)) as unknown as FxPayoutView[];
      return views.length === 2 && views.every((v) => v.status === 'HELD') ? views : undefined;
    }, { description: 'both payouts held' });
    expect(held.map((v) => v.hold?.reason)).toEqual(['FX_RATE_MISSING', 'FX_RATE_MISSING']);

    // bad input changes nothing: 4xx with a code, and no auth → 401
    expect((await putRate(service, 'CLP', 'USD', '2024-03-09', '0.00105263', false)).status).toBe(401);
    const bad = await putRate(service, 'CLP', 'USD', '2024-03-09', '1e-3');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_FX_RATE');
    // a rate dated after the sale's day is not used for it
    expect((await putRate(service, 'CLP', 'USD', '2024-03-11', '0.002')).status).toBe(200);
    const still = (await orderPayouts(service, orderId)) as unknown as FxPayoutView[];
    expect(still.map((v) => [v.status, v.hold?.reason])).toEqual([['HELD', 'FX_RATE_MISSING'], ['HELD', 'FX_RATE_MISSING']]);

    expect(itemsFor(orderId)).toHaveLength(0);

    const set = await putRate(service, 'CLP', 'USD', '2024-03-09', '0.00105263');
    expect(set.status).toBe(200);
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'paid once the rate is set' });
    // 20000 CLP -> 21.0526 USD -> 21.05; 500 CLP -> 0.526315 USD -> 0.52
    expect(itemsFor(orderId).map((i) => i.amount.value).sort()).toEqual(['0.52', '21.05']);
  });

  it('when the seller chose a payout currency, then it is used; an amount that converts to zero is SKIPPED with a reason', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const tiny = uniqueId('o-');
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate', payoutCurrency: 'CLP' })).status).toBe(400);
    expect((await putPayee(service, sellerId, { email: `${sellerId}@sellers.test`, releasePolicy: 'immediate', payoutCurrency: 'EUR' })).status).toBe(200);
    await putRate(service, 'CLP', 'EUR', '2024-06-01', '0.00097');
    await putRate(service, 'CLP', 'USD', '2024-06-01', '0.00105');
    await publish.sale(clpSale(orderId, sellerId, '2024-06-02T12:00:00Z', 1000, 30_000));
    await publish.sale(clpSale(tiny, sellerId, '2024-06-02T12:00:00Z', 5, 9)); // 9 CLP = 0.00873 EUR: nothing PayPal can send
    await waitFor(payoutsWithStatus(service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'paid in EUR and USD' });
    expect(itemsFor(orderId).map((i) => `${i.amount.value} ${i.amount.currency}`).sort()).toEqual(['1.05 USD', '29.10 EUR']);
    const skipped = await waitFor(payoutsWithStatus(service, tiny, { PLATFORM: 'SKIPPED', SELLER: 'SKIPPED' }), { description: 'tiny amounts skipped' });
    for (const view of skipped as unknown as Array<{ skipReason: string }>) expect(view.skipReason).toMatch(/^CONVERTS_TO_ZERO/);
    expect(itemsFor(tiny)).toHaveLength(0);
  });
});

describe('an unpayable item among payable ones (one batching round)', () => {
  let fake: PayPalFake;
  let service: RunningService;
  let publish: TopicPublisher;

  // a long interval and a long linger: batches form only when an operator's nudge (the payee PUT below) starts a run,
  // so the intents of both orders are claimed in the same run (a recorded sale's due intents would otherwise start
  // one after the linger)
  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest({ env: { PAYOUTS_BATCH_INTERVAL_MS: '600000', PAYOUT_BATCH_LINGER_MS: '60000' } });
    ({ fake, service, publish } = under);
  });
  afterAll(() => under?.stop());

  it('an unpayable item never reaches PayPal and does not block other orders\' payouts in the same round', async () => {
    const usdSeller = uniqueId('s-');
    const clpSeller = uniqueId('s-');
    const usdOrder = uniqueId('o-');
    const clpOrder = uniqueId('o-');
    // the CLP seller is set up; its sale has no rate: HELD
    await putPayee(service, clpSeller, { email: `${clpSeller}@sellers.test`, releasePolicy: 'immediate' });
    await publish.sale(clpSale(clpOrder, clpSeller, '2024-09-01T12:00:00Z', 1000, 50_000));
    await waitFor(payoutsWithStatus(service, clpOrder, { PLATFORM: 'HELD', SELLER: 'HELD' }), { description: 'CLP payouts held' });
    // make the CLP intents look like those recorded before this fix: DUE, to be paid in CLP itself
    await service.ctx.db('payout_intents').where({ order_id: clpOrder })
      .update({ status: 'DUE', hold_reason: null, release_at: new Date(Date.now() - 1000), payout_currency: 'CLP' });
    // a USD sale of a seller without payee: the seller's share is HELD until the payee PUT below releases it and
    // nudges ONE batching run; the platform's share is DUE and waits for that run too
    await publish.sale(saleRecorded({ orderId: usdOrder, sellerId: usdSeller, commissionMinor: 300, netMinor: 1200 }));
    await waitFor(payoutsWithStatus(service, usdOrder, { PLATFORM: 'DUE', SELLER: 'HELD' }), { description: 'USD payouts waiting' });
    expect((await putPayee(service, usdSeller, { email: `${usdSeller}@sellers.test`, releasePolicy: 'immediate' })).status).toBe(200);

    await waitFor(payoutsWithStatus(service, usdOrder, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'USD payouts sent' });
    const clp = (await orderPayouts(service, clpOrder)) as unknown as FxPayoutView[];
    expect(clp.map((v) => [v.status, v.hold?.reason])).toEqual([['HELD', 'FX_RATE_MISSING'], ['HELD', 'FX_RATE_MISSING']]);
    expect(clp.every((v) => v.items.length === 0)).toBe(true);

    // the CLP intents were claimed in the same run as the USD ones and kept out of the batch
    const history = await service.ctx.db('intent_history').where({ order_id: clpOrder }).select('cause');
    expect(history.filter((h) => /not payable as decided/.test(h.cause))).toHaveLength(2);
    const batches = await service.ctx.db('payout_batches').select('status', 'request');
    expect(batches.map((b) => b.status)).not.toContain('REJECTED');
    const sentItems = batches.flatMap((b) => (b.request as { items: Array<{ amount: { currency: string }; note: string }> }).items);
    expect(sentItems.filter((i) => i.note.endsWith(`order ${usdOrder}`))).toHaveLength(2);
    expect(sentItems.filter((i) => i.amount.currency !== 'USD' || i.note.endsWith(`order ${clpOrder}`))).toEqual([]);
    expect(fake.paidItems().filter((i) => i.note?.endsWith(`order ${clpOrder}`))).toHaveLength(0);
  });
});
