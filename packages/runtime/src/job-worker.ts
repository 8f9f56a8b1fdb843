import { retryDelayMs } from './backoff';
import type { Tx } from './db';
import { classifyError } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import type { Poller } from './poller';

/**
 * A job claimed with a lease. `fence` is the lease's fencing token: the claim increments it, and every commit of the
 * job's outcome is conditional on it, so a worker whose lease expired (and whose job another worker claimed since)
 * commits nothing.
 */
export interface LeasedJob {
  readonly fence: number;
}

/** Where a worker's jobs come from. Each service implements it with its own SQL. */
export interface JobStore<J extends LeasedJob> {
  /**
   * Claims up to `limit` due jobs for `leaseMs`, in one statement (or one short transaction): `FOR UPDATE SKIP LOCKED`
   * (two replicas never take the same row), the lease moved forward (next-run / claimed-until = now + leaseMs, so a
   * crashed worker's jobs come back when it runs out) and the fence incremented.
   */
  claim(limit: number, leaseMs: number): Promise<J[]>;
  /**
   * Optional: extends the lease of a job that is still running, only while `job.fence` is current (false: the lease was
   * lost). When given, the worker renews every running job's lease every leaseMs/3, for jobs that can outlast a lease.
   */
  renew?(job: J, leaseMs: number): Promise<boolean>;
}

export interface JobContext {
  /** the job's lease: stop it before the commit that sets the job's next run, so a late renewal cannot overwrite it */
  lease: Lease;
}

export interface JobWorkerOptions<J extends LeasedJob> {
  /** names the worker in logs and in the `worker` label of its metrics */
  name: string;
  store: JobStore<J>;
  /** does one job and commits its outcome (conditional on `job.fence`); a throw is counted and logged, the lease then expires and the job comes back */
  run(job: J, ctx: JobContext): Promise<void>;
  /** most jobs running at once; a slot that frees claims the next due job (a continuous pool, not rounds) */
  concurrency: number;
  leaseMs: number;
  /** how long to wait before claiming again when nothing was due (nudge() cuts it short) */
  idleMs: number;
  logger: Logger;
  metrics: Metrics;
  /** ids to log with a failed job (order id…): never personal data or secrets */
  describe?(job: J): Record<string, unknown>;
}

export interface JobWorker<J extends LeasedJob = LeasedJob> extends Poller {
  /** jobs running now */
  readonly inFlight: number;
  /**
   * Holds a free slot of the pool for a job that is being claimed where it is created (see `claimOnCommit`): the slot
   * counts as busy until the job is handed to it (`run`) or given back (`release`). Undefined when no slot is free or
   * the worker is not running: the job is then created due and claimed the usual way.
   */
  reserve(): JobSlot<J> | undefined;
  /**
   * Claims again when a job this process scheduled falls due at `at` (a few ms after: Postgres's clock decides "due"),
   * for a worker whose own look (`idleMs`) is rare. A due time beyond that look is left to it, so timers stay few.
   */
  nudgeAt(at: Date): void;
}

/**
 * The one background job mechanism: claim due jobs with a lease and a fencing token, run them concurrently up to
 * `concurrency` as a continuous pool, back off with `retryDelayMs` while claiming fails, emit metrics. `stop()` claims
 * nothing more and waits for the running jobs.
 */
