import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, SERVICES, startNodeProcess, waitForHttp, type ServiceName } from '@postsale/cli';
import { dropSchema, testEnv } from '@postsale/runtime/testing';

/**
 * Every service, as deployed: its compiled entry point (dist/main.js) as its own OS process, with only the variables
 * its config requires. It migrates, connects, serves its probes and metrics, and stops cleanly on SIGTERM.
 */
const UNREACHABLE = 'http://127.0.0.1:9';
const SERVICE_ENV: Record<ServiceName, Record<string, string>> = {
  ingest: { CREDENTIALS_KEY: randomBytes(32).toString('base64') },
  fulfillment: {
    SUPPLIER_MODE: 'sandbox', CREDENTIALS_KEY: randomBytes(32).toString('base64'),
    ALIEXPRESS_GATEWAY_URL: `${UNREACHABLE}/sync`, ALIEXPRESS_WEB_URL: UNREACHABLE, EBAY_API_BASE_URL: UNREACHABLE, MERCADOLIBRE_API_BASE_URL: UNREACHABLE,
  },
  sales: {},
  payouts: { PAYOUTS_MODE: 'dry-run' },
};
/** one metric each service must expose from its own domain, beyond the shared ones */
const OWN_METRIC: Record<ServiceName, string> = {
  ingest: 'ingest_',
  fulfillment: 'fulfillment_review_queue_size',
  sales: 'sales_',
  payouts: 'payouts_reconciliation_lag_seconds',
};

async function startCompiled(service: ServiceName, overrides: Record<string, string> = {}) {
  const port = await freePort();
  const env = testEnv(service, { ...SERVICE_ENV[service], PORT: String(port), ...overrides });
  const logFile = join(mkdtempSync(join(tmpdir(), `postsale-${service}-`)), 'out.log');
  const process = startNodeProcess({ name: service, entry: join('services', service, 'dist', 'main.js'), env, logFile });
  return { env, process, logFile, url: `http://127.0.0.1:${port}` };
}

describe('each service starts as a compiled process', () => {
  it.each(SERVICES)('%s: migrates, connects to Postgres and Kafka, answers /healthz, /readyz and /metrics, and stops cleanly on SIGTERM', async (service) => {
    const started = await startCompiled(service);
    try {
      await waitForHttp(`${started.url}/readyz`, { process: started.process, timeoutMs: 60_000 });
      expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${started.url}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { database: 'ok', kafka: 'ok' } });
      const metrics = await (await fetch(`${started.url}/metrics`)).text();
      expect(metrics).toContain(`service="${service}"`);
      expect(metrics).toContain(OWN_METRIC[service]);
      started.process.kill('SIGTERM');
      expect(await started.process.exited).toBe(0);
    } finally {
      started.process.kill('SIGKILL');
      await dropSchema(started.env.DB_SCHEMA!);
    }
  });

  it('fulfillment refuses to start in live mode with sandbox URLs, saying why', async () => {
    const started = await startCompiled('fulfillment', { SUPPLIER_MODE: 'live' });
    try {
      expect(await started.process.exited).toBe(1);
      expect(readFileSync(started.logFile, 'utf8')).toMatch(/SUPPLIER_MODE=live refuses/);
    } finally {
      await dropSchema(started.env.DB_SCHEMA!);
    }
  });
});
