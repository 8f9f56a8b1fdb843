/**
 * `npm start` (run), `npm run up` / `npm run down`: the whole product on this machine. Brings up the infrastructure,
 * starts the sandbox fakes (in this process) and the four services (separate processes), registers the demo seller,
 * and prints where everything is. Ctrl-C stops everything it started.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import { kafkaSecurityShape, localInfraEnv } from '@postsale/runtime';
import { DEMO } from '@postsale/sandbox';
import { sendDemoOrder, type DemoMarketplace } from './demo-orders';
import { newCredentialsKey, startPipeline, SERVICES, type Pipeline } from './pipeline';
import { REPO_ROOT, startNodeProcess, waitForHttp, type ManagedProcess } from './processes';

const STACK = join(REPO_ROOT, '.local', 'stack');
const LOGS = join(REPO_ROOT, '.local', 'logs');
const PIDFILE = join(STACK, 'stack.pid');
const READY = join(STACK, 'ready');
export const CONTROL_PORT = 4100;
const PORTS = { ingest: 3001, fulfillment: 3002, sales: 3003, payouts: 3004 };
const SANDBOX_PORTS = { ebay: 4101, mercadolibre: 4102, paypal: 4103, aliexpress: 4104 };

interface StackSecrets {
  adminToken: string;
  credentialsKeys: { ingest: string; fulfillment: string };
  /** the operator console's sign-in credentials (read / write) and its cookie-signing secret */
  console?: { operatorToken: string; adminToken: string; sessionSecret: string };
}
const CONSOLE_PORT = 3005;

/** Generated once per checkout and kept: credentials stored encrypted in the database must stay readable. */
function secrets(): Required<StackSecrets> {
  const file = join(STACK, 'secrets.json');
  const token = (prefix: string) => `${prefix}_${newCredentialsKey().replace(/[^A-Za-z0-9]/g, '').slice(0, 32)}`;
  const stored = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StackSecrets) : undefined;
  if (stored?.console) return stored as Required<StackSecrets>;
  // A checkout from before the console keeps its keys (stored credentials must stay readable) and gains the console's.
  const fresh: Required<StackSecrets> = {
    adminToken: stored?.adminToken ?? token('adm'),
    credentialsKeys: stored?.credentialsKeys ?? { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    console: { operatorToken: token('opr'), adminToken: token('cadm'), sessionSecret: newCredentialsKey() },
  };
  writeFileSync(file, JSON.stringify(fresh, null, 2), { mode: 0o600 });
  return fresh;
}

function infra(command: 'up' | 'down' | 'status'): number {
  return spawnSync('bash', [join(REPO_ROOT, 'deploy', 'local', 'infra.sh'), command], { stdio: command === 'status' ? 'ignore' : 'inherit' }).status ?? 1;
}

async function run(): Promise<void> {
  mkdirSync(STACK, { recursive: true });
  const infraWasUp = infra('status') === 0;
  if (!infraWasUp && infra('up') !== 0) throw new Error('infrastructure did not come up');
  const { adminToken, credentialsKeys, console: consoleSecrets } = secrets();
  console.log('[stack] starting the sandbox fakes and the four services (logs in .local/logs/)…');
  const pipeline = await startPipeline({
    namespace: '', schemaSuffix: '', ports: PORTS, sandboxPorts: SANDBOX_PORTS, adminToken, credentialsKeys, logDir: LOGS, fast: true,
  });
  const control = startControlApi(pipeline);
  const consoleProcess = await startConsoleProcess(pipeline, adminToken, consoleSecrets).catch(async (error: unknown) => {
    await pipeline.stop();
    throw error;
  });
  writeFileSync(join(STACK, 'operator.env'), [
    `POSTSALE_ADMIN_TOKEN=${adminToken}`,
    ...SERVICES.map((s) => `${s.toUpperCase()}_URL=${pipeline.urls[s]}`),
    `KAFKA_BROKERS=${localInfraEnv().KAFKA_BROKERS}`,
    `SCHEMA_REGISTRY_URL=${localInfraEnv().SCHEMA_REGISTRY_URL}`,
    // the local broker takes only SASL/SCRAM: the CLI and other tools log in as the services do
    ...Object.keys(kafkaSecurityShape).flatMap((name) => (localInfraEnv()[name] ? [`${name}=${localInfraEnv()[name]}`] : [])),
    `SANDBOX_CONTROL_URL=http://127.0.0.1:${CONTROL_PORT}`,
    '',
  ].join('\n'), { mode: 0o600 });
  writeFileSync(READY, new Date().toISOString());
  printBanner(pipeline, adminToken, consoleSecrets);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n[stack] ${signal}: stopping the services, the fakes${infraWasUp ? '' : ' and the infrastructure'}…`);
    rmSync(READY, { force: true });
    control.close();
    consoleProcess.kill('SIGTERM');
    await consoleProcess.exited;
    await pipeline.stop();
    if (!infraWasUp) infra('down');
    rmSync(PIDFILE, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  for (const [name, managed] of [...pipeline.processes, ['console', consoleProcess] as const]) {
    void managed.exited.then((code) => {
      if (!stopping) console.error(`[stack] ${name} exited (${code}); see .local/logs/${name}.log`);
    });
  }
}

/** A small HTTP API on the stack process so the demo (another process) can make customers buy in the sandbox. */
function startControlApi(pipeline: Pipeline) {
  const app = express();
  app.post('/demo/orders/:marketplace', async (req, res) => {
    const marketplace = req.params.marketplace as DemoMarketplace;
    if (!['ebay', 'mercadolibre', 'paypal'].includes(marketplace)) {
      res.status(400).json({ error: { code: 'UNKNOWN_MARKETPLACE', message: 'ebay, mercadolibre or paypal' } });
      return;
    }
    res.json(await sendDemoOrder(pipeline.world, pipeline.urls.ingest, marketplace));
  });
  app.get('/demo/sandbox-stats', (_req, res) => {
    res.json({
      supplierOrders: pipeline.world.aliexpress.orders().length,
      payoutItems: pipeline.world.paypal.paidItems().length,
    });
  });
  return app.listen(CONTROL_PORT, '127.0.0.1');
}

/** The operator console: its own process, reading the services only through their admin APIs (and Kafka). */
async function startConsoleProcess(pipeline: Pipeline, adminToken: string, secrets: Required<StackSecrets>['console']): Promise<ManagedProcess> {
  const infra = localInfraEnv();
  const managed = startNodeProcess({
    name: 'console',
    entry: join('packages', 'console', 'dist', 'main.js'),
    env: {
      PORT: String(CONSOLE_PORT), HOST: '127.0.0.1', NODE_ENV: 'development', LOG_LEVEL: 'info',
      CONSOLE_OPERATOR_TOKEN: secrets.operatorToken, CONSOLE_ADMIN_TOKEN: secrets.adminToken, CONSOLE_SESSION_SECRET: secrets.sessionSecret,
      CONSOLE_AUDIT_FILE: join(REPO_ROOT, '.local', 'console', 'audit.jsonl'),
      ADMIN_TOKEN: adminToken, INGEST_URL: pipeline.urls.ingest, FULFILLMENT_URL: pipeline.urls.fulfillment, SALES_URL: pipeline.urls.sales, PAYOUTS_URL: pipeline.urls.payouts,
      ...infra, KAFKA_BROKERS: infra.KAFKA_BROKERS!, SCHEMA_REGISTRY_URL: infra.SCHEMA_REGISTRY_URL!, TOPIC_NAMESPACE: pipeline.options.namespace,
    },
    logFile: join(LOGS, 'console.log'),
  });
  await waitForHttp(`http://127.0.0.1:${CONSOLE_PORT}/healthz`, { process: managed, timeoutMs: 30_000 });
  return managed;
}

