import { randomUUID } from 'node:crypto';
import type { OrderReceived, SubjectKey } from '@postsale/contracts';
import { keyEncryptionKey, newDataKey, sealOrderReceived } from '@postsale/runtime';
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

  /** What ingest publishes on the compacted subject-keys topic: a subject's sealed key, or its erasure. */
  async function publishKey(record: SubjectKey): Promise<void> {
    const codec = h.service.ctx.codec;
    await h.producer.send({ topic: codec.subjectKeysTopic(), acks: -1, messages: [{ key: record.subjectId, value: await codec.encodeSubjectKey(record) }] });
  }
  const counted = async (metric: string, code: string) => {
    const { values } = await h.service.ctx.metrics.registry.getSingleMetric(metric)!.get();
    return values.filter((v) => v.labels.code === code).reduce((sum, v) => sum + v.value, 0);
  };

  it('when a sealed OrderReceived arrives before its buyer\'s key, then the consumer waits (no dead letter) and opens the address once the key arrives; after the erasure a later order of that buyer has no address', async () => {
    const kek = keyEncryptionKey({ NODE_ENV: 'test' }); // the documented development key, as the service has in tests
    const subject = { subjectId: randomUUID(), dataKey: newDataKey() };
    const shipTo = { fullName: 'Sasha Sealed', line1: '12 Cipher Lane', line2: null, city: 'Reno', region: 'NV', postalCode: '89501', countryCode: 'US', phone: null };
    const sealed = (event: ReturnType<typeof orderReceived>) => ({ ...event, payload: sealOrderReceived(event.payload as OrderReceived, event.orderId, subject) }) as typeof event;
    const first = sealed(orderReceived({ sellerId: uniqueId('seller-'), listingId: 'L-1', sale: { amountMinor: 2599, currency: 'USD' }, shipTo }));
    const retriedBefore = await counted('events_retried_total', 'SUBJECT_KEY_NOT_RECEIVED');
    await publishOrders(h, first);
    await waitFor(async () => (await counted('events_retried_total', 'SUBJECT_KEY_NOT_RECEIVED')) > retriedBefore, { description: 'the consumer waiting for the key' });
    expect(await h.service.ctx.db('fulfillments').where({ order_id: first.orderId }).first()).toBeUndefined();

    await publishKey({ subjectId: subject.subjectId, sealedKey: kek.wrap(subject.dataKey, subject.subjectId), erasedAt: null, occurredAt: Date.now() });
    const recorded = await waitFor(async () => h.service.ctx.db('fulfillments').where({ order_id: first.orderId }).first(), { description: 'recorded once the key arrived' });
    expect(recorded.ship_to).toMatchObject({ fullName: 'Sasha Sealed', line1: '12 Cipher Lane' });
    expect((await h.service.ctx.db('subject_keys').where({ subject_id: subject.subjectId }).first()).sealed_key).toMatch(/^v2:/); // sealed, never in clear

    await publishKey({ subjectId: subject.subjectId, sealedKey: null, erasedAt: Date.now(), occurredAt: Date.now() });
    await waitFor(async () => (await h.service.ctx.db('subject_keys').where({ subject_id: subject.subjectId }).first())?.sealed_key === null, { description: 'our copy of the key deleted' });
    // a redelivered old key record does not bring the key back
    await publishKey({ subjectId: subject.subjectId, sealedKey: kek.wrap(subject.dataKey, subject.subjectId), erasedAt: null, occurredAt: Date.now() });
    const later = sealed(orderReceived({ sellerId: uniqueId('seller-'), listingId: 'L-1', sale: { amountMinor: 1000, currency: 'USD' }, shipTo }));
    await publishOrders(h, later);
    const unreadable = await waitFor(async () => h.service.ctx.db('fulfillments').where({ order_id: later.orderId }).first(), { description: 'later order recorded without waiting' });
    expect(unreadable).toMatchObject({ ship_to: null, ship_to_issue: 'PERSONAL_DATA_ERASED', state: 'NEEDS_REVIEW' });
    expect((await h.service.ctx.db('subject_keys').where({ subject_id: subject.subjectId }).first()).sealed_key).toBeNull();
    expect(await counted('events_dead_lettered_total', 'SUBJECT_KEY_NOT_RECEIVED')).toBe(0);
  });
});
