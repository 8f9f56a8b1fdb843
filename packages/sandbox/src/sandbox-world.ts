import { randomInt } from 'node:crypto';
import { startAliExpressFake, type AliExpressFake } from './aliexpress';
import { startEbayFake, type EbayFake } from './ebay/ebay-fake';
import { buildEbayOrder } from './ebay/ebay-order';
import { startMercadoLibreFake, type MercadoLibreFake } from './mercadolibre/mercadolibre-fake';
import { buildMlOrder, buildMlShipment } from './mercadolibre/mercadolibre-order';
import { startPayPalFake, type PayPalFake } from './paypal/paypal-fake';

/**
 * All four outside systems, started together and seeded with one demo seller whose listings on every marketplace map
 * to one AliExpress product. Used by `npm start`, the demo, the end-to-end tests and the benchmark.
 */
export const DEMO = {
  sellerId: 'demo-seller',
  ebay: { username: 'demo_ebay_seller', userId: 'EBAYUSER123', token: 'v^1.1#demo-ebay-user-token', listingId: '110551991' },
  mercadolibre: { userId: 212345678, token: 'APP_USR-demo-ml-token', itemId: 'MLC1234567' },
  // captureSecret: what the demo storefront's server signs capture calls with (demo only, not a real secret)
  paypal: { webhookId: 'WH-DEMO-STOREFRONT', storefrontId: 'demo-storefront', sku: 'LAMP-1', captureSecret: 'demo-storefront-capture-secret-0123456789' },
  aliexpress: {
    account: 'demo-ae-account', appKey: '500001', appSecret: 'demo-ae-app-secret-0123456789', accessToken: 'demo-ae-access-token',
    productId: '1005006000000001', skuId: '12000036000000001', skuAttr: '14:193#Warm white',
    webEmail: 'buyer@demo-seller.example', webPassword: 'demo-web-password',
  },
  payeeEmail: 'payouts@demo-seller.example',
  platformPayeeEmail: 'commission@postsale-platform.example',
} as const;

export interface SandboxWorld {
  ebay: EbayFake;
  mercadolibre: MercadoLibreFake;
  paypal: PayPalFake;
  aliexpress: AliExpressFake;
  urls: { ebay: string; mercadolibre: string; paypal: string; aliexpressGateway: string; aliexpressWeb: string };
  stop(): Promise<void>;
}

export interface SandboxWorldOptions {
  ports?: { ebay?: number; mercadolibre?: number; paypal?: number; aliexpress?: number };
  /** PayPal payout-item webhooks go here when set (the payouts service's /webhooks/paypal) */
  payoutWebhookUrl?: string;
  /** supplier price in USD (as AliExpress returns it) */
  supplierUnitPrice?: string;
}

export async function startSandboxWorld(options: SandboxWorldOptions = {}): Promise<SandboxWorld> {
  const ports = options.ports ?? {};
  const [ebay, mercadolibre, paypal, aliexpress] = await Promise.all([
    startEbayFake({ port: ports.ebay }),
    startMercadoLibreFake({ port: ports.mercadolibre }),
    startPayPalFake({ port: ports.paypal, processAfterMs: 0, webhookUrl: options.payoutWebhookUrl, webhookId: DEMO.paypal.webhookId }),
    startAliExpressFake({ port: ports.aliexpress, dailyQuota: 10_000_000 }),
  ]);
  ebay.registerSellerToken(DEMO.ebay.token, DEMO.ebay.username);
  mercadolibre.registerSeller({ userId: DEMO.mercadolibre.userId, accessToken: DEMO.mercadolibre.token, nickname: 'DEMOSELLER' });
  paypal.registerWebhook(DEMO.paypal.webhookId);
  const ae = DEMO.aliexpress;
  aliexpress.registerSeller({ account: ae.account, appKey: ae.appKey, appSecret: ae.appSecret, accessToken: ae.accessToken });
  aliexpress.registerWebAccount({ email: ae.webEmail, password: ae.webPassword, account: ae.account });
  aliexpress.seedProduct({
    productId: ae.productId,
    subject: 'LED desk lamp, warm white',
    skus: [{
      skuId: ae.skuId, skuAttr: ae.skuAttr, currency: 'USD',
      prices: { default: options.supplierUnitPrice ?? '7.50' }, stock: { default: 1_000_000 }, shippingCost: { default: '0.00' },
    }],
  });
  return {
    ebay, mercadolibre, paypal, aliexpress,
    urls: {
      ebay: ebay.url, mercadolibre: mercadolibre.url, paypal: paypal.url,
      aliexpressGateway: `${aliexpress.url}/sync`, aliexpressWeb: aliexpress.url,
    },
    async stop() {
      await Promise.all([ebay.stop(), mercadolibre.stop(), paypal.stop(), aliexpress.stop()]);
    },
  };
}

