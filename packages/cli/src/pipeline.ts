import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, localInfraEnv } from '@postsale/runtime';
import { DEMO, startSandboxWorld, type SandboxWorld } from '@postsale/sandbox';
import { REPO_ROOT, startNodeProcess, waitForHttp, type ManagedProcess } from './processes';
import { registerDemoSeller } from './demo-seller';

/** a listening port for a service or a test's helper (below the ephemeral range: see there) */
export { freePort };

export const SERVICES = ['ingest', 'fulfillment', 'sales', 'payouts'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface PipelineOptions {
  /** topic namespace; '' for a real run */
  namespace: string;
  /** suffix for each service's DB schema ('' → ingest, fulfillment, …) */
  schemaSuffix: string;
  ports: Record<ServiceName, number>;
  sandboxPorts?: { ebay?: number; mercadolibre?: number; paypal?: number; aliexpress?: number };
  adminToken: string;
  credentialsKeys: { ingest: string; fulfillment: string };
  /** where service logs go; inherited stdio when absent */
  logDir?: string;
  detached?: boolean;
  /** extra env per service (e.g. faster pollers in tests) */
  extraEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** fast pollers and short intervals for demos, tests and the benchmark */
  fast?: boolean;
  /** node flags for every service process besides the usual ones (the benchmark's CPU profiles) */
  extraNodeFlags?: (service: ServiceName, replica: number) => string[];
  /**
   * OS processes per service (1 by default): a number for every service, or per service. Replica 0 listens on
   * `ports[service]`; the others get free ports. All replicas of a service share its DB schema, topics and groups.
   */
  replicas?: number | Partial<Record<ServiceName, number>>;
}

export interface Pipeline {
  world: SandboxWorld;
  /** replica 0 of each service */
  urls: Record<ServiceName, string>;
  /** every replica's URL, index = replica number */
  replicaUrls: Record<ServiceName, string[]>;
  /** the running replica 0 of each service */
  processes: Map<ServiceName, ManagedProcess>;
  options: PipelineOptions;
  /** how many replicas of the service this pipeline runs */
  replicaCount(service: ServiceName): number;
  /** the running process of one replica, undefined while it is down */
  replica(service: ServiceName, index: number): ManagedProcess | undefined;
  env(service: ServiceName, replica?: number): Record<string, string>;
  /** starts one replica, or (no index) every replica of the service that is not running */
  start(service: ServiceName, replica?: number): Promise<void>;
  /** SIGKILL, no goodbye: the crash in crash tests. One replica, or (no index) every running replica of the service */
  kill(service: ServiceName, replica?: number): Promise<void>;
  /** SIGTERM: the graceful stop an operator does. One replica, or (no index) all of them */
  terminate(service: ServiceName, replica?: number): Promise<void>;
  /** kill -9 then start: one replica, or (no index) every replica */
  restart(service: ServiceName, replica?: number): Promise<void>;
  stop(): Promise<void>;
}

export function newCredentialsKey(): string {
  return randomBytes(32).toString('base64');
}

/** Starts the sandbox fakes in this process and the four services as separate OS processes, then registers the demo seller. */
export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const urls = Object.fromEntries(SERVICES.map((s) => [s, `http://127.0.0.1:${options.ports[s]}`])) as Record<ServiceName, string>;
  const world = await startSandboxWorld({
    ports: options.sandboxPorts,
    payoutWebhookUrl: `${urls.payouts}/webhooks/paypal`,
  });
  const processes = new Map<ServiceName, ManagedProcess>();
  const running = new Map<string, ManagedProcess>(); // `${service}#${replica}`
  const key = (service: ServiceName, replica: number) => `${service}#${replica}`;
  const replicaCount = (service: ServiceName): number => {
    const n = typeof options.replicas === 'number' ? options.replicas : (options.replicas?.[service] ?? 1);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`replicas of ${service} must be a positive integer, got ${n}`);
    return n;
  };
  const replicaPorts = Object.fromEntries(
    await Promise.all(SERVICES.map(async (s) => [s, [options.ports[s], ...(await Promise.all(Array.from({ length: replicaCount(s) - 1 }, () => freePort())))]])),
  ) as Record<ServiceName, number[]>;
  const replicaUrls = Object.fromEntries(SERVICES.map((s) => [s, replicaPorts[s].map((p) => `http://127.0.0.1:${p}`)])) as Record<ServiceName, string[]>;
  const infra = localInfraEnv();
  const fast = options.fast ?? true;

  const env = (service: ServiceName, replica = 0): Record<string, string> => {
    const common = {
      ...infra,
      PORT: String(replicaPorts[service][replica] ?? options.ports[service]),
      DB_SCHEMA: `${service}${options.schemaSuffix}`,
      TOPIC_NAMESPACE: options.namespace,
      ADMIN_TOKEN: options.adminToken,
      LOG_LEVEL: process.env.PIPELINE_LOG_LEVEL ?? 'info',
      NODE_ENV: 'development',
    };
    const specific: Record<ServiceName, Record<string, string>> = {
      ingest: {
        CREDENTIALS_KEY: options.credentialsKeys.ingest,
        EBAY_API_BASE_URL: world.urls.ebay,
        EBAY_CLIENT_ID: 'demo-ebay-app', EBAY_CLIENT_SECRET: 'demo-ebay-secret',
        EBAY_VERIFICATION_TOKEN: 'demo-ebay-verification-token-0123456789',
        EBAY_ENDPOINT_URL: `${urls.ingest}/webhooks/ebay`,
        MERCADOLIBRE_API_BASE_URL: world.urls.mercadolibre,
        PAYPAL_BASE_URL: world.urls.paypal,
        PAYPAL_CLIENT_ID: world.paypal.clientId, PAYPAL_CLIENT_SECRET: world.paypal.clientSecret,
        PAYPAL_WEBHOOK_ID: DEMO.paypal.webhookId,
        PAYPAL_WEBHOOK_VERIFICATION: 'offline',
        PAYPAL_CERT_HOSTS: '127.0.0.1',
        RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000',
        ...(fast ? { DELIVERY_POLL_INTERVAL_MS: '200' } : {}),
      },
      fulfillment: {
        SUPPLIER_MODE: 'sandbox',
        CREDENTIALS_KEY: options.credentialsKeys.fulfillment,
        ALIEXPRESS_GATEWAY_URL: world.urls.aliexpressGateway,
        ALIEXPRESS_WEB_URL: world.urls.aliexpressWeb,
        EBAY_API_BASE_URL: world.urls.ebay,
        MERCADOLIBRE_API_BASE_URL: world.urls.mercadolibre,
        DEFAULT_SUPPLIER_RATE_PER_SECOND: '100000', DEFAULT_SUPPLIER_DAILY_QUOTA: '10000000',
        ...(fast ? { WORKER_INTERVAL_MS: '200', STATUS_POLL_MIN_MS: '200', TRACKING_POLL_MIN_MS: '200', PURCHASE_RETRY_BASE_MS: '200', PUSH_RETRY_BASE_MS: '200', JOB_LEASE_MS: '15000' } : {}),
      },
      sales: {},
      payouts: {
        PAYOUTS_MODE: 'sandbox',
        PLATFORM_PAYEE_EMAIL: DEMO.platformPayeeEmail,
        PAYPAL_BASE_URL: world.urls.paypal, PAYPAL_WEB_URL: world.urls.paypal,
        PAYPAL_CLIENT_ID: world.paypal.clientId, PAYPAL_CLIENT_SECRET: world.paypal.clientSecret,
        PAYPAL_WEBHOOK_ID: DEMO.paypal.webhookId,
        PAYPAL_CERT_HOSTS: '127.0.0.1',
        ...(fast ? { PAYOUTS_BATCH_INTERVAL_MS: '500', PAYOUTS_RECONCILE_INTERVAL_MS: '500' } : {}),
      },
    };
    return { ...common, ...specific[service], ...(options.extraEnv?.[service] ?? {}) };
  };

  const startOne = async (service: ServiceName, replica: number) => {
    if (replica < 0 || replica >= replicaCount(service)) throw new RangeError(`${service} has no replica ${replica}`);
    if (running.has(key(service, replica))) return;
    const managed = startNodeProcess({
      name: replica === 0 ? service : `${service}-${replica}`,
      entry: join('services', service, 'dist', 'main.js'),
      env: env(service, replica),
      logFile: options.logDir ? join(options.logDir, replica === 0 ? `${service}.log` : `${service}-${replica}.log`) : undefined,
      detached: options.detached,
      extraNodeFlags: options.extraNodeFlags?.(service, replica),
    });
    running.set(key(service, replica), managed);
    if (replica === 0) processes.set(service, managed);
    await waitForHttp(`${replicaUrls[service][replica]}/readyz`, { process: managed, timeoutMs: 90_000 });
  };
  const indexes = (service: ServiceName, replica?: number) => (replica === undefined ? Array.from({ length: replicaCount(service) }, (_, i) => i) : [replica]);

  const start = async (service: ServiceName, replica?: number) => {
    for (const i of indexes(service, replica)) await startOne(service, i);
  };

  const kill = async (service: ServiceName, replica: number | undefined, signal: NodeJS.Signals) => {
    await Promise.all(indexes(service, replica).map(async (i) => {
      const managed = running.get(key(service, i));
      if (!managed) return;
      managed.kill(signal);
      await managed.exited;
      running.delete(key(service, i));
      if (i === 0) processes.delete(service);
    }));
  };

  const pipeline: Pipeline = {
    world,
    urls,
    replicaUrls,
    processes,
    options,
    replicaCount,
    replica: (service, index) => running.get(key(service, index)),
    env,
    start,
    kill: (service, replica) => kill(service, replica, 'SIGKILL'),
    terminate: (service, replica) => kill(service, replica, 'SIGTERM'),
    async restart(service, replica) {
      await kill(service, replica, 'SIGKILL');
      await start(service, replica);
    },
    async stop() {
      for (const managed of running.values()) managed.kill('SIGTERM');
      await Promise.all([...running.values()].map((m) => m.exited));
      running.clear();
      processes.clear();
      await world.stop();
    },
  };

  try {
    // Sequential starts: every service migrates and registers schemas; on two cores, one at a time is faster overall.
    for (const service of SERVICES) await start(service);
    await registerDemoSeller(urls, options.adminToken, world);
  } catch (error) {
    await pipeline.stop().catch(() => undefined);
    throw error;
  }
  return pipeline;
}

export const LOCAL_DIR = join(REPO_ROOT, '.local');
