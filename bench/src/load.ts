/**
 * The benchmark's load process (forked by run.ts): it hosts the sandbox fakes, starts the four services as their own
 * processes, and offers orders to ingest at a fixed rate. Open loop: each order goes out at its scheduled time whether
 * or not earlier ones were answered, so a slow system shows up as latency, not as a slower offer. Keeping the fakes and
 * the generator here leaves the measuring process (run.ts) and the services' event loops to themselves. The ack mode's
 * generator (ack-generator.ts) is a process of its own, forked from here: ingest's delivery worker keeps the fakes busy.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { demoOrderRequests, freePort, newCredentialsKey, prepareDemoOrder, REPO_ROOT, SERVICES, startPipeline, type DemoMarketplace, type Pipeline, type ServiceName } from '@postsale/cli';
import type { AckRequest, AckResults, GeneratorCommand, GeneratorReply } from './ack-generator';

/**
 * `acks`: the ack mode. `pipeline: 'full'` keeps the four services running (each offered webhook is a real order the
 * rest of the pipeline works on, as in production); 'ingest' stops the other three once the demo seller is registered.
 */
export interface LoadStart { type: 'start'; namespace: string; schemaSuffix: string; adminToken: string; statements: boolean; acks?: { pipeline: 'full' | 'ingest' | 'acks'; ingestReplicas?: number }; cpuProfileDir?: string; nodeFlags: string[] }
export interface LoadOffer { type: 'offer'; phase: string; ratePerSecond: number; seconds: number }
/** ack mode: seed `ratePerSecond × seconds` webhooks' orders in the fakes and hand the requests to the generator */
export interface LoadPrepareAcks { type: 'prepare-acks'; ratePerSecond: number; seconds: number; marketplaces: DemoMarketplace[] }
/** ack mode: the generator offers what was prepared, open loop */
export interface LoadOfferAcks { type: 'offer-acks'; ratePerSecond: number }
export type LoadCommand = LoadStart | LoadOffer | LoadPrepareAcks | LoadOfferAcks | { type: 'stop' };

export interface OfferedOrder { marketplace: DemoMarketplace; externalOrderId: string; sentAt: number; ackMs: number; ok: boolean }
export type LoadReply =
  | { type: 'ready'; urls: Record<ServiceName, string>; pids: Record<ServiceName, number>; generatorPid?: number; ingestReplicaPids?: number[]; ingestReplicaUrls?: string[] }
  | { type: 'offered'; phase: string; orders: OfferedOrder[]; lateMs: number }
  | { type: 'acks-prepared'; webhooks: number; prepareMs: number }
  | { type: 'acks-offered'; results: AckResults }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const MARKETPLACES: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
const TICK_MS = 5;

let pipeline: Pipeline | undefined;
let sequence = 0;
let generator: ChildProcess | undefined;

const reply = (message: LoadReply) => process.send!(message);