export function createJobWorker<J extends LeasedJob>(options: JobWorkerOptions<J>): JobWorker<J> {
  const { name, store, logger } = options;
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const labels = { worker: name };
  const m = jobWorkerMetrics(options.metrics);
  const running = new Set<Promise<void>>();
  /** slots held by `reserve` for jobs claimed where they are created, not handed over yet */
  let reserved = 0;
  const busy = () => running.size + reserved;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let claiming: Promise<void> | undefined;
  /** claim again as soon as possible: a nudge arrived, or the last claim filled every free slot (more is likely due) */
  let wanted = false;
  let claimFailures = 0;
  const wakeUps = new Set<NodeJS.Timeout>();

  const schedule = (ms: number) => {
    if (!started) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      fill();
    }, ms);
  };

  const fill = () => {
    if (!started) return;
    if (claiming) {
      wanted = true;
      return;
    }
    const free = concurrency - busy();
    if (free <= 0) {
      wanted = true; // the next job that finishes claims
      return;
    }
    if (timer) clearTimeout(timer);
    timer = undefined;
    wanted = false;
    claiming = claim(free).finally(() => {
      claiming = undefined;
    });
  };

  const claim = async (free: number): Promise<void> => {
    let jobs: J[];
    try {
      jobs = await store.claim(free, options.leaseMs);
      claimFailures = 0;
    } catch (error) {
      // the database is likely down: back off instead of hammering it; the loop goes on
      claimFailures++;
      wanted = false;
      m.errors.inc(labels);
      const { kind, code } = classifyError(error);
      (kind === 'transient' ? logger.warn : logger.error).call(logger, { err: error, code, worker: name, failures: claimFailures }, 'job claim failed; will claim again');
      schedule(retryDelayMs(claimFailures + 1, Math.max(options.idleMs, 200), 30_000));
      return;
    }
    if (jobs.length > 0) m.claimed.inc(labels, jobs.length);
    for (const job of jobs) launch(job);
    if (jobs.length >= free) wanted = true; // every slot filled: more is probably due, claim when one frees
    if (!started) return;
    if (wanted && busy() < concurrency) setImmediate(fill);
    else if (!wanted) schedule(options.idleMs);
  };

  const launch = (job: J) => {
    const lease = store.renew
      ? keepLease({ renew: () => store.renew!(job, options.leaseMs), leaseMs: options.leaseMs, logger, context: { worker: name, fence: job.fence, ...options.describe?.(job) } })
      : heldLease;
    m.inFlight.inc(labels);
    const endTimer = m.duration.startTimer(labels);
    const done: Promise<void> = (async () => {
      try {
        await options.run(job, { lease });
        m.succeeded.inc(labels);
      } catch (error) {
        m.failed.inc(labels);
        m.errors.inc(labels);
        const { code } = classifyError(error);
        logger.error({ err: error, code, worker: name, fence: job.fence, ...options.describe?.(job) }, 'job failed; its lease expires and it runs again');
      } finally {
        await lease.stop();
        endTimer();
      }
    })().finally(() => {
      running.delete(done);
      m.inFlight.dec(labels);
      if (wanted) fill();
    });
    running.add(done);
  };

  return {
    name,
    get inFlight() {
      return running.size;
    },
    start() {
      started = true;
      schedule(0);
    },
    nudge() {
      if (!started) return;
      wanted = true;
      fill();
    },
    reserve() {
      if (!started || busy() >= concurrency) return undefined;
      reserved++;
      let settled = false;
      return {
        run(job) {
          if (settled) return;
          settled = true;
          // the slot stays counted until the job starts: on the next turn, so the hand-over's caller (an ack, an
          // inbox commit) finishes first — a job's synchronous start would otherwise delay its answer
          setImmediate(() => {
            reserved--;
            // a worker stopped meanwhile runs nothing more: the job's lease runs out and a worker claims it then
            if (!started) return;
            m.claimed.inc(labels);
            m.claimedAtCreation.inc(labels);
            launch(job);
          });
        },
        release() {
          if (settled) return;
          settled = true;
          reserved--;
          if (wanted) fill();
        },
      };
    },
    nudgeAt(at) {
      const inMs = Math.max(0, at.getTime() - Date.now());
      if (!started || inMs >= options.idleMs) return;
      const wakeUp = setTimeout(() => {
        wakeUps.delete(wakeUp);
        this.nudge();
      }, inMs + 10);
      wakeUps.add(wakeUp);
    },
    async stop() {
      started = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const wakeUp of wakeUps) clearTimeout(wakeUp);
      wakeUps.clear();
      await claiming;
      await Promise.all([...running]);
    },
  };
}

