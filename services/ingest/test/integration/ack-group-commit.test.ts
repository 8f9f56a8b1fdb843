import { randomUUID } from 'node:crypto';
import { createDb, createLogger, Metrics, migrate, type Db } from '@postsale/runtime';
import { dropSchema, testEnv, uniqueId } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { createAckStore } from '../../src/db/ack-store';
import { DeliveriesRepository } from '../../src/db/deliveries.repository';
import { SellersRepository } from '../../src/db/sellers.repository';
import type { AckStore, StoreResult } from '../../src/domain/ports';
import type { NewDelivery } from '../../src/domain/records';
import { ingestService } from '../../src/service';
import { useIngest } from '../support/ingest-harness';

/**
 * Group commit of webhook acks (issue 15: ≥ 2,000 acks/s): webhooks arriving together are stored by one statement,
 * and every request still gets its own outcome — stored, duplicate (also of a copy in the same statement), dropped —
 * only once that statement committed; a delivery the database refuses fails its own request and no other.
 */
describe('ingest: concurrent webhooks are stored by one statement', () => {
  // statements counted by their text (the benchmark's --statements); one ack connection and a long linger, so the burst
  // goes in few batches even on a loaded machine
  const profile = process.env.DB_STATEMENT_PROFILE;
  process.env.DB_STATEMENT_PROFILE = '1';
  afterAll(() => {
    if (profile === undefined) delete process.env.DB_STATEMENT_PROFILE;
    else process.env.DB_STATEMENT_PROFILE = profile;
  });
  const h = useIngest({ env: { ACK_DB_POOL_MAX: '1', ACK_BATCH_LINGER_MS: '100', DELIVERY_POLL_INTERVAL_MS: '200' } });

  /** how many storeMany statements (any number of rows) the service sent so far */
  const storeStatements = async (): Promise<number> => {
    const metric = await h.service.ctx.metrics.registry.getSingleMetric('db_statements_total')!.get();
    return metric.values.filter((v) => String(v.labels.statement).startsWith('with incoming (ord,')).reduce((n, v) => n + v.value, 0);
  };

  it('when eBay and MercadoLibre webhooks arrive together (copies of one message among them), then fewer statements than webhooks store them, each message once, and every copy is answered for what it is', async () => {
    const username = uniqueId('ebay-gc-');
    await h.registerEbaySeller(username, uniqueId('ebay-token-'));
    const mlUser = Number(`7${Date.now() % 1e8}`);
    await h.registerMlSeller(mlUser, uniqueId('APP_USR-'));
    const ebay = Array.from({ length: 8 }, () => {
      const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, lineItems: [{ title: 'Mug', quantity: 1, unitValue: '12.50' }] }));
      return h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u-gc' });
    });
    const ml = Array.from({ length: 6 }, (_, i) => h.ml.notification({ orderId: 2_000_000 + i, userId: mlUser }));
    const stranger = Array.from({ length: 2 }, (_, i) => h.ml.notification({ orderId: 3_000_000 + i, userId: mlUser + 1 })); // no seller: counted only
    const dropped = async () => Number((await h.service.ctx.db('dropped_notifications').where({ marketplace: 'MERCADOLIBRE', reason: 'UNKNOWN_ACCOUNT' }).sum<{ s: string | null }[]>('count as s'))[0]!.s ?? 0);
    const [statementsBefore, droppedBefore] = [await storeStatements(), await dropped()];

    // eBay's first notification three times and MercadoLibre's first twice, all at once: copies in one batch
    const sends: Array<Promise<{ status: number; body: string }>> = [
      ...ebay.map((n) => h.ebay.deliver(`${h.url}/webhooks/ebay`, n)), h.ebay.deliver(`${h.url}/webhooks/ebay`, ebay[0]!), h.ebay.deliver(`${h.url}/webhooks/ebay`, ebay[0]!),
      ...ml.map((n) => h.ml.deliver(`${h.url}/webhooks/mercadolibre`, n)), h.ml.deliver(`${h.url}/webhooks/mercadolibre`, ml[0]!),
      ...stranger.map((n) => h.ml.deliver(`${h.url}/webhooks/mercadolibre`, n)),
    ];
    const answers = await Promise.all(sends);
    expect(answers.map((a) => a.status)).toEqual(sends.map(() => 200));

    const statements = (await storeStatements()) - statementsBefore;
    expect(statements).toBeGreaterThanOrEqual(1);
    expect(statements).toBeLessThan(sends.length / 2); // one per webhook before group commit (19 here)

    // eBay: each notification id held once; the two extra copies of the first are duplicates of the copy that holds it
    const ebayAnswers = answers.slice(0, 10).map((a) => JSON.parse(a.body) as { deliveryId: string; status: string; reason: string | null });
    const firstCopies = [ebayAnswers[0]!, ebayAnswers[8]!, ebayAnswers[9]!];
    expect(firstCopies.map((a) => a.status).sort()).toEqual(['duplicate', 'duplicate', 'pending']);
    expect(ebayAnswers.slice(1, 8).every((a) => a.status === 'pending')).toBe(true);
    const holder = firstCopies.find((a) => a.status === 'pending')!;
    const copies = await h.service.ctx.db('deliveries').where({ marketplace: 'EBAY', dedupe_key: ebay[0]!.body.notification.notificationId });
    expect(copies).toHaveLength(3);
    expect(copies.filter((c) => c.status === 'duplicate').map((c) => c.reason)).toEqual([`SAME_MESSAGE_AS_${holder.deliveryId}`, `SAME_MESSAGE_AS_${holder.deliveryId}`]);
    expect(copies.find((c) => c.status !== 'duplicate')!.id).toBe(holder.deliveryId);
    for (const n of ebay.slice(1)) {
      expect(await h.service.ctx.db('deliveries').where({ marketplace: 'EBAY', dedupe_key: n.body.notification.notificationId }).whereNot({ status: 'duplicate' })).toHaveLength(1);
    }

    // MercadoLibre: each notification held once, the copy stored as a duplicate, the strangers only counted (two in one row)
    for (const n of ml) expect(await h.service.ctx.db('deliveries').where({ marketplace: 'MERCADOLIBRE', dedupe_key: n._id }).whereNot({ status: 'duplicate' })).toHaveLength(1);
    const mlCopies = await h.service.ctx.db('deliveries').where({ marketplace: 'MERCADOLIBRE', dedupe_key: ml[0]!._id });
    const mlHolder = mlCopies.find((c) => c.status !== 'duplicate')!;
    expect(mlCopies.filter((c) => c.status === 'duplicate').map((c) => c.reason)).toEqual([`SAME_MESSAGE_AS_${mlHolder.id}`]);
    expect(await h.service.ctx.db('deliveries').where({ account_id: String(mlUser + 1) })).toHaveLength(0);
    expect(await dropped()).toBe(droppedBefore + 2);
  });
});

