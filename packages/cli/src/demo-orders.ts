import { createHmac } from 'node:crypto';
import { callHttp } from '@postsale/runtime';
import { DEMO, newEbaySale, newMercadoLibreSale, newPayPalStorefrontSale, type SandboxWorld } from '@postsale/sandbox';

export type DemoMarketplace = 'ebay' | 'mercadolibre' | 'paypal';

/** One HTTP request a marketplace sends to ingest: a POST of `body` to `path` (relative to ingest's URL). */
export interface DemoRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

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
 * `requests(now)` builds the wire form, signed as of `now` (the storefront's signature carries a timestamp): the
 * benchmark prepares them before it offers them, `prepareDemoOrder` sends them as it goes.
 */
export function demoOrderRequests(world: SandboxWorld, marketplace: DemoMarketplace): { marketplace: DemoMarketplace; externalOrderId: string; requests(now?: number): DemoRequest[] } {
  switch (marketplace) {
    case 'ebay': {
      const { order, notifications } = newEbaySale(world);
      const wire = notifications.map((n) => ({ path: '/webhooks/ebay', headers: n.headers, body: JSON.stringify(n.body) }));
      return { marketplace, externalOrderId: order.orderId, requests: () => wire };
    }
    case 'mercadolibre': {
      const { order, notification } = newMercadoLibreSale(world);
      const wire = [{ path: '/webhooks/mercadolibre', headers: { 'Content-Type': 'application/json' }, body: world.mercadolibre.notificationJson(notification) }];
      return { marketplace, externalOrderId: String(order.id), requests: () => wire };
    }
    case 'paypal': {
      const order = newPayPalStorefrontSale(world);
      return {
        marketplace, externalOrderId: order.id,
        requests: (now = Date.now()) => {
          // The storefront's server signs each capture call: HMAC-SHA256(secret, timestamp + "." + orderId + "." + body).
          const body = JSON.stringify({ storefrontId: DEMO.paypal.storefrontId });
          const timestamp = String(Math.floor(now / 1000));
          const signature = createHmac('sha256', DEMO.paypal.captureSecret).update(`${timestamp}.${order.id}.${body}`).digest('hex');
          return [{
            path: `/checkout/paypal/orders/${order.id}/capture`,
            headers: { 'content-type': 'application/json', 'x-storefront-timestamp': timestamp, 'x-storefront-signature': `sha256=${signature}` },
            body,
          }];
        },
      };
    }
  }
}

export function prepareDemoOrder(world: SandboxWorld, marketplace: DemoMarketplace): PreparedOrder {
  const { externalOrderId, requests } = demoOrderRequests(world, marketplace);
  return {
    marketplace, externalOrderId,
    deliver: async (ingestUrl) => {
      const statuses: number[] = [];
      for (const r of requests()) {
        // the services' own client: the benchmark's generator shares the cores with the services, and fetch costs
        // several times its CPU per request
        const response = await callHttp(`${ingestUrl}${r.path}`, { method: 'POST', headers: r.headers, body: r.body, timeoutMs: 30_000 });
        statuses.push(response.status);
      }
      return statuses;
    },
  };
}

export async function sendDemoOrder(world: SandboxWorld, ingestUrl: string, marketplace: DemoMarketplace): Promise<SentOrder> {
  const prepared = prepareDemoOrder(world, marketplace);
  return { marketplace, externalOrderId: prepared.externalOrderId, statuses: await prepared.deliver(ingestUrl) };
}
