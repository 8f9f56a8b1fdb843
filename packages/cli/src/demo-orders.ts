import { DEMO, newEbaySale, newMercadoLibreSale, newPayPalStorefrontSale, type SandboxWorld } from '@postsale/sandbox';

export type DemoMarketplace = 'ebay' | 'mercadolibre' | 'paypal';

export interface SentOrder {
  marketplace: DemoMarketplace;
  externalOrderId: string;
  /** HTTP status ingest answered (for every delivery of this order) */
  statuses: number[];
}

/**
 * Makes a customer buy from the demo seller on a marketplace (seeded in the sandbox) and delivers what that
 * marketplace would send to ingest: eBay's signed notifications (one per line item), MercadoLibre's notification,
 * or the storefront's capture call.
 */
export async function sendDemoOrder(world: SandboxWorld, ingestUrl: string, marketplace: DemoMarketplace): Promise<SentOrder> {
  switch (marketplace) {
    case 'ebay': {
      const { order, notifications } = newEbaySale(world);
      const statuses: number[] = [];
      for (const n of notifications) statuses.push((await world.ebay.deliver(`${ingestUrl}/webhooks/ebay`, n)).status);
      return { marketplace, externalOrderId: order.orderId, statuses };
    }
    case 'mercadolibre': {
      const { order, notification } = newMercadoLibreSale(world);
      const result = await world.mercadolibre.deliver(`${ingestUrl}/webhooks/mercadolibre`, notification);
      return { marketplace, externalOrderId: String(order.id), statuses: [result.status] };
    }
    case 'paypal': {
      const order = newPayPalStorefrontSale(world);
      const response = await fetch(`${ingestUrl}/checkout/paypal/orders/${order.id}/capture`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ storefrontId: DEMO.paypal.storefrontId }),
      });
      return { marketplace, externalOrderId: order.id, statuses: [response.status] };
    }
  }
}