describe('ingest: the group-committed ack store on real Postgres', () => {
  const env = testEnv('ingest');
  const schema = env.DB_SCHEMA!;
  let db: Db;
  let repo: DeliveriesRepository;
  let acks: AckStore;
  const sent: string[] = [];

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, ingestService.migrations);
    db.on('query', (q: { sql?: string }) => sent.push(q.sql ?? ''));
    repo = new DeliveriesRepository(db);
    // one batch at a time and a long linger: everything submitted together goes in one statement
    acks = createAckStore(repo, { maxBatch: 64, maxInFlight: 1, lingerMs: 30, logger: createLogger('ingest', 'silent'), metrics: new Metrics('ingest') });
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const delivery = (fields: Partial<NewDelivery> = {}): NewDelivery => ({
    id: randomUUID(), marketplace: 'EBAY', kind: 'ebay.order_confirmation', dedupeKey: uniqueId('n-'), accountId: 'acct-gc', externalOrderId: 'E1',
    orderId: 'ord_e1', headers: { 'content-type': 'application/json' }, rawBody: '{}', sourceIp: '10.0.0.1', ...fields,
  });
  const counting = async <T>(fn: () => Promise<T>): Promise<{ value: T; statements: number }> => {
    const before = sent.length;
    const value = await fn();
    return { value, statements: sent.length - before };
  };

  it('when copies of one message, a message already held, unregistered and ignored notifications are stored together, then one statement gives each the outcome storing it alone would', async () => {
    const held = delivery();
    const heldResult = await repo.storeNew(held, 0);
    if (heldResult.kind !== 'stored') throw new Error('not stored');
    const first = delivery({ orderId: 'ord_first' });
    const copy = delivery({ dedupeKey: first.dedupeKey, orderId: 'ord_first' });
    const again = delivery({ dedupeKey: held.dedupeKey });
    const fresh = delivery();
    const ignored = delivery({ marketplace: 'MERCADOLIBRE', accountId: 'ml-registered' });
    const strangers = [delivery({ marketplace: 'MERCADOLIBRE', accountId: 'ml-nobody' }), delivery({ marketplace: 'MERCADOLIBRE', accountId: 'ml-nobody' })];
    await new SellersRepository(db).put('seller-gc', null, [{ marketplace: 'MERCADOLIBRE', accountId: 'ml-registered', tokenSealed: null, secretSealed: null }]);
    const unregistered = { dropUnregisteredAs: 'UNKNOWN_ACCOUNT' };

    const { value: results, statements } = await counting(() => Promise.all<StoreResult>([
      acks.storeNew(first, 30_000), acks.storeNew(copy, 0), acks.storeNew(again, 0), acks.storeNew(fresh, 0),
      acks.insertIgnored(ignored, 'UNSUPPORTED_TOPIC_questions', unregistered), ...strangers.map((s) => acks.storeNew(s, 0, unregistered)),
    ]));
    expect(statements).toBe(1);
    const [firstR, copyR, againR, freshR, ignoredR, ...strangerR] = results;
    expect(firstR).toMatchObject({ kind: 'stored', delivery: { id: first.id, status: 'pending', attempts: 0, fence: 0 } });
    if (firstR?.kind !== 'stored') throw new Error('unexpected');
    expect(firstR.delivery).toEqual(await repo.get(first.id)); // what an inline attempt processes is what the worker would read
    expect(copyR).toEqual({ kind: 'duplicate', deliveryId: copy.id, duplicateOf: first.id, orderId: 'ord_first' });
    expect(againR).toEqual({ kind: 'duplicate', deliveryId: again.id, duplicateOf: held.id, orderId: held.orderId });
    expect(freshR).toMatchObject({ kind: 'stored', delivery: { id: fresh.id, status: 'pending' } });
    expect(ignoredR).toMatchObject({ kind: 'stored', delivery: { id: ignored.id, status: 'ignored', reason: 'UNSUPPORTED_TOPIC_questions', processedAt: expect.any(Date) } });
    expect(strangerR).toEqual([{ kind: 'dropped', reason: 'UNKNOWN_ACCOUNT' }, { kind: 'dropped', reason: 'UNKNOWN_ACCOUNT' }]);

    expect(await repo.get(copy.id)).toMatchObject({ status: 'duplicate', reason: `SAME_MESSAGE_AS_${first.id}`, processedAt: expect.any(Date) });
    expect(await repo.get(again.id)).toMatchObject({ status: 'duplicate', reason: `SAME_MESSAGE_AS_${held.id}` });
    expect((await db('deliveries').where({ id: first.id }).first()).claimed_until).not.toBeNull(); // inline budget's claim kept
    for (const s of strangers) expect(await repo.get(s.id)).toBeUndefined();
    expect(await repo.droppedCounts()).toEqual([expect.objectContaining({ marketplace: 'MERCADOLIBRE', reason: 'UNKNOWN_ACCOUNT', count: 2 })]);
  });

  it('when one delivery of a batch is refused by the database, then only its request fails and the others are stored and answered', async () => {
    const good = [delivery(), delivery()];
    const bad = delivery({ kind: 'k'.repeat(65) }); // wider than the kind column
    const { value: settled, statements } = await counting(() => Promise.allSettled([acks.storeNew(good[0]!, 0), acks.storeNew(bad, 0), acks.storeNew(good[1]!, 0)]));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(settled[0]).toMatchObject({ value: { kind: 'stored', delivery: { id: good[0]!.id } } });
    expect(settled[2]).toMatchObject({ value: { kind: 'stored', delivery: { id: good[1]!.id } } });
    expect(statements).toBe(4); // the batch (rolled back), then each delivery on its own
    expect(await repo.get(bad.id)).toBeUndefined();
    for (const g of good) expect(await repo.get(g.id)).toMatchObject({ status: 'pending' });
  });
});
