import { Streams, type SaleEvent } from '@postsale/contracts';
import type { ConsumerSpec } from '@postsale/runtime';
import type { PayoutsContext } from '../domain/context';
import { recordSale, reverseSale } from '../domain/sale-intents.use-case';

/** sales stream → payout intents (records only; the batching poller talks to PayPal). */
export function salesConsumer(ctx: PayoutsContext): ConsumerSpec<SaleEvent> {
  return {
    group: 'payouts.sales',
    streams: [Streams.sales],
    async handle(event, { trx }) {
      const meta = { eventId: event.eventId, orderId: event.orderId, sellerId: event.sellerId };
      if (event.type === 'SaleRecorded') await recordSale(ctx, trx, meta, event.payload);
      else if (event.type === 'SaleReversed') await reverseSale(ctx, trx, meta, event.payload);
    },
  };
}
