import { Streams, type FulfillmentEvent, type OrderEvent, type PayoutEvent } from '@postsale/contracts';
import type { ConsumerSpec } from '@postsale/runtime';
import type { SalesDeps } from '../domain/ports';
import { recordFulfillmentEvent, recordOrderEvent, recordPayoutEvent } from '../domain/sale-ledger.use-case';

/**
 * One consumer group over the three input streams (orders, fulfillment, payouts), so one inbox covers them all. Each
 * event runs the ledger use case inside the inbox transaction; nothing here calls an outside system.
 */
export function ledgerConsumer(group: string, deps: SalesDeps): ConsumerSpec<OrderEvent | FulfillmentEvent | PayoutEvent> {
  return {
    group,
    streams: [Streams.orders, Streams.fulfillment, Streams.payouts],
    // the ledger books nothing for these (shipping and delivery are fulfillment's story; a failed payout moved no
    // money): skipped unread, without a transaction
    ignores: ['OrderShipped', 'OrderDelivered', 'PayoutFailed'] satisfies Array<(FulfillmentEvent | PayoutEvent)['type']>,
    // every event locks its order's row; a joint transaction of several orders takes them in one order (no deadlock)
    lockKey: (event) => event.orderId,
    async handle(event, { trx, topic }) {
      if (topic.endsWith(Streams.orders.baseName)) await recordOrderEvent(deps, trx, event as OrderEvent);
      else if (topic.endsWith(Streams.payouts.baseName)) await recordPayoutEvent(deps, trx, event as PayoutEvent);
      else await recordFulfillmentEvent(deps, trx, event as FulfillmentEvent);
    },
  };
}
