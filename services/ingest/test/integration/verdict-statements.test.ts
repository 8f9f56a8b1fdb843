import { randomUUID } from 'node:crypto';
import { EventCodec, type OrderReceived } from '@postsale/contracts';
import { createDb, keyEncryptionKey, Metrics, migrate, naturalSubjectId, OutboxWriter, type Db, type Tx } from '@postsale/runtime';
import { dropSchema, testEnv, uniqueId, waitFor } from '@postsale/runtime/testing';
import { DeliveriesRepository } from '../../src/db/deliveries.repository';
import { OrdersRepository } from '../../src/db/orders.repository';
import { SellersRepository } from '../../src/db/sellers.repository';
import { SubjectKeysRepository } from '../../src/db/subject-keys.repository';
import { orderIdFor } from '../../src/domain/order-id';
import { LeaseLostError, type Delivery } from '../../src/domain/records';
import { createOrderRecorder } from '../../src/domain/record-order.use-case';
import { createIngestMetrics } from '../../src/metrics';
import { ingestService } from '../../src/service';

/**
 * What committing a paid order costs in Postgres statements (issue 15: every round trip counts). The verdict's
 * transaction is counted as the delivery worker runs it (BEGIN and COMMIT left out), on ingest's schema with no
 * worker or outbox relay running, so every row it writes stays to be looked at.
 */
