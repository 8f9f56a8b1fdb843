import { createSecretBox } from '@postsale/runtime';
import { dropSchema, uniqueId, waitFor } from '@postsale/runtime/testing';
import { CheckoutBrowser } from '../../src/clients/checkout-browser';
import { FulfillmentRepository } from '../../src/db/fulfillment.repository';
import { SellerSettingsRepository } from '../../src/db/seller-settings.repository';
import { MarketplacePushError, type FulfillmentDeps, type MarketplaceTracking } from '../../src/domain/ports';
import { runTrackingPush } from '../../src/domain/tracking-push.use-case';
import { createFulfillmentMetrics } from '../../src/metrics';
import { startHarness, type Harness } from './harness';

/**
 * Two replicas push tracking for the same order: the push is claimed with a lease and a fencing token, like an order.
 * The test is the two replicas (the service's own workers idle), each with a marketplace the test holds at a gate.
 */
function deferred() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('fulfillment tracking pushes with two replicas: fenced leases', () => {
  let h: Harness;
  let deps: FulfillmentDeps;
  beforeAll(async () => {
    h = await startHarness({ WORKER_INTERVAL_MS: '3600000' });
    const ctx = h.service.ctx;
    const repo = new FulfillmentRepository(ctx.db);
    deps = {
      repo,
      sellers: new SellerSettingsRepository(ctx.db, createSecretBox(h.env.CREDENTIALS_KEY!)),
      outbox: ctx.outbox,
      logger: ctx.logger,
      metrics: createFulfillmentMetrics(ctx.metrics, repo),
      browser: new CheckoutBrowser({ chromiumPath: '/usr/bin/chromium', webUrl: h.ali.url, timeoutMs: 20_000 }),
      supplierFor: async () => undefined,
      settings: {
        defaultMinMarginBps: 0, purchaseMaxAttempts: 6, purchaseRetryBaseMs: 100, purchaseRetryMaxMs: 400, outOrderIdWindowMs: 23 * 3600_000,
        statusPollMinMs: 100, statusPollMaxMs: 300, trackingPollMinMs: 100, trackingPollMaxMs: 300, pushMaxAttempts: 3, pushRetryBaseMs: 50, leaseMs: 60_000,
      },
    };
  });
  afterAll(async () => {
    await h.stop();
    await dropSchema(h.env.DB_SCHEMA!);
  });

  it('when a replica\'s push lease expired and another replica claimed the push, then the first replica\'s late failure records nothing: the new holder\'s lease and outcome stand', async () => {
    const db = h.service.ctx.db;
    const sellerId = uniqueId('seller-');
    const orderId = uniqueId('ord-');
    await deps.sellers.putMarketplaceToken(sellerId, 'EBAY', { accessToken: `tok-${sellerId}`, mlServiceId: null, ebayCarrierCode: null });
    await db('fulfillments').insert({
      order_id: orderId, seller_id: sellerId, marketplace: 'EBAY', external_order_id: `ext-${orderId}`, state: 'SHIPPED',
      lines: JSON.stringify([{ lineId: 'line-1', listingId: 'l-1', sku: null, title: 'Thing', quantity: 1, unitPrice: { amountMinor: 2000, currency: 'USD' } }]),
      carrier: 'CAINIAO', tracking_number: 'LP00777777777CN', shipped_at: new Date(),
    });
    await db('tracking_pushes').insert({ order_id: orderId, seller_id: sellerId, marketplace: 'EBAY', status: 'PENDING', next_attempt_at: new Date(Date.now() - 1000) });
    const claim = async () => (await deps.repo.claimDuePushes(10, 60_000)).find((p) => p.orderId === orderId)!;

    // replica A claims, calls the marketplace and hangs there; its answer will be a 503
    const gate = deferred();
    let asked = false;
    const stalled: MarketplaceTracking = {
      push: async () => {
        asked = true;
        await gate.promise;
        throw new MarketplacePushError('HTTP_503', 'marketplace answered 503', true, true);
      },
    };
    const claimA = await claim();
    const a = runTrackingPush(deps, stalled, claimA);
    await waitFor(() => asked, { description: 'A calls the marketplace' });

    // A's lease runs out; replica B claims with a new token (its lease: 60 s)
    await db('tracking_pushes').where({ order_id: orderId }).update({ next_attempt_at: new Date(Date.now() - 1000) });
    const claimB = await claim();
    expect(claimB.fence).toBe(claimA.fence + 1);

    gate.open();
    await a;
    // A's failure would have pushed B's lease back to a retry in ~50 ms and counted an attempt: nothing recorded
    const afterA = await db('tracking_pushes').where({ order_id: orderId }).first();
    expect(afterA).toMatchObject({ status: 'PENDING', attempts: 0, last_error: null });
    expect(new Date(afterA.next_attempt_at).getTime()).toBeGreaterThan(Date.now() + 30_000);
    expect(await h.service.ctx.metrics.registry.getSingleMetricAsString('fulfillment_step_failures_total')).toMatch(/step="tracking_push"[^\n]*code="LEASE_LOST"[^\n]* 1/);

    // B's outcome commits with its token
    await runTrackingPush(deps, { push: async () => ({ fulfillmentId: 'f-1' }) }, claimB);
    expect(await db('tracking_pushes').where({ order_id: orderId }).first()).toMatchObject({ status: 'DONE', attempts: 1, last_error: null });
  });
});
