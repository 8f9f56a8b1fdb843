/**
 * The benchmark's load process (forked by run.ts): it hosts the sandbox fakes, starts the four services as their own
 * processes, and offers orders to ingest at a fixed rate. Open loop: each order goes out at its scheduled time whether
 * or not earlier ones were answered, so a slow system shows up as latency, not as a slower offer. Keeping the fakes and
 * the generator here leaves the measuring process (run.ts) and the services' event loops to themselves.
 */
import { join } from 'node:path';
import { freePort, newCredentialsKey, prepareDemoOrder, REPO_ROOT, SERVICES, startPipeline, type DemoMarketplace, type Pipeline, type ServiceName } from '@postsale/cli';

export interface LoadStart { type: 'start'; namespace: string; schemaSuffix: string; adminToken: string; statements: boolean }
export interface LoadOffer { type: 'offer'; phase: string; ratePerSecond: number; seconds: number }
export type LoadCommand = LoadStart | LoadOffer | { type: 'stop' };

export interface OfferedOrder { marketplace: DemoMarketplace; externalOrderId: string; sentAt: number; ackMs: number; ok: boolean }
export type LoadReply =
  | { type: 'ready'; urls: Record<ServiceName, string>; pids: Record<ServiceName, number> }
  | { type: 'offered'; phase: string; orders: OfferedOrder[]; lateMs: number }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const MARKETPLACES: DemoMarketplace[] = ['ebay', 'mercadolibre', 'paypal'];
const TICK_MS = 5;

let pipeline: Pipeline | undefined;
let sequence = 0;

const reply = (message: LoadReply) => process.send!(message);

async function start(command: LoadStart): Promise<void> {
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()]))) as Record<ServiceName, number>;
  pipeline = await startPipeline({
    namespace: command.namespace, schemaSuffix: command.schemaSuffix, ports, adminToken: command.adminToken,
    credentialsKeys: { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    logDir: join(REPO_ROOT, '.local', 'logs', command.namespace), fast: true,
    // fast (demo) intervals keep payment checks and payout batches quick; tracking polls keep production's interval, as
    // a real supplier ships in days and the benchmark must not count polls of orders that cannot have moved
    extraEnv: Object.fromEntries(SERVICES.map((s) => [s, { LOG_LEVEL: 'warn', ...(command.statements && { DB_STATEMENT_PROFILE: '1' }), ...(s === 'fulfillment' ? { TRACKING_POLL_MIN_MS: String(30 * 60_000) } : {}) }])),
  });
  const pids = Object.fromEntries(SERVICES.map((s) => [s, pipeline!.processes.get(s)!.child.pid!])) as Record<ServiceName, number>;
  reply({ type: 'ready', urls: pipeline.urls, pids });
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
    else {
      await pipeline?.stop();
      reply({ type: 'stopped' });
      process.exit(0);
    }
  };
  run().catch((error: unknown) => reply({ type: 'failed', message: error instanceof Error ? error.stack ?? error.message : String(error) }));
});
