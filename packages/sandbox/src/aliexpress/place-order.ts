import type { Accounts } from './accounts';
import { forCountry, type Catalog, type CatalogProduct, type CatalogSku } from './catalog';
import { ISO_COUNTRIES } from './countries';
import { fromCents, toCents } from './money';
import type { OrderBook } from './order-book';
import type { LogisticsAddress, PaymentOutcome, SupplierOrder, SupplierOrderItem } from './types';

/**
 * Placing a supplier order, shared by `aliexpress.ds.order.create` and the web checkout so both channels create
 * the same orders under the same rules. Checks run in the order a refusal is most specific; nothing is written
 * (no stock taken, no idempotency key kept) unless every check passes.
 */
export interface OrderLineRequest {
  productId: string;
  quantity: unknown;
  skuAttr?: string;
  logisticsServiceName?: string;
  memo?: string;
}

export interface PlaceOrderRequest {
  account: string;
  channel: 'api' | 'web';
  appKey?: string;
  /** out_order_id (API) or the memo (web) */
  idempotencyKey?: string;
  address: LogisticsAddress;
  lines: OrderLineRequest[];
  payCurrency?: string;
  tryToPay: boolean;
}

export type PlaceOrderResult =
  | { ok: true; order: SupplierOrder; replayed: boolean }
  | { ok: false; errorCode: string; errorMsg: string };

export interface PlaceOrderContext {
  catalog: Catalog;
  accounts: Accounts;
  book: OrderBook;
  now: () => number;
  idempotencyWindowMs: number;
  duplicateBehaviour: 'return-existing' | 'repeated-order-error';
  paymentOutcome: () => PaymentOutcome;
  paymentSettleAfterMs: number;
}

interface PricedLine {
  product: CatalogProduct;
  sku: CatalogSku;
  item: SupplierOrderItem;
}

type Refusal = { ok: false; errorCode: string; errorMsg: string };
const refuse = (errorCode: string, errorMsg: string): Refusal => ({ ok: false, errorCode, errorMsg });

export function idempotencyScope(request: Pick<PlaceOrderRequest, 'channel' | 'appKey' | 'account'>): string {
  return `${request.channel}|${request.appKey ?? ''}|${request.account}`;
}

export function placeOrder(ctx: PlaceOrderContext, request: PlaceOrderRequest): PlaceOrderResult {
  if (ctx.accounts.isDisabled(request.account)) {
    return refuse('USER_ACCOUNT_DISABLED', 'The buyer account is disabled and cannot place orders');
  }
  const replay = findReplay(ctx, request);
  if (replay) return replay;
  const addressProblem = validateAddress(request.address);
  if (addressProblem) return refuse('B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL', addressProblem);
  const buyer = [request.address.full_name, request.address.contact_person].find((n) => ctx.accounts.isBlacklisted(n));
  if (buyer !== undefined) return refuse('BLACKLIST_BUYER_IN_LIST', 'The buyer is in the blacklist');
  const country = (request.address.country ?? '').toUpperCase();
  const priced = priceLines(ctx.catalog, request.lines, country);
  if (!Array.isArray(priced)) return priced;
  const currencyProblem = checkCurrency(priced, request.payCurrency);
  if (currencyProblem) return currencyProblem;
  const stockProblem = checkStock(priced, country);
  if (stockProblem) return stockProblem;
  return { ok: true, order: commit(ctx, request, priced, country), replayed: false };
}

function findReplay(ctx: PlaceOrderContext, request: PlaceOrderRequest): PlaceOrderResult | undefined {
  // Corrections: the web checkout does NOT deduplicate by memo (a note to the seller is just text): only the API's
  // out_order_id is an idempotency key.
  if (!request.idempotencyKey || request.channel !== 'api') return undefined;
  const existing = ctx.book.recall(idempotencyScope(request), request.idempotencyKey, ctx.idempotencyWindowMs);
  if (!existing) return undefined;
  if (ctx.duplicateBehaviour === 'repeated-order-error') {
    // Corrections (AliExpress ds.order.create doc page): the repeat is refused WITHOUT the existing order's id.
    return refuse('REPEATED_ORDER_ERROR', 'Repeated placed order – request already been handled successfully');
  }
  return { ok: true, order: existing, replayed: true };
}

/** Undefined when the address is acceptable, else a message naming the problem. */
export function validateAddress(address: LogisticsAddress): string | undefined {
  // Corrections (ds.order.create doc page): `province` is required, `zip` is optional.
  const missing = (['address', 'city', 'province', 'country'] as const).filter((field) => !address[field]?.trim());
  if (missing.length > 0) return `logistics_address is missing ${missing.join(', ')}`;
  if (!address.full_name?.trim() && !address.contact_person?.trim()) return 'logistics_address is missing full_name/contact_person';
  const country = address.country ?? '';
  // Strict: an ISO 3166-1 alpha-2 code in upper case; names ("Chile") and near-codes ("UK") are refused.
  if (!ISO_COUNTRIES.has(country)) return `country ${JSON.stringify(country)} is not an ISO 3166-1 alpha-2 code`;
  // Brazilian customs needs the recipient's CPF; AliExpress refuses BR addresses without it.
  if (country === 'BR' && !address.cpf?.trim() && !address.tax_number?.trim()) return 'cpf is required for Brazil';
  return undefined;
}

