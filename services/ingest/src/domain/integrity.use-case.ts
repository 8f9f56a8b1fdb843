import type { DeliveriesRepository, DeliveryRow } from '../db/deliveries.repository';

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
export async function integrityReport(deps: { deliveries: DeliveriesRepository; sellerOf: (d: DeliveryRow) => Promise<string | null> }, deadlines: { pendingSeconds: number; parkedSeconds: number }, now = Date.now()) {
  const violations: Violation[] = [];
  for (const [status, deadline] of [['pending', deadlines.pendingSeconds], ['parked', deadlines.parkedSeconds]] as const) {
    for (const d of await deps.deliveries.stuck(status, deadline)) {
      const since = new Date(d.status_changed_at);
      violations.push({
        orderId: d.order_id,
        sellerId: await deps.sellerOf(d),
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
