import { randomUUID } from 'node:crypto';
import type { DeliveryStore, OrderStore } from './ports';
import { DeliveryKinds } from './process-delivery.use-case';

/**
 * eBay notifies no cancellation or refund (external-apis.md "Corrections"): each open eBay order is re-read with
 * backoff for the return window. A re-read is a persisted delivery (`ebay.order_recheck`, dedupe key
 * `ebay-recheck:<order>:<n>`), worked, retried and parked like any other.
 */
export function createEbayRecheck(deps: { orders: OrderStore; deliveries: DeliveryStore; nudgeWorker: () => void; schedule: { windowSeconds: number; minMs: number; maxMs: number } }) {
  return {
    /** Queues the next due re-read; false when none is due. */
    async scheduleNext(): Promise<boolean> {
      const due = await deps.orders.claimEbayRecheck(deps.schedule);
      if (!due) return false;
      const order = (await deps.orders.get(due.orderId))!;
      await deps.deliveries.enqueue({
        id: randomUUID(), marketplace: 'EBAY', kind: DeliveryKinds.ebayOrderRecheck, dedupeKey: `ebay-recheck:${due.orderId}:${due.recheckCount}`,
        accountId: order.accountId, externalOrderId: order.externalOrderId, orderId: due.orderId, headers: {},
        rawBody: JSON.stringify({ orderId: due.orderId }), sourceIp: null,
      });
      deps.nudgeWorker();
      return true;
    },
  };
}
