import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { localInfraEnv } from '@postsale/runtime';
import { DEMO, startSandboxWorld, type SandboxWorld } from '@postsale/sandbox';
import { REPO_ROOT, startNodeProcess, waitForHttp, type ManagedProcess } from './processes';
import { registerDemoSeller } from './demo-seller';

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
}

export interface Pipeline {
  world: SandboxWorld;
  urls: Record<ServiceName, string>;
  processes: Map<ServiceName, ManagedProcess>;
  options: PipelineOptions;
  env(service: ServiceName): Record<string, string>;
  start(service: ServiceName): Promise<void>;
  /** SIGKILL, no goodbye: the crash in crash tests */
  kill(service: ServiceName): Promise<void>;
  /** SIGTERM: the graceful stop an operator does */
  terminate(service: ServiceName): Promise<void>;
  restart(service: ServiceName): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
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
  const infra = localInfraEnv();
  const fast = options.fast ?? true;

  const env = (service: ServiceName): Record<string, string> => {
    const common = {
      ...infra,
      PORT: String(options.ports[service]),
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
        ...(fast ? { WORKER_INTERVAL_MS: '200', STATUS_POLL_MIN_MS: '200', PURCHASE_RETRY_BASE_MS: '200', PUSH_RETRY_BASE_MS: '200', JOB_LEASE_MS: '15000' } : {}),
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

  const start = async (service: ServiceName) => {
    const managed = startNodeProcess({
      name: service,
      entry: join('services', service, 'dist', 'main.js'),
      env: env(service),
      logFile: options.logDir ? join(options.logDir, `${service}.log`) : undefined,
      detached: options.detached,
    });
    processes.set(service, managed);
    await waitForHttp(`${urls[service]}/readyz`, { process: managed, timeoutMs: 90_000 });
  };

  const kill = async (service: ServiceName, signal: NodeJS.Signals = 'SIGKILL') => {
    const managed = processes.get(service);
    if (!managed) return;
    managed.kill(signal);
    await managed.exited;
    processes.delete(service);
  };

  const pipeline: Pipeline = {
    world,
    urls,
    processes,
    options,
    env,
    start,
    kill: (service) => kill(service, 'SIGKILL'),
    terminate: (service) => kill(service, 'SIGTERM'),
    async restart(service) {
      await kill(service, 'SIGKILL');
      await start(service);
    },
    async stop() {
      for (const managed of processes.values()) managed.kill('SIGTERM');
      await Promise.all([...processes.values()].map((m) => m.exited));
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
