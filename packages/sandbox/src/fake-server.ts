import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

/**
 * One mechanism for every sandbox fake: a real HTTP server on loopback, plus failure injection that a test (or the
 * demo) can switch on per route. Fakes imitate the providers' documented contracts; this file only knows HTTP.
 */
export type FailureMode =
  | { kind: 'latency'; ms: number }
  /** answer with this status and body instead of the real handler */
  | { kind: 'status'; status: number; body?: unknown }
  /** never answer (the client's timeout fires); the socket is destroyed when the fake stops */
  | { kind: 'hang' }
  /** run the real handler (its side effects happen), then drop the connection without answering */
  | { kind: 'drop-after-handling' }
  /** run the real handler (its side effects happen), then hold its answer this long before sending it */
  | { kind: 'hold-answer'; ms: number };

export interface FailureRule {
  /** matched against `${method} ${path}`, e.g. /^POST \/v1\/payments\/payouts$/ */
  match: RegExp;
  mode: FailureMode;
  /** how many requests it applies to; Infinity by default */
  times?: number;
  /**
   * the share of matching requests it applies to (0..1, drawn per request); 1 by default. With drop-after-handling,
   * e.g. 0.1 = "the provider acts, then one answer in ten is lost" (a `times` use is taken only when it applies).
   */
  rate?: number;
}

export interface FakeServer {
  url: string;
  port: number;
  /** add a failure rule; returns a function that removes it */
  fail(rule: FailureRule): () => void;
  clearFailures(): void;
  /** every request seen, for assertions ("exactly one order create") */
  requests: Array<{ method: string; path: string; at: number }>;
  stop(): Promise<void>;
}

export interface StartOptions {
  port?: number;
  host?: string;
}

/** Delays the response the handler sends (it has acted already); a client that gives up or dies meanwhile gets nothing. */
export function holdAnswer(res: Response, ms: number): void {
  const send = res.send.bind(res);
  res.send = ((body?: unknown) => {
    setTimeout(() => {
      if (!res.writableEnded && !res.socket?.destroyed) send(body);
    }, ms);
    return res;
  }) as typeof res.send;
}

export async function startFakeServer(
  name: string,
  configure: (app: Express) => void,
  options: StartOptions = {},
): Promise<FakeServer> {
  const app = express();
  app.disable('x-powered-by');
  const rules: Array<FailureRule & { remaining: number }> = [];
  const requests: FakeServer['requests'] = [];

  app.use((req: Request, res: Response, next: NextFunction) => {
    const signature = `${req.method} ${req.path}`;
    requests.push({ method: req.method, path: req.path, at: Date.now() });
    const rule = rules.find((r) => r.remaining > 0 && r.match.test(signature) && (r.rate === undefined || Math.random() < r.rate));
    if (!rule) return next();
    rule.remaining -= 1;
    const mode = rule.mode;
    switch (mode.kind) {
      case 'latency':
        setTimeout(next, mode.ms);
        return;
      case 'status':
        res.status(mode.status).type('application/json').send(JSON.stringify(mode.body ?? { error: 'injected failure' }));
        return;
      case 'hang':
        return; // keep the socket open; the client times out
      case 'drop-after-handling': {
        // Let the handler run (and commit its side effects), then cut the connection instead of answering.
        const destroy = () => req.socket.destroy();
        res.send = (() => { destroy(); return res; }) as typeof res.send;
        res.json = (() => { destroy(); return res; }) as typeof res.json;
        res.end = (() => { destroy(); return res; }) as typeof res.end;
        return next();
      }
      case 'hold-answer':
        holdAnswer(res, mode.ms);
        return next();
    }
  });

  configure(app);

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    fail(rule) {
      if (rule.rate !== undefined && !(rule.rate >= 0 && rule.rate <= 1)) throw new RangeError(`rate must be within 0..1, got ${rule.rate}`);
      const entry = { ...rule, remaining: rule.times ?? Number.POSITIVE_INFINITY };
      rules.push(entry);
      return () => {
        const i = rules.indexOf(entry);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    clearFailures() {
      rules.splice(0, rules.length);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      void name;
    },
  };
}
