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
      })
      .catch((error) => {
        errors.inc({ worker: options.name });
        options.logger.error({ err: error, worker: options.name }, 'worker run failed');
      })
      .finally(() => {
        current = undefined;
        const next = again ? 0 : options.intervalMs;
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
