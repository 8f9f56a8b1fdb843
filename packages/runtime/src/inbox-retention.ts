import { DLQ_RETENTION_MS, type AnyStream } from '@postsale/contracts';
import type { Db } from './db';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { createPoller, type Poller } from './poller';

/**
 * Kafka deletes a log segment only once its NEWEST record is older than retention.ms, and a segment rolls at the
 * latest after log.roll.ms (7 days by default): a record can outlive retention.ms by that much.
 */
const SEGMENT_ROLL_MS = 7 * 24 * 3600_000;
/** clock skew between the producer that stamped the record and this database, and a day of plain caution */
const MARGIN_MS = 24 * 3600_000;

/**
 * How long an inbox row must be kept so that replaying a topic from its earliest offset, or redriving its dead-letter
 * topic, never meets an event whose row is gone (it would be applied twice): longer than any copy of the event can
 * live in Kafka. The row is written when the event is consumed, which is after it was produced, so counting from the
 * row's processed_at is on the safe side.
 */
export function inboxRetentionMs(streams: AnyStream[]): number {
  return Math.max(DLQ_RETENTION_MS, ...streams.map((s) => s.retentionMs)) + SEGMENT_ROLL_MS + MARGIN_MS;
}

/**
 * Deletes inbox rows processed more than `keepMs` ago, at most `batch` per statement (short transactions, no long
 * lock on the table). Returns how many it deleted. Rows are found through the BRIN index on processed_at.
 */
export async function pruneInbox(db: Db, options: { keepMs: number; batch: number }): Promise<number> {
  const result = await db.raw(
    `delete from inbox where ctid = any(array(
       select ctid from inbox where processed_at < now() - (? * interval '1 millisecond') limit ?))`,
    [options.keepMs, options.batch],
  );
  return result.rowCount ?? 0;
}

/**
 * The background task every service runs: one bounded batch per run, again at once while batches come back full, else
 * after `intervalMs`. Two replicas may both run it: a row deleted by one is simply not found by the other.
 */
export function createInboxPruner(options: { db: Db; keepMs: number; batch: number; intervalMs: number; logger: Logger; metrics: Metrics }): Poller {
  const pruned = options.metrics.counter('inbox_rows_pruned_total', 'Inbox rows deleted after the topics\' retention (plus margin) had passed');
  return createPoller({
    name: 'inbox-retention',
    intervalMs: options.intervalMs,
    logger: options.logger,
    metrics: options.metrics,
    async run() {
      const deleted = await pruneInbox(options.db, { keepMs: options.keepMs, batch: options.batch });
      if (deleted > 0) pruned.inc(deleted);
      return deleted === options.batch;
    },
  });
}