/** Demo buyers ship to Chile (MercadoLibre, CLP) or the US (eBay and PayPal, USD). */
const CL_ADDRESS = { fullName: 'Camila Rojas', addressLine1: 'Av. Providencia 1234', city: 'Santiago', stateOrProvince: 'RM', postalCode: '7500000', countryCode: 'CL' };
const US_ADDRESS = { fullName: 'Jordan Smith', addressLine1: '500 Market St', city: 'San Francisco', stateOrProvince: 'CA', postalCode: '94105', countryCode: 'US' };

/** Seeds a paid eBay order for the demo seller and returns it with one signed notification per line item. */
export function newEbaySale(world: SandboxWorld, options: { quantity?: number; unitValue?: string } = {}) {
  const order = buildEbayOrder({
    sellerUsername: DEMO.ebay.username,
    currency: 'USD',
    deliveryCost: '4.99',
    shipTo: { fullName: US_ADDRESS.fullName, contactAddress: { ...US_ADDRESS } },
    lineItems: [{
      lineItemId: String(randomInt(1e9, 9e9)), legacyItemId: DEMO.ebay.listingId, sku: DEMO.paypal.sku, title: 'LED desk lamp',
      quantity: options.quantity ?? 1, unitValue: options.unitValue ?? '24.99',
    }],
  });
  world.ebay.seedOrder(order);
  const notifications = world.ebay.signedNotificationsPerLineItem({
    orderId: order.orderId,
    lineItems: order.lineItems.map((l) => ({ lineItemId: l.lineItemId, listingId: l.legacyItemId, quantity: l.quantity })),
    username: DEMO.ebay.username,
    userId: DEMO.ebay.userId,
  });
  return { order, notifications };
}

/** Seeds a paid MercadoLibre order (CLP) with its shipment and returns the notification MercadoLibre would send. */
export function newMercadoLibreSale(world: SandboxWorld, options: { quantity?: number; unitPrice?: number } = {}) {
  const shipment = buildMlShipment({
    sellerId: DEMO.mercadolibre.userId,
    mode: 'me1',
    receiverAddress: {
      receiver_name: CL_ADDRESS.fullName, street_name: 'Av. Providencia', street_number: '1234', zip_code: CL_ADDRESS.postalCode,
      city: { name: CL_ADDRESS.city }, state: { id: 'CL-RM', name: 'Región Metropolitana' }, country: { id: 'CL', name: 'Chile' },
    },
  });
  world.mercadolibre.seedShipment(shipment);
  const order = buildMlOrder({
    sellerId: DEMO.mercadolibre.userId,
    status: 'paid',
    currencyId: 'CLP',
    shipmentId: shipment.id,
    items: [{ id: DEMO.mercadolibre.itemId, title: 'Lámpara LED', quantity: options.quantity ?? 1, unitPrice: options.unitPrice ?? 19990 }],
  });
  world.mercadolibre.seedOrder(order);
  const notification = world.mercadolibre.notification({ orderId: order.id, userId: DEMO.mercadolibre.userId });
  return { order, shipment, notification };
}

/** Seeds an approved PayPal checkout order on the demo storefront, ready to be captured by ingest. */
export function newPayPalStorefrontSale(world: SandboxWorld, options: { amount?: string } = {}) {
  return world.paypal.seedCheckoutOrder({
    amount: options.amount ?? '29.99',
    currency: 'USD',
    fee: undefined,
    customId: DEMO.paypal.storefrontId,
    // the storefront's purchase unit names the product; ingest maps it to the order line's listing id
    referenceId: DEMO.paypal.sku,
  } as Parameters<PayPalFake['seedCheckoutOrder']>[0]);
}
