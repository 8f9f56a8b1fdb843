import { newEvent, Streams, type PayloadOf, type PayoutEvent } from '@postsale/contracts';
import type { Logger, OutboxWriter } from '@postsale/runtime';
import type { ReleasePolicy } from './payout-rules';
import type { PayoutsGateway, PayoutsMetrics, PayoutsNudges, PayoutsStore, Tx } from './ports';
import type { Intent } from './records';

export interface PayoutsSettings {
  mode: 'sandbox' | 'live' | 'dry-run';
  platformPayeeEmail: string | undefined;
  defaultReleasePolicy: ReleasePolicy;
  batchSize: number;
  autoRetryMaxAttempts: number;
  autoRetryDelayMs: number;
  resubmitWindowMs: number;
  /** PLATFORM_PAYOUT_CURRENCY: when set, the platform's commission is always paid in it */
  platformPayoutCurrency: string | undefined;
  /** DEFAULT_PAYOUT_CURRENCY: sellers without an explicit choice whose sale currency PayPal cannot pay */
  defaultPayoutCurrency: string;
  /** how much older than the sale's day a rate may be and still be used */
  fxMaxRateAgeDays: number;
  /** how long an accepted, unfinished batch waits between two checks at PayPal */
  reconcileIntervalMs: number;
  /**
   * how long after its acceptance (or a batch webhook) a batch is first checked at PayPal: the time its items' webhooks
   * have to bring every outcome (PAYOUTS_WEBHOOK_GRACE_MS); 0 when this service receives no webhooks
   */
  firstCheckInMs: number;
}

/** What every payout use case takes first (built once in service.ts): ports and settings only. */
export interface PayoutsContext {
  store: PayoutsStore;
  outbox: OutboxWriter;
  logger: Logger;
  metrics: PayoutsMetrics;
  /** undefined in dry-run: nothing may reach PayPal */
  gateway: PayoutsGateway | undefined;
  settings: PayoutsSettings;
  nudge: PayoutsNudges;
}

/** Writes a payouts event to the outbox in the caller's transaction. */
export async function publishPayout<T extends PayoutEvent['type']>(
  ctx: PayoutsContext,
  trx: Tx,
  intent: Intent,
  type: T,
  payload: PayloadOf<PayoutEvent, T>,
  causationId: string | null,
): Promise<void> {
  await ctx.outbox.publish(trx, Streams.payouts, newEvent(Streams.payouts, type, payload, { orderId: intent.orderId, sellerId: intent.sellerId, causationId }));
}
