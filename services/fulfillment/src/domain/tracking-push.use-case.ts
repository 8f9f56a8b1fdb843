import { classifyError, retryDelayMs } from '@postsale/runtime';
import { EbayTrackingClient, MarketplacePushError, MercadoLibreTrackingClient } from '../clients/marketplace-tracking.client';
import type { FulfillmentDeps } from './ports';

/**
 * The marketplace step after shipment: one `tracking_pushes` row per order (written with the SHIPPED transition),
 * pushed with the seller's own marketplace token, retried with backoff, outcome recorded; after the last attempt it
 * stays FAILED and shows in the integrity report.
 */
export interface MarketplaceUrls {
  ebayBaseUrl: string;
  mercadoLibreBaseUrl: string;
  timeoutMs: number;
}

export async function runTrackingPush(deps: FulfillmentDeps, urls: MarketplaceUrls, push: { id: string; orderId: string; sellerId: string; marketplace: string; attempts: number }): Promise<void> {
  const attempts = push.attempts + 1;
  try {
    const f = await deps.repo.get(push.orderId);
    if (!f || !f.trackingNumber || !f.carrier || !f.externalOrderId) throw new MarketplacePushError('NO_TRACKING', 'the order has no tracking recorded', false);
    const token = await deps.sellers.marketplaceToken(push.sellerId, push.marketplace);
    if (!token) throw new MarketplacePushError('MARKETPLACE_TOKEN_MISSING', `no ${push.marketplace} token configured for the seller`, true);
    const input = {
      externalOrderId: f.externalOrderId,
      lines: f.lines.map((l) => ({ lineId: l.lineId, quantity: l.quantity })),
      carrier: f.carrier,
      trackingNumber: f.trackingNumber,
      shippedAt: f.shippedAt ?? new Date(),
    };
    const result =
      push.marketplace === 'EBAY'
        ? await new EbayTrackingClient({ baseUrl: urls.ebayBaseUrl, accessToken: token.accessToken, timeoutMs: urls.timeoutMs, carrierCode: token.ebayCarrierCode }).push(input)
        : await new MercadoLibreTrackingClient({ baseUrl: urls.mercadoLibreBaseUrl, accessToken: token.accessToken, timeoutMs: urls.timeoutMs, serviceId: token.mlServiceId }).push(input);
    await deps.repo.finishPush(push.id, { status: 'DONE', attempts, result });
    deps.metrics.trackingPushes.inc({ marketplace: push.marketplace, outcome: 'done' });
  } catch (error) {
    const e =
      error instanceof MarketplacePushError
        ? error
        : new MarketplacePushError(classifyError(error).code, error instanceof Error ? error.message : String(error), true, classifyError(error).kind !== 'permanent');
    // Transient failures (network, lost answers, 5xx, 429, our own database) are retried for as long as they last,
    // with capped backoff; only a refusal an operator must fix (token, configuration) counts towards PUSH_MAX_ATTEMPTS.
    const giveUp = !e.retriable || (!e.transient && attempts >= deps.settings.pushMaxAttempts);
    await deps.repo.finishPush(push.id, {
      status: giveUp ? 'FAILED' : 'PENDING',
      attempts,
      lastError: `${e.code}: ${e.message}`,
      nextAttemptAt: giveUp ? undefined : new Date(Date.now() + retryDelayMs(attempts, deps.settings.pushRetryBaseMs, 6 * 3600_000)),
    });
    deps.metrics.trackingPushes.inc({ marketplace: push.marketplace, outcome: giveUp ? 'failed' : 'retry' });
    deps.logger.warn({ orderId: push.orderId, code: e.code, attempts, giveUp }, 'tracking push failed');
  }
}
