import { randomUUID } from 'node:crypto';
import { dropSchema, uniqueId, waitFor } from '@postsale/runtime/testing';
import { orderReceived, publishOrders, startHarness, type Harness } from './harness';

describe('fulfillment erases its copy of the buyer\'s address when ingest announces an erasure', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
    if (h) await dropSchema(h.env.DB_SCHEMA!);
  });

  async function everything(): Promise<string> {
    const tables = await h.service.ctx.db.raw(`select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'`, [h.env.DB_SCHEMA!]);
    const parts: string[] = [];
    for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
      const rows = await h.service.ctx.db.raw(`select t::text as row from ?? t`, [table_name]);
      parts.push(...(rows.rows as Array<{ row: string }>).map((r) => r.row));
    }
    return parts.join('\n');
  }

  it('when OrderPersonalDataErased follows an OrderReceived, then the ship-to is gone from every fulfillment table; the order and its amounts stay', async () => {
    const shipTo = { fullName: 'Erin Erasable', line1: '404 Forget Street', line2: null, city: 'Reno', region: 'NV', postalCode: '89501', countryCode: 'US', phone: '7755550100' };
    const received = orderReceived({ sellerId: uniqueId('seller-'), listingId: 'L-1', sale: { amountMinor: 2599, currency: 'USD' }, shipTo });
    const keep = orderReceived({ sellerId: uniqueId('seller-'), listingId: 'L-1', sale: { amountMinor: 1000, currency: 'USD' }, shipTo: { ...shipTo, fullName: 'Kim Keeper', line1: '1 Stay Road', phone: '7755550199' } });
    await publishOrders(h, received); // one at a time: the first encode registers the schema
    await publishOrders(h, keep);
    await waitFor(async () => (await h.service.ctx.db('fulfillments').whereIn('order_id', [received.orderId, keep.orderId])).length === 2, { description: 'both recorded' });
    expect(await everything()).toContain('404 Forget Street');

    await publishOrders(h, {
      eventId: randomUUID(), orderId: received.orderId, sellerId: received.sellerId, occurredAt: Date.now(), causationId: null,
      type: 'OrderPersonalDataErased', payload: { marketplace: 'EBAY', externalOrderId: `ext-${received.orderId}`, cause: 'EBAY_ACCOUNT_DELETION', erasedAt: Date.now() },
    });
    const row = await waitFor(async () => {
      const r = await h.service.ctx.db('fulfillments').where({ order_id: received.orderId }).first();
      return r && r.ship_to === null ? r : undefined;
    }, { description: 'ship-to erased' });
    expect(row.ship_to_issue).toBe('PERSONAL_DATA_ERASED');
    expect(row.order_id).toBe(received.orderId);
    const all = await everything();
    for (const personal of ['Erin Erasable', '404 Forget Street', '7755550100']) expect(all).not.toContain(personal);
    expect(all).toContain('Kim Keeper');
  });
});
