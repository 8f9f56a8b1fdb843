import type { Db } from '@postsale/runtime';

/**
 * What the services' Postgres sessions were doing over the measured window (--waits): pg_stat_activity sampled every
 * `everyMs`, each session of the run's services (its application_name is its schema, see createServiceDb) counted by
 * what it was doing — running ('CPU'), waiting for a lock, an LWLock or IO (`Lock:transactionid`, `IO:WALSync`, …),
 * or idle inside a transaction while the service works (`idle in transaction`). A figure is the mean number of that
 * service's sessions found so (Postgres's "average active sessions"): where an order's time inside Postgres goes, and
 * which lock binds, without pg_stat_statements (which needs a server restart).
 */
export interface WaitSampler {
  stop(): Promise<WaitSummary>;
}

export interface WaitSummary {
  sampleEveryMs: number;
  samples: number;
  /** per service (and `service/pool` for a second pool): mean sessions in each state, largest first */
  meanSessionsByService: Record<string, Record<string, number>>;
}

export function sampleWaits(db: Db, schemaSuffix: string, everyMs = 50): WaitSampler {
  const counts = new Map<string, Map<string, number>>();
  let samples = 0;
  let stopped = false;
  const sampleOnce = async () => {
    const rows = (await db.raw(
      `select application_name as name,
              case when state = 'active' then coalesce(wait_event_type || ':' || wait_event, 'CPU') else state end as doing
         from pg_stat_activity
        where application_name like ? and state in ('active', 'idle in transaction', 'idle in transaction (aborted)')`,
      [`%${schemaSuffix}%`],
    )).rows as Array<{ name: string; doing: string }>;
    samples++;
    for (const { name, doing } of rows) {
      const service = name.replace(schemaSuffix, '');
      const byState = counts.get(service) ?? new Map<string, number>();
      byState.set(doing, (byState.get(doing) ?? 0) + 1);
      counts.set(service, byState);
    }
  };
  // one sample at a time, the next `everyMs` after the previous began (a slow sample is not followed by a burst)
  const loop = (async () => {
    while (!stopped) {
      const began = Date.now();
      await sampleOnce().catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - began))));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const mean = (n: number) => Number((n / Math.max(1, samples)).toFixed(3));
      return {
        sampleEveryMs: everyMs,
        samples,
        meanSessionsByService: Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b)).map(([service, byState]) => [
          service, Object.fromEntries([...byState].sort(([, a], [, b]) => b - a).map(([state, n]) => [state, mean(n)])),
        ])),
      };
    },
  };
}
