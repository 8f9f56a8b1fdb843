import type { DeliveryStore, SellerStore } from './ports';

export interface Violation {
  orderId: string | null;
  sellerId: string | null;
  state: string;
  since: string;
  ageSeconds: number;
  deadlineSeconds: number;
  reason: string;
}

/**
 * Ingest's part of the integrity report, computed from the data: a delivery is ingest's "order in flight" until it
 * ends accepted/duplicate/ignored/rejected. Pending past its deadline (the marketplace keeps failing) and parked past
 * its deadline (nobody registered the seller / looked at it) are violations. Orders themselves are terminal for ingest
 * once their event is committed (the outbox relay's lag is its own metric).
 */
export async function integrityReport(deps: { deliveries: DeliveryStore; sellers: SellerStore }, deadlines: { pendingSeconds: number; parkedSeconds: number }, now = Date.now()) {
  const violations: Violation[] = [];
  const sellerOf = async (d: { marketplace: Parameters<SellerStore['account']>[0]; accountId: string | null }) =>
    (d.accountId ? ((await deps.sellers.account(d.marketplace, d.accountId))?.sellerId ?? null) : null);
  for (const [status, deadline] of [['pending', deadlines.pendingSeconds], ['parked', deadlines.parkedSeconds]] as const) {
    for (const d of await deps.deliveries.stuck(status, deadline)) {
      const since = d.statusChangedAt;
      violations.push({
        orderId: d.orderId,
        sellerId: await sellerOf(d),
        state: `DELIVERY_${status.toUpperCase()}`,
        since: since.toISOString(),
        ageSeconds: Math.floor((now - since.getTime()) / 1000),
        deadlineSeconds: deadline,
        reason: `${d.marketplace} delivery ${d.id}: ${d.reason ?? status}`,
      });
    }
  }
  return { service: 'ingest', stage: 'ingest', generatedAt: new Date(now).toISOString(), violations };
}
