import { classifyError, retryDelayMs } from '@postsale/runtime';
import { MarketplacePushError, type FulfillmentDeps, type MarketplaceTracking, type TrackingPush } from './ports';

/**
 * The marketplace step after shipment: one `tracking_pushes` row per order (written with the SHIPPED transition),
 * pushed with the seller's own marketplace token, retried with backoff, outcome recorded; after the last attempt it
 * stays FAILED and shows in the integrity report. The push was claimed with a lease: its outcome commits only while
 * that lease's fencing token (`push.fence`) is current, so a replica whose lease expired records nothing.
 * Returns when the push is due again (a retry it recorded), for the worker to wake then; undefined when it is not.
 */
export async function runTrackingPush(deps: FulfillmentDeps, marketplaces: MarketplaceTracking, push: TrackingPush): Promise<Date | undefined> {
  const attempts = push.attempts + 1;
  try {
    const f = await deps.repo.get(push.orderId);
    if (!f || !f.trackingNumber || !f.carrier || !f.externalOrderId) throw new MarketplacePushError('NO_TRACKING', 'the order has no tracking recorded', false);
    const token = await deps.sellers.marketplaceToken(push.sellerId, push.marketplace);
    if (!token) throw new MarketplacePushError('MARKETPLACE_TOKEN_MISSING', `no ${push.marketplace} token configured for the seller`, true);
    const result = await marketplaces.push(push.marketplace, token, {
      externalOrderId: f.externalOrderId,
      lines: f.lines.map((l) => ({ lineId: l.lineId, quantity: l.quantity })),
      carrier: f.carrier,
      trackingNumber: f.trackingNumber,
      shippedAt: f.shippedAt ?? new Date(),
    });
    if (!(await deps.repo.finishPush(push, { status: 'DONE', attempts, result }))) return leaseLost(deps, push, 'DONE');
    deps.metrics.trackingPushes.inc({ marketplace: push.marketplace, outcome: 'done' });
    return undefined;
  } catch (error) {
    const e =
      error instanceof MarketplacePushError
        ? error
        : new MarketplacePushError(classifyError(error).code, error instanceof Error ? error.message : String(error), true, classifyError(error).kind !== 'permanent');
    // Transient failures (network, lost answers, 5xx, 429, our own database) are retried for as long as they last,
    // with capped backoff; only a refusal an operator must fix (token, configuration) counts towards PUSH_MAX_ATTEMPTS.
    const giveUp = !e.retriable || (!e.transient && attempts >= deps.settings.pushMaxAttempts);
    const nextAttemptAt = giveUp ? undefined : new Date(Date.now() + retryDelayMs(attempts, deps.settings.pushRetryBaseMs, 6 * 3600_000));
    const recorded = await deps.repo.finishPush(push, { status: giveUp ? 'FAILED' : 'PENDING', attempts, lastError: `${e.code}: ${e.message}`, nextAttemptAt });
    if (!recorded) return leaseLost(deps, push, giveUp ? 'FAILED' : 'PENDING');
    deps.metrics.trackingPushes.inc({ marketplace: push.marketplace, outcome: giveUp ? 'failed' : 'retry' });
    deps.logger.warn({ orderId: push.orderId, code: e.code, attempts, giveUp }, 'tracking push failed');
    return nextAttemptAt;
  }
}

/** Another replica claimed the push after this one's lease expired: it owns the outcome now. */
function leaseLost(deps: FulfillmentDeps, push: TrackingPush, outcome: string): undefined {
  deps.metrics.workerFailures.inc({ step: 'tracking_push', code: 'LEASE_LOST' });
  deps.logger.warn({ orderId: push.orderId, fence: push.fence, outcome }, 'tracking push outcome after the lease was lost: not recorded');
  return undefined;
}
