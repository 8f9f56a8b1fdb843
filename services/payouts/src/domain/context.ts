import { newEvent, Streams, type PayloadOf, type PayoutEvent } from '@postsale/contracts';
import type { Db, Logger, OutboxWriter, Tx } from '@postsale/runtime';
import type { Intent, PayoutsRepository } from '../db/payouts.repository';
import type { PayoutsMetrics } from '../metrics';
import type { PayoutsGateway } from './ports';
import type { ReleasePolicy } from './payout-rules';

/** Everything the payout use cases need, built once in service.ts. */
export interface PayoutsContext {
  db: Db;
  repo: PayoutsRepository;
  outbox: OutboxWriter;
  logger: Logger;
  metrics: PayoutsMetrics;
  /** undefined in dry-run: nothing may reach PayPal */
  gateway: PayoutsGateway | undefined;
  settings: {
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
  };
  /** wakes the reconciliation poller after a batch was accepted */
  nudgeReconciler(): void;
  /** wakes the batching poller after intents became due */
  nudgeBatcher(): void;
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
