import { randomBytes } from 'node:crypto';
import { startFakeServer, type FakeServer, type FailureRule } from '../fake-server';
import type { AccessTokenGrant, WebAccount } from './accounts';
import { forCountry } from './catalog';
import { mountGateway } from './gateway';
import { FakeState } from './state';
import type {
  AliExpressEndReason,
  AliExpressFakeOptions,
  MethodFailureMode,
  PaymentOutcome,
  ProductSeed,
  SupplierOrder,
  WebCheckoutSwitches,
} from './types';
import { mountWebCheckout } from './web-checkout';

/**
 * A local AliExpress: the Open Platform gateway (`/sync`) for the Dropshipping API plus the supplier's web checkout,
 * on one real HTTP server. Tests, the demo and the benchmark set it up and inspect it through this object.
 */
export interface SellerCredentials {
  account: string;
  appKey: string;
  appSecret: string;
  accessToken: string;
}

export interface AliExpressFake {
  url: string;
  port: number;
  /** `${url}/sync`, the gateway URL a client is configured with */
  gatewayUrl: string;
  /** the underlying server, for path-based failure rules and the raw request log */
  server: FakeServer;
  fail(rule: FailureRule): () => void;
  /** clears path rules and method rules */
  clearFailures(): void;
  stop(): Promise<void>;

  registerApp(app: { appKey: string; appSecret: string }): void;
  registerAccessToken(grant: AccessTokenGrant): void;
  expireAccessToken(accessToken: string): void;
  /** app + token for one seller account in one call; unspecified credentials are generated */
  registerSeller(seller: { account: string; appKey?: string; appSecret?: string; accessToken?: string }): SellerCredentials;
  registerWebAccount(account: WebAccount): void;

  seedProduct(seed: ProductSeed): void;
  setSkuPrice(productId: string, skuId: string, price: string, country?: string): void;
  setStock(productId: string, skuId: string, stock: number, country?: string): void;
  /** the stock order.create would check for this country */
  stockOf(productId: string, skuId: string, country?: string): number;
  delistProduct(productId: string): void;
  relistProduct(productId: string): void;

  blacklistBuyer(name: string): void;
  disableAccount(account: string): void;
  enableAccount(account: string): void;

  setPaymentOutcome(outcome: PaymentOutcome): void;
  settlePayment(orderId: string | number): SupplierOrder;
  shipOrder(orderId: string | number, shipment: { carrier: string; trackingNumber: string }): SupplierOrder;
  addTrackingEvent(orderId: string | number, event: { name: string; desc: string }): SupplierOrder;
  deliverOrder(orderId: string | number): SupplierOrder;
  /** puts the order IN_CANCEL and its units back in stock (there is no documented DS cancel API) */
  cancelOrder(orderId: string | number): SupplierOrder;
  /** puts an unshipped order in RISK_CONTROL_HOLD, WAIT_GROUP or WAIT_COMPLETE_ADDRESS (Corrections) */
  holdOrder(orderId: string | number, status: 'RISK_CONTROL_HOLD' | 'WAIT_GROUP' | 'WAIT_COMPLETE_ADDRESS'): SupplierOrder;
  /** closes the order without delivery: FINISH with this close end_reason on its child orders */
  closeOrder(orderId: string | number, endReason: AliExpressEndReason): SupplierOrder;

  /**
   * method-aware injection for the single `/sync` route; `times` defaults to every call, `rate` (0..1, default 1) is
   * the share of calls it applies to — e.g. `failMethod('aliexpress.ds.order.create', {kind:'drop-after-handling'},
   * Infinity, 0.1)`: the order is created, and one answer in ten is lost
   */
  failMethod(method: string, mode: MethodFailureMode, times?: number, rate?: number): () => void;
  setWebCheckout(switches: WebCheckoutSwitches): void;

  /** every supplier order ever created, both channels, oldest first (copies) */
  orders(): SupplierOrder[];
  order(orderId: string | number): SupplierOrder | undefined;
  /** API orders with this out_order_id and web orders with this memo */
  ordersByOutOrderId(outOrderId: string): SupplierOrder[];
  /** gateway requests that named this method, counted before any check (rejected and injected ones included) */
  callCount(method: string): number;
}

const copy = <T>(value: T): T => structuredClone(value);

