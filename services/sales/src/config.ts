import { z } from 'zod';
import { baseConfigSchema } from '@postsale/runtime';

const optionalInt = (min: number, max: number) =>
  z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().min(min).max(max).optional());

/** sales's environment: the shared variables plus its own. Parsed first; a bad value stops the process. */
export const configSchema = baseConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3003),
  DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('sales'),
  /**
   * One consumer applying up to 3 partitions at once (a connection each), the outbox relay, inbox retention and an admin
   * request: 6. The benchmark measured a peak of 4 in use (connectionPools in bench/results).
   */
  DB_POOL_MAX: z.coerce.number().int().min(2).max(200).default(6),
  /**
   * An order brings the ledger four events from three streams (OrderReceived, PurchaseCompleted, two PayoutSent),
   * tens of ms apart, none of them waited for by a buyer: ready events wait this long before their inbox transaction,
   * so those that arrive meanwhile share one (see the runtime's INBOX_LINGER_MS; the shared default is 0). At 50
   * orders/s in the benchmark: 0.5 commits per order instead of 1.5, for ≤ 50 ms more to the sale's recording.
   */
  INBOX_LINGER_MS: z.coerce.number().int().min(0).max(1000).default(50),
  /**
   * The broker holds the ledger's fetches this long, so an order's events that arrive tens of ms apart on its three
   * topics come in one fetch and share one transaction (see the runtime's INBOX_FETCH_WAIT_MS; the shared default is
   * 0). At 15 orders/s in the benchmark: 1.1 commits per order instead of 2.0. Payouts keeps 0: a 150 ms wait there
   * halved its inbox commits at 15/s but put p99 spikes of ≈ 1.8 s into its PayoutSent at 40/s.
   */
  INBOX_FETCH_WAIT_MS: z.coerce.number().int().min(0).max(1000).default(50),
  /** consumer group for orders + fulfillment; change it (e.g. sales.ledger-replay) to replay both topics from offset 0 */
  SALES_CONSUMER_GROUP: z.string().regex(/^[a-z0-9._-]+$/).default('sales.ledger'),
  /**
   * Commission for sellers with no commercial terms. Unset (the default) holds their sales in PENDING_TERMS, visible in
   * the integrity report, until an operator PUTs terms: never a silent zero commission.
   */
  DEFAULT_COMMISSION_RATE_BPS: optionalInt(0, 10_000),
  /** a purchase known this long without a recorded sale (held for terms, rate or order) is an integrity violation */
  SALE_DEADLINE_SECONDS: z.coerce.number().int().positive().default(900),
  /**
   * how often the postings are rolled up into the balances the trial balance and the open payables start from: those
   * reports read the postings made since (at 100 orders/s and 60 s, ≈ 70,000)
   */
  LEDGER_ROLLUP_INTERVAL_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  /** the newest rate on or before the purchase date may be at most this many days old */
  FX_MAX_RATE_AGE_DAYS: z.coerce.number().int().min(0).max(31).default(3),
});
export type SalesConfig = z.infer<typeof configSchema>;
