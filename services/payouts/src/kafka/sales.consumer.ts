import { Streams, type SaleEvent } from '@postsale/contracts';
import type { ConsumerSpec } from '@postsale/runtime';
import type { SaleIntents } from '../domain/sale-intents.use-case';

/** sales stream → payout intents (records only; the batching poller talks to PayPal). */
export function salesConsumer(intents: SaleIntents): ConsumerSpec<SaleEvent> {
  return {
    group: 'payouts.sales',
    streams: [Streams.sales],
    async handle(event, { trx }) {
      const meta = { eventId: event.eventId, orderId: event.orderId, sellerId: event.sellerId };
      if (event.type === 'SaleRecorded') await intents.recordSale(trx, meta, event.payload);
      else if (event.type === 'SaleReversed') await intents.reverseSale(trx, meta, event.payload);
    },
  };
}
