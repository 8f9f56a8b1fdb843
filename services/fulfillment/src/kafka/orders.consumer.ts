import { Streams, type OrderEvent } from '@postsale/contracts';
import type { ConsumerSpec } from '@postsale/runtime';
import type { FulfillmentDeps } from '../domain/ports';
import { recordOrderEvent } from '../domain/record-order.use-case';

/** orders stream → the fulfillment row and its transitions, inside the inbox transaction. No outside calls here. */
export function ordersConsumer(deps: FulfillmentDeps, onRecorded: () => void): ConsumerSpec<OrderEvent> {
  return {
    group: 'fulfillment.orders',
    streams: [Streams.orders],
    async handle(event, { trx }) {
      await recordOrderEvent(deps, event, trx);
      trx.executionPromise.then(onRecorded, () => undefined);
    },
  };
}
