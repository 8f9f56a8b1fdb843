import { createHmac } from 'node:crypto';
import { SERVICES } from '@postsale/cli';
import { Streams, type OrderReceived, type SubjectKey } from '@postsale/contracts';
import { DEMO } from '@postsale/sandbox';
import { createDb, keyEncryptionKey, localInfraEnv, openOrderReceived, type Db } from '@postsale/runtime';
import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { orderIdOf, paidOut, replayEverything, startE2E, type E2E } from '../src';

jest.setTimeout(300_000);

/**
 * Erasure across the pipeline: every service's tables, and Kafka. Events carry the buyer's data sealed under the
 * buyer's key (crypto-shredding), so erasing the key makes every copy in every topic, dead letter and replay unreadable.
 */
describe('erasing a buyer\'s personal data reaches every service\'s tables, and the money still adds up', () => {
  let e2e: E2E;
  const dbs: Db[] = [];
  beforeAll(async () => {
    e2e = await startE2E();
    for (const s of SERVICES) dbs.push(createDb({ url: localInfraEnv().DATABASE_URL!, schema: `${s}${e2e.pipeline.options.schemaSuffix}`, poolMax: 1 }));
  });
  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()));
    await e2e?.stop();
  });

  /** every row of every table of the four services, as text */
  async function everything(): Promise<string> {
    const parts: string[] = [];
    for (const [i, s] of SERVICES.entries()) {
      const schema = `${s}${e2e.pipeline.options.schemaSuffix}`;
      const db = dbs[i]!;
      const tables = await db.raw(`select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'`, [schema]);
      for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
        const rows = await db.raw(`select t::text as row from ??.?? t`, [schema, table_name]);
        parts.push(...(rows.rows as Array<{ row: string }>).map((r) => `${s}.${table_name}: ${r.row}`));
      }
    }
    return parts.join('\n');
  }

  /** A storefront order captured for a buyer (payer id = the data subject at PayPal). */
  async function capture(buyer: { payerId: string; given: string; surname: string; email: string; street: string }): Promise<string> {
    const { pipeline } = e2e;
    const seeded = pipeline.world.paypal.seedCheckoutOrder({
      amount: '29.99', currency: 'USD', customId: DEMO.paypal.storefrontId, referenceId: DEMO.paypal.sku,
      payer: { name: { given_name: buyer.given, surname: buyer.surname }, email_address: buyer.email, payer_id: buyer.payerId },
      shipping: { name: { full_name: `${buyer.given} ${buyer.surname}` }, address: { address_line_1: buyer.street, admin_area_2: 'Austin', admin_area_1: 'TX', postal_code: '73301', country_code: 'US' } },
    } as Parameters<typeof pipeline.world.paypal.seedCheckoutOrder>[0]);
    const body = JSON.stringify({ storefrontId: DEMO.paypal.storefrontId });
    const ts = String(Math.floor(Date.now() / 1000));
    const signature = createHmac('sha256', DEMO.paypal.captureSecret).update(`${ts}.${seeded.id}.${body}`).digest('hex');
    const captured = await fetch(`${pipeline.urls.ingest}/checkout/paypal/orders/${seeded.id}/capture`, {
      method: 'POST', body, headers: { 'content-type': 'application/json', 'x-storefront-timestamp': ts, 'x-storefront-signature': `sha256=${signature}` },
    });
    expect(captured.status).toBe(201);
    return orderIdOf('paypal', seeded.id);
  }

  const buyerFor = (tag: string) => {
    const unique = uniqueId('').replace(/[^a-z0-9]/gi, '').slice(-12);
    return { payerId: `P${tag}${unique}`.slice(0, 13).toUpperCase(), given: 'Philippa', surname: `${tag}Erasure${unique}`, email: `philippa.${tag}${unique}@buyers.test`, street: `${unique} ${tag} Vanishing Avenue` };
  };

  it('when an admin erases a buyer by one paid-out order, then their name, email and address are in no table and in no decoded event of a full replay, the money still adds up, and another buyer is unaffected', async () => {
    const { admin } = e2e;
    const erased = buyerFor('A');
    const kept = buyerFor('B');
    // two orders of the buyer to erase (one data subject), one of another buyer
    const [orderId, secondOrderId, keptOrderId] = [await capture(erased), await capture({ ...erased, street: `${erased.street} 2` }), await capture(kept)];
    const intents = await Promise.all([orderId, secondOrderId, keptOrderId].map((id) =>
      waitFor(() => paidOut(admin.payouts, id), { timeoutMs: 120_000, intervalMs: 300, description: `${id} paid out` })));
    const sales = async () => Promise.all([orderId, secondOrderId, keptOrderId].map(async (id) => (await admin.sales.get(`/admin/sales/${id}`)).data));
    // PayoutSent reaches sales through Kafka after payouts marks the intent SENT: snapshot once every payout is booked
    const payoutEntries = (sale: { journal: Array<{ kind: string }> }) => sale.journal.filter((e) => e.kind === 'PAYOUT').length;
    const salesBefore = await waitFor(async () => {
      const now = await sales();
      return now.every((sale, i) => payoutEntries(sale) === intents[i]!.filter((intent) => intent.status === 'SENT').length) ? now : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'sales booked every PayoutSent' });
    const before = await everything();
    expect(before).toContain(erased.street);
    expect(before).toContain(erased.email);

    // what Kafka holds before erasure: the buyer's data only sealed (never in clear), amounts and ids in clear
    const replayedBefore = await replayEverything(e2e.kafka, e2e.codec, e2e.namespace);
    const receivedOf = (replay: typeof replayedBefore, id: string) => replay
      .filter((m) => m.topic === e2e.codec.topic(Streams.orders) && (m.decoded as { orderId?: string; type?: string }).orderId === id && (m.decoded as { type: string }).type === 'OrderReceived')
      .map((m) => (m.decoded as { payload: OrderReceived }).payload);
    const [sealedBefore] = receivedOf(replayedBefore, orderId);
    expect(sealedBefore).toMatchObject({ buyer: null, shipTo: null, saleAmount: { amountMinor: 2999, currency: 'USD' }, sealedPersonal: { subjectId: expect.any(String) } });
    expect(receivedOf(replayedBefore, secondOrderId)[0]!.sealedPersonal!.subjectId).toBe(sealedBefore!.sealedPersonal!.subjectId);
    for (const m of replayedBefore) for (const personal of [erased.street, erased.email, erased.surname, kept.street]) expect(`${JSON.stringify(m.decoded)}${m.raw}`).not.toContain(personal);

    const erase = await admin.ingest.post(`/admin/orders/${orderId}/erase`, { reason: 'buyer request (e2e)' });
    expect(erase.status).toBe(200);
    const fulfillmentDb = dbs[SERVICES.indexOf('fulfillment')]!;
    const subjectId = sealedBefore!.sealedPersonal!.subjectId;
    for (const id of [orderId, secondOrderId]) {
      await waitFor(async () => (await fulfillmentDb('fulfillments').where({ order_id: id }).first())?.ship_to_issue === 'PERSONAL_DATA_ERASED', { description: `fulfillment erased its copy of ${id}` });
    }
    await waitFor(async () => (await fulfillmentDb('subject_keys').where({ subject_id: subjectId }).first())?.erased_at != null, { description: 'fulfillment deleted its copy of the subject key' });
    const after = await everything();
    for (const personal of [erased.street, erased.email, erased.surname]) expect(after).not.toContain(personal);
    expect(after).toContain(kept.street);

    // a full replay from the earliest offset: every event of every topic (dead letters and subject keys included)
    const replayed = await replayEverything(e2e.kafka, e2e.codec, e2e.namespace);
    for (const m of replayed) for (const personal of [erased.street, erased.email, erased.surname, kept.street, kept.email]) expect(`${JSON.stringify(m.decoded)}${m.raw}`).not.toContain(personal);
    // the subject's last key record is its erasure; no service holds its key any more, so nothing opens its events
    const keys = replayed.filter((m) => m.topic === e2e.codec.subjectKeysTopic() && m.key === subjectId).map((m) => m.decoded as SubjectKey);
    expect(keys.at(-1)).toMatchObject({ subjectId, sealedKey: null, erasedAt: expect.any(Number) });
    expect(await dbs[SERVICES.indexOf('ingest')]!('subject_keys').where({ subject_id: subjectId }).first()).toBeUndefined();
    expect(await fulfillmentDb('subject_keys').where({ subject_id: subjectId }).first()).toMatchObject({ sealed_key: null });
    const kek = keyEncryptionKey({ NODE_ENV: 'test' });
    await fulfillmentDb.transaction(async (trx) => {
      for (const id of [orderId, secondOrderId]) {
        expect(await openOrderReceived(trx, kek, id, receivedOf(replayed, id)[0]!)).toMatchObject({ buyer: null, shipTo: null, shipToIssue: 'PERSONAL_DATA_ERASED' });
      }
      // the other buyer's order still opens to their address
      expect((await openOrderReceived(trx, kek, keptOrderId, receivedOf(replayed, keptOrderId)[0]!)).shipTo).toMatchObject({ line1: kept.street });
    });

    // amounts, ids and states stay: every sale is unchanged to the minor unit and adds up; payouts are untouched
    expect(await sales()).toEqual(salesBefore);
    for (const sale of salesBefore) {
      const b = sale.breakdown;
      expect(b.marketplaceFee.amountMinor + b.paymentFee.amountMinor + b.supplierCost.amountMinor + b.platformCommission.amountMinor + b.sellerNetProfit.amountMinor - b.loss.amountMinor).toBe(b.saleAmount.amountMinor);
      expect(b.saleAmount).toMatchObject({ amountMinor: 2999, currency: 'USD' });
    }
    for (const [i, id] of [orderId, secondOrderId, keptOrderId].entries()) expect(await paidOut(admin.payouts, id)).toEqual(intents[i]);
    for (const id of [orderId, secondOrderId]) {
      const journey = (await admin.ingest.get(`/admin/orders/${id}`)).data;
      expect(journey.history.map((h: { event: string }) => h.event)).toEqual(['OrderReceived', 'OrderPersonalDataErased']);
    }
    expect((await admin.ingest.get(`/admin/orders/${keptOrderId}`)).data.history.map((h: { event: string }) => h.event)).toEqual(['OrderReceived']);
  });
});
