import type { NextFunction, Request, Response } from 'express';
import { holdAnswer } from '../fake-server';
import type { MethodFailureMode } from './types';

/**
 * Failure injection by API method. The gateway is one route (`/sync`) for every method, so fake-server's path
 * rules cannot aim at order.create alone; these rules match the `method` parameter and run before the handler.
 */
interface MethodRule {
  method: string;
  mode: MethodFailureMode;
  remaining: number;
  /** share of calls it applies to (0..1, drawn per call) */
  rate: number;
}

export class MethodFailures {
  private readonly rules: MethodRule[] = [];

  add(method: string, mode: MethodFailureMode, times = Number.POSITIVE_INFINITY, rate = 1): () => void {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`rate must be within 0..1, got ${rate}`);
    const rule = { method, mode, remaining: times, rate };
    this.rules.push(rule);
    return () => {
      const i = this.rules.indexOf(rule);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  clear(): void {
    this.rules.splice(0, this.rules.length);
  }

  /** Takes one use of the first live rule for this method. */
  take(method: string): MethodFailureMode | undefined {
    const rule = this.rules.find((r) => r.remaining > 0 && r.method === method && (r.rate >= 1 || Math.random() < r.rate));
    if (!rule) return undefined;
    rule.remaining -= 1;
    return rule.mode;
  }
}

/**
 * Applies an HTTP-level mode the way fake-server does. Returns true when the request is finished here (status,
 * hang) or continues asynchronously (latency); false when the handler should run now (drop-after-handling arms
 * the response to be cut instead of sent).
 */
export function applyHttpMode(mode: MethodFailureMode, req: Request, res: Response, next: NextFunction): boolean {
  switch (mode.kind) {
    case 'latency':
      setTimeout(next, mode.ms);
      return true;
    case 'status':
      res.status(mode.status).type('application/json').send(JSON.stringify(mode.body ?? { error: 'injected failure' }));
      return true;
    case 'hang':
      return true; // the socket stays open; the client's timeout fires; stop() destroys it
    case 'drop-after-handling': {
      const destroy = () => req.socket.destroy();
      res.send = (() => { destroy(); return res; }) as typeof res.send;
      res.json = (() => { destroy(); return res; }) as typeof res.json;
      res.end = (() => { destroy(); return res; }) as typeof res.end;
      return false;
    }
    case 'hold-answer':
      holdAnswer(res, mode.ms);
      return false;
    default:
      return false; // AliExpress-shaped modes are answered by the gateway itself
  }
}
