/**
 * `npm run bench -- [--rate R] [--seconds S] [--warmup W] [--ramp FROM,STEP,TO] [--step-seconds T] [--no-ceilings] [--statements] [--cpu-profile] [--wal] [--waits]`
 * `npm run bench -- --acks R1,R2,… [--step-seconds T] [--warmup W] [--ack-pipeline full|ingest|acks] [--ack-marketplaces M,…] [--statements]` (the ack mode, below)
 *
 * An open-loop benchmark of the whole pipeline with zero-latency fakes. A forked load process (load.ts) hosts the
 * fakes, starts the four services as their own processes and offers orders at a fixed rate (eBay, MercadoLibre and
 * storefront in turn); this process only measures:
 * - ack latency p50/p99/p99.9 per marketplace, as the load process saw it;
 * - per-stage latency from the events' own timestamps (received → purchased → sale recorded → seller PayoutSent) and
 *   webhook → seller PayoutSent;
 * - cost per order: Postgres round trips and commits and Kafka requests (the services' own counters), CPU seconds per
 *   process (/proc), peak and steady RSS per service;
 * - with --ramp, the offered rate step by step and whether the backlog (orders offered but not yet paid, unpublished
 *   outbox rows) stopped growing in the second half of the step (its least-squares slope over a sample a second): the
 *   highest such rate is the sustained throughput;
 * - the ceilings, measured after the services stopped: pgbench single-row commits/s and Kafka ProducerPerformance.
 * - with --orders N, the scale run: N orders in ten deciles, round trips, commits and stage latency per decile.
 * Results: bench/results/<date>.json and a latency-over-time chart bench/results/<date>.html.
 *
 * --acks R1,R2,…: webhook ack throughput (issue 15: ≥ 2,000 acks/s with p99 < 25 ms). After a warm-up (--warmup W
 * seconds at R1, 5 by default), each step offers webhooks at R webhooks/s for --step-seconds T (10 by default): eBay
 * signed notifications, MercadoLibre notifications and storefront capture calls in turn, each a real order seeded in
 * the fakes, open loop from a generator process of its own (ack-generator.ts; prepared and signed before the step).
 * Per step: offered and completed acks/s; ack latency p50/p99/p99.9 per marketplace, from each request's scheduled
 * time; errors (non-2xx, no answer); the generator's lateness (a step it could not offer on time is reported as such
 * and never counts); CPU cores used per process; ingest's own handler time and event-loop delay; Postgres round trips
 * per webhook and pool waits (with --statements, ingest's statements by text); the pipeline's backlog.
 * `ackThroughput` is the highest step with every marketplace's p99 < 25 ms, no error and the generator on time; a step
 * acknowledging fewer than half its offer ends the climb. By default the whole pipeline runs, as in production: the
 * other services work the offered orders on the same cores and their backlog grows (reported, not drained).
 * --ack-pipeline ingest stops them after start: ingest alone, the ack path's own capacity. Results:
 * bench/results/<date>-acks.json.
 */
import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { EventCodec, Streams, type FulfillmentEvent, type OrderEvent, type PayoutEvent, type SaleEvent } from '@postsale/contracts';
import { createDb, createKafka, createLogger, kafkaJavaClientProperties, localInfraEnv, type Db } from '@postsale/runtime';
import { collectTopic, deleteNamespaceTopics, dropSchema, uniqueId } from '@postsale/runtime/testing';
import { REPO_ROOT, SERVICE_NODE_FLAGS, SERVICE_PROCESS_ENV, SERVICES, type DemoMarketplace, type ServiceName } from '@postsale/cli';
import type { AckResults } from './ack-generator';
import { hottestFunctions } from './cpu-profile';
import { sampleWaits } from './waits';
import type { LoadCommand, LoadReply, OfferedOrder } from './load';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);
const RATE = Number(arg('rate', '20'));
const SECONDS = Number(arg('seconds', '60'));
const WARMUP_SECONDS = Number(arg('warmup', '30'));
const RAMP = args.includes('--ramp') ? arg('ramp', '10,10,60').split(',').map(Number) : undefined;
const STEP_SECONDS = Number(arg('step-seconds', '30'));
// --orders N: the scale run. N orders at --rate in ten deciles, each drained before the next, with the cost per order
// and stage latency per decile: flat figures mean nothing grows with history.
const ORDERS = args.includes('--orders') ? Number(arg('orders', '1000')) : undefined;
// --no-ceilings: skip pgbench and ProducerPerformance (quick before/after comparisons of one lever)
const CEILINGS = !args.includes('--no-ceilings');
// --statements: the services count their statements by text (DB_STATEMENT_PROFILE=1); the result lists each service's
// most frequent statements per order, the place to look for round trips to fold
const STATEMENTS = args.includes('--statements');
// --wal: WAL records and bytes per order by table and index (pg_walinspect over the measured window, mapped to the
// run's schemas): which indexes and updates cost Postgres its writes. Needs a superuser connection (the local one is).
const WAL_BY_RELATION = args.includes('--wal');
// --waits: pg_stat_activity sampled every 50 ms over the measured window; the result gives the mean number of each
// service's sessions running, waiting (by wait event: which lock) or idle inside a transaction (see waits.ts)
const WAITS = args.includes('--waits');
// --cpu-profile: every service and the load process run with --cpu-prof; the result lists each one's hottest functions by self time
const CPU_PROFILE = args.includes('--cpu-profile');
// --acks: the ack mode (see the top); webhooks per second of each step
const ACKS = args.includes('--acks') ? arg('acks', '200,400,800,1600,2400').split(',').map(Number) : undefined;
const ACK_PIPELINE = arg('ack-pipeline', 'full');
if (ACK_PIPELINE !== 'full' && ACK_PIPELINE !== 'ingest' && ACK_PIPELINE !== 'acks') throw new Error('--ack-pipeline is full, ingest or acks');
const ACK_P99_MS = 25;
// BENCH_NODE_FLAGS='…': Node/V8 flags added to every service process (how runtime settings are compared back to back)
const BENCH_NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
// --ack-replicas N (with --ack-pipeline acks): N webhook-only ingest replicas on the same machine, the generator
// spreading requests over them as a load balancer would
const ACK_REPLICAS = Number(arg('ack-replicas', '1'));
if (!Number.isInteger(ACK_REPLICAS) || ACK_REPLICAS < 1 || ACK_REPLICAS > 4) throw new Error('--ack-replicas is 1 to 4');
if (ACK_REPLICAS > 1 && ACK_PIPELINE !== 'acks') throw new Error('--ack-replicas needs --ack-pipeline acks (webhook-only replicas)');
// --ack-marketplaces ebay,mercadolibre: webhooks of these only (default all three; "paypal" is the storefront's
// capture, processed inline, so it costs ingest far more than a notification it only stores)
const ACK_MARKETPLACES = arg('ack-marketplaces', 'ebay,mercadolibre,paypal').split(',') as DemoMarketplace[];
if (ACK_MARKETPLACES.length === 0 || ACK_MARKETPLACES.some((m) => !['ebay', 'mercadolibre', 'paypal'].includes(m))) throw new Error('--ack-marketplaces: ebay, mercadolibre and/or paypal, separated by commas');
// the generator is on time when 99 % of its requests left within this of their schedule (a fifth of the p99 budget)
const ACK_GENERATOR_LATE_P99_MS = 5;
const DRAIN_TIMEOUT_MS = Number(arg('drain-timeout', '600')) * 1000;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const summary = (values: number[]) => ({ count: values.length, p50: percentile(values, 50), p99: percentile(values, 99), p999: percentile(values, 99.9) });

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime
}
function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);
}
function pidsNamed(comm: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
}
function pidFile(name: string): number | undefined {
  try {
    // where deploy/local/infra.sh keeps its pid files (POSTSALE_DATA_DIR moves them)
    const run = process.env.POSTSALE_DATA_DIR ? join(process.env.POSTSALE_DATA_DIR, 'run') : join(REPO_ROOT, '.local', 'run');
    return Number(readFileSync(join(run, `${name}.pid`), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Every process that does the pipeline's work, so CPU per order is attributed to the process that spent it. Looked up
 * at each snapshot: Postgres starts a backend per new connection while the run goes on.
 */
function processGroups(servicePids: Record<ServiceName, number>, loadPid: number): Record<string, number[]> {
  return {
    ...Object.fromEntries(SERVICES.map((s) => [s, [servicePids[s]]])),
    'load+fakes': [loadPid],
    kafka: [pidFile('kafka')].filter((p): p is number => !!p),
    registry: [pidFile('registry')].filter((p): p is number => !!p),
    postgres: pidsNamed('postgres'),
    bench: [process.pid],
  };
}
type CpuSnapshot = Record<string, Map<number, number>>;
function cpuSnapshot(groups: Record<string, number[]>): CpuSnapshot {
  return Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, new Map(pids.flatMap((pid) => {
    try {
      return [[pid, cpuSeconds(pid)] as [number, number]];
    } catch {
      return []; // a postgres backend that ended
    }
  }))]));
}
/** CPU seconds each group spent between two snapshots (a process born in between counts from its start). */
function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([name, pids]) => [name, [...pids].reduce((sum, [pid, s]) => sum + s - (before[name]?.get(pid) ?? 0), 0)]));
}

