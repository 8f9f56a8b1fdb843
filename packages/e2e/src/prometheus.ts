import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@postsale/cli';
import { requireSystemProgram } from '@postsale/runtime/testing';

/** Debian's real Prometheus, scraping the given targets every second with the project's alert rules loaded. */
export async function startPrometheus(targets: string[], port: number): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'postsale-prometheus-'));
  copyFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yml'), join(dir, 'alerts.yml'));
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'rule_files: [alerts.yml]',
    'scrape_configs:',
    '  - job_name: postsale',
    `    static_configs: [{ targets: [${targets.map((t) => `'${t}'`).join(', ')}] }]`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn(requireSystemProgram('prometheus', 'prometheus'), [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
