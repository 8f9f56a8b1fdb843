import { classifyError } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface Batcher<I, O> {
  /**
   * Resolves with this item's result once the batch that carried it has returned (for a write: committed). `lingerMs`:
   * this item's own wait instead of the batcher's (an item that has waited elsewhere already); the batch goes out when
   * the first of its items' waits ends.
   */
  submit(item: I, options?: { lingerMs?: number }): Promise<O>;
}

/**
 * Group commit: items submitted concurrently are handed to `run` together, one call (one statement, one commit) for
 * many callers. A batch goes out when `maxBatch` items wait, or `lingerMs` after its first item (0: once the current
 * turn of the event loop is done, so a burst that arrived together goes together and a lone item waits for nothing).
 * At most `maxInFlight` batches run at once (the connections they need); while all are out, arrivals wait and the next
 * batch is bigger, so the batch size follows the load and not a timer.
 *
 * `run` answers one result per item, in order. When it throws (or miscounts), nobody is answered from it: each item is
 * run again on its own with `runOne`, so one bad item fails only its own caller and the others still get their result.
 */
export function createBatcher<I, O>(options: {
  /** names the batcher in logs and in the `batcher` label of its metrics */
  name: string;
  maxBatch: number;
  maxInFlight: number;
  lingerMs?: number;
  run: (items: I[]) => Promise<O[]>;
  runOne: (item: I) => Promise<O>;
  logger: Logger;
  metrics: Metrics;
}): Batcher<I, O> {
  const { name, maxBatch, maxInFlight, lingerMs = 0, logger } = options;
  const sizes = options.metrics.histogram('batch_size', 'Items carried by one batch of a group commit', ['batcher'], [1, 2, 4, 8, 16, 32, 64, 128]);
  const fallbacks = options.metrics.counter('batch_fallbacks_total', 'Batches that failed and were run again one item at a time', ['batcher']);
  const labels = { batcher: name };
  type Waiting = { item: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  let waiting: Waiting[] = [];
  let inFlight = 0;
  let timer: { at: number; handle: NodeJS.Timeout } | { at: number; immediate: NodeJS.Immediate } | undefined;

  const cancelTimer = () => {
    if (timer === undefined) return;
    if ('handle' in timer) clearTimeout(timer.handle);
    else clearImmediate(timer.immediate);
    timer = undefined;
  };
  /** the waiting batch goes out `ms` from now, unless it was due sooner already */
  const flushIn = (ms: number) => {
    const at = Date.now() + ms;
    if (timer !== undefined && timer.at <= at) return;
    cancelTimer();
    timer = ms > 0 ? { at, handle: setTimeout(flush, ms) } : { at, immediate: setImmediate(flush) };
  };
  const flush = () => {
    cancelTimer();
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = waiting.slice(0, maxBatch);
      waiting = waiting.slice(batch.length);
      inFlight++;
      void send(batch).finally(() => {
        inFlight--;
        // what arrived while every batch was out goes now, as one
        if (waiting.length > 0 && timer === undefined) flush();
      });
    }
  };
  const send = async (batch: Waiting[]): Promise<void> => {
    sizes.observe(labels, batch.length);
    let results: O[];
    try {
      results = await options.run(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`batch ${name} answered ${results.length} results for ${batch.length} items`);
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      fallbacks.inc(labels);
      const { kind, code } = classifyError(error);
      logger.warn({ err: error, code, kind, batcher: name, items: batch.length }, 'batch failed; running its items one at a time');
      await Promise.all(batch.map((w) => Promise.resolve().then(() => options.runOne(w.item)).then(w.resolve, w.reject)));
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  };

  return {
    submit(item, submitOptions) {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= maxBatch) flush();
        else flushIn(Math.max(0, Math.min(lingerMs, submitOptions?.lingerMs ?? lingerMs)));
      });
    },
  };
}