/** How fast a series grows, per second: the least-squares slope of `key` over `at` (0 for fewer than two samples). */
function slopePerSecond<K extends string>(samples: Array<{ at: number } & Record<K, number>>, key: K): number {
  if (samples.length < 2) return 0;
  const meanT = samples.reduce((sum, s) => sum + s.at, 0) / samples.length;
  const meanY = samples.reduce((sum, s) => sum + s[key], 0) / samples.length;
  const covariance = samples.reduce((sum, s) => sum + (s.at - meanT) * (s[key] - meanY), 0);
  const variance = samples.reduce((sum, s) => sum + (s.at - meanT) ** 2, 0);
  return variance === 0 ? 0 : Number((covariance / variance).toFixed(1));
}

/** WAL positions at each counters snapshot: the measured window is the first to the last */
const walPositions: string[] = [];
const COUNTERS = ['db_round_trips_total', 'db_commits_total', 'kafka_requests_total'] as const;
type Counters = Record<string, number>;
/** The services' own counters: totals, and per service (`<service>.<counter>`) to see where the cost is. */
async function countersSnapshot(urls: Record<ServiceName, string>, services: readonly ServiceName[] = SERVICES, db?: Db): Promise<Counters> {
  const totals: Counters = Object.fromEntries(COUNTERS.flatMap((c) => [[c, 0], ...services.map((s) => [`${s}.${c}`, 0])]));
  if (db) {
    // What the commits cost Postgres, counted by Postgres (cluster-wide: only the pipeline runs during a measurement):
    // a transaction that wrote nothing flushes nothing, and concurrent commits share a flush (group commit).
    // Deadlocks too: each one cost its transactions deadlock_timeout (1 s) and a redo, a latency spike, not a failure.
    const pgStats = (await db.raw<{ rows: Array<{ wal_sync: string; wal_records: string; deadlocks: string; lsn: string }> }>(
      `select wal_sync, wal_records, pg_current_wal_lsn()::text as lsn,
              (select deadlocks from pg_stat_database where datname = current_database()) as deadlocks
         from pg_stat_wal`,
    )).rows[0]!;
    totals.wal_syncs = Number(pgStats.wal_sync);
    totals.wal_records = Number(pgStats.wal_records);
    totals.deadlocks = Number(pgStats.deadlocks);
    walPositions.push(pgStats.lsn);
  }
  for (const service of services) {
    const text = await (await fetch(`${urls[service]}/metrics`)).text();
    for (const line of text.split('\n')) {
      const match = /^(db_round_trips_total|db_commits_total|kafka_requests_total|db_pool_in_use_peak|db_pool_acquire_seconds_sum|db_pool_acquire_seconds_count)(\{[^}]*\})? ([\d.e+]+)$/.exec(line);
      if (!match) continue;
      totals[match[1]!] = (totals[match[1]!] ?? 0) + Number(match[3]);
      totals[`${service}.${match[1]!}`] = (totals[`${service}.${match[1]!}`] ?? 0) + Number(match[3]);
      const api = match[1] === 'kafka_requests_total' && /api="([^"]+)"/.exec(match[2] ?? '')?.[1];
      if (api) totals[`kafka.${api}`] = (totals[`kafka.${api}`] ?? 0) + Number(match[3]);
    }
    for (const line of text.split('\n')) {
      const statement = /^db_statements_total\{statement="((?:[^"\\]|\\.)*)"[^}]*\} ([\d.e+]+)$/.exec(line);
      if (statement) totals[`${service}.statement.${statement[1]!.replace(/\\"/g, '"')}`] = Number(statement[2]);
    }
  }
  return totals;
}

/**
 * Postgres, Kafka and the registry: used as they are when they already answer (other runs and test suites may share
 * them: a bench never restarts them or rewrites their files), started with infra.sh up otherwise.
 */
function ensureInfra(): void {
  const infra = (command: string, stdio: 'ignore' | 'inherit') => spawnSync('bash', [join(REPO_ROOT, 'deploy', 'local', 'infra.sh'), command], { stdio }).status === 0;
  if (infra('status', 'ignore')) return;
  if (!infra('up', 'inherit')) throw new Error('infrastructure did not come up');
}

