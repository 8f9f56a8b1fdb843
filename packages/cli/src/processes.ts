import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..', '..');

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** resolves with the exit code (or signal name) when the process ends */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * How every service process runs, here as in the image (deploy/docker/Dockerfile's CMD and ENV say the same).
 * - --max-semi-space-size=4: Node 24 sizes the young generation by the machine's memory (64 MB semi-spaces on 24 GiB:
 *   67-134 MB of new space per service). 4 MB keeps scavenges cheap and the heap small.
 * - NOT --optimize-for-size: it silently caps the semi-space at 1 MB whatever --max-semi-space-size says (V8's flag
 *   implication; measured: a 2 MB new space), so a scavenge ran for every megabyte allocated and requests in flight
 *   were promoted to old space. Removing it cut the services' CPU per order by 18 % at 15 orders/s (71 -> 57 ms,
 *   three back-to-back pairs) and ingest's CPU per acknowledged webhook by about a quarter.
 * - --heap-growing-percent=25: old space may grow 25 % past the live set before a full collection (V8 picks up to
 *   several times it on a big machine), which is what kept RSS low once the young generation is sized sensibly.
 * - MALLOC_ARENA_MAX=2 (SERVICE_PROCESS_ENV): glibc gives each of Node's threads its own malloc arena; two are plenty
 *   for one JavaScript thread and saved ~10 MB of RSS per service. Steady RSS at 15 orders/s: 129-143 MB.
 */
export const SERVICE_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=4', '--heap-growing-percent=25'];
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Starts a compiled entry point (`npm run build` output) as its own OS process on this Node, output to a log file or
 * inherited.
 * `detached` processes outlive this one (for `npm run up`).
 */
export function startNodeProcess(options: {
  name: string;
  entry: string; // compiled .js path relative to the repo root
  env: Record<string, string>;
  logFile?: string;
  detached?: boolean;
  /** added to SERVICE_NODE_FLAGS (the benchmark's BENCH_NODE_FLAGS and --cpu-profile) */
  extraNodeFlags?: string[];
}): ManagedProcess {
  const args = [...SERVICE_NODE_FLAGS, ...(options.extraNodeFlags ?? []), join(REPO_ROOT, options.entry)];
  const spawnOptions = { cwd: REPO_ROOT, env: { ...process.env, ...SERVICE_PROCESS_ENV, ...options.env }, detached: options.detached ?? false };
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    const out = createWriteStream(options.logFile, { flags: 'a' });
    const child = spawn(process.execPath, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    return manage(options.name, child);
  }
  return manage(options.name, spawn(process.execPath, args, { ...spawnOptions, stdio: ['ignore', 'inherit', 'inherit'] }));
}

function manage(name: string, child: ChildProcess): ManagedProcess {
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    name,
    child,
    exited,
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Polls a URL until it answers 200, or fails when the deadline passes or the process died. */
export async function waitForHttp(url: string, options: { timeoutMs?: number; process?: ManagedProcess } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let died: number | string | undefined;
  void options.process?.exited.then((code) => {
    died = code;
  });
  for (;;) {
    if (died !== undefined) throw new Error(`${options.process?.name} exited (${died}) before ${url} answered`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
