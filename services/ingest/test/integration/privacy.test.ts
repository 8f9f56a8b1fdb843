import { randomBytes, randomUUID } from 'node:crypto';
import type { OrderReceived } from '@postsale/contracts';
import { collectTopic, uniqueId, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { useIngest } from '../support/ingest-harness';

/** eBay's MARKETPLACE_ACCOUNT_DELETION exactly as eBay sends it: `data = {username, userId, eiasToken}`. */
const deletionNotification = (username: string, userId: string) => ({
  metadata: { topic: 'MARKETPLACE_ACCOUNT_DELETION', schemaVersion: '1.0', deprecated: false },
  notification: {
    notificationId: `${randomUUID()}_${randomUUID()}`,
    eventDate: new Date().toISOString(),
    publishDate: new Date().toISOString(),
    publishAttemptCount: 1,
    data: { username, userId, eiasToken: 'nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6AFkIWkCpSLpQudj6x9nY+seQ==' },
  },
});

describe('ingest privacy: eBay account deletion, admin erasure and retention on real Postgres and Kafka', () => {
  const h = useIngest({ collect: true, env: { PERSONAL_DATA_RETENTION_DAYS: '30', DELIVERY_RETENTION_DAYS: '14', RETENTION_INTERVAL_MS: '200' } });
  const sellerName = uniqueId('ebayseller');
  const sellerToken = uniqueId('tok-');
  const storefrontId = uniqueId('shop-');
  const captureSecret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    h.ebay.registerSellerToken(sellerToken, sellerName);
    await h.registerSeller(uniqueId('seller-'), [
      { marketplace: 'EBAY', accountId: sellerName, accessToken: sellerToken },
      { marketplace: 'PAYPAL_STOREFRONT', accountId: storefrontId, captureSecret },
    ]);
  });

  /** Every row of every table in ingest's schema, as text: where personal data could hide. */
  async function everything(): Promise<string> {
    const tables = await h.service.ctx.db.raw(`select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'`, [h.env.DB_SCHEMA!]);
    const parts: string[] = [];
    for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
      const rows = await h.service.ctx.db.raw(`select t::text as row from ?? t`, [table_name]);
      parts.push(...(rows.rows as Array<{ row: string }>).map((r) => `${table_name}: ${r.row}`));
    }
    return parts.join('\n');
  }
  const postEbay = (body: unknown, headers: Record<string, string>) =>
    fetch(`${h.url}/webhooks/ebay`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  async function receiveEbayOrder(buyerUsername: string, fullName: string, street: string, seller = sellerName) {
    const order = h.ebay.seedOrder(buildEbayOrder({
      sellerUsername: seller, buyerUsername, lineItems: [{ title: 'Kettle', quantity: 1, unitValue: '31.40' }],
      shipTo: { fullName, contactAddress: { addressLine1: street, city: 'Lyon', postalCode: '69001', countryCode: 'FR' } },
    }));
    const res = await h.ebay.deliver(`${h.url}/webhooks/ebay`, h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username: seller, userId: 'seller-u' }));
    expect(res.status).toBe(200);
    const orderId = orderIdFor('EBAY', order.orderId);
    await waitFor(() => h.collector.messages.find((m) => m.event.orderId === orderId), { description: `OrderReceived ${orderId}` });
    return orderId;
  }

  it('when a correctly signed MARKETPLACE_ACCOUNT_DELETION names a buyer, then 204 and their name and address are in no table; amounts stay', async () => {
    const buyer = uniqueId('buyer');
    const orderId = await receiveEbayOrder(buyer, 'Zelda Quartermain', '77 Rue Effacee');
    const other = await receiveEbayOrder(uniqueId('buyer'), 'Otto Keepsake', '5 Rue Restante');
    expect(await everything()).toContain('Zelda Quartermain');

    // unsigned: 412 and nothing erased
    expect((await postEbay(deletionNotification(buyer, 'u-1'), {})).status).toBe(412);
    expect(await everything()).toContain('Zelda Quartermain');

    const signed = h.ebay.signBody(deletionNotification(buyer, 'u-1'));
    const res = await postEbay(signed.body, signed.headers);
    expect(res.status).toBe(204);
    const all = await everything();
    for (const personal of ['Zelda Quartermain', '77 Rue Effacee', buyer]) expect(all).not.toContain(personal);
    expect(all).toContain('Otto Keepsake'); // only that buyer's data

    const row = await h.service.ctx.db('orders').where({ order_id: orderId }).first();
    expect(row).toMatchObject({ sale_amount_minor: '3140', currency: 'USD', state: 'RECEIVED' });
    expect(row.personal_data_erased_at).not.toBeNull();
    expect(row.received_payload).toMatchObject({ buyer: { externalId: null, name: null, email: null }, shipTo: null, shipToIssue: 'PERSONAL_DATA_ERASED', saleAmount: { amountMinor: 3140 } });
    const journey = await (await h.admin(`/admin/orders/${other}?reveal=true&reason=privacy%20test`)).json();
    expect(journey.received.shipTo.fullName).toBe('Otto Keepsake');

    // the other services learn it from the orders stream and erase their own copies
    const announced = await waitFor(() => h.collector.messages.find((m) => m.event.orderId === orderId && m.event.type === 'OrderPersonalDataErased'), { description: 'OrderPersonalDataErased' });
    expect(announced.event.payload).toMatchObject({ marketplace: 'EBAY', cause: 'EBAY_ACCOUNT_DELETION' });

    // eBay re-sends: acknowledged again, nothing else changes (no second announcement)
    expect((await postEbay(signed.body, signed.headers)).status).toBe(204);
    await h.settle();
    expect(h.collector.messages.filter((m) => m.event.orderId === orderId && m.event.type === 'OrderPersonalDataErased')).toHaveLength(1);
    const erasures = await h.service.ctx.db('erasures').where({ cause: 'EBAY_ACCOUNT_DELETION' });
    expect(erasures.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(erasures)).not.toContain(buyer);

    // Kafka: the order's event never carried the buyer in clear, only sealed under the subject's key, which is now
    // gone from ingest and announced erased on the compacted subject-keys topic (every reader deletes its copy)
    const received = h.collector.messages.find((m) => m.event.orderId === orderId && m.event.type === 'OrderReceived')!.event.payload as OrderReceived;
    expect(received).toMatchObject({ buyer: null, shipTo: null, saleAmount: { amountMinor: 3140, currency: 'USD' }, sealedPersonal: { subjectId: expect.any(String) } });
    for (const m of h.collector.raw) for (const personal of ['Zelda Quartermain', '77 Rue Effacee', buyer, 'Otto Keepsake']) expect(m.value!.toString('latin1')).not.toContain(personal);
    const subjectId = received.sealedPersonal!.subjectId;
    expect(await h.service.ctx.db('subject_keys').where({ subject_id: subjectId }).first()).toBeUndefined();
    const otherSubject = (h.collector.messages.find((m) => m.event.orderId === other && m.event.type === 'OrderReceived')!.event.payload as OrderReceived).sealedPersonal!.subjectId;
    expect(await h.service.ctx.db('subject_keys').where({ subject_id: otherSubject }).first()).toBeDefined();
    const keys = await collectTopic(h.service.ctx.kafka, undefined, h.service.ctx.codec.subjectKeysTopic());
    try {
      const records = async () => Promise.all(keys.raw.map((m) => h.service.ctx.codec.decodeSubjectKey(m.value!)));
      const mine = await waitFor(async () => {
        const all = (await records()).filter((r) => r.subjectId === subjectId);
        return all.at(-1)?.sealedKey === null ? all : undefined;
      }, { description: 'the subject announced erased' });
      expect(mine[0]!.sealedKey).toMatch(/^v2:kek-/); // the key travelled sealed with the key-encryption key, never in clear
      expect(mine.at(-1)).toMatchObject({ sealedKey: null, erasedAt: expect.any(Number) });
    } finally {
      await keys.stop();
    }
  });

  it('when the deleted eBay user is one of our sellers, then the account and its token are removed and its raw deliveries emptied', async () => {
    await receiveEbayOrder(uniqueId('buyer'), 'Ivo Sellerside', '1 Quai Test');
    const signed = h.ebay.signBody(deletionNotification(sellerName, 'seller-u'));
    expect((await postEbay(signed.body, signed.headers)).status).toBe(204);
    expect(await h.service.ctx.db('marketplace_accounts').where({ marketplace: 'EBAY', account_id: sellerName }).first()).toBeUndefined();
    const raws = await h.service.ctx.db('deliveries').where({ marketplace: 'EBAY', account_id: sellerName }).select('raw_body', 'headers');
    expect(raws.length).toBeGreaterThan(0);
    for (const d of raws) expect(d).toEqual({ raw_body: '{"erased":true}', headers: {} });
  });

  it('when an admin erases one order by id, then its buyer data is gone everywhere, the erasure is in its journey, and a reason is required', async () => {
    const seeded = h.paypal.seedCheckoutOrder({ amount: '42.00', fee: '1.77', customId: storefrontId,
      payer: { name: { given_name: 'Quentin', surname: 'Uniquename' }, email_address: 'quentin.uniquename@buyers.test' },
      shipping: { name: { full_name: 'Quentin Uniquename' }, address: { address_line_1: '9 Erasure Road', admin_area_2: 'Austin', admin_area_1: 'TX', postal_code: '73301', country_code: 'US' } } });
    const captured = await h.signedCapture(storefrontId, captureSecret, seeded.id);
    expect(captured.status).toBe(201);
    const orderId = orderIdFor('PAYPAL_STOREFRONT', seeded.id);
    await waitFor(() => h.collector.messages.some((m) => m.event.orderId === orderId), { description: 'published' });
    expect(await everything()).toContain('quentin.uniquename@buyers.test');

    expect((await h.admin(`/admin/orders/${orderId}/erase`, { method: 'POST', body: '{}' })).status).toBe(400);
    expect((await fetch(`${h.url}/admin/orders/${orderId}/erase`, { method: 'POST', body: JSON.stringify({ reason: 'buyer asked' }), headers: { 'Content-Type': 'application/json' } })).status).toBe(401);
    const res = await h.admin(`/admin/orders/${orderId}/erase`, { method: 'POST', body: JSON.stringify({ reason: 'buyer asked by email (ticket 77)' }) });
    expect(res.status).toBe(200);
    const all = await everything();
    for (const personal of ['Quentin', 'Uniquename', 'quentin.uniquename@buyers.test', '9 Erasure Road']) expect(all).not.toContain(personal);
    const journey = await (await h.admin(`/admin/orders/${orderId}`)).json();
    expect(journey).toMatchObject({
      state: 'RECEIVED', saleAmount: { amountMinor: 4200, currency: 'USD' },
      erasures: [{ cause: 'ADMIN', by: 'admin', reason: 'buyer asked by email (ticket 77)' }],
      audit: [{ actor: 'admin', action: 'ERASE_PERSONAL_DATA', reason: 'buyer asked by email (ticket 77)', before: { personalData: 'held' }, after: { personalData: 'erased', orders: 1 } }],
    });
    expect((await h.admin(`/admin/orders/ord_nope/erase`, { method: 'POST', body: JSON.stringify({ reason: 'x-y-z' }) })).status).toBe(404);
  });

  it('when an order is older than the retention period, then its buyer data is erased by itself; newer orders and undecided deliveries are kept', async () => {
    const seller = uniqueId('ebayseller');
    const token = uniqueId('tok-');
    h.ebay.registerSellerToken(token, seller);
    await h.registerSeller(uniqueId('seller-'), [{ marketplace: 'EBAY', accountId: seller, accessToken: token }]);
    const old = await receiveEbayOrder(uniqueId('buyer'), 'Olga Oldorder', '3 Rue Ancienne', seller);
    const fresh = await receiveEbayOrder(uniqueId('buyer'), 'Fiona Freshorder', '4 Rue Neuve', seller);
    await h.service.ctx.db('orders').where({ order_id: old }).update({ received_at: h.service.ctx.db.raw(`now() - interval '31 days'`) });
    const oldDelivery = await h.service.ctx.db('deliveries').where({ order_id: fresh }).first();
    await h.service.ctx.db('deliveries').where({ id: oldDelivery.id }).update({ received_at: h.service.ctx.db.raw(`now() - interval '15 days'`) });
    const parked = randomUUID();
    await h.service.ctx.db('deliveries').insert({ id: parked, marketplace: 'EBAY', kind: 'ebay.order_confirmation', dedupe_key: parked, status: 'parked', reason: 'UNROUTABLE', headers: '{}', raw_body: '{}', received_at: h.service.ctx.db.raw(`now() - interval '60 days'`) });

    await waitFor(async () => (await h.service.ctx.db('orders').where({ order_id: old }).first()).personal_data_erased_at, { description: 'old order erased by retention' });
    await waitFor(async () => !(await h.service.ctx.db('deliveries').where({ id: oldDelivery.id }).first()), { description: 'old decided delivery deleted' });
    const all = await everything();
    expect(all).not.toContain('Olga Oldorder');
    expect(all).toContain('Fiona Freshorder');
    expect(await h.service.ctx.db('deliveries').where({ id: parked }).first()).toBeDefined();
    expect(await h.service.ctx.db('erasures').where({ cause: 'RETENTION' }).first()).toBeDefined();
    // each buyer here has one order: the old one's key is shredded with it, the fresh one's kept
    const subjectOf = async (orderId: string) => (await h.service.ctx.db('order_subjects').where({ order_id: orderId }).first()).subject_id as string;
    await waitFor(async () => !(await h.service.ctx.db('subject_keys').where({ subject_id: await subjectOf(old) }).first()), { description: 'old buyer\'s key shredded' });
    expect(await h.service.ctx.db('subject_keys').where({ subject_id: await subjectOf(fresh) }).first()).toBeDefined();
  });

  it('when retention erases an old order of a buyer who ordered again since, then the buyer\'s key stays until their last order is erased', async () => {
    const seller = uniqueId('ebayseller');
    const token = uniqueId('tok-');
    h.ebay.registerSellerToken(token, seller);
    await h.registerSeller(uniqueId('seller-'), [{ marketplace: 'EBAY', accountId: seller, accessToken: token }]);
    const buyer = uniqueId('buyer');
    const old = await receiveEbayOrder(buyer, 'Rita Returning', '8 Rue Premiere', seller);
    const again = await receiveEbayOrder(buyer, 'Rita Returning', '8 Rue Premiere', seller);
    const subject = async (orderId: string) => (await h.service.ctx.db('order_subjects').where({ order_id: orderId }).first()).subject_id as string;
    expect(await subject(again)).toBe(await subject(old)); // one buyer, one subject, one key
    await h.service.ctx.db('orders').where({ order_id: old }).update({ received_at: h.service.ctx.db.raw(`now() - interval '31 days'`) });
    await waitFor(async () => (await h.service.ctx.db('orders').where({ order_id: old }).first()).personal_data_erased_at, { description: 'old order erased by retention' });
    expect(await h.service.ctx.db('subject_keys').where({ subject_id: await subject(old) }).first()).toBeDefined();
    await h.service.ctx.db('orders').where({ order_id: again }).update({ received_at: h.service.ctx.db.raw(`now() - interval '31 days'`) });
    await waitFor(async () => !(await h.service.ctx.db('subject_keys').where({ subject_id: await subject(old) }).first()), { description: 'key shredded with the last order' });
  });
});