class LoadProcess {
  private readonly child: ChildProcess;
  private waiting: Array<(reply: LoadReply) => void> = [];
  /** cpuProfileDir (--cpu-profile): the load process writes its own profile too, as `load` (fakes and generator) */
  constructor(cpuProfileDir?: string) {
    const profile = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfileDir, 'load')}`] : [];
    this.child = fork(join(__dirname, 'load.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--enable-source-maps', ...profile] });
    this.child.on('message', (reply: LoadReply) => {
      if (reply.type === 'failed') throw new Error(`load process failed: ${reply.message}`);
      this.waiting.shift()?.(reply);
    });
  }
  get pid(): number {
    return this.child.pid!;
  }
  ask<T extends LoadReply>(command: LoadCommand): Promise<T> {
    return new Promise((resolve) => {
      this.waiting.push(resolve as (reply: LoadReply) => void);
      this.child.send(command);
    });
  }
}

async function main(): Promise<void> {
  if (ACKS) return ackMode(ACKS);
  ensureInfra();
  const id = uniqueId('');
  const namespace = `bench-${id}`;
  const schemaSuffix = `_bench_${id}`;
  const infra = localInfraEnv();
  const cpuProfileDir = CPU_PROFILE ? join(REPO_ROOT, '.local', 'profiles', namespace) : undefined;
  const load = new LoadProcess(cpuProfileDir);
  const ready = await load.ask<Extract<LoadReply, { type: 'ready' }>>({ type: 'start', namespace, schemaSuffix, adminToken: `bench-admin-${id}-000000`, statements: STATEMENTS, cpuProfileDir, nodeFlags: BENCH_NODE_FLAGS });
  console.log(`[bench] services up (namespace ${namespace}); warm-up ${WARMUP_SECONDS} s at ${RATE}/s`);

  const kafka = createKafka({ clientId: 'bench', brokers: infra.KAFKA_BROKERS!.split(','), logger: createLogger('bench', 'error'), security: infra });
  const codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
  // when this process saw each order's seller PayoutSent, recorded as it arrives (not when the run next looks)
  const paidSeenAt = new Map<string, number>();
  const topics = {
    orders: await collectTopic<OrderEvent>(kafka, codec, codec.topic(Streams.orders)),
    fulfillment: await collectTopic<FulfillmentEvent>(kafka, codec, codec.topic(Streams.fulfillment)),
    sales: await collectTopic<SaleEvent>(kafka, codec, codec.topic(Streams.sales)),
    payouts: await collectTopic<PayoutEvent>(kafka, codec, codec.topic(Streams.payouts), ({ event }) => {
      if (event.type === 'PayoutSent' && event.payload.recipient === 'SELLER' && !paidSeenAt.has(event.orderId)) paidSeenAt.set(event.orderId, Date.now());
    }),
  };
  const db = createDb({ url: infra.DATABASE_URL!, schema: 'public' });
  // Unpublished outbox rows as each relay counts them (its outbox_unpublished_events gauge): rows a relay published and
  // deletes together later are not backlog.
  const outboxBacklog = async () => {
    let rows = 0;
    for (const s of SERVICES) {
      const text = await (await fetch(`${ready.urls[s]}/metrics`)).text();
      rows += Number(/^outbox_unpublished_events(?:\{[^}]*\})? ([\d.e+]+)$/m.exec(text)?.[1] ?? 0);
    }
    return rows;
  };
  // when each order (by marketplace:externalOrderId) reached each stage: event time and the moment this process saw it
  const paidCount = () => paidSeenAt.size;
  const offered: OfferedOrder[] = [];
  const waitForDrain = async (what: string) => {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (paidCount() < offered.filter((o) => o.ok).length) {
      if (Date.now() > deadline) throw new Error(`${what}: ${offered.length - paidSeenAt.size} orders not paid after ${DRAIN_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const groups = () => processGroups(ready.pids, load.pid);
  /** the largest tables of each service at the end of a scale run: the history the hot queries must not scan */
  const largestTables = async () => Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, Object.fromEntries(
    (await db.raw(`select relname, n_live_tup::int as n from pg_stat_user_tables where schemaname = ? order by n_live_tup desc limit 6`, [`${s}${schemaSuffix}`])).rows
      .map((r: { relname: string; n: number }) => [r.relname, r.n]),
  )])));

  let result: Record<string, unknown>;
  try {
    const warm = await load.ask<Extract<LoadReply, { type: 'offered' }>>({ type: 'offer', phase: 'warmup', ratePerSecond: RATE, seconds: WARMUP_SECONDS });
    offered.push(...warm.orders);
    await waitForDrain('warm-up');
    const measuredFrom = offered.length;

    const cpuBefore = cpuSnapshot(groups());
    const countersBefore = await countersSnapshot(ready.urls, SERVICES, db);
    const waits = WAITS ? sampleWaits(db, schemaSuffix) : undefined;
    const steps: Array<Record<string, unknown>> = [];
    const rates = RAMP ? Array.from({ length: Math.floor((RAMP[2]! - RAMP[0]!) / RAMP[1]!) + 1 }, (_, i) => RAMP[0]! + i * RAMP[1]!) : [RATE];
    let maxLateMs = 0;
    let offeredSoFar = () => 0; // orders the load process has sent in the current step (by schedule)
    const deciles: Array<{ from: number; to: number; counters: Counters; seconds: number }> = [];
    for (let d = 0; ORDERS && d < 10; d++) {
      const size = Math.round((ORDERS * (d + 1)) / 10) - Math.round((ORDERS * d) / 10);
      const from = offered.length;
      const started = Date.now();
      const part = await load.ask<Extract<LoadReply, { type: 'offered' }>>({ type: 'offer', phase: `decile-${d + 1}`, ratePerSecond: RATE, seconds: size / RATE });
      offered.push(...part.orders);
      maxLateMs = Math.max(maxLateMs, part.lateMs);
      await waitForDrain(`decile ${d + 1}`);
      deciles.push({ from, to: offered.length, counters: await countersSnapshot(ready.urls, SERVICES, db), seconds: (Date.now() - started) / 1000 });
      console.log(`[bench] decile ${d + 1}: ${offered.length - measuredFrom} of ${ORDERS} orders paid`);
    }
    for (const rate of ORDERS ? [] : rates) {
      const seconds = RAMP ? STEP_SECONDS : SECONDS;
      const backlog = async () => ({ orders: offered.filter((o) => o.ok).length + offeredSoFar() - paidCount(), outbox: await outboxBacklog() });
      const paidBefore = paidCount();
      // The backlog settles at rate × latency within the first half of a step; sustained = it no longer grows after that.
      // Judged by its slope over a sample a second in the second half (least squares), not by two single readings: one
      // reading lands on a latency spike or a relay's batch as easily as on the trend.
      const secondHalf: Array<{ at: number; orders: number; outbox: number }> = [];
      const sampleBacklog = () => void backlog().then((b) => secondHalf.push({ at: Date.now() / 1000, ...b }));
      let sampler: NodeJS.Timeout | undefined;
      const midTimer = setTimeout(() => { sampleBacklog(); sampler = setInterval(sampleBacklog, 1000); }, (seconds * 1000) / 2);
      const stepStarted = Date.now();
      offeredSoFar = () => Math.min(Math.floor(((Date.now() - stepStarted) / 1000) * rate), Math.round(rate * seconds));
      const step = await load.ask<Extract<LoadReply, { type: 'offered' }>>({ type: 'offer', phase: `rate-${rate}`, ratePerSecond: rate, seconds });
      clearTimeout(midTimer);
      clearInterval(sampler);
      offeredSoFar = () => 0;
      offered.push(...step.orders);
      maxLateMs = Math.max(maxLateMs, step.lateMs);
      const backlogAfter = await backlog();
      secondHalf.push({ at: Date.now() / 1000, ...backlogAfter });
      const backlogBefore = secondHalf[0]!;
      const growth = { orders: slopePerSecond(secondHalf, 'orders'), outbox: slopePerSecond(secondHalf, 'outbox') };
      // growing by more than 3 % of the rate (orders) or 10 % (outbox rows, published in batches) is not keeping up
      const sustained = growth.orders <= Math.max(rate * 0.03, 1) && growth.outbox <= Math.max(rate * 0.1, 2);
      steps.push({
        offeredPerSecond: rate, seconds, completedPerSecond: Number(((paidCount() - paidBefore) / seconds).toFixed(1)),
        backlogMidStep: { orders: backlogBefore.orders, outbox: backlogBefore.outbox }, backlogEndOfStep: backlogAfter,
        backlogGrowthPerSecond: growth, sustained,
      });
      console.log(`[bench] offered ${rate}/s for ${seconds} s: paid ${(paidCount() - paidBefore) / seconds}/s, backlog mid-step ${backlogBefore.orders} → end ${backlogAfter.orders} orders (${growth.orders}/s), outbox ${backlogBefore.outbox} → ${backlogAfter.outbox} (${growth.outbox}/s)${sustained ? '' : '  (not sustained)'}`);
    }
    const measuredUntilOffered = Date.now();
    await waitForDrain('measurement');
    const drainedSeconds = (Date.now() - measuredUntilOffered) / 1000;
    const postgresWaits = await waits?.stop();
    const cpuAfter = cpuSnapshot(groups());
    const countersAfter = await countersSnapshot(ready.urls, SERVICES, db);
    const measured = offered.slice(measuredFrom);
    const orders = measured.length;

    // per-stage latency from the events' own timestamps
    const orderIdOf = new Map<string, string>();
    const at: Record<string, Map<string, number>> = { received: new Map(), purchased: new Map(), saleRecorded: new Map(), payoutSent: new Map() };
    for (const m of topics.orders.messages) {
      if (m.event.type === 'OrderReceived') {
        orderIdOf.set(`${m.event.payload.marketplace}:${m.event.payload.externalOrderId}`, m.event.orderId);
        at.received!.set(m.event.orderId, m.event.occurredAt);
      }
    }
    for (const m of topics.fulfillment.messages) if (m.event.type === 'PurchaseCompleted') at.purchased!.set(m.event.orderId, m.event.occurredAt);
    for (const m of topics.sales.messages) if (m.event.type === 'SaleRecorded') at.saleRecorded!.set(m.event.orderId, m.event.occurredAt);
    for (const m of topics.payouts.messages) if (m.event.type === 'PayoutSent' && m.event.payload.recipient === 'SELLER') at.payoutSent!.set(m.event.orderId, m.event.occurredAt);
    const contractName: Record<DemoMarketplace, string> = { ebay: 'EBAY', mercadolibre: 'MERCADOLIBRE', paypal: 'PAYPAL_STOREFRONT' };
    const stageOf = (list: OfferedOrder[], from: string, to: string) => summary(list.flatMap((o) => {
      const orderId = orderIdOf.get(`${contractName[o.marketplace]}:${o.externalOrderId}`);
      const a = orderId && at[from]!.get(orderId);
      const b = orderId && at[to]!.get(orderId);
      return a && b ? [b - a] : [];
    }));
    const stage = (from: string, to: string) => stageOf(measured, from, to);
    const scale = ORDERS ? {
      orders: ORDERS,
      deciles: deciles.map((d, i) => {
        const before = i === 0 ? countersBefore : deciles[i - 1]!.counters;
        const list = offered.slice(d.from, d.to);
        const per = (key: string) => Number(((d.counters[key]! - before[key]!) / list.length).toFixed(1));
        const p = (from: string, to: string) => {
          const s = stageOf(list, from, to);
          return { p50: s.p50, p99: s.p99 };
        };
        return {
          decile: i + 1, orders: list.length, ordersBefore: d.from - measuredFrom, secondsToDrain: Number(d.seconds.toFixed(1)),
          postgresRoundTrips: per('db_round_trips_total'), postgresCommits: per('db_commits_total'), postgresWalFlushes: per('wal_syncs'), kafkaRequests: per('kafka_requests_total'),
          stageLatencyMs: {
            receivedToPurchased: p('received', 'purchased'), purchasedToSaleRecorded: p('purchased', 'saleRecorded'),
            saleRecordedToPayoutSent: p('saleRecorded', 'payoutSent'), receivedToPayoutSent: p('received', 'payoutSent'),
          },
        };
      }),
    } : undefined;
    const timeline = measured.flatMap((o) => {
      const orderId = orderIdOf.get(`${contractName[o.marketplace]}:${o.externalOrderId}`);
      const paid = orderId && paidSeenAt.get(orderId);
      return paid ? [{ sentAt: o.sentAt, marketplace: o.marketplace, ackMs: o.ackMs, endToEndMs: paid - o.sentAt }] : [];
    });
    const perOrder = (key: string) => Number(((countersAfter[key]! - countersBefore[key]!) / orders).toFixed(1));
    // (read record by record: a scale run's millions of records would take minutes, and part of its WAL is recycled)
    const commits = orders <= 5_000
      ? await commitRecords(db, schemaSuffix, walPositions[0]!, walPositions.at(-1)!, orders)
      : { total: 'not measured (over 5,000 orders)', bySchema: {}, byTables: 'not measured (over 5,000 orders)' };
    const spent = cpuSpent(cpuBefore, cpuAfter);
    const cpuPerOrderMs = Object.fromEntries(Object.entries(spent).map(([g, seconds]) => [g, Number(((seconds / orders) * 1000).toFixed(2))]));
    const rss = Object.fromEntries(SERVICES.map((s) => [s, { steadyMb: memoryMb(ready.pids[s], 'VmRSS'), peakMb: memoryMb(ready.pids[s], 'VmHWM') }]));
    const sustainedSteps = steps.filter((s) => s.sustained);

    result = {
      date: new Date().toISOString(),
      machine: machineFacts(),
      mode: ORDERS ? { orders: ORDERS, ratePerSecond: RATE } : RAMP ? { ramp: RAMP, stepSeconds: STEP_SECONDS } : { ratePerSecond: RATE, seconds: SECONDS },
      warmup: { ratePerSecond: RATE, seconds: WARMUP_SECONDS, orders: measuredFrom },
      ordersMeasured: orders,
      rejected: measured.filter((o) => !o.ok).length,
      generatorMaxLateMs: maxLateMs,
      steps,
      sustainedOrdersPerSecond: sustainedSteps.length ? Math.max(...sustainedSteps.map((s) => Number(s.offeredPerSecond))) : null,
      drainAfterOfferSeconds: Number(drainedSeconds.toFixed(1)),
      ackLatencyMs: Object.fromEntries((['ebay', 'mercadolibre', 'paypal'] as const).map((m) => [m, summary(measured.filter((o) => o.marketplace === m).map((o) => o.ackMs))])),
      stageLatencyMs: {
        receivedToPurchased: stage('received', 'purchased'),
        purchasedToSaleRecorded: stage('purchased', 'saleRecorded'),
        saleRecordedToPayoutSent: stage('saleRecorded', 'payoutSent'),
        receivedToPayoutSent: stage('received', 'payoutSent'),
      },
      webhookToSellerPayoutSentMs: summary(timeline.map((t) => t.endToEndMs)),
      postgresDeadlocks: countersAfter.deadlocks! - countersBefore.deadlocks!,
      perOrder: {
        postgresRoundTrips: perOrder('db_round_trips_total'), postgresCommits: perOrder('db_commits_total'),
        postgresCommitRecords: commits.total,
        // Postgres's own count: WAL flushes (what a commit costs; a read-only or empty one costs none) and WAL records
        postgresWalFlushes: perOrder('wal_syncs'), postgresWalRecords: perOrder('wal_records'), kafkaRequests: perOrder('kafka_requests_total'),
        // by Kafka API (Fetch, Produce, Heartbeat, OffsetCommit, …), all services together
        kafkaRequestsByApi: Object.fromEntries(Object.keys(countersAfter).filter((k) => k.startsWith('kafka.')).map((k) => [k.slice(6), Number((((countersAfter[k] ?? 0) - (countersBefore[k] ?? 0)) / orders).toFixed(2))] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])),
      },
      ...(scale && { scale, largestTablesRows: await largestTables() }),
      perOrderByService: Object.fromEntries(SERVICES.map((s) => [s, {
        postgresRoundTrips: perOrder(`${s}.db_round_trips_total`), postgresCommits: perOrder(`${s}.db_commits_total`),
        postgresCommitRecords: commits.bySchema[s] ?? null, kafkaRequests: perOrder(`${s}.kafka_requests_total`),
      }])),
      ...(STATEMENTS && { statementsPerOrder: Object.fromEntries(SERVICES.map((s) => [s, topStatements(s, countersBefore, countersAfter, orders)])) }),
      // what each service's pool was asked for: the most connections held at once, and how long acquiring one took
      connectionPools: Object.fromEntries(SERVICES.map((s) => {
        const acquires = (countersAfter[`${s}.db_pool_acquire_seconds_count`] ?? 0) - (countersBefore[`${s}.db_pool_acquire_seconds_count`] ?? 0);
        const waited = (countersAfter[`${s}.db_pool_acquire_seconds_sum`] ?? 0) - (countersBefore[`${s}.db_pool_acquire_seconds_sum`] ?? 0);
        return [s, { peakInUse: countersAfter[`${s}.db_pool_in_use_peak`] ?? null, acquires, meanAcquireWaitMs: acquires ? Number(((waited / acquires) * 1000).toFixed(2)) : null }];
      })),
      hotQueryPlans: await hotQueryPlans(db, schemaSuffix),
      ...(postgresWaits && { postgresWaits }),
      ...(WAL_BY_RELATION && {
        walPerOrderByRelation: await walByRelation(db, schemaSuffix, walPositions[0]!, walPositions.at(-1)!, orders),
        commitsPerOrderByTables: commits.byTables,
      }),
      cpuMsPerOrder: cpuPerOrderMs,
      rssMb: rss,
      timeline,
    };
  } finally {
    for (const t of Object.values(topics)) await t.stop();
    await db.destroy();
    await load.ask({ type: 'stop' });
    for (const s of SERVICES) await dropSchema(`${s}${schemaSuffix}`);
    await deleteNamespaceTopics(namespace).catch((error: Error) => console.error(`[bench] could not delete the run's topics: ${error.message}`));
  }
  if (cpuProfileDir) result.cpuProfile = { dir: cpuProfileDir, hottestBySelfTime: hottestFunctions(cpuProfileDir, [...SERVICES, 'load']) };

  if (CEILINGS) console.log('[bench] services stopped; measuring the ceilings: pgbench single-row commits, Kafka ProducerPerformance…');
  // a ceiling that cannot be measured is reported as such; it never loses the run's own figures
  const measured = async <T>(what: () => T | Promise<T>): Promise<T | string> => {
    try { return await what(); } catch (error) { return `not measured: ${(error as Error).message.split('\n')[0]}`; }
  };
  const pgbench = CEILINGS ? await measured(pgbenchCommitsPerSecond) : 'not measured (--no-ceilings)';
  const kafkaPerf = CEILINGS ? await measured(kafkaProducerRecordsPerSecond) : 'not measured (--no-ceilings)';
  const perOrder = result.perOrder as { postgresCommits: number };
  const throughput = (result.sustainedOrdersPerSecond as number | null) ?? RATE;
  result.ceilings = {
    postgresSingleRowCommitsPerSecond: pgbench,
    kafkaProducerRecordsPerSecond512B: kafkaPerf,
    // 1.0 would mean the pipeline is as fast as Postgres's commit rate allows at its commits per order
    ordersPerSecondOverCommitBound: typeof pgbench === 'number' ? Number((throughput / (pgbench / perOrder.postgresCommits)).toFixed(3)) : null,
  };
  const file = join(REPO_ROOT, 'bench', 'results', (result.date as string).replace(/[:.]/g, '-'));
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(`${file}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${file}.html`, latencyChart(result.timeline as Array<{ sentAt: number; endToEndMs: number; ackMs: number }>, String(result.date)));
  const { timeline: _timeline, ...printable } = result;
  console.log(JSON.stringify(printable, null, 2));
  console.log(`[bench] saved ${file}.json and ${file}.html`);
}