function jobWorkerMetrics(metrics: Metrics) {
  return {
    claimed: metrics.counter('jobs_claimed_total', 'Jobs claimed with a lease by a background worker', ['worker']),
    claimedAtCreation: metrics.counter('jobs_claimed_at_creation_total', 'Jobs claimed by the transaction that created them and handed to this worker after its commit (no claim of their own)', ['worker']),
    succeeded: metrics.counter('jobs_succeeded_total', 'Jobs a background worker ran to the end', ['worker']),
    failed: metrics.counter('jobs_failed_total', 'Jobs that threw (their lease expires and they run again)', ['worker']),
    // the name the alert rules already watch: failed jobs and failed claims of every worker
    errors: metrics.counter('worker_errors_total', 'Background worker runs that failed', ['worker']),
    duration: metrics.histogram('job_duration_seconds', 'Time to run one job', ['worker'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]),
    inFlight: metrics.gauge('jobs_in_flight', 'Jobs running now', ['worker']),
  };
}

/** A slot of a worker's pool held for one job (`JobWorker.reserve`); the first of `run` or `release` counts. */
export interface JobSlot<J> {
  /** the job, claimed (lease and fence set), runs in this slot now */
  run(job: J): void;
  /** no job came (the creating transaction rolled back, or created nothing): the slot is free again */
  release(): void;
}

/**
 * Claim at creation: a transaction that creates a job for a worker of this process may create it already claimed — its
 * lease taken and its fence set, as a claim would — when the worker has a free slot; the job is handed to that slot once
 * the transaction commits. That saves the worker's claim (a statement and a commit) and the wait for it. Returns
 * undefined when no slot is free: create the job due, as usual. Otherwise call `claimed(job)` once the job's row is
 * written with its lease; a rollback, or no call, gives the slot back. A crash between the commit and the hand-over
 * loses nothing: the lease runs out and any worker claims the job, with a new fence, as after a crash mid-job.
 */
export function claimOnCommit<J extends LeasedJob>(worker: Pick<JobWorker<J>, 'reserve'>, trx: Tx): { claimed(job: J): void } | undefined {
  const slot = worker.reserve();
  if (!slot) return undefined;
  let job: J | undefined;
  trx.executionPromise.then(
    () => (job ? slot.run(job) : slot.release()),
    () => slot.release(),
  );
  return {
    claimed(created) {
      job = created;
    },
  };
}

/** A job's lease while it runs. */
export interface Lease {
  /** true once a renewal found the fence stale: another worker holds the job now, and this one's commits will not land */
  readonly lost: boolean;
  /** stops renewing; resolves once no renewal is in flight (so a renewal cannot overwrite what the next commit writes) */
  stop(): Promise<void>;
}

/** The lease as claimed, never renewed: for jobs that finish well within it. */
const heldLease: Lease = { lost: false, stop: async () => undefined };

/**
 * Renews a lease every leaseMs/3 while a long job runs (a browser checkout can outlast a lease), so no other worker
 * claims the job in the first place. `renew` must be conditional on the job's fence; when it answers false the lease
 * is lost: renewing stops and `lost` says so. A failed renewal (database blip) is logged and tried at the next beat.
 */
export function keepLease(options: { renew: () => Promise<boolean>; leaseMs: number; logger: Logger; context?: Record<string, unknown> }): Lease {
  let inFlight: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let lost = false;
  const timer = setInterval(() => {
    if (stopped || lost) return;
    inFlight = options.renew().then(
      (kept) => {
        if (kept || lost) return;
        lost = true;
        clearInterval(timer);
        options.logger.warn({ ...options.context }, 'lease lost: another worker claimed the job; this one will not commit');
      },
      (error) => options.logger.warn({ err: error, ...options.context }, 'lease renewal failed; tried again at the next beat'),
    );
  }, Math.max(50, Math.floor(options.leaseMs / 3)));
  timer.unref?.();
  return {
    get lost() {
      return lost;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
