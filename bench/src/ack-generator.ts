/**
 * The ack mode's request generator (forked by load.ts): it only sends prepared webhooks to ingest at a fixed rate and
 * times the answers. A process of its own, so neither the fakes (which ingest's delivery worker keeps busy) nor the
 * preparation (seeding orders, signing) delay its schedule, and its CPU is counted apart in the results.
 *
 * Open loop: request i goes out at t0 + i/rate whatever happened to the earlier ones. Its ack latency is measured from
 * that scheduled time, so a generator that falls behind makes latency look worse, never better (no coordinated
 * omission); how late it sent each request is reported too, so a step the generator could not offer is recognisable.
 */
import { Agent, request } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { DemoMarketplace } from '@postsale/cli';

export interface AckRequest { marketplace: DemoMarketplace; path: string; headers: Record<string, string>; body: string }
export type GeneratorCommand =
  /** `urls`: the ingest replicas, each request to the next in turn (a round-robin load balancer's spread) */
  | { type: 'prepare'; urls: string[]; requests: AckRequest[] }
  | { type: 'offer'; ratePerSecond: number };
/** Per request, in the order offered (columns, to keep the message small). status 0: no answer (connection failure, timeout). */
export interface AckResults { marketplace: DemoMarketplace[]; lateMs: number[]; ackMs: number[]; status: number[]; offerMs: number; generatorCpuMs: number; nice: number }
export type GeneratorReply = { type: 'prepared' } | { type: 'offered'; results: AckResults };

// Enough connections for rate × latency at every step (2,400/s × 25 ms is 60): requests wait in the agent only when
// ingest holds this many answers back, and that wait counts in their latency (measured from the schedule).
const MAX_SOCKETS = 1000;
const TIMEOUT_MS = 10_000;

const agent = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });

// The generator stands for the marketplaces, which do not share ingest's cores: where allowed (root, CAP_SYS_NICE) it
// runs ahead of the pipeline's processes, so the scheduler does not make it send late. It uses little CPU; its
// lateness is reported either way.
try {
  setPriority(-10);
} catch {
  // not allowed: it runs at the normal priority, and a late offer shows in its lateness
}
const nice = getPriority();
let targets: URL[] = [];
let prepared: Array<{ marketplace: DemoMarketplace; path: string; headers: Record<string, string | number>; body: Buffer }> = [];

function offer(ratePerSecond: number): Promise<AckResults> {
  const n = prepared.length;
  const results: AckResults = { marketplace: prepared.map((r) => r.marketplace), lateMs: new Array(n).fill(0), ackMs: new Array(n).fill(0), status: new Array(n).fill(-1), offerMs: 0, generatorCpuMs: 0, nice };
  const interval = 1000 / ratePerSecond;
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now() + 20;
  let next = 0;
  let open = n;
  return new Promise((resolve) => {
    const done = (i: number, status: number) => {
      if (results.status[i] !== -1) return; // an error after the answer was complete
      results.status[i] = status;
      results.ackMs[i] = Number((performance.now() - (t0 + i * interval)).toFixed(3));
      if (--open === 0) {
        results.offerMs = performance.now() - t0;
        const cpu = process.cpuUsage(cpuBefore);
        results.generatorCpuMs = (cpu.user + cpu.system) / 1000;
        resolve(results);
      }
    };
    const send = (i: number, now: number) => {
      const r = prepared[i]!;
      results.lateMs[i] = Number((now - (t0 + i * interval)).toFixed(3));
      // every replica gets every marketplace: requests alternate marketplaces, so a plain i % n would give each replica one
      const target = targets[(i + Math.floor(i / targets.length)) % targets.length]!;
      const req = request({ agent, host: target.hostname, port: target.port, method: 'POST', path: r.path, headers: r.headers, timeout: TIMEOUT_MS }, (res) => {
        res.on('error', () => done(i, 0));
        res.on('end', () => done(i, res.statusCode ?? 0));
        res.resume();
      });
      req.on('timeout', () => req.destroy(new Error('no answer in time')));
      req.on('error', () => done(i, 0));
      req.end(r.body);
    };
    const pump = () => {
      const now = performance.now();
      while (next < n && t0 + next * interval <= now) send(next++, now);
      if (next < n) setTimeout(pump, Math.max(0, t0 + next * interval - performance.now()));
    };
    if (n === 0) resolve(results);
    else setTimeout(pump, 20);
  });
}

process.on('message', (command: GeneratorCommand) => {
  if (command.type === 'prepare') {
    targets = command.urls.map((url) => new URL(url));
    // bodies as bytes and their lengths computed now: sending does nothing but write them
    prepared = command.requests.map((r) => {
      const body = Buffer.from(r.body, 'utf8');
      return { marketplace: r.marketplace, path: r.path, headers: { ...r.headers, 'content-length': body.length }, body };
    });
    process.send!({ type: 'prepared' } satisfies GeneratorReply);
  } else {
    void offer(command.ratePerSecond).then((results) => {
      prepared = [];
      process.send!({ type: 'offered', results } satisfies GeneratorReply);
    });
  }
});