export async function startAliExpressFake(options: AliExpressFakeOptions = {}): Promise<AliExpressFake> {
  const state = new FakeState(options);
  const server = await startFakeServer(
    'aliexpress',
    (app) => {
      mountGateway(app, state);
      mountWebCheckout(app, state);
    },
    { port: options.port ?? 0 },
  );
  return {
    url: server.url,
    port: server.port,
    gatewayUrl: `${server.url}/sync`,
    server,
    fail: (rule) => server.fail(rule),
    clearFailures: () => {
      server.clearFailures();
      state.failures.clear();
    },
    stop: () => server.stop(),
    ...setup(state),
    ...lifecycle(state),
    ...inspection(state),
  };
}

type SetupApi = Pick<
  AliExpressFake,
  | 'registerApp' | 'registerAccessToken' | 'expireAccessToken' | 'registerSeller' | 'registerWebAccount' | 'seedProduct'
  | 'setSkuPrice' | 'setStock' | 'stockOf' | 'delistProduct' | 'relistProduct' | 'blacklistBuyer' | 'disableAccount'
  | 'enableAccount' | 'failMethod' | 'setWebCheckout' | 'setPaymentOutcome'
>;

function setup(state: FakeState): SetupApi {
  const { accounts, catalog } = state;
  let sellers = 0; // generated app keys must not collide between sellers of one fake
  return {
    registerApp: ({ appKey, appSecret }) => accounts.registerApp(appKey, appSecret),
    registerAccessToken: (grant) => accounts.registerToken(grant),
    expireAccessToken: (token) => accounts.expireToken(token, state.now()),
    registerSeller: (seller) => {
      const creds: SellerCredentials = {
        account: seller.account,
        appKey: seller.appKey ?? String(501000 + (sellers += 1)),
        appSecret: seller.appSecret ?? randomBytes(16).toString('hex'),
        accessToken: seller.accessToken ?? `50000${randomBytes(20).toString('hex')}`,
      };
      accounts.registerApp(creds.appKey, creds.appSecret);
      accounts.registerToken({ appKey: creds.appKey, accessToken: creds.accessToken, account: creds.account });
      return creds;
    },
    registerWebAccount: (account) => accounts.registerWebAccount(account),
    seedProduct: (seed) => catalog.seed(seed),
    setSkuPrice: (productId, skuId, price, country) => catalog.setPrice(productId, skuId, price, country),
    setStock: (productId, skuId, stock, country) => catalog.setStock(productId, skuId, stock, country),
    stockOf: (productId, skuId, country) => forCountry(catalog.sku(productId, skuId).stock, country),
    delistProduct: (productId) => catalog.setOnSelling(productId, false),
    relistProduct: (productId) => catalog.setOnSelling(productId, true),
    blacklistBuyer: (name) => accounts.blacklistBuyer(name),
    disableAccount: (account) => accounts.disable(account),
    enableAccount: (account) => accounts.enable(account),
    failMethod: (method, mode, times, rate) => state.failures.add(method, mode, times, rate),
    setWebCheckout: (switches) => {
      state.web = { ...switches };
    },
    setPaymentOutcome: (outcome) => {
      state.paymentOutcome = outcome;
    },
  };
}

function lifecycle(state: FakeState): Pick<AliExpressFake, 'settlePayment' | 'shipOrder' | 'addTrackingEvent' | 'deliverOrder' | 'cancelOrder' | 'closeOrder' | 'holdOrder'> {
  const { book, catalog } = state;
  return {
    settlePayment: (orderId) => copy(book.settle(orderId)),
    shipOrder: (orderId, shipment) => copy(book.ship(orderId, shipment)),
    addTrackingEvent: (orderId, event) => copy(book.addTrackingEvent(orderId, event)),
    deliverOrder: (orderId) => copy(book.deliver(orderId)),
    closeOrder: (orderId, endReason) => copy(book.close(orderId, endReason)),
    holdOrder: (orderId, status) => copy(book.hold(orderId, status)),
    cancelOrder: (orderId) => {
      const order = book.cancel(orderId);
      const country = order.address.country ?? '';
      for (const item of order.items) catalog.putBack(catalog.sku(item.productId, item.skuId), country, item.quantity);
      return copy(order);
    },
  };
}

function inspection(state: FakeState): Pick<AliExpressFake, 'orders' | 'order' | 'ordersByOutOrderId' | 'callCount'> {
  const { book } = state;
  return {
    orders: () => book.all().map(copy),
    order: (orderId) => {
      const order = book.get(orderId);
      return order ? copy(order) : undefined;
    },
    ordersByOutOrderId: (id) => book.all().filter((o) => o.outOrderId === id || o.memo === id).map(copy),
    callCount: (method) => state.calls.get(method) ?? 0,
  };
}