async function start(command: LoadStart): Promise<void> {
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()]))) as Record<ServiceName, number>;
  pipeline = await startPipeline({
    namespace: command.namespace, schemaSuffix: command.schemaSuffix, ports, adminToken: command.adminToken,
    credentialsKeys: { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    logDir: join(REPO_ROOT, '.local', 'logs', command.namespace), fast: true,
    // --ack-replicas N (with --ack-pipeline acks): N webhook-only ingest processes, the generator spreading requests
    ...(command.acks?.ingestReplicas && { replicas: { ingest: command.acks.ingestReplicas } }),
    // BENCH_NODE_FLAGS (nodeFlags) on every service; --cpu-profile: each writes a V8 CPU profile when it stops
    extraNodeFlags: (s: ServiceName) => [
      ...command.nodeFlags,
      ...(command.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(command.cpuProfileDir, s)}`] : []),
    ],
    // fast (demo) intervals keep payment checks and payout batches quick; tracking polls keep production's interval, as
    // a real supplier ships in days and the benchmark must not count polls of orders that cannot have moved
    extraEnv: Object.fromEntries(SERVICES.map((s) => [s, {
      LOG_LEVEL: 'warn', ...(command.statements && { DB_STATEMENT_PROFILE: '1' }), ...(s === 'fulfillment' ? { TRACKING_POLL_MIN_MS: String(30 * 60_000) } : {}),
      // ack mode: every webhook comes from 127.0.0.1, where production's marketplaces send from many addresses; the
      // per-address limiter still runs on every request, it only never refuses
      ...(s === 'ingest' && command.acks ? { RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' } : {}),
      // --ack-pipeline acks: a webhook-only replica (its deliveries wait for a replica that runs the worker)
      ...(s === 'ingest' && command.acks?.pipeline === 'acks' ? { BACKGROUND_WORKERS: 'false' } : {}),
    }])),
  });
  const pids = Object.fromEntries(SERVICES.map((s) => [s, pipeline!.processes.get(s)!.child.pid!])) as Record<ServiceName, number>;
  if (command.acks && command.acks.pipeline !== 'full') for (const s of SERVICES) if (s !== 'ingest') await pipeline.terminate(s);
  if (command.acks) generator = fork(join(__dirname, 'ack-generator.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--enable-source-maps'] });
  const ingestReplicaPids = Array.from({ length: pipeline.replicaCount('ingest') }, (_, i) => pipeline!.replica('ingest', i)!.child.pid!);
  reply({ type: 'ready', urls: pipeline.urls, pids, ingestReplicaPids, ingestReplicaUrls: pipeline.replicaUrls.ingest, ...(generator && { generatorPid: generator.pid! }) });
}

function askGenerator<T extends GeneratorReply>(command: GeneratorCommand): Promise<T> {
  return new Promise((resolve) => {
    generator!.once('message', (answer: GeneratorReply) => resolve(answer as T));
    generator!.send(command);
  });
}

/**
 * Seeds one order in the fakes per webhook (eBay, MercadoLibre and storefront in turn), so every webhook is a real
 * order the pipeline can work, and hands the wire form to the generator before the step starts: signing and seeding
 * cost the load process, not the offer. The storefront's capture calls are signed now, well within ingest's window.
 */
async function prepareAcks(command: LoadPrepareAcks): Promise<void> {
  const started = Date.now();
  const total = Math.round(command.ratePerSecond * command.seconds);
  const requests: AckRequest[] = [];
  while (requests.length < total) {
    const marketplace = command.marketplaces[sequence++ % command.marketplaces.length]!;
    for (const r of demoOrderRequests(pipeline!.world, marketplace).requests()) requests.push({ marketplace, ...r });
  }
  requests.length = total;
  await askGenerator({ type: 'prepare', urls: pipeline!.replicaUrls.ingest, requests });
  reply({ type: 'acks-prepared', webhooks: total, prepareMs: Date.now() - started });
}

/** Sends `rate × seconds` orders, each at t0 + i/rate; records when it went out and how long ingest took to answer. */
async function offer(command: LoadOffer): Promise<void> {
  const world = pipeline!;
  const total = Math.round(command.ratePerSecond * command.seconds);
  const orders: OfferedOrder[] = [];
  const inFlight: Array<Promise<void>> = [];
  const t0 = Date.now();
  let next = 0;
  let lateMs = 0; // how far behind schedule the generator itself fell (it must stay near 0 for the offer to be honest)
  while (next < total) {
    const now = Date.now();
    while (next < total && t0 + (next * 1000) / command.ratePerSecond <= now) {
      const scheduled = t0 + (next * 1000) / command.ratePerSecond;
      lateMs = Math.max(lateMs, now - scheduled);
      const prepared = prepareDemoOrder(world.world, MARKETPLACES[sequence++ % MARKETPLACES.length]!);
      const sentAt = Date.now();
      inFlight.push(prepared.deliver(world.urls.ingest).then(
        (statuses) => { orders.push({ marketplace: prepared.marketplace, externalOrderId: prepared.externalOrderId, sentAt, ackMs: Date.now() - sentAt, ok: statuses.every((s) => s < 300) }); },
        () => { orders.push({ marketplace: prepared.marketplace, externalOrderId: prepared.externalOrderId, sentAt, ackMs: Date.now() - sentAt, ok: false }); },
      ));
      next++;
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  await Promise.all(inFlight);
  reply({ type: 'offered', phase: command.phase, orders, lateMs });
}

process.on('message', (command: LoadCommand) => {
  const run = async () => {
    if (command.type === 'start') await start(command);
    else if (command.type === 'offer') await offer(command);
    else if (command.type === 'prepare-acks') await prepareAcks(command);
    else if (command.type === 'offer-acks') reply({ type: 'acks-offered', results: (await askGenerator<Extract<GeneratorReply, { type: 'offered' }>>({ type: 'offer', ratePerSecond: command.ratePerSecond })).results });
    else {
      generator?.kill();
      await pipeline?.stop();
      reply({ type: 'stopped' });
      process.exit(0);
    }
  };
  run().catch((error: unknown) => reply({ type: 'failed', message: error instanceof Error ? error.stack ?? error.message : String(error) }));
});
