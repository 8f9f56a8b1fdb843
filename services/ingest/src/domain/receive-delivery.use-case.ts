import { randomUUID } from 'node:crypto';
import type { IngestMetrics } from '../metrics';
import type { AckStore } from './ports';
import type { DeliveryProcessor } from './process-delivery.use-case';
import type { Outcome } from './record-order.use-case';
import type { Delivery, NewDelivery } from './records';

/** A slot of the delivery worker held for a delivery being stored (createDeliveryJobs' handOver). */
export interface DeliveryHandOver {
  /** how long the delivery is stored claimed for (the worker's lease) */
  claimMs: number;
  stored(delivery: Delivery): void;
  release(): void;
}

/** A delivery as it arrives (authenticity checked), with how it is to be worked. */
export interface IncomingDelivery extends Omit<NewDelivery, 'id'> {
  /** process now, within this budget (PayPal, checkout); else only store and let the worker do it (eBay, MercadoLibre) */
  inlineBudgetMs?: number;
  /** a delivery that needs no processing (unsupported topic / event type) */
  ignoreReason?: string;
}

/**
 * The entry door: a delivery that passed its authenticity check is stored first — one statement (shared with the
 * deliveries arriving at the same time), deduplicated on the marketplace's message id — before anything can fail, then processed inline (with a time budget) or left to the
 * worker. What returns is the delivery's outcome; the caller answers 2xx only for outcomes that are committed (every
 * status here is: `pending` means stored and queued).
 */
export function createDeliveryReceiver(deps: {
  deliveries: AckStore;
  processor: DeliveryProcessor;
  metrics: IngestMetrics;
  nudgeWorker: () => void;
  /** this process's delivery worker taking a delivery as it is stored (see createDeliveryJobs' handOver) */
  handOver?: (delivery: NewDelivery) => DeliveryHandOver | undefined;
}) {
  const webhooks = deps.metrics.webhooks;

  async function receive(incoming: IncomingDelivery): Promise<Outcome & { deliveryId: string }> {
    const received = await receiveUnless(incoming, {});
    if (!received) throw new Error('storeNew dropped a delivery it was not asked to drop');
    return received;
  }

  /** Receives the delivery; undefined when it was only counted as dropped (`options.dropUnregisteredAs`). */
  async function receiveUnless(incoming: IncomingDelivery, options: { dropUnregisteredAs?: string }): Promise<(Outcome & { deliveryId: string }) | undefined> {
    const { inlineBudgetMs: _budget, ignoreReason: _ignore, ...fields } = incoming;
    const delivery: NewDelivery = { id: randomUUID(), ...fields };
    const deliveryId = delivery.id;
    const budget = incoming.inlineBudgetMs ?? 0;
    // The claim outlives the inline budget, so the worker never races the request on the same delivery. Without a
    // budget the worker works it: this process's, from the moment it is stored, when it has a slot free.
    const handOver = !incoming.ignoreReason && budget <= 0 ? deps.handOver?.(delivery) : undefined;
    let stored;
    try {
      stored = incoming.ignoreReason
        ? await deps.deliveries.insertIgnored(delivery, incoming.ignoreReason, options)
        : await deps.deliveries.storeNew(delivery, budget > 0 ? budget + 30_000 : handOver?.claimMs ?? 0, options);
    } catch (error) {
      handOver?.release();
      throw error;
    }
    if (handOver) {
      if (stored.kind === 'stored') handOver.stored(stored.delivery);
      else handOver.release();
    }
    if (stored.kind === 'dropped') return undefined;
    if (stored.kind === 'stored' && incoming.ignoreReason) {
      webhooks.inc({ marketplace: incoming.marketplace, outcome: 'ignored' });
      return { deliveryId, status: 'ignored', reason: incoming.ignoreReason, orderId: null };
    }
    if (stored.kind === 'duplicate') {
      webhooks.inc({ marketplace: incoming.marketplace, outcome: 'duplicate' });
      return { deliveryId, status: 'duplicate', reason: 'DUPLICATE_DELIVERY', orderId: stored.orderId };
    }
    if (budget <= 0) {
      if (!handOver) deps.nudgeWorker();
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
      if (check.foreignApplication) {
        await deps.deliveries.countDropped(incoming.marketplace, 'FOREIGN_APPLICATION');
        return;
      }
      // whether a seller registered the account is asked by the statement that stores it (one round trip per ack)
      await receiveUnless(incoming, { dropUnregisteredAs: 'UNKNOWN_ACCOUNT' });
    },
  };
}
export type DeliveryReceiver = ReturnType<typeof createDeliveryReceiver>;
