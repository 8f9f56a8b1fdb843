import axios from 'axios';
import type { SandboxWorld } from '@postsale/sandbox';
import { DEMO } from '@postsale/sandbox';

/**
 * Registers the demo seller with each service through its admin API, exactly as an operator would: marketplace
 * accounts and tokens (ingest), supplier credentials, purchase policy and listing mappings (fulfillment),
 * commercial terms (sales), payee and release policy (payouts).
 */
export async function registerDemoSeller(urls: Record<string, string>, adminToken: string, world: SandboxWorld): Promise<void> {
  void world;
  const headers = { authorization: `Bearer ${adminToken}` };
  const put = async (url: string, body: unknown) => {
    const response = await axios.put(url, body, { headers, validateStatus: () => true });
    if (response.status >= 300) throw new Error(`PUT ${url} answered ${response.status}: ${JSON.stringify(response.data)}`);
  };
  const seller = DEMO.sellerId;

  await put(`${urls.ingest}/admin/sellers/${seller}`, {
    displayName: 'Demo Seller',
    accounts: [
      { marketplace: 'EBAY', accountId: DEMO.ebay.username, accessToken: DEMO.ebay.token },
      { marketplace: 'MERCADOLIBRE', accountId: String(DEMO.mercadolibre.userId), accessToken: DEMO.mercadolibre.token },
      { marketplace: 'PAYPAL_STOREFRONT', accountId: DEMO.paypal.storefrontId, captureSecret: DEMO.paypal.captureSecret },
    ],
  });

  await registerWithFulfillment(urls.fulfillment!, put);
  await registerWithSales(urls.sales!, put);

  await put(`${urls.payouts}/admin/sellers/${seller}/payee`, { email: DEMO.payeeEmail, releasePolicy: 'immediate' });
  // PayPal Payouts cannot pay CLP: payouts converts MercadoLibre's CLP shares into USD at its own dated rate table
  // (units of `to` per 1 `from`). 1/950 (the demo's USD:CLP) = 0.0010526315…, cut to 8 decimals: "0.00105263"
  // (cut, not rounded up, so the demo rate never pays more than 950 CLP per USD would).
  const today = new Date().toISOString().slice(0, 10);
  await put(`${urls.payouts}/admin/fx-rates/CLP/USD/${today}`, { rate: '0.00105263', source: 'demo rate table (1/950)' });
}

type Put = (url: string, body: unknown) => Promise<void>;

async function registerWithFulfillment(url: string, put: Put): Promise<void> {
  const seller = `${url}/admin/sellers/${DEMO.sellerId}`;
  const ae = DEMO.aliexpress;
  await put(`${seller}/credentials`, {
    api: { appKey: ae.appKey, appSecret: ae.appSecret, accessToken: ae.accessToken },
    web: { email: ae.webEmail, password: ae.webPassword },
  });
  // Buy only with at least a 10 % margin; MercadoLibre sales are in CLP while the supplier charges USD.
  await put(`${seller}/policy`, { minMarginBps: 1000, maxCost: null, purchaseChannel: 'API', fxRates: { 'USD:CLP': DEMO_USD_CLP } });
  const listing = (listingId: string) => ({ listingId, sku: null, productId: ae.productId, skuAttr: ae.skuAttr });
  await put(`${seller}/mappings`, {
    mappings: [listing(DEMO.ebay.listingId), listing(DEMO.mercadolibre.itemId), listing(DEMO.paypal.sku)],
  });
  // Tracking goes back to the marketplaces with the seller's own tokens.
  await put(`${seller}/marketplace-tokens/EBAY`, { accessToken: DEMO.ebay.token });
  // MercadoLibre's me1 tracking needs the carrier's service id (11: the demo carrier).
  await put(`${seller}/marketplace-tokens/MERCADOLIBRE`, { accessToken: DEMO.mercadolibre.token, mlServiceId: 11 });
}

async function registerWithSales(url: string, put: Put): Promise<void> {
  await put(`${url}/admin/sellers/${DEMO.sellerId}/commercial-terms`, {
    commissionRateBps: 1000,
    marketplaceFees: { EBAY: { percentBps: 1325 }, MERCADOLIBRE: { percentBps: 1300 }, PAYPAL_STOREFRONT: { percentBps: 0 } },
  });
  const today = new Date().toISOString().slice(0, 10);
  await put(`${url}/admin/fx-rates/USD/CLP/${today}`, { rate: DEMO_USD_CLP, source: 'demo rate table' });
}

/** The demo's dated USD→CLP rate (CLP per USD). */
const DEMO_USD_CLP = '950';
