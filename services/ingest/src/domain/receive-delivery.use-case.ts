import { randomUUID } from 'node:crypto';
import type { IngestMetrics } from '../metrics';
import type { DeliveryStore, SellerStore } from './ports';
import type { DeliveryProcessor } from './process-delivery.use-case';
import type { Outcome } from './record-order.use-case';
import type { NewDelivery } from './records';

/** A delivery as it arrives (authenticity checked), with how it is to be worked. */
export interface IncomingDelivery extends Omit<NewDelivery, 'id'> {
  /** process now, within this budget (PayPal, checkout); else only store and let the worker do it (eBay, MercadoLibre) */
  inlineBudgetMs?: number;
  /** a delivery that needs no processing (unsupported topic / event type) */
  ignoreReason?: string;
}

/**
 * The entry door: a delivery that passed its authenticity check is stored first — one statement, deduplicated on the
 * marketplace's message id — before anything can fail, then processed inline (with a time budget) or left to the
 * worker. What returns is the delivery's outcome; the caller answers 2xx only for outcomes that are committed (every
 * status here is: `pending` means stored and queued).
 */
export function createDeliveryReceiver(deps: { deliveries: DeliveryStore; sellers: SellerStore; processor: DeliveryProcessor; metrics: IngestMetrics; nudgeWorker: () => void }) {
  const webhooks = deps.metrics.webhooks;

  async function receive(incoming: IncomingDelivery): Promise<Outcome & { deliveryId: string }> {
    const { inlineBudgetMs: _budget, ignoreReason: _ignore, ...fields } = incoming;
    const delivery: NewDelivery = { id: randomUUID(), ...fields };
    const deliveryId = delivery.id;
    const budget = incoming.inlineBudgetMs ?? 0;
    // The claim outlives the inline budget, so the worker never races the request on the same delivery.
    const stored = incoming.ignoreReason
      ? await deps.deliveries.insertIgnored(delivery, incoming.ignoreReason)
      : await deps.deliveries.storeNew(delivery, budget > 0 ? budget + 30_000 : 0);
    if (stored.kind === 'stored' && incoming.ignoreReason) {
      webhooks.inc({ marketplace: incoming.marketplace, outcome: 'ignored' });
      return { deliveryId, status: 'ignored', reason: incoming.ignoreReason, orderId: null };
    }
    if (stored.kind === 'duplicate') {
      webhooks.inc({ marketplace: incoming.marketplace, outcome: 'duplicate' });
      return { deliveryId, status: 'duplicate', reason: 'DUPLICATE_DELIVERY', orderId: stored.orderId };
    }
    if (budget <= 0) {
      deps.nudgeWorker();
      webhooks.inc({ marketplace: incoming.marketplace, outcome: 'pending' });
      return { deliveryId, status: 'pending', reason: null, orderId: incoming.orderId };
    }
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      deps.processor.process(stored.delivery),
      new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => resolve({ status: 'pending', reason: 'STILL_PROCESSING', orderId: incoming.orderId }), budget);
      }),
    ]).finally(() => clearTimeout(timer));
    webhooks.inc({ marketplace: incoming.marketplace, outcome: outcome.status });
    return { deliveryId, ...outcome };
  }

  return {
    receive,

    /**
     * A notification from a sender nobody can verify (MercadoLibre): one for another application, or for an account no
     * seller registered, is only counted (one row per day and reason), never stored or read with a token. Otherwise it
     * is received like any other. The caller answers the same either way, so a stranger learns nothing.
     */
    async receiveUnverified(incoming: IncomingDelivery & { accountId: string }, check: { foreignApplication: boolean }): Promise<void> {
      const dropReason = check.foreignApplication
        ? 'FOREIGN_APPLICATION'
        : !(await deps.sellers.account(incoming.marketplace, incoming.accountId)) ? 'UNKNOWN_ACCOUNT' : null;
      if (dropReason) {
        await deps.deliveries.countDropped(incoming.marketplace, dropReason);
        return;
      }
      await receive(incoming);
    },
  };
}
export type DeliveryReceiver = ReturnType<typeof createDeliveryReceiver>;