function printBanner(pipeline: Pipeline, adminToken: string, consoleSecrets: Required<StackSecrets>['console']): void {
  const u = pipeline.urls;
  console.log(`
postsale is running.

  Webhooks (point the marketplaces here)
    eBay           POST ${u.ingest}/webhooks/ebay        (endpoint validation: GET ?challenge_code=…)
    MercadoLibre   POST ${u.ingest}/webhooks/mercadolibre
    PayPal         POST ${u.ingest}/webhooks/paypal
    Storefront     POST ${u.ingest}/checkout/paypal/orders/<paypalOrderId>/capture
    Payout events  POST ${u.payouts}/webhooks/paypal

  Services   ${SERVICES.map((s) => `${s} ${u[s]}`).join('   ')}
  Admin token (Authorization: Bearer …)   ${adminToken}
  Operator console   http://127.0.0.1:${CONSOLE_PORT}   sign in with any name and a credential:
                     operator (read-only) ${consoleSecrets.operatorToken}   admin (write) ${consoleSecrets.adminToken}
  Demo seller   ${DEMO.sellerId}  (sandbox fakes: eBay ${pipeline.world.urls.ebay}, MercadoLibre ${pipeline.world.urls.mercadolibre}, PayPal ${pipeline.world.urls.paypal}, AliExpress ${pipeline.world.urls.aliexpressWeb})

  Send demo orders and watch them travel:   npm run demo
  Operator CLI:                             npm run postsale -- integrity | topics | orders show <orderId> | dlq list
  Metrics:                                  ${u.ingest}/metrics (each service)      Ctrl-C stops everything.
`);
}

/** `npm run up`: the same stack as a background process; returns once it is ready. */
async function up(): Promise<void> {
  mkdirSync(STACK, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  if (existsSync(PIDFILE) && isAlive(Number(readFileSync(PIDFILE, 'utf8')))) {
    console.log('[stack] already running');
    return;
  }
  rmSync(READY, { force: true });
  const out = openSync(join(LOGS, 'stack.log'), 'a');
  const child = spawn(process.execPath, ['--enable-source-maps', __filename, 'run'], {
    cwd: REPO_ROOT, detached: true, stdio: ['ignore', out, out], env: process.env,
  });
  writeFileSync(PIDFILE, String(child.pid));
  child.unref();
  const deadline = Date.now() + 5 * 60_000;
  while (!existsSync(READY)) {
    if (!isAlive(child.pid!)) throw new Error('the stack exited while starting; see .local/logs/stack.log');
    if (Date.now() > deadline) throw new Error('the stack did not become ready in 5 minutes; see .local/logs/stack.log');
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`[stack] running in the background (pid ${child.pid}); details in .local/logs/stack.log; stop with npm run down`);
}

async function down(): Promise<void> {
  if (!existsSync(PIDFILE)) {
    console.log('[stack] not running');
    return;
  }
  const pid = Number(readFileSync(PIDFILE, 'utf8'));
  if (isAlive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(PIDFILE, { force: true });
  console.log('[stack] stopped');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (require.main === module) {
  const command = process.argv[2] ?? 'run';
  const action = { run, up, down }[command as 'run' | 'up' | 'down'];
  if (!action) {
    console.error('usage: stack.ts run|up|down');
    process.exit(2);
  }
  action().catch((error: unknown) => {
    console.error(`[stack] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
