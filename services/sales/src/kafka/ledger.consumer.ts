import { Streams, type FulfillmentEvent, type OrderEvent } from '@postsale/contracts';
import type { ConsumerSpec, Tx } from '@postsale/runtime';
import type { SaleLedger } from '../domain/sale-ledger.use-case';

/**
 * One consumer group over both input streams, so one inbox covers both. Each event runs the ledger use case inside the
 * inbox transaction; nothing here calls an outside system.
 */
export function ledgerConsumer(group: string, ledgerFor: (trx: Tx) => SaleLedger): ConsumerSpec<OrderEvent | FulfillmentEvent> {
  return {
    group,
    streams: [Streams.orders, Streams.fulfillment],
    async handle(event, { trx, topic }) {
      const ledger = ledgerFor(trx);
      if (topic.endsWith(Streams.orders.baseName)) await ledger.onOrderEvent(event as OrderEvent);
      else await ledger.onFulfillmentEvent(event as FulfillmentEvent);
    },
  };
}