describe('ingest: statements per received order', () => {
  const env = testEnv('ingest');
  const schema = env.DB_SCHEMA!;
  const kek = keyEncryptionKey({ NODE_ENV: 'test' });
  let db: Db;
  let recorder: ReturnType<typeof createOrderRecorder>;
  let deliveries: DeliveriesRepository;
  let orders: OrdersRepository;
  let sellers: SellersRepository;
  let sent: string[] = [];
  /** held open before COMMIT while set (two replicas at once) */
  let holdCommit: { pid?: number; release?: Promise<void> } | undefined;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, ingestService.migrations);
    const outbox = new OutboxWriter(EventCodec.connect(env.SCHEMA_REGISTRY_URL!, env.TOPIC_NAMESPACE));
    deliveries = new DeliveriesRepository(db);
    orders = new OrdersRepository(db);
    sellers = new SellersRepository(db);
    const subjects = new SubjectKeysRepository(db, kek, outbox);
    recorder = createOrderRecorder({
      transaction: (fn) => db.transaction(async (trx: Tx) => {
        trx.on('query', (q: { sql?: string }) => {
          if (!/^(begin|commit)\b/i.test(q.sql ?? '')) sent.push(q.sql ?? '');
        });
        const result = await fn(trx);
        const hold = holdCommit;
        if (hold?.release) {
          hold.pid = (await trx.raw('select pg_backend_pid() as pid')).rows[0].pid;
          await hold.release;
        }
        return result;
      }),
      orders, deliveries, outbox, metrics: createIngestMetrics(new Metrics('ingest')),
      receiveOrder: (trx, row) => subjects.sealIfNew(trx, row.orderId, row.payload, orders.insertIfNewQuery(trx, row)),
    });
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const paidOrder = (externalOrderId: string, buyer: string): OrderReceived => ({
    marketplace: 'EBAY', externalOrderId, marketplaceAccountId: 'acct-statements',
    lines: [{ lineId: `line-${externalOrderId}`, listingId: 'L1', sku: null, title: 'Thing', quantity: 1, unitPrice: { amountMinor: 2500, currency: 'USD' } }],
    buyer: { externalId: buyer, name: 'Jane Buyer', email: 'jane@example.com' },
    shipTo: { fullName: 'Jane Buyer', line1: '2145 Hamilton Ave', line2: null, city: 'San Jose', region: 'CA', postalCode: '95125', countryCode: 'US', phone: '4085551234' },
    shipToIssue: null,
    itemsAmount: { amountMinor: 2500, currency: 'USD' }, shippingAmount: { amountMinor: 0, currency: 'USD' }, saleAmount: { amountMinor: 2500, currency: 'USD' },
    marketplaceFee: null, paymentFee: null, paymentReference: null, receivedAt: Date.now(),
  });
  /** a stored delivery of the order, under its lease, as the worker holds it */
  const delivery = async (externalOrderId: string): Promise<Delivery> => {
    const stored = await deliveries.storeNew({
      id: randomUUID(), marketplace: 'EBAY', kind: 'ebay.order_confirmation', dedupeKey: uniqueId('n-'), accountId: 'acct-statements',
      externalOrderId, orderId: orderIdFor('EBAY', externalOrderId), headers: {}, rawBody: '{}', sourceIp: null,
    }, 0);
    if (stored.kind !== 'stored') throw new Error('delivery not stored');
    return stored.delivery;
  };
  const commitPaid = async (d: Delivery, order: OrderReceived) => {
    sent = [];
    const outcome = await recorder.commitVerdict(d, 'EBAY', order.externalOrderId, 'seller-statements', { kind: 'paid', order });
    return { outcome, statements: sent };
  };
  const written = async (orderId: string) => ({
    orders: await db('orders').where({ order_id: orderId }).count<{ count: string }[]>('* as count').then((r) => Number(r[0]!.count)),
    subjects: (await db('order_subjects').where({ order_id: orderId })).map((r) => r.subject_id as string),
    events: (await db('order_events').where({ order_id: orderId }).orderBy('id')).map((r) => [r.event_type, r.cause, r.delivery_id]),
    outbox: (await db('outbox').where({ key: orderId }).orderBy('id')).map((r) => r.event_type as string),
  });
  const subjectKeyRows = async (subjectId: string) => db('outbox').where({ key: subjectId, event_type: 'SubjectKey' }).count<{ count: string }[]>('* as count').then((r) => Number(r[0]!.count));

  it('when a new buyer\'s order is accepted, then its verdict is 3 statements: order with key and link, both outbox rows, decision with the event\'s record', async () => {
    const ext = uniqueId('E');
    const d = await delivery(ext);
    const { outcome, statements } = await commitPaid(d, paidOrder(ext, uniqueId('buyer-')));

    expect(outcome).toEqual({ status: 'accepted', reason: null, orderId: orderIdFor('EBAY', ext) });
    // was 7: order insert, key insert, key's outbox row, order_subjects insert, order_events insert, event's outbox row, decision
    expect(statements).toHaveLength(3);
    const w = await written(orderIdFor('EBAY', ext));
    expect(w).toEqual({ orders: 1, subjects: [expect.any(String)], events: [['OrderReceived', 'received from marketplace', d.id]], outbox: ['OrderReceived'] });
    expect(await subjectKeyRows(w.subjects[0]!)).toBe(1);
    // the key goes on Kafka before the order's event (the relay publishes in id order)
    const rows = await db('outbox').whereIn('key', [w.subjects[0]!, orderIdFor('EBAY', ext)]).orderBy('id').select('event_type');
    expect(rows.map((r) => r.event_type)).toEqual(['SubjectKey', 'OrderReceived']);
    const decided = await deliveries.get(d.id);
    expect([decided!.status, decided!.orderId, decided!.attempts]).toEqual(['accepted', orderIdFor('EBAY', ext), 1]);
  });

  it('when a known buyer orders again, then 3 statements (the key is locked, not published again) and both orders share the subject', async () => {
    const buyer = uniqueId('buyer-');
    const first = uniqueId('E');
    await commitPaid(await delivery(first), paidOrder(first, buyer));
    const second = uniqueId('E');
    const { outcome, statements } = await commitPaid(await delivery(second), paidOrder(second, buyer));

    expect(outcome.status).toBe('accepted');
    // was 7: order insert, key insert (nothing), key read for share, order_subjects insert, order_events insert, outbox, decision
    expect(statements).toHaveLength(3);
    const [a, b] = [await written(orderIdFor('EBAY', first)), await written(orderIdFor('EBAY', second))];
    expect(b.subjects).toEqual(a.subjects);
    expect(await subjectKeyRows(a.subjects[0]!)).toBe(1);
  });

  it('when the order is already received, then 2 statements, and no key, link, event or outbox row is written again', async () => {
    const ext = uniqueId('E');
    const buyer = uniqueId('buyer-');
    await commitPaid(await delivery(ext), paidOrder(ext, buyer));
    const before = await written(orderIdFor('EBAY', ext));
    const again = await delivery(ext);
    const { outcome, statements } = await commitPaid(again, paidOrder(ext, buyer));

    expect(outcome).toEqual({ status: 'duplicate', reason: 'ORDER_ALREADY_RECEIVED', orderId: orderIdFor('EBAY', ext) });
    expect(statements).toHaveLength(2);
    expect(await written(orderIdFor('EBAY', ext))).toEqual(before);
    expect(await subjectKeyRows(before.subjects[0]!)).toBe(1);
    expect((await deliveries.get(again.id))!.status).toBe('duplicate');
  });

  it('when the delivery\'s lease was lost, then nothing of the order is written (the event\'s record goes back with the decision)', async () => {
    const ext = uniqueId('E');
    const d = await delivery(ext);
    const buyer = uniqueId('buyer-');
    await expect(recorder.commitVerdict({ id: d.id, fence: d.fence + 1 }, 'EBAY', ext, 'seller-statements', { kind: 'paid', order: paidOrder(ext, buyer) })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await written(orderIdFor('EBAY', ext))).toEqual({ orders: 0, subjects: [], events: [], outbox: [] });
    expect(await db('subject_keys').where({ subject_ref: kek.subjectRef(naturalSubjectId('EBAY', orderIdFor('EBAY', ext), buyer)) })).toHaveLength(0);
    expect((await deliveries.get(d.id))!.status).toBe('pending');
  });

  it('when two replicas receive two orders of one new buyer at once, then the second waits for the first\'s key, locks it and links to it', async () => {
    const buyer = uniqueId('buyer-');
    const [first, second] = [uniqueId('E'), uniqueId('E')];
    const [d1, d2] = [await delivery(first), await delivery(second)];
    let release!: () => void;
    holdCommit = { release: new Promise<void>((resolve) => (release = resolve)) };
    const firstDone = commitPaid(d1, paidOrder(first, buyer));
    const pid = await waitFor(() => holdCommit?.pid, { description: 'the first order\'s transaction issued the key and waits before COMMIT' });
    holdCommit = undefined;
    sent = [];
    const secondDone = recorder.commitVerdict(d2, 'EBAY', second, 'seller-statements', { kind: 'paid', order: paidOrder(second, buyer) });
    await waitFor(async () => (await db.raw('select 1 from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [pid])).rows.length > 0,
      { description: 'the second order waiting on the first one\'s key' });
    release();
    const [one, two] = await Promise.all([firstDone, secondDone]);

    expect([one.outcome.status, two.status]).toEqual(['accepted', 'accepted']);
    const [a, b] = [await written(orderIdFor('EBAY', first)), await written(orderIdFor('EBAY', second))];
    expect(a.subjects).toHaveLength(1);
    expect(b.subjects).toEqual(a.subjects);
    expect(await subjectKeyRows(a.subjects[0]!)).toBe(1);
    expect(b.outbox).toEqual(['OrderReceived']);
    // the key the first committed after the second's statement began is read again with the lock erasure waits on
    expect(sent.filter((sql) => /from "subject_keys" .*for share/i.test(sql))).toHaveLength(1);
  });

  it('when a delivery is routed, then its account and its order (once received) are one read, the same records as read apart', async () => {
    const ext = uniqueId('E');
    const account = uniqueId('acct-');
    await sellers.put(uniqueId('seller-'), null, [{ marketplace: 'EBAY', accountId: account, tokenSealed: 'v2:sealed-token', secretSealed: null }]);
    const orderId = orderIdFor('EBAY', ext);
    const read = async () => {
      const queries: string[] = [];
      const count = (q: { sql: string }) => queries.push(q.sql);
      db.on('query', count);
      try {
        return { found: await sellers.accountAndOrder('EBAY', account, orderId), queries };
      } finally {
        db.off('query', count);
      }
    };

    const before = await read();
    expect(before.queries).toHaveLength(1);
    expect(before.found).toEqual({ account: await sellers.account('EBAY', account), order: undefined });
    expect(before.found.account).toMatchObject({ accountId: account, tokenSealed: 'v2:sealed-token', updatedAt: expect.any(Date) });

    await commitPaid(await delivery(ext), paidOrder(ext, uniqueId('buyer-')));
    const after = await read();
    expect(after.queries).toHaveLength(1);
    expect(after.found.order).toEqual(await orders.get(orderId));
    expect(after.found.order).toMatchObject({ saleAmountMinor: 2500, currency: 'USD', receivedAt: expect.any(Date) });
    expect(await sellers.accountAndOrder('EBAY', 'nobody', orderId)).toEqual({ account: undefined, order: after.found.order });
  });

  it('when a webhook is stored, then it is one statement, the delivery handed back is the stored row, and the same message again is one statement storing a duplicate of it', async () => {
    const message = {
      marketplace: 'EBAY' as const, kind: 'ebay.order_confirmation', dedupeKey: uniqueId('n-'), accountId: 'acct-statements', externalOrderId: 'E1',
      orderId: orderIdFor('EBAY', 'E1'), headers: { 'x-ebay-signature': 'sig', 'content-type': 'application/json' }, rawBody: '{"notification":{"é":"ü"}}', sourceIp: '10.0.0.1',
    };
    const store = async (id: string, claimMs: number) => {
      const queries: string[] = [];
      const count = (q: { sql: string }) => queries.push(q.sql);
      db.on('query', count);
      try {
        return { result: await deliveries.storeNew({ id, ...message }, claimMs), queries };
      } finally {
        db.off('query', count);
      }
    };
    const [firstId, secondId] = [randomUUID(), randomUUID()];

    const first = await store(firstId, 30_000);
    expect(first.queries).toHaveLength(1);
    if (first.result.kind !== 'stored') throw new Error('the first copy was not stored');
    // what an inline attempt processes is what the worker would read
    expect(first.result.delivery).toEqual(await deliveries.get(firstId));
    expect(first.result.delivery).toMatchObject({ status: 'pending', attempts: 0, fence: 0, rawBody: message.rawBody, headers: message.headers, receivedAt: expect.any(Date) });

    const second = await store(secondId, 0);
    expect(second.queries).toHaveLength(1);
    expect(second.result).toEqual({ kind: 'duplicate', deliveryId: secondId, duplicateOf: firstId, orderId: message.orderId });
    expect(await deliveries.get(secondId)).toMatchObject({ status: 'duplicate', reason: `SAME_MESSAGE_AS_${firstId}`, rawBody: message.rawBody, processedAt: expect.any(Date) });
  });

  it('when an unverifiable sender\'s notification is stored, then whether a seller registered its account is asked by the same one statement', async () => {
    const account = uniqueId('ml-');
    const notification = (accountId: string) => ({
      id: randomUUID(), marketplace: 'MERCADOLIBRE' as const, kind: 'mercadolibre.orders_v2', dedupeKey: uniqueId('ml-n-'), accountId, externalOrderId: '123',
      orderId: orderIdFor('MERCADOLIBRE', '123'), headers: {}, rawBody: '{}', sourceIp: null,
    });
    const dropped = async () => Number((await db('dropped_notifications').where({ marketplace: 'MERCADOLIBRE', reason: 'UNKNOWN_ACCOUNT' }).sum<{ s: string | null }[]>('count as s'))[0]!.s ?? 0);
    const store = async (d: ReturnType<typeof notification>, ignored?: string) => {
      const queries: string[] = [];
      const count = (q: { sql: string }) => queries.push(q.sql);
      db.on('query', count);
      try {
        const options = { dropUnregisteredAs: 'UNKNOWN_ACCOUNT' };
        return { result: ignored ? await deliveries.insertIgnored(d, ignored, options) : await deliveries.storeNew(d, 0, options), queries };
      } finally {
        db.off('query', count);
      }
    };
    const droppedBefore = await dropped();

    const unknown = notification(account);
    const refused = await store(unknown);
    const refusedIgnored = await store(notification(account), 'UNSUPPORTED_TOPIC_questions');
    expect([refused.queries.length, refusedIgnored.queries.length]).toEqual([1, 1]);
    expect([refused.result, refusedIgnored.result]).toEqual([{ kind: 'dropped', reason: 'UNKNOWN_ACCOUNT' }, { kind: 'dropped', reason: 'UNKNOWN_ACCOUNT' }]);
    expect(await deliveries.get(unknown.id)).toBeUndefined();
    expect(await dropped()).toBe(droppedBefore + 2);

    await sellers.put(uniqueId('seller-'), null, [{ marketplace: 'MERCADOLIBRE', accountId: account, tokenSealed: null, secretSealed: null }]);
    const known = notification(account);
    const accepted = await store(known);
    expect(accepted.queries).toHaveLength(1);
    expect(accepted.result).toMatchObject({ kind: 'stored', delivery: { id: known.id, status: 'pending' } });
    expect((await store(notification(account), 'UNSUPPORTED_TOPIC_questions')).result).toMatchObject({ kind: 'stored', delivery: { status: 'ignored', reason: 'UNSUPPORTED_TOPIC_questions' } });
    expect(await dropped()).toBe(droppedBefore + 2);
  });
});
