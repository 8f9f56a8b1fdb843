import { retryDelayMs } from './backoff';
import { classifyError } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface Poller {
  name: string;
  start(): void;
  /** runs the task soon instead of waiting for the interval */
  nudge(): void;
  stop(): Promise<void>;
}

/**
 * A background task that repeats: when a run did work it runs again at once, else it waits `intervalMs`. Used for the
 * steps that call outside systems (purchases, payout batches, reconciliation), which never run inside a consumer's
 * transaction. Errors are logged and counted, never swallowed, and the loop goes on.
 */
export function createPoller(options: {
  name: string;
  intervalMs: number;
  run: () => Promise<boolean>;
  logger: Logger;
  metrics: Metrics;
}): Poller {
  const errors = options.metrics.counter('worker_errors_total', 'Background worker runs that failed', ['worker']);
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let again = false;
  let failures = 0;

  const schedule = (ms: number) => {
    if (!running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, ms);
  };
  const tick = () => {
    if (!running || current) return;
    current = options
      .run()
      .then((didWork) => {
        again = again || didWork;
        failures = 0;
      })
      .catch((error) => {
        errors.inc({ worker: options.name });
        failures++;
        const { kind, code } = classifyError(error);
        const log = kind === 'transient' ? options.logger.warn : options.logger.error;
        log.call(options.logger, { err: error, code, worker: options.name, failures }, 'worker run failed; will run again');
      })
      .finally(() => {
        current = undefined;
        // After failures, back off instead of hammering a database or API that is down: after failure n at least
        // interval·2^(n-1), up to twice that (jitter), at most 30 s.
        const next = failures > 0 ? retryDelayMs(failures + 1, Math.max(options.intervalMs, 200), 30_000) : again ? 0 : options.intervalMs;
        again = false;
        schedule(next);
      });
  };

  return {
    name: options.name,
    start() {
      running = true;
      schedule(0);
    },
    nudge() {
      if (current) again = true;
      else schedule(0);
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
