/**
 * `npm run bench -- [--rate R] [--seconds S] [--warmup W] [--ramp FROM,STEP,TO] [--step-seconds T]`
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
 *   outbox rows) stopped growing in the second half of the step: the highest such rate is the sustained throughput;
 * - the ceilings, measured after the services stopped: pgbench single-row commits/s and Kafka ProducerPerformance.
 * Results: bench/results/<date>.json and a latency-over-time chart bench/results/<date>.html.
 */
import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec, Streams, type FulfillmentEvent, type OrderEvent, type PayoutEvent, type SaleEvent } from '@postsale/contracts';
import { createDb, createKafka, createLogger, kafkaJavaClientProperties, localInfraEnv } from '@postsale/runtime';
import { collectTopic, deleteNamespaceTopics, dropSchema, uniqueId } from '@postsale/runtime/testing';
import { REPO_ROOT, SERVICES, type DemoMarketplace, type ServiceName } from '@postsale/cli';
import type { LoadCommand, LoadReply, OfferedOrder } from './load';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);
const RATE = Number(arg('rate', '20'));
const SECONDS = Number(arg('seconds', '60'));
const WARMUP_SECONDS = Number(arg('warmup', '30'));
const RAMP = args.includes('--ramp') ? arg('ramp', '10,10,60').split(',').map(Number) : undefined;
const STEP_SECONDS = Number(arg('step-seconds', '30'));
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
    return Number(readFileSync(join(REPO_ROOT, '.local', 'run', `${name}.pid`), 'utf8'));
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

async function countersSnapshot(urls: Record<ServiceName, string>): Promise<Record<string, number>> {
  const totals: Record<string, number> = { db_round_trips_total: 0, db_commits_total: 0, kafka_requests_total: 0 };
  for (const service of SERVICES) {
    const text = await (await fetch(`${urls[service]}/metrics`)).text();
    for (const line of text.split('\n')) {
      const match = /^(db_round_trips_total|db_commits_total|kafka_requests_total)(\{[^}]*\})? ([\d.e+]+)$/.exec(line);
      if (match) totals[match[1]!] = (totals[match[1]!] ?? 0) + Number(match[3]);
    }
  }
  return totals;
}

class LoadProcess {
  private readonly child: ChildProcess;
  private waiting: Array<(reply: LoadReply) => void> = [];
  constructor() {
    this.child = fork(join(__dirname, 'load.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--enable-source-maps'] });
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
  if (spawnSync('bash', [join(REPO_ROOT, 'deploy', 'local', 'infra.sh'), 'up'], { stdio: 'inherit' }).status !== 0) throw new Error('infrastructure did not come up');
  const id = uniqueId('');
  const namespace = `bench-${id}`;
  const schemaSuffix = `_bench_${id}`;
  const infra = localInfraEnv();
  const load = new LoadProcess();
  const ready = await load.ask<Extract<LoadReply, { type: 'ready' }>>({ type: 'start', namespace, schemaSuffix, adminToken: `bench-admin-${id}-000000` });
  console.log(`[bench] services up (namespace ${namespace}); warm-up ${WARMUP_SECONDS} s at ${RATE}/s`);

