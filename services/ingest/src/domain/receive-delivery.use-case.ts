import { randomUUID } from 'node:crypto';
import type { Marketplace } from '@postsale/contracts';
import type { Metrics } from '@postsale/runtime';
import type { DeliveriesRepository } from '../db/deliveries.repository';
import type { DeliveryProcessor } from './process-delivery.use-case';
import type { Outcome } from './record-order.use-case';

export interface IncomingDelivery {
  marketplace: Marketplace;
  kind: string;
  /** the marketplace's own message id (eBay notificationId, MercadoLibre _id, PayPal event id) */
  dedupeKey: string;
  accountId: string | null;
  externalOrderId: string | null;
  orderId: string | null;
  headers: Record<string, string>;
  rawBody: string;
  sourceIp: string | null;
  /** process now, within this budget (eBay, PayPal, checkout); else only persist and let the poller work (MercadoLibre) */
  inlineBudgetMs?: number;
  /** a delivery that needs no processing (unsupported topic / event type) */
  ignoreReason?: string;
}

/**
 * The entry door: a delivery that passed its authenticity check is persisted first — before anything can fail —
 * then processed inline (with a time budget) or left to the poller. What returns is the delivery's outcome; the
 * caller answers 2xx only for outcomes that are committed (every status here is).
 */
export function createDeliveryReceiver(deps: { deliveries: DeliveriesRepository; processor: DeliveryProcessor; metrics: Metrics; nudgePoller: () => void }) {
  const webhooks = deps.metrics.counter('ingest_webhooks_total', 'Webhook deliveries by marketplace and outcome', ['marketplace', 'outcome']);
  return {
    async receive(incoming: IncomingDelivery): Promise<Outcome & { deliveryId: string }> {
      const id = randomUUID();
      const row = {
        id, marketplace: incoming.marketplace, kind: incoming.kind, dedupe_key: incoming.dedupeKey, account_id: incoming.accountId,
        external_order_id: incoming.externalOrderId, order_id: incoming.orderId, headers: incoming.headers, raw_body: incoming.rawBody, source_ip: incoming.sourceIp,
      };
      if (incoming.ignoreReason) {
        await deps.deliveries.insertDecided(row, 'ignored', incoming.ignoreReason);
        webhooks.inc({ marketplace: incoming.marketplace, outcome: 'ignored' });
        return { deliveryId: id, status: 'ignored', reason: incoming.ignoreReason, orderId: null };
      }
      const earlier = await deps.deliveries.earlierWithKey(incoming.marketplace, incoming.dedupeKey);
      if (earlier) {
        await deps.deliveries.insertDecided(row, 'duplicate', `SAME_MESSAGE_AS_${earlier.id}`);
        webhooks.inc({ marketplace: incoming.marketplace, outcome: 'duplicate' });
        return { deliveryId: id, status: 'duplicate', reason: 'DUPLICATE_DELIVERY', orderId: earlier.order_id };
      }
      const budget = incoming.inlineBudgetMs ?? 0;
      // The claim outlives the inline budget, so the poller never races the request on the same delivery.
      await deps.deliveries.insertPending(row, budget > 0 ? budget + 30_000 : 0);
      if (budget <= 0) {
        deps.nudgePoller();
        webhooks.inc({ marketplace: incoming.marketplace, outcome: 'pending' });
        return { deliveryId: id, status: 'pending', reason: null, orderId: incoming.orderId };
      }
      const stored = (await deps.deliveries.get(id))!;
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        deps.processor.process(stored),
        new Promise<Outcome>((resolve) => {
          timer = setTimeout(() => resolve({ status: 'pending', reason: 'STILL_PROCESSING', orderId: incoming.orderId }), budget);
        }),
      ]).finally(() => clearTimeout(timer));
      webhooks.inc({ marketplace: incoming.marketplace, outcome: outcome.status });
      return { deliveryId: id, ...outcome };
    },
  };
}
export type DeliveryReceiver = ReturnType<typeof createDeliveryReceiver>;
