/**
 * Exponential backoff with full jitter: attempt 1 waits up to base, attempt n up to base·2^(n-1), capped. Jitter
 * spreads retries of many orders so a recovering supplier is not hit by all of them at once. `random` is injectable
 * for tests.
 */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  // never below half the ceiling: a retry must actually back off
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
