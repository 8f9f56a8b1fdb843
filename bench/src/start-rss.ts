/**
 * `npm run bench:start-rss`: each service's resident memory once it is ready, run from the compiled output (as
 * deployed) and through tsx (the TypeScript loader the services used to run on). Same environment, same machine,
 * one service at a time; prints a table and saves bench/results/start-rss-*.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, newCredentialsKey, REPO_ROOT, SERVICES, startPipeline, waitForHttp, type ServiceName } from '@postsale/cli';
import { deleteNamespaceTopics, dropSchema, uniqueId } from '@postsale/runtime/testing';

const SAMPLE_MS = 3_000;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

/** The largest RSS seen over a few seconds after readiness: start-up settles (migrations, schema registration). */
async function settledRss(pid: number): Promise<number> {
  let peak = 0;
  const until = Date.now() + SAMPLE_MS;
  while (Date.now() < until) {
    peak = Math.max(peak, rssMb(pid));
    await new Promise((r) => setTimeout(r, 100));
  }
  return peak;
}

async function main(): Promise<void> {
  if (spawnSync('bash', [join(REPO_ROOT, 'deploy', 'local', 'infra.sh'), 'up'], { stdio: 'inherit' }).status !== 0) throw new Error('infrastructure did not come up');
  const namespace = uniqueId('rss');
  const schemaSuffix = `_${namespace}`;
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()]))) as Record<ServiceName, number>;
  const pipeline = await startPipeline({
    namespace, schemaSuffix, ports, adminToken: 'rss-admin-token-0123456789',
    credentialsKeys: { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    logDir: join(REPO_ROOT, '.local', 'logs', namespace),
  });
  const rows: Array<{ service: ServiceName; compiledMb: number; tsxMb: number }> = [];
  try {
    for (const service of SERVICES) {
      const compiledMb = await settledRss(pipeline.processes.get(service)!.child.pid!);
      await pipeline.terminate(service);
      const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', join(REPO_ROOT, 'services', service, 'src', 'main.ts')], {
        cwd: REPO_ROOT, env: { ...process.env, ...pipeline.env(service) }, stdio: 'ignore',
      });
      try {
        await waitForHttp(`${pipeline.urls[service]}/readyz`, { timeoutMs: 90_000 });
        rows.push({ service, compiledMb, tsxMb: await settledRss(child.pid!) });
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
  } finally {
    await pipeline.stop();
    for (const service of SERVICES) await dropSchema(`${service}${schemaSuffix}`);
    await deleteNamespaceTopics(namespace).catch((error: Error) => console.error(`could not delete the run's topics: ${error.message}`));
  }
  const result = { date: new Date().toISOString(), node: process.version, sampleMs: SAMPLE_MS, rows };
  console.log(`RSS after start (MB, peak over ${SAMPLE_MS / 1000} s after /readyz), Node ${process.version}`);
  for (const r of rows) console.log(`  ${r.service.padEnd(12)} compiled ${String(r.compiledMb).padStart(4)}   tsx ${String(r.tsxMb).padStart(4)}`);
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench', 'results', `start-rss-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2));
}

main().then(() => process.exit(0), (error) => {
  console.error(error);
  process.exit(1);
});
