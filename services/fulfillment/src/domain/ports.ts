import { newEvent, Streams, type FulfillmentEvent, type PayloadOf } from '@postsale/contracts';
import type { Logger, OutboxWriter, Tx } from '@postsale/runtime';
import type { AliExpressDsClient } from '../clients/aliexpress-ds.client';
import type { BrowserCheckoutResult, BrowserOrderInput, WebLogin, WebOrderRow } from '../clients/checkout-browser';
import type { Fulfillment, FulfillmentRepository } from '../db/fulfillment.repository';
import type { SellerSettingsRepository } from '../db/seller-settings.repository';
import type { FulfillmentMetrics } from '../metrics';
import { Reasons, type State } from './states';

/** The supplier API as the use cases need it; built per seller and job from that seller's credentials. */
export type SupplierApi = Pick<AliExpressDsClient, 'getProduct' | 'getFreight' | 'createOrder' | 'getOrder' | 'getTracking'>;

export interface WebCheckout {
  placeOrder(login: WebLogin, input: BrowserOrderInput): Promise<BrowserCheckoutResult>;
  findOrdersByMemo(login: WebLogin, memo: string): Promise<WebOrderRow[]>;
}

export interface FulfillmentSettings {
  defaultMinMarginBps: number;
  purchaseMaxAttempts: number;
  purchaseRetryBaseMs: number;
  purchaseRetryMaxMs: number;
  outOrderIdWindowMs: number;
  statusPollMinMs: number;
  statusPollMaxMs: number;
  pushMaxAttempts: number;
  pushRetryBaseMs: number;
  leaseMs: number;
}

export interface FulfillmentDeps {
  repo: FulfillmentRepository;
  sellers: SellerSettingsRepository;
  outbox: OutboxWriter;
  /** undefined when the seller has no API credentials */
  supplierFor(sellerId: string): Promise<SupplierApi | undefined>;
  browser: WebCheckout;
  settings: FulfillmentSettings;
  metrics: FulfillmentMetrics;
  logger: Logger;
}

export async function publish<T extends FulfillmentEvent['type']>(deps: FulfillmentDeps, trx: Tx, f: Pick<Fulfillment, 'orderId' | 'sellerId'>, type: T, payload: PayloadOf<FulfillmentEvent, T>, causationId: string | null = null): Promise<void> {
  await deps.outbox.publish(trx, Streams.fulfillment, newEvent(Streams.fulfillment, type, payload, { orderId: f.orderId, sellerId: f.sellerId, causationId }));
}

/**
 * Sends an order to the review queue with a reason, and says so on the fulfillment stream (PurchaseFailed,
 * needsReview) in the same transaction. Returns false when the order was no longer in one of `from`.
 */
export async function sendToReview(
  deps: FulfillmentDeps,
  trx: Tx,
  f: Pick<Fulfillment, 'orderId' | 'sellerId' | 'channel'>,
  from: State[],
  review: { reason: string; message: string; details?: Record<string, unknown>; supplierCode?: string | null; publishFailure?: boolean; fence?: number },
  cause: string,
): Promise<boolean> {
  const details = { message: review.message, ...(review.supplierCode ? { supplierCode: review.supplierCode } : {}), ...(review.details ?? {}) };
  const moved = await deps.repo.transition(trx, f.orderId, from, 'NEEDS_REVIEW', cause, { reason: review.reason, ...details }, {
    reasonCode: review.reason,
    reasonDetails: details,
    nextRunAt: null,
  }, review.fence);
  if (!moved) return false;
  if (review.publishFailure ?? true) {
    await publish(deps, trx, f, 'PurchaseFailed', {
      reasonCode: review.reason,
      supplierErrorCode: review.supplierCode ?? null,
      message: review.message,
      needsReview: true,
      failedAt: Date.now(),
    });
  }
  deps.metrics.purchases.inc({ outcome: 'needs_review', reason: review.reason, channel: f.channel ?? 'none' });
  return true;
}

export { Reasons };
