/**
 * The one retry delay of the system: exponential with jitter. Attempt 1 waits up to `baseMs`, attempt n up to
 * `baseMs·2^(n-1)`, capped at `maxMs`; the delay is drawn between half that ceiling and the ceiling. Jitter spreads the
 * retries of many jobs (a recovering supplier or database is not hit by all of them at once); the floor of half the
 * ceiling makes every retry actually back off. `random` is injectable for tests.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt) - 1), 40);
  const ceiling = Math.min(maxMs, baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
