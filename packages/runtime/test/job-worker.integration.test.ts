import { AppError, claimOnCommit, createDb, createJobWorker, createLogger, localInfraEnv, Metrics, retryDelayMs, type Db, type JobStore, type JobWorker } from '../src';
import { dropSchema, uniqueId, waitFor } from '../src/testing';

/**
 * The job worker on the real Postgres: a throwaway table of jobs in a schema of its own, claimed the way a service
 * claims (FOR UPDATE SKIP LOCKED, lease moved forward, fence incremented) and committed conditionally on the fence.
 */
interface Job {
  id: string;
  fence: number;
}

function deferred() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function counter(metrics: Metrics, name: string, worker: string): Promise<number> {
  const { values } = await metrics.registry.getSingleMetric(name)!.get();
  return values.filter((v) => v.labels.worker === worker).reduce((sum, v) => sum + v.value, 0);
}

describe('job worker: leased claims with a fencing token, a continuous pool, one backoff', () => {
  const infra = localInfraEnv();
  const logger = createLogger('job-worker-test', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
  let schema: string;
  /** two pools: two replicas of a service */
  let dbA: Db;
  let dbB: Db;
  const workers: JobWorker[] = [];

  beforeEach(async () => {
    schema = uniqueId('t_jobs_');
    dbA = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 6 });
    dbB = createDb({ url: infra.DATABASE_URL!, schema, poolMax: 6 });
    await dbA.raw('create schema if not exists ??', [schema]);
    await dbA.schema.withSchema(schema).createTable('jobs', (t) => {
      t.string('id').primary();
      t.timestamp('next_run_at', { useTz: true }).notNullable().defaultTo(dbA.fn.now());
      t.bigInteger('fence').notNullable().defaultTo(0);
      t.string('status').notNullable().defaultTo('pending');
      t.string('done_by');
    });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await dbA.destroy();
    await dbB.destroy();
    await dropSchema(schema);
  });

  /** A service's store: its own SQL. */
  const storeOf = (db: Db): JobStore<Job> & { claims: number } => {
    const store = {
      claims: 0,
      claim: (limit: number, leaseMs: number) => {
        store.claims++;
        return db.transaction(async (trx) => {
          const rows: Array<{ id: string }> = await trx('jobs').where({ status: 'pending' }).where('next_run_at', '<=', trx.fn.now())
            .orderBy(['next_run_at', 'id']).limit(limit).forUpdate().skipLocked().select('id');
          if (rows.length === 0) return [];
          const claimed: Array<{ id: string; fence: string }> = await trx('jobs').whereIn('id', rows.map((r) => r.id))
            .update({ next_run_at: trx.raw(`now() + (? * interval '1 millisecond')`, [leaseMs]), fence: trx.raw('fence + 1') })
            .returning(['id', 'fence']);
          const byId = new Map(claimed.map((r) => [r.id, Number(r.fence)]));
          return rows.map((r) => ({ id: r.id, fence: byId.get(r.id)! }));
        });
      },
      renew: async (job: Job, leaseMs: number) =>
        (await db('jobs').where({ id: job.id, fence: job.fence }).update({ next_run_at: db.raw(`now() + (? * interval '1 millisecond')`, [leaseMs]) })) > 0,
    };
    return store;
  };
  /** The job's commit: conditional on its fence. */
  const complete = async (db: Db, job: Job, by: string): Promise<boolean> =>
    (await db('jobs').where({ id: job.id, fence: job.fence, status: 'pending' }).update({ status: 'done', done_by: by, next_run_at: db.fn.now() })) > 0;
  const addJobs = async (ids: string[], delayMs = 0) => {
    await dbA('jobs').insert(ids.map((id, i) => ({ id, next_run_at: new Date(Date.now() - 60_000 + delayMs + i) })));
  };
  const doneIds = async () => (await dbA('jobs').where({ status: 'done' }).select('id')).map((r: { id: string }) => r.id).sort();
  const worker = (options: Partial<Parameters<typeof createJobWorker<Job>>[0]> & Pick<Parameters<typeof createJobWorker<Job>>[0], 'store' | 'run'>, metrics = new Metrics('jobs', { defaultMetrics: false })) => {
    const w = createJobWorker<Job>({ name: 'test', concurrency: 4, leaseMs: 60_000, idleMs: 50, logger, metrics, ...options });
    workers.push(w);
    return w;
  };

  it('when two replicas work the same table, then no job ever runs in both at once and each is done exactly once', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `job-${String(i).padStart(3, '0')}`);
    await addJobs(ids);
    const active = new Set<string>();
    const runs: string[] = [];
    let overlaps = 0;
    const runAs = (db: Db, by: string) => async (job: Job) => {
      if (active.has(job.id)) overlaps++;
      active.add(job.id);
      runs.push(job.id);
      await new Promise((r) => setImmediate(r));
      await complete(db, job, by);
      active.delete(job.id);
    };
    worker({ name: 'replica-a', store: storeOf(dbA), run: runAs(dbA, 'a') }).start();
    worker({ name: 'replica-b', store: storeOf(dbB), run: runAs(dbB, 'b') }).start();
    await waitFor(async () => (await doneIds()).length === ids.length, { description: 'every job done', timeoutMs: 30_000 });
    expect(overlaps).toBe(0);
    expect(runs.sort()).toEqual(ids);
    expect(await doneIds()).toEqual(ids);
  });

  it('when a worker\'s lease expires, then another worker claims the job with a new fence and the stale fence can no longer commit', async () => {
    await addJobs(['stalled']);
    const gate = deferred();
    let aJob: Job | undefined;
    let aCommitted: boolean | undefined;
    const a = worker({
      // no renewal: the lease runs out while the job stalls
      name: 'a', leaseMs: 300, store: { claim: storeOf(dbA).claim },
      run: async (job) => {
        aJob = job;
        await gate.promise; // stalls past its lease (a long GC pause, a hung call)
        aCommitted = await complete(dbA, job, 'a');
      },
    });
    a.start();
    await waitFor(() => aJob, { description: 'A claims the job' });
    let bJob: Job | undefined;
    worker({ name: 'b', leaseMs: 60_000, store: storeOf(dbB), run: async (job) => {
      bJob = job;
      await complete(dbB, job, 'b');
    } }).start();
    await waitFor(async () => (await doneIds()).length === 1, { description: 'B claims after A\'s lease ran out and commits', timeoutMs: 10_000 });
    expect(bJob!.fence).toBe(aJob!.fence + 1);
    gate.open();
    await waitFor(() => aCommitted !== undefined, { description: 'A tries to commit' });
    expect(aCommitted).toBe(false);
    expect(await dbA('jobs').where({ id: 'stalled' }).first()).toMatchObject({ status: 'done', done_by: 'b' });
  });

  it('when a job outlasts its lease and the store can renew, then the lease is renewed and no other worker claims it', async () => {
    await addJobs(['long']);
    const gate = deferred();
    let running = false;
    let committed: boolean | undefined;
    worker({ name: 'a', leaseMs: 300, store: storeOf(dbA), run: async (job) => {
      running = true;
      await gate.promise;
      committed = await complete(dbA, job, 'a');
    } }).start();
    await waitFor(() => running, { description: 'A runs the job' });
    const started = Date.now();
    const storeB = storeOf(dbB);
    let bRuns = 0;
    worker({ name: 'b', idleMs: 20, store: storeB, run: async () => {
      bRuns++;
    } }).start();
    // B keeps looking for three lease lengths
    await waitFor(() => Date.now() - started > 1_000 && storeB.claims > 10, { description: 'B has claimed for over three lease lengths', timeoutMs: 20_000, intervalMs: 50 });
    gate.open();
    await waitFor(() => committed !== undefined, { description: 'A commits' });
    expect(committed).toBe(true);
    expect(bRuns).toBe(0);
  });

  it('when many jobs are due, then at most `concurrency` run at once, and the pool is used to its limit', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `c-${String(i).padStart(2, '0')}`);
    await addJobs(ids);
    let active = 0;
    let peak = 0;
    const w = worker({ concurrency: 3, store: storeOf(dbA), run: async (job) => {
      active++;
      peak = Math.max(peak, active);
      expect(w.inFlight).toBeLessThanOrEqual(3);
      await new Promise((r) => setTimeout(r, 20)); // the job's work
      await complete(dbA, job, 'a');
      active--;
    } });
    w.start();
    await waitFor(async () => (await doneIds()).length === ids.length, { description: 'every job done', timeoutMs: 30_000 });
    expect(peak).toBe(3);
  });

  it('when one job is slow, then the others keep flowing through the free slots (a continuous pool, not rounds)', async () => {
    await addJobs(['0-slow']);
    const fast = Array.from({ length: 12 }, (_, i) => `f-${String(i).padStart(2, '0')}`);
    await addJobs(fast, 1_000);
    const gate = deferred();
    let slowDone = false;
    worker({ concurrency: 2, store: storeOf(dbA), run: async (job) => {
      if (job.id === '0-slow') {
        await gate.promise;
        slowDone = true;
      }
      await complete(dbA, job, 'a');
    } }).start();
    await waitFor(async () => (await doneIds()).length === fast.length, { description: 'every fast job done while the slow one runs', timeoutMs: 20_000 });
    expect(slowDone).toBe(false);
    expect(await doneIds()).toEqual(fast);
    gate.open();
    await waitFor(async () => (await doneIds()).length === fast.length + 1, { description: 'the slow job done' });
  });

  it('when nudged, then a job that became due runs at once instead of after the idle wait', async () => {
    const real = storeOf(dbA);
    let finishedClaims = 0;
    const store: JobStore<Job> = { claim: (limit, leaseMs) => real.claim(limit, leaseMs).finally(() => finishedClaims++) };
    const w = worker({ idleMs: 3_600_000, store, run: (job) => complete(dbA, job, 'a').then(() => undefined) });
    w.start();
    // the first claim found nothing: the worker now idles for an hour
    await waitFor(() => finishedClaims === 1, { description: 'the first claim done' });
    await addJobs(['nudged']);
    w.nudge();
    await waitFor(async () => (await doneIds()).length === 1, { description: 'the nudged job done', timeoutMs: 5_000 });
    expect(finishedClaims).toBe(2);
  });

  it('when a job it scheduled falls due before its own next look, then nudgeAt claims it then, not after the idle wait', async () => {
    const real = storeOf(dbA);
    let finishedClaims = 0;
    const store: JobStore<Job> = { claim: (limit, leaseMs) => real.claim(limit, leaseMs).finally(() => finishedClaims++) };
    const w = worker({ idleMs: 3_600_000, store, run: (job) => complete(dbA, job, 'a').then(() => undefined) });
    w.start();
    await waitFor(() => finishedClaims === 1, { description: 'the first claim done' });
    const dueAt = new Date(Date.now() + 300);
    await dbA('jobs').insert({ id: 'scheduled', next_run_at: dueAt });
    w.nudgeAt(dueAt);
    w.nudgeAt(new Date(Date.now() + 7_200_000)); // beyond its own look: left to it, no timer
    await waitFor(async () => (await doneIds()).length === 1, { description: 'the scheduled job done', timeoutMs: 5_000 });
    expect(finishedClaims).toBe(2);
  });

  it('when stopped, then it waits for the jobs in flight to commit and claims nothing more', async () => {
    await addJobs(['in-flight']);
    const gate = deferred();
    let running = false;
    const store = storeOf(dbA);
    const w = worker({ store, run: async (job) => {
      running = true;
      await gate.promise;
      await complete(dbA, job, 'a');
    } });
    w.start();
    await waitFor(() => running, { description: 'the job runs' });
    let stopped = false;
    const stopping = w.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    const claimsAtStop = store.claims;
    await addJobs(['after-stop']);
    gate.open();
    await stopping;
    expect(await doneIds()).toEqual(['in-flight']);
    expect(w.inFlight).toBe(0);
    expect(store.claims).toBe(claimsAtStop);
  });

  /** A job created claimed, as a service's transaction does when the worker took it at creation: lease and first fence. */
  const createClaimed = (trx: Db, id: string, leaseMs: number) =>
    trx('jobs').insert({ id, fence: 1, next_run_at: trx.raw(`now() + (? * interval '1 millisecond')`, [leaseMs]) });

  it('when a transaction creates a job for a worker with a free slot, then the job runs after the commit without a claim of its own, and a rollback gives the slot back', async () => {
    const metrics = new Metrics('jobs', { defaultMetrics: false });
    const store = storeOf(dbA);
    const ran: Job[] = [];
    // one slot, and a look for due work only every hour: only the hand-over can run the job in time
    const w = worker({ concurrency: 1, idleMs: 3_600_000, store, run: async (job) => {
      ran.push(job);
      await complete(dbA, job, 'a');
    } }, metrics);
    w.start();
    await waitFor(() => store.claims === 1, { description: 'the start\'s first look' });

    let heldMeanwhile: unknown = 'not checked';
    await dbA.transaction(async (trx) => {
      const slot = claimOnCommit(w, trx);
      expect(slot).toBeDefined();
      await createClaimed(trx, 'created-claimed', 60_000);
      slot!.claimed({ id: 'created-claimed', fence: 1 });
      heldMeanwhile = w.reserve(); // the one slot is held until the commit hands the job over
    });
    expect(heldMeanwhile).toBeUndefined();
    await waitFor(async () => (await doneIds()).includes('created-claimed'), { description: 'the job handed over after the commit' });
    expect(ran).toEqual([{ id: 'created-claimed', fence: 1 }]);
    expect(store.claims).toBe(1);
    expect(await counter(metrics, 'jobs_claimed_at_creation_total', 'test')).toBe(1);

    // rolled back: nothing runs, and the slot is free again
    await expect(dbA.transaction(async (trx) => {
      const slot = claimOnCommit(w, trx);
      await createClaimed(trx, 'rolled-back', 60_000);
      slot!.claimed({ id: 'rolled-back', fence: 1 });
      throw new Error('the handler failed');
    })).rejects.toThrow('the handler failed');
    await waitFor(() => w.inFlight === 0 && w.reserve(), { description: 'the slot given back' }).then((slot) => slot.release());
    // committed without claiming anything (a duplicate): the slot is given back too
    await dbA.transaction(async (trx) => {
      claimOnCommit(w, trx);
      await trx('jobs').where({ id: 'created-claimed' }).first();
    });
    await waitFor(() => w.reserve(), { description: 'the slot given back' }).then((slot) => slot.release());
    expect(ran).toHaveLength(1);
    expect(await dbA('jobs').where({ id: 'rolled-back' }).first()).toBeUndefined();
  });

  it('when every slot is busy, then nothing is claimed at creation: the job is created due and claimed the usual way', async () => {
    const gate = deferred();
    const w = worker({ concurrency: 1, idleMs: 50, store: storeOf(dbA), run: async (job) => {
      if (job.id === 'slow') await gate.promise;
      await complete(dbA, job, 'a');
    } });
    await addJobs(['slow']);
    w.start();
    await waitFor(() => w.inFlight === 1, { description: 'the slow job holds the only slot' });
    await dbA.transaction(async (trx) => {
      expect(claimOnCommit(w, trx)).toBeUndefined();
      await trx('jobs').insert({ id: 'due' });
    });
    gate.open();
    await waitFor(async () => (await doneIds()).length === 2, { description: 'both done' });
    expect(await dbA('jobs').where({ id: 'due' }).first()).toMatchObject({ fence: '1', done_by: 'a' });
  });

  it('when a process dies between creating a claimed job and running it, then the lease runs out, another worker claims it with a new fence, and the first fence commits nothing', async () => {
    // created claimed for 300 ms by a process that never hands it over (it died after its commit)
    await createClaimed(dbA, 'orphan', 300);
    let bJob: Job | undefined;
    worker({ name: 'b', store: storeOf(dbB), run: async (job) => {
      bJob = job;
      await complete(dbB, job, 'b');
    } }).start();
    await waitFor(async () => (await doneIds()).includes('orphan'), { description: 'B claims once the lease ran out', timeoutMs: 10_000 });
    expect(bJob).toEqual({ id: 'orphan', fence: 2 });
    expect(await complete(dbA, { id: 'orphan', fence: 1 }, 'a')).toBe(false);
  });

  it('when stopped before the hand-over, then the job is not run by the stopped worker (its lease runs out and a worker claims it)', async () => {
    const ran: string[] = [];
    const w = worker({ concurrency: 1, idleMs: 3_600_000, store: storeOf(dbA), run: async (job) => {
      ran.push(job.id);
    } });
    w.start();
    const slot = w.reserve()!;
    await w.stop();
    slot.run({ id: 'late', fence: 1 });
    await new Promise((r) => setImmediate(r)); // the turn on which a handed-over job starts
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual([]);
    expect(w.inFlight).toBe(0);
  });

  it('when jobs fail and claims fail, then each is counted, claiming backs off, and the loop goes on', async () => {
    const metrics = new Metrics('jobs', { defaultMetrics: false });
    await addJobs(['boom', 'ok']);
    const real = storeOf(dbA);
    const claimTimes: number[] = [];
    let failClaims = 3;
    const store: JobStore<Job> = {
      claim: async (limit, leaseMs) => {
        claimTimes.push(Date.now());
        if (failClaims-- > 0) throw new AppError('DB_DOWN', 'database unavailable', { retriable: true });
        return real.claim(limit, leaseMs);
      },
    };
    worker({ name: 'flaky', idleMs: 200, store, run: async (job) => {
      if (job.id === 'boom') throw new Error('bug in the job');
      await complete(dbA, job, 'a');
    } }, metrics).start();
    await waitFor(async () => (await doneIds()).length === 1 && (await counter(metrics, 'jobs_failed_total', 'flaky')) === 1, { description: 'one done, one failed', timeoutMs: 20_000 });
    const gaps = claimTimes.slice(1, 4).map((t, i) => t - claimTimes[i]!);
    // after claim failure n the next claim waits at least idle·2^(n-1) (lower bounds only: a loaded machine is only slower)
    expect(gaps[0]).toBeGreaterThanOrEqual(195);
    expect(gaps[1]).toBeGreaterThanOrEqual(395);
    expect(gaps[2]).toBeGreaterThanOrEqual(795);
    expect(await counter(metrics, 'worker_errors_total', 'flaky')).toBe(4); // three claims, one job
    expect(await counter(metrics, 'jobs_claimed_total', 'flaky')).toBe(2);
    expect(await counter(metrics, 'jobs_succeeded_total', 'flaky')).toBe(1);
    expect(await counter(metrics, 'jobs_in_flight', 'flaky')).toBe(0);
    expect(await metrics.registry.getSingleMetricAsString('job_duration_seconds')).toMatch(/job_duration_seconds_count\{[^}]*worker="flaky"[^}]*\} 2/);
  });
});

describe('retryDelayMs: the one backoff formula', () => {
  it('is exponential from the base, capped, and never below half its ceiling', () => {
    expect(retryDelayMs(1, 100, 10_000, () => 0)).toBe(50);
    expect(retryDelayMs(1, 100, 10_000, () => 1)).toBe(100);
    expect(retryDelayMs(4, 100, 10_000, () => 1)).toBe(800);
    expect(retryDelayMs(30, 100, 10_000, () => 1)).toBe(10_000);
    expect(retryDelayMs(30, 100, 10_000, () => 0)).toBe(5_000);
    expect(retryDelayMs(10_000, 100, 10_000, () => 1)).toBe(10_000); // no overflow to Infinity/NaN
    for (let attempt = 1; attempt < 20; attempt++) {
      for (let i = 0; i < 50; i++) {
        const ceiling = Math.min(60_000, 200 * 2 ** (attempt - 1));
        const delay = retryDelayMs(attempt, 200, 60_000);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});
