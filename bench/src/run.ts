/**
 * `npm run bench [-- --orders N]`: N orders (default 2,000) through the whole pipeline with zero-latency fakes, the
 * four services as separate processes on the real infrastructure. Prints and saves (bench/results/*.json):
 * webhook acknowledgements per second, end-to-end orders per second, webhook→PayoutSent latency percentiles, peak RSS
 * per service, and — measured in the same run on the same machine — Postgres's single-row commit rate (pgbench) and
 * Kafka's own producer throughput (the broker's ProducerPerformance tool) as the ceilings to compare against.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec, Streams, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import { collectTopic, createKafka, createLogger, dropSchema, localInfraEnv, uniqueId } from '@postsale/runtime';
import { freePort, newCredentialsKey, SERVICES, startPipeline, type Pipeline, sendDemoOrder, type DemoMarketplace, REPO_ROOT } from '@postsale/cli';

const args = process.argv.slice(2);
const ORDERS = Number(args[args.indexOf('--orders') + 1] || process.env.BENCH_ORDERS || 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
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
  const kafka = createKafka({ clientId: 'bench', brokers: localInfraEnv().KAFKA_BROKERS!.split(','), logger: createLogger('bench', 'error') });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 1 }], waitForLeaders: true });
  try {
    const out = execFileSync('java', [
      '-cp', join(libs, kafkaDir, 'libs', '*'), 'org.apache.kafka.tools.ProducerPerformance',
      '--topic', topic, '--num-records', '300000', '--record-size', '512', '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${localInfraEnv().KAFKA_BROKERS}`, 'acks=all', 'enable.idempotence=true',
    ], { encoding: 'utf8' });
    return Math.round(Number(/([\d.]+) records\/sec/.exec(out.trim().split('\n').pop() ?? '')?.[1] ?? Number.NaN));
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function main(): Promise<void> {
  if (spawnSync('bash', [join(REPO_ROOT, 'deploy', 'local', 'infra.sh'), 'up'], { stdio: 'inherit' }).status !== 0) throw new Error('infrastructure did not come up');
  const id = uniqueId('');
  const namespace = `bench-${id}`;
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()]))) as Record<(typeof SERVICES)[number], number>;
  console.log(`[bench] ${ORDERS} orders, ${CONCURRENCY} concurrent deliveries, namespace ${namespace}`);
  const pipeline: Pipeline = await startPipeline({
    namespace, schemaSuffix: `_bench_${id}`, ports, adminToken: `bench-admin-${id}-000000`,
    credentialsKeys: { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    logDir: join(REPO_ROOT, '.local', 'logs', namespace), fast: true,
    extraEnv: Object.fromEntries(SERVICES.map((s) => [s, { LOG_LEVEL: 'warn' }])),
  });
  const kafka = createKafka({ clientId: 'bench', brokers: localInfraEnv().KAFKA_BROKERS!.split(','), logger: createLogger('bench', 'error') });
  const codec = EventCodec.connect(localInfraEnv().SCHEMA_REGISTRY_URL!, namespace);
  const orders = await collectTopic<OrderEvent>(kafka, codec, codec.topic(Streams.orders));
  const payouts = await collectTopic<PayoutEvent>(kafka, codec, codec.topic(Streams.payouts));
  const sentAt = new Map<string, number>(); // marketplace:externalOrderId -> when the webhook went out
  const marketplaces: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
  const toContract: Record<DemoMarketplace, string> = { ebay: 'EBAY', mercadolibre: 'MERCADOLIBRE', paypal: 'PAYPAL_STOREFRONT' };

  try {
    const started = Date.now();
    let next = 0;
    let rejected = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ORDERS) {
        const marketplace = marketplaces[next++ % marketplaces.length]!;
        const t = Date.now();
        const sent = await sendDemoOrder(pipeline.world, pipeline.urls.ingest, marketplace);
        if (sent.statuses.some((s) => s >= 300)) rejected++;
        sentAt.set(`${toContract[marketplace]}:${sent.externalOrderId}`, t);
      }
    }));
    const ackSeconds = (Date.now() - started) / 1000;
    console.log(`[bench] all ${ORDERS} webhooks acknowledged in ${ackSeconds.toFixed(1)} s; waiting for payouts…`);

    const paidSeller = new Map<string, number>(); // orderId -> receipt time of the seller's PayoutSent
    const deadline = Date.now() + Math.max(300_000, ORDERS * 300);
    for (;;) {
      for (const m of payouts.messages) {
        if (m.event.type === 'PayoutSent' && m.event.payload.recipient === 'SELLER' && !paidSeller.has(m.event.orderId)) paidSeller.set(m.event.orderId, Date.now());
      }
      if (paidSeller.size >= ORDERS || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const endToEndSeconds = (Date.now() - started) / 1000;
    const latencies: number[] = [];
    for (const m of orders.messages) {
      if (m.event.type !== 'OrderReceived') continue;
      const t0 = sentAt.get(`${m.event.payload.marketplace}:${m.event.payload.externalOrderId}`);
      const t1 = paidSeller.get(m.event.orderId);
      if (t0 !== undefined && t1 !== undefined) latencies.push(t1 - t0);
    }
    latencies.sort((a, b) => a - b);
    const rss = Object.fromEntries(SERVICES.map((s) => [s, peakRssMb(pipeline.processes.get(s)!.child.pid!)]));
    console.log('[bench] measuring the ceilings: pgbench single-row commits, Kafka ProducerPerformance…');
    const pgbench = pgbenchCommitsPerSecond();
    const kafkaPerf = await kafkaProducerRecordsPerSecond();
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      orders: ORDERS,
      concurrency: CONCURRENCY,
      webhookAcksPerSecond: Math.round(ORDERS / ackSeconds),
      webhookRejected: rejected,
      ordersPaidOut: paidSeller.size,
      endToEndOrdersPerSecond: Number((paidSeller.size / endToEndSeconds).toFixed(1)),
      latencyWebhookToPayoutSentMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
      peakRssMb: rss,
      ceilings: { postgresSingleRowCommitsPerSecond: pgbench, kafkaProducerRecordsPerSecond512B: kafkaPerf },
    };
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    const file = join(REPO_ROOT, 'bench', 'results', `${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    console.log(`[bench] saved ${file}`);
    if (paidSeller.size < ORDERS) process.exitCode = 1;
  } finally {
    await orders.stop();
    await payouts.stop();
    await pipeline.stop();
    for (const s of SERVICES) await dropSchema(`${s}_bench_${id}`);
    if (existsSync(join(REPO_ROOT, '.local', 'bench-insert.sql'))) { /* kept for inspection */ }
  }
}

main().catch((error: unknown) => {
  console.error('[bench] failed:', error);
  process.exit(1);
});
