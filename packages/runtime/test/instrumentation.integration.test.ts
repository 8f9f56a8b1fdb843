import type { Counter } from 'prom-client';
import { startService, type RunningService } from '../src';
import { dropSchema, testEnv, waitFor } from '../src/testing';
import { fixtureService } from './fixture-service';

/** The benchmark divides these counters by the orders it sent: they must count exactly what was sent. */
describe('a service counts what it asks of Postgres and Kafka', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('runtime');
    service = await startService(fixtureService, env);
  });
  afterAll(async () => {
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  const total = async (name: string, labels: Record<string, string> = {}) => {
    const metric = service.ctx.metrics.registry.getSingleMetric(name) as Counter | undefined;
    const values = (await metric!.get()).values;
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };

  it('when a transaction runs two statements and a write runs on its own, then 5 round trips and 2 commits are counted', async () => {
    const db = service.ctx.db;
    await db.raw('create table if not exists counted (v int)');
    const [trips, commits] = [await total('db_round_trips_total'), await total('db_commits_total')];
    await db.transaction(async (trx) => {
      await trx('counted').insert({ v: 1 });
      await trx('counted').select('v');
    }); // BEGIN, insert, select, COMMIT
    await db('counted').insert({ v: 2 }); // commits on its own
    // other work of the service (relay, consumers) may run meanwhile: at least ours, and our commits exactly once each
    expect(await total('db_round_trips_total')).toBeGreaterThanOrEqual(trips + 5);
    expect(await total('db_commits_total')).toBeGreaterThanOrEqual(commits + 2);
    const rolledBack = await total('db_commits_total');
    await db.transaction(async (trx) => {
      await trx('counted').insert({ v: 3 });
      await trx.rollback();
    }).catch(() => undefined);
    expect(await total('db_commits_total')).toBe(rolledBack);
  });

  it('when a write on its own changes no row or fails, then it is not counted as a commit (Postgres commits nothing for it)', async () => {
    const db = service.ctx.db;
    await db.raw('create table if not exists counted_claims (v int primary key)');
    await db('counted_claims').insert({ v: 1 }).onConflict('v').ignore();
    const before = await total('db_commits_total');
    expect(await db('counted_claims').where({ v: -1 }).update({ v: -2 })).toBe(0); // a claim that found nothing due
    expect(await db('counted_claims').where({ v: -1 }).delete()).toBe(0);
    await expect(db('counted_claims').insert({ v: 1 })).rejects.toThrow(/duplicate key/);
    expect(await total('db_commits_total')).toBe(before);
    // nor does one whose WITH parts only read (a claim's lookup), when its last part changed nothing
    await db.raw('with due as (select v from counted_claims where v < 0) update counted_claims set v = v where v in (select v from due)');
    await db.raw('with recursive due(v) as materialized (select -1 union all select v - 1 from due where v > -3) delete from counted_claims where v in (select v from due)');
    expect(await total('db_commits_total')).toBe(before);
    // one that changes a row commits, and so does one with a WITH part that writes (its answer does not say what that part wrote)
    expect(await db('counted_claims').where({ v: 1 }).update({ v: 2 })).toBe(1);
    await db.raw('with gone as (delete from counted_claims where v = -5 returning v) update counted_claims set v = v where v = -6');
    await db.raw('with gone as not materialized (delete from counted_claims where v = -5 returning v) update counted_claims set v = v where v = -6');
    expect(await total('db_commits_total')).toBe(before + 3);
  });

  it('when the service talks to Kafka, its requests are counted by client and API', async () => {
    await waitFor(async () => (await total('kafka_requests_total', { client: 'consumer', api: 'Fetch' })) > 0, { description: 'consumer fetches counted' });
    expect(await total('kafka_requests_total', { client: 'admin' })).toBeGreaterThan(0);
  });

  it('when three transactions hold connections at once, then the pool peak shows 3 and every acquire is timed', async () => {
    const db = service.ctx.db;
    const waits = async () => {
      const metric = service.ctx.metrics.registry.getSingleMetric('db_pool_acquire_seconds') as Counter | undefined;
      return (await metric!.get()).values.find((v) => (v as { metricName?: string }).metricName === 'db_pool_acquire_seconds_count')?.value ?? 0;
    };
    const before = await waits();
    // each holds its connection until all three have one, so they are in use at the same moment
    let holding = 0;
    await Promise.all([1, 2, 3].map(() => db.transaction(async (trx) => {
      await trx.raw('select 1');
      holding += 1;
      await waitFor(async () => holding === 3, { description: 'three connections held at once' });
    })));
    expect(await total('db_pool_in_use_peak')).toBeGreaterThanOrEqual(3);
    expect(await waits()).toBeGreaterThanOrEqual(before + 3);
  });
});
