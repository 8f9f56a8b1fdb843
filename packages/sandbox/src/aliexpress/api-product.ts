import { asRecord, asString, jsonParam, type ApiAnswer, type ApiCall } from './api-call';
import { forCountry, type CatalogProduct } from './catalog';
import { gatewayErrors } from './envelope';
import { fromCents, toCents } from './money';
import type { FakeState } from './state';

/**
 * aliexpress.ds.product.get: price, stock and delivery time for ONE ship-to country. A delisted product still
 * answers, with product_status_type "offline" and no stock; a product that never existed is PRODUCT_NOT_EXIST.
 * `target_currency` is not converted: every amount carries its own currency_code (the SKU's).
 */
export function productGet(state: FakeState, call: ApiCall): ApiAnswer {
  const productId = call.params.product_id;
  if (!productId) return { error: gatewayErrors.missingParameter('product_id') };
  const country = call.params.ship_to_country;
  if (!country) return { error: gatewayErrors.missingParameter('ship_to_country') };
  const product = state.catalog.find(productId);
  if (!product) return { error: gatewayErrors.productNotFound(productId) };
  return { result: productResult(product, country.toUpperCase()) };
}

function productResult(product: CatalogProduct, country: string): Record<string, unknown> {
  const skus = product.skus.map((sku) => ({
    sku_id: sku.skuId,
    id: sku.skuAttr, // real responses repeat the attribute string here
    sku_attr: sku.skuAttr,
    sku_price: forCountry(sku.listPrices, country),
    offer_sale_price: forCountry(sku.prices, country),
    offer_bulk_sale_price: forCountry(sku.prices, country),
    currency_code: sku.currency,
    sku_available_stock: product.onSelling ? Math.max(0, forCountry(sku.stock, country)) : 0,
  }));
  return {
    ae_item_base_info_dto: {
      product_id: Number(product.productId) || product.productId,
      subject: product.subject,
      product_status_type: product.onSelling ? 'onSelling' : 'offline',
      currency_code: product.skus[0]?.currency ?? 'USD',
    },
    ae_item_sku_info_dtos: { ae_item_sku_info_d_t_o: skus },
    logistics_info_dto: {
      ship_to_country: country,
      delivery_time: forCountry(product.deliveryDays, country),
    },
  };
}

/**
 * aliexpress.ds.freight.query: delivery options and their fee for a SKU, quantity and country. The fee is the SKU's
 * `shippingCost` for that country times the quantity. `shipping_fee_cent` is sent as a decimal amount ("2.50"), the
 * same figure as `shipping_fee_format`; whether the real field holds cents or units is unclear, so clients compare both.
 */
export function freightQuery(state: FakeState, call: ApiCall): ApiAnswer {
  const parsed = jsonParam(call, 'queryDeliveryReq', true);
  if ('error' in parsed) return parsed;
  const req = asRecord(parsed.value);
  const productId = asString(req.productId) ?? '';
  const country = (asString(req.shipToCountry) ?? '').toUpperCase();
  const quantity = Number(req.quantity ?? 1);
  const product = state.catalog.find(productId);
  const sku = product?.skus.find((s) => s.skuId === asString(req.selectedSkuId)) ?? (product?.skus.length === 1 ? product.skus[0] : undefined);
  if (!product || !product.onSelling || !sku || !country || !Number.isInteger(quantity) || quantity < 1) {
    return { result: { success: false, code: 'FREIGHT_QUERY_FAILED', msg: 'No delivery option for this product, SKU, quantity and country' } };
  }
  if (product.undeliverableTo.includes(country)) {
    // Corrections: the real answer for a destination no service reaches (flat, no `success` field)
    return { result: { code: 505, msg: 'DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS' } };
  }
  const fee = fromCents(toCents(forCountry(sku.shippingCost, country)) * quantity);
  const days = forCountry(product.deliveryDays, country);
  const options = product.logisticsServices.map((code) => ({
    code,
    company: code.replace(/_/g, ' '),
    shipping_fee_cent: fee,
    shipping_fee_currency: sku.currency,
    shipping_fee_format: `${sku.currency} ${fee}`,
    free_shipping: toCents(fee) === 0,
    min_delivery_days: Math.max(1, days - 5),
    max_delivery_days: days,
    delivery_date_desc: `${Math.max(1, days - 5)}-${days} days`,
    ship_from_country: product.shipFromCountry,
    tracking: true,
  }));
  return { result: { success: true, delivery_options: { delivery_option_d_t_o: options } } };
}
