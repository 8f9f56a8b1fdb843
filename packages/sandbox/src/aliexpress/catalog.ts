import { assertDecimal } from './money';
import type { CountryTable, ProductSeed, SkuSeed } from './types';

/**
 * The supplier's catalogue. Shared by every seller (like AliExpress's), unlike orders, which belong to one account.
 * Prices, stock and freight are tables keyed by ship-to country so tests can make them differ per destination.
 */
export interface CatalogSku {
  skuId: string;
  skuAttr: string;
  currency: string;
  prices: CountryTable<string>;
  listPrices: CountryTable<string>;
  stock: CountryTable<number>;
  shippingCost: CountryTable<string>;
}

export interface CatalogProduct {
  productId: string;
  subject: string;
  onSelling: boolean;
  skus: CatalogSku[];
  logisticsServices: string[];
  deliveryDays: CountryTable<number>;
  shipFromCountry: string;
  undeliverableTo: string[];
}

/** The value for this country, else the table's default. */
export function forCountry<T>(table: CountryTable<T>, country: string | undefined): T {
  const specific = country ? table[country.toUpperCase()] : undefined;
  return specific ?? table.default;
}

function checkPrices(table: CountryTable<string>): CountryTable<string> {
  for (const value of Object.values(table)) if (value !== undefined) assertDecimal(value);
  return { ...table };
}

function toSku(seed: SkuSeed): CatalogSku {
  const prices = checkPrices(seed.prices);
  return {
    skuId: seed.skuId,
    skuAttr: seed.skuAttr,
    currency: seed.currency ?? 'USD',
    prices,
    listPrices: seed.listPrices ? checkPrices(seed.listPrices) : { ...prices },
    stock: typeof seed.stock === 'number' ? { default: seed.stock } : { ...seed.stock },
    shippingCost: seed.shippingCost ? checkPrices(seed.shippingCost) : { default: '0.00' },
  };
}

export class Catalog {
  private readonly products = new Map<string, CatalogProduct>();

  seed(seed: ProductSeed): void {
    if (seed.skus.length === 0) throw new Error(`product ${seed.productId} needs at least one SKU`);
    this.products.set(seed.productId, {
      productId: seed.productId,
      subject: seed.subject,
      onSelling: true,
      skus: seed.skus.map(toSku),
      logisticsServices: seed.logisticsServices ?? ['CAINIAO_STANDARD'],
      deliveryDays: seed.deliveryDays ?? { default: 15 },
      shipFromCountry: seed.shipFromCountry ?? 'CN',
      undeliverableTo: seed.undeliverableTo ?? [],
    });
  }

  /** Undefined when the product was never seeded; delisted products are returned with onSelling=false. */
  find(productId: string): CatalogProduct | undefined {
    return this.products.get(productId);
  }

  all(): CatalogProduct[] {
    return [...this.products.values()];
  }

  product(productId: string): CatalogProduct {
    const product = this.products.get(productId);
    if (!product) throw new Error(`unknown product ${productId}`);
    return product;
  }

  sku(productId: string, skuId: string): CatalogSku {
    const sku = this.product(productId).skus.find((s) => s.skuId === skuId);
    if (!sku) throw new Error(`unknown SKU ${skuId} of product ${productId}`);
    return sku;
  }

  /**
   * The SKU an order line means. AliExpress matches `sku_attr`; a product with a single SKU may be ordered with an
   * empty one. The SKU id is accepted too, because clients sometimes send it there.
   */
  resolveSku(product: CatalogProduct, skuAttr: string | undefined): CatalogSku | undefined {
    if (!skuAttr) return product.skus.length === 1 ? product.skus[0] : undefined;
    return product.skus.find((s) => s.skuAttr === skuAttr) ?? product.skus.find((s) => s.skuId === skuAttr);
  }

  setPrice(productId: string, skuId: string, price: string, country = 'default'): void {
    this.sku(productId, skuId).prices[country] = assertDecimal(price);
  }

  setStock(productId: string, skuId: string, stock: number, country = 'default'): void {
    this.sku(productId, skuId).stock[country] = stock;
  }

  /** Takes units out of the stock that applies to this country (its own entry if it has one, else the default). */
  take(sku: CatalogSku, country: string, quantity: number): void {
    const key = sku.stock[country] !== undefined ? country : 'default';
    sku.stock[key] = (sku.stock[key] ?? 0) - quantity;
  }

  putBack(sku: CatalogSku, country: string, quantity: number): void {
    this.take(sku, country, -quantity);
  }

  setOnSelling(productId: string, onSelling: boolean): void {
    this.product(productId).onSelling = onSelling;
  }
}
