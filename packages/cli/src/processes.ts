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
 * Starts a compiled entry point (`npm run build` output) as its own OS process on this Node, output to a log file or
 * inherited.
 * `detached` processes outlive this one (for `npm run up`).
 */
/**
 * How every service process runs, here as in the image (deploy/docker/Dockerfile's CMD says the same). Node 24 sizes the
 * young generation by the machine's memory: on 24 GiB its semi-spaces grew to 64 MB under load and the new space
 * alone held 67-134 MB of each service's 180-400 MB (bench, /metrics nodejs_heap_space_size_total_bytes). 16 MB is what
 * Node 20 used; a scavenge of it still takes well under a millisecond. --optimize-for-size: what survives two scavenges
 * (in-flight requests, fetched batches) was promoted and old space grew to 110+ MB of garbage before a full collection
 * (fulfillment, live set ~35 MB); V8's memory-saving heuristics collect it sooner: RSS at 10 orders/s went from
 * 156/219/138/156 MB to 124/128/100/108 (ingest/fulfillment/sales/payouts) with no measurable CPU cost per order.
 */
export const SERVICE_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=16', '--optimize-for-size'];

export function startNodeProcess(options: {
  name: string;
  entry: string; // compiled .js path relative to the repo root
  env: Record<string, string>;
  logFile?: string;
  detached?: boolean;
  /** added to SERVICE_NODE_FLAGS (the benchmark's --cpu-profile: --cpu-prof and its directory) */
  extraNodeFlags?: string[];
}): ManagedProcess {
  const flags = [...SERVICE_NODE_FLAGS, ...(options.extraNodeFlags ?? [])];
  let stdio: Array<'inherit' | 'ignore' | number> = ['ignore', 'inherit', 'inherit'];
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    const out = createWriteStream(options.logFile, { flags: 'a' });
    stdio = ['ignore', 'pipe' as never, 'pipe' as never];
    const child = spawn(process.execPath, [...flags, join(REPO_ROOT, options.entry)], {
      cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: stdio as never, detached: options.detached ?? false,
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    return manage(options.name, child);
  }
  const child = spawn(process.execPath, [...flags, join(REPO_ROOT, options.entry)], {
    cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: stdio as never, detached: options.detached ?? false,
  });
  return manage(options.name, child);
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
