import { Streams, type FulfillmentEvent } from '@postsale/contracts';
import type { ConsumerSpec } from '@postsale/runtime';
import type { PayoutsContext } from '../domain/context';
import { recordMilestone } from '../domain/sale-intents.use-case';

/** fulfillment stream → shipment/delivery milestones for release policies; purchases are the sales service's concern. */
export function fulfillmentConsumer(ctx: PayoutsContext): ConsumerSpec<FulfillmentEvent> {
  return {
    group: 'payouts.fulfillment',
    streams: [Streams.fulfillment],
    // skipped unread, without a transaction: about one such event per order
    ignores: ['PurchaseCompleted', 'PurchaseFailed'] satisfies Array<FulfillmentEvent['type']>,
    async handle(event, { trx }) {
      const meta = { eventId: event.eventId, orderId: event.orderId, sellerId: event.sellerId };
      if (event.type === 'OrderShipped' || event.type === 'OrderDelivered') await recordMilestone(ctx, trx, meta, event);
    },
  };
}