/**
 * The ack mode (--acks): webhook acknowledgements per second, open loop, step by step. Only the load process, its
 * generator, /proc and the run's schemas are read: no topic is consumed, so this process costs next to nothing.
 */
async function ackMode(rates: number[]): Promise<void> {
  const stepSeconds = Number(arg('step-seconds', '10'));
  const warmupSeconds = Number(arg('warmup', '5'));
  // the storefront signs its capture calls when they are prepared, and ingest accepts a signature for 300 s
  if (stepSeconds > 240) throw new Error('--step-seconds is at most 240 in the ack mode');
  ensureInfra();
  const id = uniqueId('');
  const namespace = `bench-${id}`;
  const schemaSuffix = `_bench_${id}`;
  const cpuProfileDir = CPU_PROFILE ? join(REPO_ROOT, '.local', 'profiles', namespace) : undefined;
  const load = new LoadProcess(cpuProfileDir);
  const ready = await load.ask<Extract<LoadReply, { type: 'ready' }>>({
    type: 'start', namespace, schemaSuffix, adminToken: `bench-admin-${id}-000000`, statements: STATEMENTS, acks: { pipeline: ACK_PIPELINE as 'full' | 'ingest' | 'acks', ingestReplicas: ACK_REPLICAS }, cpuProfileDir, nodeFlags: BENCH_NODE_FLAGS,
  });
  const db = createDb({ url: localInfraEnv().DATABASE_URL!, schema: 'public' });
  const running = ACK_PIPELINE === 'full' ? SERVICES : (['ingest'] as const);
  console.log(`[bench] ack mode (namespace ${namespace}, ${ACK_PIPELINE === 'full' ? 'the whole pipeline running' : ACK_PIPELINE === 'ingest' ? 'ingest alone' : ACK_REPLICAS > 1 ? `${ACK_REPLICAS} webhook-only ingest replicas` : 'a webhook-only ingest replica'}); warm-up ${warmupSeconds} s at ${rates[0]}/s, then ${rates.join(', ')} webhooks/s for ${stepSeconds} s each`);
  /** what the pipeline has done with the offered orders so far: its backlog grows when the rest cannot keep up */
  const pipelineState = async () => {
    const count = async (sql: string) => Number((await db.raw(sql)).rows[0].n);
    return {
      ingestDeliveriesPending: await count(`select count(*)::int as n from ingest${schemaSuffix}.deliveries where status = 'pending'`),
      ingestOrdersRecorded: await count(`select count(*)::int as n from ingest${schemaSuffix}.orders`),
      ...(ACK_PIPELINE === 'full' && { salesOrdersRecorded: await count(`select count(*)::int as n from sales${schemaSuffix}.orders`) }),
    };
  };
  const ingestUrls = ready.ingestReplicaUrls ?? [ready.urls.ingest];
  const groups = () => ({ ...processGroups(ready.pids, load.pid), ingest: ready.ingestReplicaPids ?? [ready.pids.ingest], generator: [ready.generatorPid!] });
  // every replica's counters, summed (only ingest runs when there are several)
  const countersOfAll = async () => {
    const all: Counters = {};
    for (const url of ingestUrls) {
      for (const [key, value] of Object.entries(await countersSnapshot({ ...ready.urls, ingest: url }, running))) {
        all[key] = key.endsWith('db_pool_in_use_peak') ? Math.max(all[key] ?? 0, value) : (all[key] ?? 0) + value;
      }
    }
    return all;
  };
  const ackMetricsOfAll = async () => {
    const each = await Promise.all(ingestUrls.map((url) => ingestAckMetrics(url)));
    const sum = (pick: (m: (typeof each)[number]) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const m of each) for (const [k, v] of Object.entries(pick(m))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    return { within25: sum((m) => m.within25), count: sum((m) => m.count), lagP99: Math.max(...each.map((m) => m.lagP99)), lagMax: Math.max(...each.map((m) => m.lagMax)) };
  };
  const offerStep = async (rate: number, seconds: number) => {
    const prepared = await load.ask<Extract<LoadReply, { type: 'acks-prepared' }>>({ type: 'prepare-acks', ratePerSecond: rate, seconds, marketplaces: ACK_MARKETPLACES });
    const ingestBefore = await ackMetricsOfAll(); // also restarts the event-loop delay histograms
    const countersBefore = await countersOfAll();
    const cpuBefore = cpuSnapshot(groups());
    const started = Date.now();
    const { results } = await load.ask<Extract<LoadReply, { type: 'acks-offered' }>>({ type: 'offer-acks', ratePerSecond: rate });
    const wallSeconds = (Date.now() - started) / 1000;
    const cpu = cpuSpent(cpuBefore, cpuSnapshot(groups()));
    const ingest = ingestAckDelta(ingestBefore, await ackMetricsOfAll());
    const countersAfter = await countersOfAll();
    const webhooks = results.status.length;
    // what each running service sent Postgres per offered webhook while the step ran (its acks and whatever its
    // workers did meanwhile): with --statements, ingest's statements by text
    const delta = (key: string) => (countersAfter[key] ?? 0) - (countersBefore[key] ?? 0);
    const perWebhook = Object.fromEntries(running.map((s) => [s, {
      postgresRoundTrips: Number((delta(`${s}.db_round_trips_total`) / webhooks).toFixed(2)),
      postgresCommits: Number((delta(`${s}.db_commits_total`) / webhooks).toFixed(2)),
      // waiting for one of the pool's DB_POOL_MAX connections is part of an ack's time (the peak is since start)
      meanPoolAcquireWaitMs: delta(`${s}.db_pool_acquire_seconds_count`) ? Number(((delta(`${s}.db_pool_acquire_seconds_sum`) / delta(`${s}.db_pool_acquire_seconds_count`)) * 1000).toFixed(2)) : null,
      poolPeakInUse: countersAfter[`${s}.db_pool_in_use_peak`] ?? null,
    }]));
    return {
      prepared, results, wallSeconds, cpu, ingest, perWebhook,
      ...(STATEMENTS && { ingestStatementsPerWebhook: topStatements('ingest', countersBefore, countersAfter, webhooks).map(({ perOrder, statement }) => ({ perWebhook: perOrder, statement })) }),
    };
  };

  const steps: Array<ReturnType<typeof ackStep>> = [];
  let notOffered: number[] = [];
  try {
    const warm = await offerStep(rates[0]!, warmupSeconds);
    console.log(`[bench] warm-up: ${warm.results.status.filter((s) => s >= 200 && s < 300).length} of ${warm.results.status.length} acknowledged`);
    for (const rate of rates) {
      const step = await offerStep(rate, stepSeconds);
      const result = ackStep(rate, stepSeconds, step, await pipelineState());
      steps.push(result);
      const latency = Object.entries(result.ackLatencyMs).map(([m, s]) => `${m} ${s.p50}/${s.p99}`).join(' · ');
      console.log(`[bench] offered ${rate}/s: ${result.acksPerSecond} acks/s, p50/p99 ms ${latency}, errors ${result.errors.total}, generator late p99 ${result.generator.lateMs.p99} ms${result.generator.onTime ? '' : ' (NOT ON TIME)'}${result.passes ? '' : '  (fails)'}`);
      // a higher step would only measure a queue (and load a shared machine for minutes): stop climbing
      if (result.acksPerSecond < rate / 2) {
        notOffered = rates.slice(rates.indexOf(rate) + 1);
        if (notOffered.length) console.log(`[bench] fewer than half the offered webhooks acknowledged per second: ${notOffered.join(', ')}/s not offered`);
        break;
      }
    }
  } finally {
    await db.destroy();
    await load.ask({ type: 'stop' });
    for (const s of SERVICES) await dropSchema(`${s}${schemaSuffix}`);
    await deleteNamespaceTopics(namespace).catch((error: Error) => console.error(`[bench] could not delete the run's topics: ${error.message}`));
  }
  const best = (passes: (s: (typeof steps)[number]) => boolean) => {
    const ok = steps.filter(passes);
    return ok.length ? Math.max(...ok.map((s) => s.offeredPerSecond)) : null;
  };
  const result = {
    date: new Date().toISOString(),
    machine: machineFacts(),
    mode: { acks: rates, stepSeconds, warmupSeconds, pipeline: ACK_PIPELINE, ingestReplicas: ACK_REPLICAS, servicesRunning: running, marketplaces: ACK_MARKETPLACES },
    why: ACK_PIPELINE === 'full'
      ? 'the whole pipeline runs, as in production: every acknowledged webhook is an order the other services then work, on the same cores; their backlog grows (pipelineAtEndOfStep) and is not drained'
      : ACK_PIPELINE === 'ingest'
        ? 'ingest alone (--ack-pipeline ingest): the other services stopped after start, so the figures are the ack path\'s own capacity with ingest\'s delivery worker still working the deliveries'
        : 'a webhook-only ingest replica (--ack-pipeline acks: BACKGROUND_WORKERS=false, the other services stopped): it stores and answers webhooks (storefront captures still processed inline) and leaves the deliveries to replicas that run the worker — the ack path\'s own capacity, which scales by adding such replicas',
    criterion: `every marketplace's p99 < ${ACK_P99_MS} ms (from each request's scheduled time), no non-2xx answer or failed connection, the generator on time (p99 lateness ≤ ${ACK_GENERATOR_LATE_P99_MS} ms)`,
    ackThroughput: best((s) => s.passes),
    ...(cpuProfileDir && { cpuProfile: { dir: cpuProfileDir, hottestBySelfTime: hottestFunctions(cpuProfileDir, [...running, 'load']) } }),
    ...(notOffered.length && { notOffered: { rates: notOffered, why: 'the step before acknowledged fewer than half the webhooks offered per second' } }),
    ackThroughputByMarketplace: Object.fromEntries(ACK_MARKETPLACES.map((m) => [m, best((s) => s.generator.onTime && s.errors.byMarketplace[m] === 0 && (s.ackLatencyMs[m]?.p99 ?? Infinity) < ACK_P99_MS)])),
    steps,
  };
  const file = join(REPO_ROOT, 'bench', 'results', `${result.date.replace(/[:.]/g, '-')}-acks`);
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(`${file}.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  console.log(`[bench] saved ${file}.json`);
}

/**
 * What ingest itself measured: its acknowledgement time per marketplace (the webhook routes; the storefront's capture
 * route is not timed there) and its event loop's delay (prom-client's, restarted at every scrape).
 */
async function ingestAckMetrics(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const within25: Record<string, number> = {};
  const count: Record<string, number> = {};
  let lagP99 = 0;
  let lagMax = 0;
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const marketplace = /marketplace="([A-Z_]+)"/.exec(line)?.[1];
    if (line.startsWith('ingest_webhook_ack_seconds_bucket') && line.includes('le="0.025"') && marketplace) within25[marketplace] = value;
    else if (line.startsWith('ingest_webhook_ack_seconds_count') && marketplace) count[marketplace] = value;
    else if (/^nodejs_eventloop_lag_p99_seconds[{ ]/.test(line)) lagP99 = value;
    else if (/^nodejs_eventloop_lag_max_seconds[{ ]/.test(line)) lagMax = value;
  }
  return { within25, count, lagP99, lagMax };
}
function ingestAckDelta(before: Awaited<ReturnType<typeof ingestAckMetrics>>, after: Awaited<ReturnType<typeof ingestAckMetrics>>) {
  return {
    eventLoopDelayMs: { p99: Number((after.lagP99 * 1000).toFixed(1)), max: Number((after.lagMax * 1000).toFixed(1)) },
    // the share of acknowledgements ingest answered within 25 ms of the request reaching its handler
    handlerAcksWithin25ms: Object.fromEntries(Object.keys(after.count).map((m) => {
      const n = after.count[m]! - (before.count[m] ?? 0);
      return [m, { count: n, share: n ? Number(((after.within25[m]! - (before.within25[m] ?? 0)) / n).toFixed(3)) : null }];
    })),
  };
}

/** One ack step's figures from the generator's per-request results. */
function ackStep(
  rate: number, seconds: number,
  step: {
    prepared: { webhooks: number; prepareMs: number }; results: AckResults; wallSeconds: number; cpu: Record<string, number>; ingest: ReturnType<typeof ingestAckDelta>;
    perWebhook: Record<string, { postgresRoundTrips: number; postgresCommits: number; meanPoolAcquireWaitMs: number | null; poolPeakInUse: number | null }>; ingestStatementsPerWebhook?: Array<{ perWebhook: number; statement: string }>;
  },
  pipelineAtEndOfStep: Record<string, number>,
) {
  const r = step.results;
  const ok = (i: number) => r.status[i]! >= 200 && r.status[i]! < 300;
  const indexes = r.status.map((_, i) => i);
  const of = (m: DemoMarketplace) => indexes.filter((i) => r.marketplace[i] === m);
  const statuses: Record<string, number> = {};
  for (const s of r.status) if (s < 200 || s >= 300) statuses[s === 0 ? 'no answer' : String(s)] = (statuses[s === 0 ? 'no answer' : String(s)] ?? 0) + 1;
  const late = summary(r.lateMs);
  const onTime = (late.p99 ?? 0) <= ACK_GENERATOR_LATE_P99_MS;
  const ackLatencyMs = Object.fromEntries(ACK_MARKETPLACES.map((m) => [m, roundSummary(summary(of(m).map((i) => r.ackMs[i]!)))]));
  const errors = { total: indexes.filter((i) => !ok(i)).length, byMarketplace: Object.fromEntries(ACK_MARKETPLACES.map((m) => [m, of(m).filter((i) => !ok(i)).length])), byStatus: statuses };
  return {
    offeredPerSecond: rate,
    seconds,
    webhooksOffered: r.status.length,
    // acknowledged webhooks over the time from the first scheduled send to the last answer
    acksPerSecond: Number((indexes.filter(ok).length / (r.offerMs / 1000)).toFixed(1)),
    lastAnswerAfterSeconds: Number((r.offerMs / 1000).toFixed(2)),
    ackLatencyMs,
    allMarketplacesMs: roundSummary(summary(r.ackMs)),
    errors,
    generator: {
      onTime,
      lateMs: roundSummary(late),
      maxLateMs: Number(Math.max(0, ...r.lateMs).toFixed(1)),
      cpuMs: Math.round(r.generatorCpuMs),
      nice: r.nice,
      note: onTime ? undefined : `the generator could not offer ${rate}/s on time (p99 ${late.p99?.toFixed(1)} ms late): this step's figures are not the system's`,
      prepareSeconds: Number((step.prepared.prepareMs / 1000).toFixed(1)),
    },
    // CPU cores each process used while the step was offered and answered (of the machine's cpus)
    cpuCores: Object.fromEntries(Object.entries(step.cpu).map(([g, s]) => [g, Number((s / step.wallSeconds).toFixed(2))])),
    ingest: step.ingest,
    perWebhook: step.perWebhook,
    ...(step.ingestStatementsPerWebhook && { ingestStatementsPerWebhook: step.ingestStatementsPerWebhook }),
    pipelineAtEndOfStep,
    passes: onTime && errors.total === 0 && ACK_MARKETPLACES.every((m) => (ackLatencyMs[m]?.p99 ?? Infinity) < ACK_P99_MS),
  };
}
const roundSummary = (s: ReturnType<typeof summary>) => ({ count: s.count, p50: round1(s.p50), p99: round1(s.p99), p999: round1(s.p999) });
const round1 = (v: number | null) => (v === null ? null : Number(v.toFixed(1)));

/**
 * The queries every order or every worker poll runs, planned against the run's own schemas with sequential scans
 * disabled: a query still planned with a Seq Scan has no index it can use, so its cost grows with the table's history.
 */
const HOT_QUERIES: Array<{ service: ServiceName; name: string; sql: string }> = [
  { service: 'fulfillment', name: 'purchase claim', sql: `select * from fulfillments where state in ('RECEIVED','PURCHASING') and next_run_at <= now() order by next_run_at limit 10` },
  { service: 'fulfillment', name: 'follow-up claim', sql: `select * from fulfillments where state in ('AWAITING_PAYMENT','PURCHASED','SHIPPED') and next_run_at <= now() order by next_run_at limit 20` },
  { service: 'fulfillment', name: 'tracking push claim', sql: `select * from tracking_pushes where status = 'PENDING' and next_attempt_at <= now() order by next_attempt_at limit 10` },
  { service: 'payouts', name: 'due intents claim', sql: `select * from payout_intents where status = 'DUE' and release_at <= now() order by release_at limit 100` },
  { service: 'payouts', name: 'batches by status', sql: `select * from payout_batches where status = 'ACCEPTED' order by last_checked_at asc nulls first, created_at limit 20` },
  { service: 'payouts', name: 'items of a batch', sql: `select * from payout_items where batch_id = '00000000-0000-0000-0000-000000000000' order by id` },
  { service: 'payouts', name: 'pending item cancellations', sql: `select * from payout_items where cancel_requested_at is not null and paypal_item_id is not null and status = 'UNCLAIMED' limit 20` },
  { service: 'sales', name: 'order lock', sql: `select * from orders where order_id = 'x' for update` },
  { service: 'sales', name: 'adjustments of an order', sql: `select * from adjustments where order_id = 'x' order by occurred_at, created_at` },
  { service: 'ingest', name: 'deliveries due', sql: `select * from deliveries where status = 'pending' and next_attempt_at <= now() order by next_attempt_at limit 50` },
  ...SERVICES.map((service) => ({ service, name: 'outbox read', sql: `select id, topic, stream, key, event_type, event, event_id from outbox where published_at is null and id <> all('{}'::bigint[]) order by id limit 500` })),
  ...SERVICES.map((service) => ({ service, name: 'inbox retention', sql: `select ctid from inbox where processed_at < now() - interval '100 days' limit 1000` })),
];
/** A service's statements sent per order during the measurement, most frequent first (the --statements profile). */
function topStatements(service: ServiceName, before: Counters, after: Counters, orders: number): Array<{ perOrder: number; statement: string }> {
  const prefix = `${service}.statement.`;
  return Object.keys(after)
    .filter((key) => key.startsWith(prefix))
    .map((key) => ({ perOrder: Number(((after[key]! - (before[key] ?? 0)) / orders).toFixed(2)), statement: key.slice(prefix.length) }))
    .filter((s) => s.perOrder >= 0.05)
    .sort((a, b) => b.perOrder - a.perOrder);
}

async function hotQueryPlans(db: Db, schemaSuffix: string): Promise<Array<{ service: string; query: string; scans: string[]; growsWithHistory: boolean }>> {
  const scans = (node: Record<string, unknown>): string[] => [
    ...(/Scan/.test(String(node['Node Type'])) ? [`${node['Node Type']} ${node['Index Name'] ?? node['Relation Name'] ?? ''}`.trim()] : []),
    ...((node.Plans as Array<Record<string, unknown>> | undefined) ?? []).flatMap(scans),
  ];
  const plans = [];
  for (const q of HOT_QUERIES) {
    const plan = await db.transaction(async (trx) => {
      await trx.raw(`set local search_path = ${q.service}${schemaSuffix}`);
      await trx.raw('set local enable_seqscan = off');
      return (await trx.raw(`explain (format json) ${q.sql}`)).rows[0]['QUERY PLAN'][0].Plan as Record<string, unknown>;
    }).catch((error: unknown) => ({ 'Node Type': `not planned: ${error instanceof Error ? error.message : String(error)}` }));
    const found = scans(plan);
    plans.push({ service: q.service, query: q.name, scans: found, growsWithHistory: found.some((s) => s.startsWith('Seq Scan')) });
  }
  return plans;
}

/**
 * Postgres's own count of the measured window's commits: its WAL's commit records (a transaction that wrote nothing
 * writes none, whatever the services' counters assume of it), grouped by the tables of the run's schemas each committed
 * transaction wrote (its indexes folded into their table). One read of the WAL gives the total and the count by
 * service (the schema of those tables), per order, and the transactions by tables (`commitsPerOrderByTables`, --wal).
 */
async function commitRecords(db: Db, schemaSuffix: string, from: string, to: string, orders: number): Promise<{
  total: number | string; bySchema: Record<string, number>; byTables: Array<{ tables: string; perOrder: number }> | string;
}> {
  try {
    await db.raw('create extension if not exists pg_walinspect');
    // One pass over the records, grouped by transaction, then the tables of each committed one by index lookups: a join
    // of the records with the committed transactions was planned as a nested loop (the function's rows unknown) and
    // took minutes for 1,500 orders.
    const rows = (await db.raw(`
      with records as (
        select xid::text as xid, resource_manager = 'Transaction' and record_type like 'COMMIT%' as is_commit,
               (regexp_match(block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid as relfilenode
        from pg_get_wal_records_info(?::pg_lsn, ?::pg_lsn)
      ), transactions as (
        select xid, bool_or(is_commit) as committed, array_agg(distinct relfilenode) filter (where relfilenode <> 0) as relfilenodes
        from records group by xid
      ), committed as (
        select (select string_agg(distinct n.nspname || '.' || coalesce(t.relname, c.relname), ' ')
                from unnest(x.relfilenodes) as written(relfilenode)
                join pg_class c on c.relfilenode = written.relfilenode
                join pg_namespace n on n.oid = c.relnamespace and n.nspname like ?
                left join pg_index i on i.indexrelid = c.oid left join pg_class t on t.oid = i.indrelid) as tables
        from transactions x where x.committed
      )
      select tables, count(*)::int as commits from committed
      group by tables order by commits desc`, [from, to, `%${schemaSuffix}`])).rows as Array<{ tables: string | null; commits: number }>;
    const per = (n: number, digits = 1) => Number((n / orders).toFixed(digits));
    const bySchema: Record<string, number> = {};
    for (const r of rows) {
      // a transaction counts once for each service whose schema it wrote (none expected to write two)
      const schemas = new Set((r.tables ?? '').split(' ').filter(Boolean).map((t) => t.slice(0, t.indexOf('.')).replace(schemaSuffix, '')));
      for (const schema of schemas) bySchema[schema] = (bySchema[schema] ?? 0) + r.commits;
    }
    return {
      total: per(rows.reduce((sum, r) => sum + r.commits, 0)),
      bySchema: Object.fromEntries(Object.entries(bySchema).map(([schema, n]) => [schema, per(n)])),
      byTables: rows.filter((r) => r.tables).slice(0, 40).map((r) => ({ tables: r.tables!.replaceAll(schemaSuffix, ''), perOrder: per(r.commits, 2) })),
    };
  } catch (error) {
    const notMeasured = `not measured: ${error instanceof Error ? error.message : String(error)}`;
    return { total: notMeasured, bySchema: {}, byTables: notMeasured };
  }
}

/**
 * WAL records and bytes per order between two WAL positions, by the relation each record touches (tables and indexes
 * of the run's schemas; "(none)" for records that touch no relation, e.g. commits), with the record kinds: a heap
 * UPDATE next to index INSERTs is an update that could not be HOT.
 */
async function walByRelation(db: Db, schemaSuffix: string, from: string, to: string, orders: number): Promise<unknown> {
  try {
    await db.raw('create extension if not exists pg_walinspect');
    const rows = (await db.raw(`
      with records as (
        select resource_manager || ':' || record_type as kind, record_length + fpi_length as bytes,
               (regexp_match(block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid as relfilenode
        from pg_get_wal_records_info(?::pg_lsn, ?::pg_lsn)
      ), named as (
        select coalesce(n.nspname || '.' || c.relname, case when r.relfilenode is null then '(none)' else '(other)' end) as relation, r.kind, r.bytes
        from records r left join pg_class c on c.relfilenode = r.relfilenode and c.relfilenode <> 0
        left join pg_namespace n on n.oid = c.relnamespace and n.nspname like ?
      ), by_kind as (
        select relation, kind, count(*) as n, sum(bytes) as bytes from named group by relation, kind
      )
      select relation, sum(n)::int as records, sum(bytes)::bigint as bytes,
             string_agg(kind || ' ' || n, ', ' order by n desc) as kinds
      from by_kind group by relation order by records desc limit 40`, [from, to, `%${schemaSuffix}`])).rows as Array<{ relation: string; records: number; bytes: string; kinds: string }>;
    const per = (n: number) => Number((n / orders).toFixed(1));
    return rows.map((r) => ({
      relation: r.relation.replace(schemaSuffix, ''), records: per(r.records), bytes: Math.round(Number(r.bytes) / orders),
      kinds: r.kinds.replace(/ (\d+)/g, (_, n: string) => ` ${per(Number(n))}`),
    }));
  } catch (error) {
    return `not measured: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Webhook → seller PayoutSent latency (and ack latency) of every measured order against when it was sent. */
function latencyChart(points: Array<{ sentAt: number; endToEndMs: number; ackMs: number }>, title: string): string {
  const [w, h, pad] = [900, 360, 50];
  const t0 = Math.min(...points.map((p) => p.sentAt));
  const tMax = Math.max(1, ...points.map((p) => p.sentAt - t0));
  const yMax = Math.max(1, ...points.map((p) => p.endToEndMs));
  const x = (t: number) => pad + ((t - t0) / tMax) * (w - 2 * pad);
  const y = (ms: number) => h - pad - (ms / yMax) * (h - 2 * pad);
  const dots = (key: 'endToEndMs' | 'ackMs', color: string) =>
    points.map((p) => `<circle cx="${x(p.sentAt).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="1.5" fill="${color}"/>`).join('');
  return `<!doctype html><meta charset="utf-8"><title>postsale bench ${title}</title>
<h1>Latency over the run (${title})</h1>
<p>x: when the order was sent (0–${(tMax / 1000).toFixed(0)} s); y: 0–${yMax} ms. Blue: webhook → seller PayoutSent. Orange: webhook acknowledgement.</p>
<svg width="${w}" height="${h}" role="img" aria-label="latency over time">
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#444"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#444"/>
${dots('endToEndMs', '#1f77b4')}${dots('ackMs', '#ff7f0e')}
</svg>`;
}

function pgbenchCommitsPerSecond(): number | string {
  const pgbench = ['pgbench', ...readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`)].find(
    (p) => spawnSync(p, ['--version']).status === 0,
  );
  if (!pgbench) return 'pgbench not installed';
  const url = new URL(localInfraEnv().DATABASE_URL!);
  const script = join(REPO_ROOT, '.local', 'bench-insert.sql');
  writeFileSync(script, 'insert into bench_commit (v) values (1);\n');
  const psql = (sql: string) => execFileSync('psql', ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', '-d', 'postsale', '-qc', sql]);
  psql('create table if not exists public.bench_commit (id bigserial primary key, v int)');
  const out = execFileSync(pgbench, ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', '-n', '-c', '4', '-j', '2', '-T', '10', '-f', script, 'postsale'], { encoding: 'utf8' });
  psql('drop table public.bench_commit');
  return Math.round(Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN));
}

async function kafkaProducerRecordsPerSecond(): Promise<number | string> {
  const libs = join(REPO_ROOT, '.local', 'infra');
  const kafkaDir = readdirSync(libs).find((d) => d.startsWith('kafka-'));
  if (!kafkaDir) return 'kafka jars not found';
  const topic = uniqueId('bench-producer-perf-');
  const kafka = createKafka({ clientId: 'bench', brokers: localInfraEnv().KAFKA_BROKERS!.split(','), logger: createLogger('bench', 'error'), security: localInfraEnv() });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 1 }], waitForLeaders: true });
  // A properties file, not --producer-props: the tool splits each of those on '=', and the SASL login line has several.
  const config = join(mkdtempSync(join(tmpdir(), 'bench-kafka-')), 'producer.properties');
  writeFileSync(config, [`bootstrap.servers=${localInfraEnv().KAFKA_BROKERS}`, 'acks=all', 'enable.idempotence=true',
    ...kafkaJavaClientProperties(localInfraEnv())].join('\n') + '\n', { mode: 0o600 });
  try {
    const out = execFileSync('java', [
      '-cp', join(libs, kafkaDir, 'libs', '*'), 'org.apache.kafka.tools.ProducerPerformance',
      '--topic', topic, '--num-records', '300000', '--record-size', '512', '--throughput', '-1', '--producer.config', config,
    ], { encoding: 'utf8' });
    return Math.round(Number(/([\d.]+) records\/sec/.exec(out.trim().split('\n').pop() ?? '')?.[1] ?? Number.NaN));
  } finally {
    rmSync(dirname(config), { recursive: true, force: true });
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error('[bench] failed:', error);
  process.exit(1);
});

/** The machine and how the services ran: figures made with different runtime flags are not comparable. */
function machineFacts() {
  return {
    cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version,
    serviceNodeFlags: [...SERVICE_NODE_FLAGS, ...BENCH_NODE_FLAGS],
    serviceProcessEnv: { ...SERVICE_PROCESS_ENV },
  };
}
