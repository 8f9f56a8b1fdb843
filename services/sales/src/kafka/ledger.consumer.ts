import { Streams, type FulfillmentEvent, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import type { ConsumerSpec, Tx } from '@postsale/runtime';
import type { SaleLedger } from '../domain/sale-ledger.use-case';

/**
 * One consumer group over the three input streams (orders, fulfillment, payouts), so one inbox covers them all. Each
 * event runs the ledger use case inside the inbox transaction; nothing here calls an outside system.
 */
export function ledgerConsumer(group: string, ledgerFor: (trx: Tx) => SaleLedger): ConsumerSpec<OrderEvent | FulfillmentEvent | PayoutEvent> {
  return {
    group,
    streams: [Streams.orders, Streams.fulfillment, Streams.payouts],
    async handle(event, { trx, topic }) {
      const ledger = ledgerFor(trx);
      if (topic.endsWith(Streams.orders.baseName)) await ledger.onOrderEvent(event as OrderEvent);
      else if (topic.endsWith(Streams.payouts.baseName)) await ledger.onPayoutEvent(event as PayoutEvent);
      else await ledger.onFulfillmentEvent(event as FulfillmentEvent);
    },
  };
}
