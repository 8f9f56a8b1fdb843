import { AppError, createLogger, createPoller, Metrics } from '../src';
import { waitFor } from '../src/testing';

describe('background poller', () => {
  it('keeps running through failures, backing off (doubling) while they last, and counts each', async () => {
    const runs: number[] = [];
    const metrics = new Metrics('poller-test', { defaultMetrics: false });
    const poller = createPoller({
      name: 'flaky',
      intervalMs: 200,
      logger: createLogger('poller-test', 'silent'),
      metrics,
      run: async () => {
        runs.push(Date.now());
        if (runs.length <= 4) throw new AppError('DB_DOWN', 'database unavailable', { retriable: true });
        return false;
      },
    });
    poller.start();
    try {
      await waitFor(() => runs.length >= 6, { timeoutMs: 10_000, description: 'six runs' });
    } finally {
      await poller.stop();
    }
    const gaps = runs.slice(1).map((t, i) => t - runs[i]!);
    // after failure n the next run waits 200 * 2^(n-1) ms (lower bounds only: a loaded machine is only slower)
    expect(gaps[0]).toBeGreaterThanOrEqual(195);
    expect(gaps[1]).toBeGreaterThanOrEqual(395);
    expect(gaps[2]).toBeGreaterThanOrEqual(795);
    expect(gaps[3]).toBeGreaterThanOrEqual(1595);
    // a success resets to the plain interval
    expect(gaps[4]).toBeLessThan(gaps[3]!);
    expect(await metrics.registry.getSingleMetricAsString('worker_errors_total')).toMatch(/worker="flaky"[^\n]* 4/);
  });
});
