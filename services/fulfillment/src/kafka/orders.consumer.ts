import { Streams, type OrderEvent } from '@postsale/contracts';
import { afterCommit, openOrderReceived, type ConsumerSpec, type HeldSubjectKeys, type KeyEncryptionKey } from '@postsale/runtime';
import type { FulfillmentDeps } from '../domain/ports';
import { recordOrderEvent } from '../domain/record-order.use-case';

/** orders stream → the fulfillment row and its transitions, inside the inbox transaction. No outside calls here. */
export function ordersConsumer(deps: FulfillmentDeps, onRecorded: () => void, kek: KeyEncryptionKey, heldKeys?: HeldSubjectKeys): ConsumerSpec<OrderEvent> {
  return {
    group: 'fulfillment.orders',
    streams: [Streams.orders],
    async handle(event, { trx }) {
      // the ship-to arrives sealed under its buyer's key (crypto-shredding): opened with our copy of the key, which the
      // consumer waits for when it has not arrived yet (a key our replica holds, this transaction stores); an erased
      // buyer's order comes without an address
      const opened: OrderEvent = event.type === 'OrderReceived'
        ? { ...event, payload: await openOrderReceived(trx, kek, event.orderId, event.payload, { held: heldKeys }) }
        : event;
      const handedOver = await recordOrderEvent(deps, opened, trx);
      if (!handedOver) afterCommit(trx, onRecorded);
    },
  };
}
