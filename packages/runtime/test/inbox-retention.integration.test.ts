import { allStreams, DLQ_RETENTION_MS } from '@postsale/contracts';
import { createDb, createInboxPruner, createLogger, inboxRetentionMs, Metrics, migrate, pruneInbox, type Db } from '../src';
import { dropSchema, testEnv, waitFor } from '../src/testing';

/** Inbox rows outlive every copy of their event in Kafka, then go, a bounded batch at a time (real Postgres). */
describe('inbox retention', () => {
  const env = testEnv('runtime');
  const schema = env.DB_SCHEMA!;
  let db: Db;
  const DAY = 24 * 3600_000;

  beforeAll(async () => {
    db = createDb({ url: env.DATABASE_URL!, schema });
    await migrate(db, schema, []);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const insertRows = async (prefix: string, count: number, ageMs: number) => {
    await db('inbox').insert(Array.from({ length: count }, (_, i) => ({
      consumer_group: 'g', event_id: `${prefix}-${i}`, topic: 't', partition: 0, offset: i, event_type: 'E',
      processed_at: new Date(Date.now() - ageMs),
    })));
  };

  it('keeps a row longer than any topic, or dead-letter topic, keeps the event, plus a segment roll', () => {
    const longest = Math.max(DLQ_RETENTION_MS, ...allStreams().map((s) => s.retentionMs));
    expect(inboxRetentionMs(allStreams())).toBeGreaterThanOrEqual(longest + 7 * DAY);
  });

  it('deletes only rows older than the retention, at most a batch per statement', async () => {
    const keepMs = inboxRetentionMs(allStreams());
    await insertRows('old', 5, keepMs + DAY);
    await insertRows('young', 3, keepMs - DAY);
    await insertRows('new', 2, 0);

    expect(await pruneInbox(db, { keepMs, batch: 2 })).toBe(2);
    expect(await db('inbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '8' }]);
    expect(await pruneInbox(db, { keepMs, batch: 2 })).toBe(2);
    expect(await pruneInbox(db, { keepMs, batch: 2 })).toBe(1);
    expect(await pruneInbox(db, { keepMs, batch: 2 })).toBe(0);
    const left = (await db('inbox').orderBy('event_id').pluck('event_id')) as string[];
    expect(left).toEqual(['new-0', 'new-1', 'young-0', 'young-1', 'young-2']);
  });

  it('the service\'s pruner runs batch after batch while they come back full, then waits', async () => {
    const keepMs = inboxRetentionMs(allStreams());
    await insertRows('older', 7, keepMs + 2 * DAY);
    const metrics = new Metrics('runtime-test', { defaultMetrics: false });
    const pruner = createInboxPruner({ db, keepMs, batch: 3, intervalMs: 3_600_000, logger: createLogger('test', 'silent'), metrics });
    pruner.start();
    try {
      await waitFor(async () => Number((await db('inbox').where('event_id', 'like', 'older-%').count<{ n: string }[]>('* as n'))[0]!.n) === 0, {
        description: 'old rows pruned in batches of 3',
      });
    } finally {
      await pruner.stop();
    }
    const pruned = (await metrics.registry.getSingleMetricAsString('inbox_rows_pruned_total'));
    expect(pruned).toMatch(/inbox_rows_pruned_total\{service="runtime-test"\} 7/);
    expect(await db('inbox').count<{ n: string }[]>('* as n')).toEqual([{ n: '5' }]);
  });

  it('the retention query finds old rows through the processed_at index, not by reading the whole table', async () => {
    const plan = await db.transaction(async (trx) => {
      await trx.raw('set local enable_seqscan = off'); // a tiny test table would be scanned anyway; the index must be usable
      return JSON.stringify((await trx.raw(`explain (format json) select ctid from inbox where processed_at < now() - interval '1 day' limit 10`)).rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('inbox_processed_at');
  });
});
