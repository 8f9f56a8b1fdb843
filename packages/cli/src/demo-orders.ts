import { createHmac } from 'node:crypto';
import { DEMO, newEbaySale, newMercadoLibreSale, newPayPalStorefrontSale, type SandboxWorld } from '@postsale/sandbox';

export type DemoMarketplace = 'ebay' | 'mercadolibre' | 'paypal';

export interface PreparedOrder {
  marketplace: DemoMarketplace;
  externalOrderId: string;
  /** Delivers what the marketplace sends to ingest; call again to retry the SAME delivery, as marketplaces do. */
  deliver(ingestUrl: string): Promise<number[]>;
}

export interface SentOrder {
  marketplace: DemoMarketplace;
  externalOrderId: string;
  /** HTTP status ingest answered, per delivery of this order */
  statuses: number[];
}

/**
 * A customer buys from the demo seller on a marketplace (seeded in the sandbox). The delivery is eBay's signed
 * notifications (one per line item), MercadoLibre's notification, or the storefront's capture call.
 */
export function prepareDemoOrder(world: SandboxWorld, marketplace: DemoMarketplace): PreparedOrder {
  switch (marketplace) {
    case 'ebay': {
      const { order, notifications } = newEbaySale(world);
      return {
        marketplace, externalOrderId: order.orderId,
        deliver: async (ingestUrl) => {
          const statuses: number[] = [];
          for (const n of notifications) statuses.push((await world.ebay.deliver(`${ingestUrl}/webhooks/ebay`, n)).status);
          return statuses;
        },
      };
    }
    case 'mercadolibre': {
      const { order, notification } = newMercadoLibreSale(world);
      return {
        marketplace, externalOrderId: String(order.id),
        deliver: async (ingestUrl) => [(await world.mercadolibre.deliver(`${ingestUrl}/webhooks/mercadolibre`, notification)).status],
      };
    }
    case 'paypal': {
      const order = newPayPalStorefrontSale(world);
      return {
        marketplace, externalOrderId: order.id,
        deliver: async (ingestUrl) => {
          // The storefront's server signs each capture call: HMAC-SHA256(secret, timestamp + "." + orderId + "." + body).
          const body = JSON.stringify({ storefrontId: DEMO.paypal.storefrontId });
          const timestamp = String(Math.floor(Date.now() / 1000));
          const signature = createHmac('sha256', DEMO.paypal.captureSecret).update(`${timestamp}.${order.id}.${body}`).digest('hex');
          const response = await fetch(`${ingestUrl}/checkout/paypal/orders/${order.id}/capture`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-storefront-timestamp': timestamp, 'x-storefront-signature': `sha256=${signature}` },
            body,
          });
          return [response.status];
        },
      };
    }
  }
}

export async function sendDemoOrder(world: SandboxWorld, ingestUrl: string, marketplace: DemoMarketplace): Promise<SentOrder> {
  const prepared = prepareDemoOrder(world, marketplace);
  return { marketplace, externalOrderId: prepared.externalOrderId, statuses: await prepared.deliver(ingestUrl) };
}