function priceLines(catalog: Catalog, lines: OrderLineRequest[], country: string): PricedLine[] | Refusal {
  if (lines.length === 0) return refuse('ERROR_WHEN_BUILD_FOR_PLACE_ORDER', 'product_items is empty');
  const priced: PricedLine[] = [];
  for (const line of lines) {
    const result = priceLine(catalog, line, country);
    if ('ok' in result) return result;
    priced.push(result);
  }
  return priced;
}

function priceLine(catalog: Catalog, line: OrderLineRequest, country: string): PricedLine | Refusal {
  const product = catalog.find(String(line.productId));
  if (!product || !product.onSelling) {
    return refuse('ERROR_WHEN_BUILD_FOR_PLACE_ORDER', `product ${line.productId} is not available for sale`);
  }
  const sku = catalog.resolveSku(product, line.skuAttr);
  if (!sku) {
    return refuse('ERROR_WHEN_BUILD_FOR_PLACE_ORDER', `sku_attr ${JSON.stringify(line.skuAttr ?? '')} matches no SKU of product ${product.productId}`);
  }
  const quantity = Number(line.quantity);
  if (!Number.isInteger(quantity) || quantity < 1) {
    return refuse('ERROR_WHEN_BUILD_FOR_PLACE_ORDER', `product_count ${JSON.stringify(line.quantity)} is not a positive integer`);
  }
  const service = line.logisticsServiceName || product.logisticsServices[0] || 'CAINIAO_STANDARD';
  if (!product.logisticsServices.includes(service)) {
    return refuse('DELIVERY_METHOD_NOT_EXIST', `logistics_service_name ${service} is not available for product ${product.productId}`);
  }
  const item: SupplierOrderItem = {
    productId: product.productId,
    skuId: sku.skuId,
    skuAttr: sku.skuAttr,
    quantity,
    unitPrice: forCountry(sku.prices, country),
    freight: fromCents(toCents(forCountry(sku.shippingCost, country)) * quantity),
    logisticsServiceName: service,
    ...(line.memo ? { memo: line.memo } : {}),
  };
  return { product, sku, item };
}

function checkCurrency(lines: PricedLine[], payCurrency: string | undefined): Refusal | undefined {
  const currencies = new Set(lines.map((l) => l.sku.currency));
  // The account pays in the products' currency; asking for another one, or mixing currencies, is refused.
  if (currencies.size > 1 || (payCurrency && !currencies.has(payCurrency.toUpperCase()))) {
    return refuse('PRICE_PAY_CURRENCY_ERROR', `pay_currency ${payCurrency ?? ''} does not match the product currency ${[...currencies].join(',')}`);
  }
  return undefined;
}

function checkStock(lines: PricedLine[], country: string): Refusal | undefined {
  const wanted = new Map<CatalogSku, number>();
  for (const { sku, item } of lines) wanted.set(sku, (wanted.get(sku) ?? 0) + item.quantity);
  for (const [sku, quantity] of wanted) {
    if (forCountry(sku.stock, country) < quantity) {
      return refuse('INVENTORY_HOLD_ERROR', `not enough stock for SKU ${sku.skuId} shipping to ${country}`);
    }
  }
  return undefined;
}

function commit(ctx: PlaceOrderContext, request: PlaceOrderRequest, lines: PricedLine[], country: string): SupplierOrder {
  for (const { sku, item } of lines) ctx.catalog.take(sku, country, item.quantity);
  const total = lines.reduce((sum, { item }) => sum + toCents(item.unitPrice) * item.quantity + toCents(item.freight), 0);
  const order: SupplierOrder = {
    orderId: ctx.book.newOrderId(),
    account: request.account,
    channel: request.channel,
    ...(request.appKey ? { appKey: request.appKey } : {}),
    ...(request.channel === 'api' && request.idempotencyKey ? { outOrderId: request.idempotencyKey } : {}),
    ...(request.channel === 'web' && request.idempotencyKey ? { memo: request.idempotencyKey } : {}),
    items: lines.map((l) => l.item),
    address: { ...request.address, country },
    amount: { amount: fromCents(total), currency: lines[0]?.sku.currency ?? 'USD' },
    status: 'PLACE_ORDER_SUCCESS',
    tryToPay: request.tryToPay,
    createdAt: ctx.now(),
  };
  ctx.book.add(order, { tryToPay: request.tryToPay, outcome: ctx.paymentOutcome(), settleAfterMs: ctx.paymentSettleAfterMs });
  if (request.idempotencyKey) ctx.book.remember(idempotencyScope(request), request.idempotencyKey, order.orderId);
  return order;
}