  const kafka = createKafka({ clientId: 'bench', brokers: infra.KAFKA_BROKERS!.split(','), logger: createLogger('bench', 'error'), security: infra });
  const codec = EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace);
  const topics = {
    orders: await collectTopic<OrderEvent>(kafka, codec, codec.topic(Streams.orders)),
    fulfillment: await collectTopic<FulfillmentEvent>(kafka, codec, codec.topic(Streams.fulfillment)),
    sales: await collectTopic<SaleEvent>(kafka, codec, codec.topic(Streams.sales)),
    payouts: await collectTopic<PayoutEvent>(kafka, codec, codec.topic(Streams.payouts)),
  };
  const db = createDb({ url: infra.DATABASE_URL!, schema: 'public' });
  const outboxBacklog = async () => {
    let rows = 0;
    for (const s of SERVICES) rows += Number((await db.raw(`select count(*)::int as n from ${s}${schemaSuffix}.outbox where published_at is null`)).rows[0].n);
    return rows;
  };
  // when each order (by marketplace:externalOrderId) reached each stage: event time and the moment this process saw it
  const paidSeenAt = new Map<string, number>(); // orderId → when the seller's PayoutSent was seen here
  const paidCount = () => {
    for (const m of topics.payouts.messages) {
      if (m.event.type === 'PayoutSent' && m.event.payload.recipient === 'SELLER' && !paidSeenAt.has(m.event.orderId)) paidSeenAt.set(m.event.orderId, Date.now());
    }
    return paidSeenAt.size;
  };
  const offered: OfferedOrder[] = [];
  const waitForDrain = async (what: string) => {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (paidCount() < offered.filter((o) => o.ok).length) {
      if (Date.now() > deadline) throw new Error(`${what}: ${offered.length - paidSeenAt.size} orders not paid after ${DRAIN_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const groups = () => processGroups(ready.pids, load.pid);

  let result: Record<string, unknown>;
  try {
    const warm = await load.ask<Extract<LoadReply, { type: 'offered' }>>({ type: 'offer', phase: 'warmup', ratePerSecond: RATE, seconds: WARMUP_SECONDS });
    offered.push(...warm.orders);
    await waitForDrain('warm-up');
    const measuredFrom = offered.length;

    const cpuBefore = cpuSnapshot(groups());
    const countersBefore = await countersSnapshot(ready.urls);
    const steps: Array<Record<string, unknown>> = [];
    const rates = RAMP ? Array.from({ length: Math.floor((RAMP[2]! - RAMP[0]!) / RAMP[1]!) + 1 }, (_, i) => RAMP[0]! + i * RAMP[1]!) : [RATE];
    let maxLateMs = 0;
    let offeredSoFar = () => 0; // orders the load process has sent in the current step (by schedule)
    for (const rate of rates) {
      const seconds = RAMP ? STEP_SECONDS : SECONDS;
      const backlog = async () => ({ orders: offered.filter((o) => o.ok).length + offeredSoFar() - paidCount(), outbox: await outboxBacklog() });
      const paidBefore = paidCount();
      // the backlog settles at rate × latency within the first half of a step; sustained = it no longer grows after that
      let backlogMid: { orders: number; outbox: number } | undefined;
      const midTimer = setTimeout(() => void backlog().then((b) => { backlogMid = b; }), (seconds * 1000) / 2);
      const stepStarted = Date.now();
      offeredSoFar = () => Math.min(Math.floor(((Date.now() - stepStarted) / 1000) * rate), Math.round(rate * seconds));
      const step = await load.ask<Extract<LoadReply, { type: 'offered' }>>({ type: 'offer', phase: `rate-${rate}`, ratePerSecond: rate, seconds });
      clearTimeout(midTimer);
      offeredSoFar = () => 0;
      offered.push(...step.orders);
      maxLateMs = Math.max(maxLateMs, step.lateMs);
      const backlogAfter = await backlog();
      const backlogBefore = backlogMid ?? backlogAfter;
      const sustained = backlogAfter.orders - backlogBefore.orders <= Math.max(rate, 5) && backlogAfter.outbox - backlogBefore.outbox <= Math.max(rate * 4, 20);
      steps.push({ offeredPerSecond: rate, seconds, completedPerSecond: Number(((paidCount() - paidBefore) / seconds).toFixed(1)), backlogMidStep: backlogBefore, backlogEndOfStep: backlogAfter, sustained });
      console.log(`[bench] offered ${rate}/s for ${seconds} s: paid ${(paidCount() - paidBefore) / seconds}/s, backlog mid-step ${backlogBefore.orders} → end ${backlogAfter.orders} orders, outbox ${backlogBefore.outbox} → ${backlogAfter.outbox}${sustained ? '' : '  (not sustained)'}`);
    }
    const measuredUntilOffered = Date.now();
    await waitForDrain('measurement');
    const drainedSeconds = (Date.now() - measuredUntilOffered) / 1000;
    const cpuAfter = cpuSnapshot(groups());
    const countersAfter = await countersSnapshot(ready.urls);
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
    const stage = (from: string, to: string) => summary(measured.flatMap((o) => {
      const orderId = orderIdOf.get(`${contractName[o.marketplace]}:${o.externalOrderId}`);
      const a = orderId && at[from]!.get(orderId);
      const b = orderId && at[to]!.get(orderId);
      return a && b ? [b - a] : [];
    }));
    const timeline = measured.flatMap((o) => {
      const orderId = orderIdOf.get(`${contractName[o.marketplace]}:${o.externalOrderId}`);
      const paid = orderId && paidSeenAt.get(orderId);
      return paid ? [{ sentAt: o.sentAt, marketplace: o.marketplace, ackMs: o.ackMs, endToEndMs: paid - o.sentAt }] : [];
    });
    const perOrder = (key: string) => Number(((countersAfter[key]! - countersBefore[key]!) / orders).toFixed(1));
    const spent = cpuSpent(cpuBefore, cpuAfter);
    const cpuPerOrderMs = Object.fromEntries(Object.entries(spent).map(([g, seconds]) => [g, Number(((seconds / orders) * 1000).toFixed(2))]));
    const rss = Object.fromEntries(SERVICES.map((s) => [s, { steadyMb: memoryMb(ready.pids[s], 'VmRSS'), peakMb: memoryMb(ready.pids[s], 'VmHWM') }]));
    const sustainedSteps = steps.filter((s) => s.sustained);

    result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      mode: RAMP ? { ramp: RAMP, stepSeconds: STEP_SECONDS } : { ratePerSecond: RATE, seconds: SECONDS },
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
      perOrder: { postgresRoundTrips: perOrder('db_round_trips_total'), postgresCommits: perOrder('db_commits_total'), kafkaRequests: perOrder('kafka_requests_total') },
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

  console.log('[bench] services stopped; measuring the ceilings: pgbench single-row commits, Kafka ProducerPerformance…');
  const pgbench = pgbenchCommitsPerSecond();
  const kafkaPerf = await kafkaProducerRecordsPerSecond();
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
  try {
    const out = execFileSync('java', [
      '-cp', join(libs, kafkaDir, 'libs', '*'), 'org.apache.kafka.tools.ProducerPerformance',
      '--topic', topic, '--num-records', '300000', '--record-size', '512', '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${localInfraEnv().KAFKA_BROKERS}`, 'acks=all', 'enable.idempotence=true',
      ...kafkaJavaClientProperties(localInfraEnv()),
    ], { encoding: 'utf8' });
    return Math.round(Number(/([\d.]+) records\/sec/.exec(out.trim().split('\n').pop() ?? '')?.[1] ?? Number.NaN));
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error('[bench] failed:', error);
  process.exit(1);
});
