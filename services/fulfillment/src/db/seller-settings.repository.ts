import { safeInteger } from '@postsale/contracts';
import type { Db, SealContext, SecretBox } from '@postsale/runtime';
import type { MarketplaceToken, ProductMapping, PurchaseChannel, SellerPolicy, SupplierSecrets } from '../domain/ports';

/**
 * Per-seller settings: purchase policy, product mappings, supplier credentials and marketplace tokens (both sealed at
 * rest with the service's SecretBox; plaintext exists only in memory, for one job or the settings cache's TTL), and the
 * daily supplier quota. CachedSellerSettings (seller-settings.cache.ts) is what the service uses.
 */
// the records are the domain's (domain/records.ts); re-exported for the callers that read them from here
export type { MarketplaceToken, ProductMapping, PurchaseChannel, SellerPolicy, SupplierSecrets };

type Row = Record<string, unknown>;

/**
 * What each sealed value is bound to (AES-GCM additional data): the seller and the column (plus the marketplace for
 * tokens). A value copied into another seller's row or another column does not open.
 */
const SUPPLIER_SEALED = ['app_secret_sealed', 'access_token_sealed', 'web_email_sealed', 'web_password_sealed'] as const;
export const sealedField = {
  supplier: (sellerId: string, column: (typeof SUPPLIER_SEALED)[number]): SealContext => ({ owner: sellerId, field: `supplier_credentials.${column}` }),
  marketplaceToken: (sellerId: string, marketplace: string): SealContext => ({ owner: sellerId, field: `marketplace_tokens.access_token_sealed:${marketplace}` }),
};

export class SellerSettingsRepository {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  async policy(sellerId: string): Promise<SellerPolicy | undefined> {
    const row: Row | undefined = await this.db('seller_policies').where({ seller_id: sellerId }).first();
    if (!row) return undefined;
    return {
      sellerId,
      minMarginBps: row.min_margin_bps === null ? null : Number(row.min_margin_bps),
      maxCost: row.max_cost_minor === null ? null : { amountMinor: safeInteger(row.max_cost_minor), currency: String(row.max_cost_currency) },
      purchaseChannel: row.purchase_channel as PurchaseChannel,
      fxRates: (row.fx_rates as Record<string, string>) ?? {},
      ratePerSecond: row.rate_per_second === null ? null : Number(row.rate_per_second),
      dailyQuota: row.daily_quota === null ? null : Number(row.daily_quota),
    };
  }

  async putPolicy(p: SellerPolicy): Promise<void> {
    const row = {
      seller_id: p.sellerId,
      min_margin_bps: p.minMarginBps,
      max_cost_minor: p.maxCost?.amountMinor ?? null,
      max_cost_currency: p.maxCost?.currency ?? null,
      purchase_channel: p.purchaseChannel,
      fx_rates: JSON.stringify(p.fxRates),
      rate_per_second: p.ratePerSecond,
      daily_quota: p.dailyQuota,
      updated_at: this.db.fn.now(),
    };
    await this.db('seller_policies').insert(row).onConflict('seller_id').merge();
  }

  /** The mapping for a line: an exact (listing, sku) match first, then the listing's catch-all. */
  async mappingFor(sellerId: string, listingId: string, sku: string | null): Promise<ProductMapping | undefined> {
    const rows: Row[] = await this.db('product_mappings').where({ seller_id: sellerId, listing_id: listingId }).whereIn('sku', sku ? [sku, ''] : ['']);
    const row = rows.find((r) => r.sku === (sku ?? '')) ?? rows.find((r) => r.sku === '');
    return row ? toMapping(row) : undefined;
  }

  async mappings(sellerId: string): Promise<ProductMapping[]> {
    const rows: Row[] = await this.db('product_mappings').where({ seller_id: sellerId }).orderBy(['listing_id', 'sku']);
    return rows.map(toMapping);
  }

  async putMappings(sellerId: string, mappings: Omit<ProductMapping, 'sellerId'>[]): Promise<void> {
    if (mappings.length === 0) return;
    await this.db('product_mappings')
      .insert(
        mappings.map((m) => ({
          seller_id: sellerId,
          listing_id: m.listingId,
          sku: m.sku,
          product_id: m.productId,
          sku_attr: m.skuAttr,
          logistics_service_name: m.logisticsServiceName,
          purchase_channel: m.purchaseChannel,
          updated_at: this.db.fn.now(),
        })),
      )
      .onConflict(['seller_id', 'listing_id', 'sku'])
      .merge();
  }

  async deleteMapping(sellerId: string, listingId: string, sku: string): Promise<number> {
    return this.db('product_mappings').where({ seller_id: sellerId, listing_id: listingId, sku }).delete();
  }

  async putSupplierCredentials(sellerId: string, c: { api?: SupplierSecrets['api']; web?: SupplierSecrets['web'] }): Promise<void> {
    const row: Row = { seller_id: sellerId, updated_at: this.db.fn.now() };
    const seal = (column: (typeof SUPPLIER_SEALED)[number], value: string) => this.box.seal(value, sealedField.supplier(sellerId, column));
    if (c.api) {
      row.app_key = c.api.appKey;
      row.app_secret_sealed = seal('app_secret_sealed', c.api.appSecret);
      row.access_token_sealed = seal('access_token_sealed', c.api.accessToken);
    }
    if (c.web) {
      row.web_email_sealed = seal('web_email_sealed', c.web.email);
      row.web_password_sealed = seal('web_password_sealed', c.web.password);
    }
    await this.db('supplier_credentials').insert(row).onConflict('seller_id').merge(Object.keys(row));
  }

  async supplierSecrets(sellerId: string): Promise<SupplierSecrets> {
    const row: Row | undefined = await this.db('supplier_credentials').where({ seller_id: sellerId }).first();
    if (!row) return { api: null, web: null };
    const open = (column: (typeof SUPPLIER_SEALED)[number]) => this.box.open(String(row[column]), sealedField.supplier(sellerId, column));
    return {
      api: row.app_key && row.app_secret_sealed && row.access_token_sealed
        ? { appKey: String(row.app_key), appSecret: open('app_secret_sealed'), accessToken: open('access_token_sealed') }
        : null,
      web: row.web_email_sealed && row.web_password_sealed ? { email: open('web_email_sealed'), password: open('web_password_sealed') } : null,
    };
  }

  /** What an operator may see: which credentials exist, never their values. */
  async credentialSummary(sellerId: string): Promise<{ api: { appKey: string } | null; web: boolean; marketplaces: string[] }> {
    const row: Row | undefined = await this.db('supplier_credentials').where({ seller_id: sellerId }).first();
    const tokens: Row[] = await this.db('marketplace_tokens').where({ seller_id: sellerId }).select('marketplace');
    return {
      api: row?.app_key ? { appKey: String(row.app_key) } : null,
      web: Boolean(row?.web_email_sealed),
      marketplaces: tokens.map((t) => String(t.marketplace)),
    };
  }

  async putMarketplaceToken(sellerId: string, marketplace: string, t: MarketplaceToken): Promise<void> {
    await this.db('marketplace_tokens')
      .insert({
        seller_id: sellerId,
        marketplace,
        access_token_sealed: this.box.seal(t.accessToken, sealedField.marketplaceToken(sellerId, marketplace)),
        ml_service_id: t.mlServiceId,
        ebay_carrier_code: t.ebayCarrierCode,
        updated_at: this.db.fn.now(),
      })
      .onConflict(['seller_id', 'marketplace'])
      .merge();
  }

  async marketplaceToken(sellerId: string, marketplace: string): Promise<MarketplaceToken | undefined> {
    const row: Row | undefined = await this.db('marketplace_tokens').where({ seller_id: sellerId, marketplace }).first();
    if (!row) return undefined;
    return {
      accessToken: this.box.open(String(row.access_token_sealed), sealedField.marketplaceToken(sellerId, marketplace)),
      mlServiceId: row.ml_service_id === null ? null : Number(row.ml_service_id),
      ebayCarrierCode: (row.ebay_carrier_code as string) ?? null,
    };
  }

  /**
   * Re-seals every supplier credential and marketplace token not sealed with the current key in the current format
   * (older keys, v1 values), in one transaction with the rows locked: afterwards the previous keys can be removed.
   */
  async resealAll(): Promise<{ checked: number; resealed: number }> {
    const box = this.box;
    return this.db.transaction(async (trx) => {
      let checked = 0;
      let resealed = 0;
      const again = (sealed: unknown, context: SealContext) => (typeof sealed === 'string' && !box.isCurrent(sealed) ? box.seal(box.open(sealed, context), context) : undefined);
      for (const row of (await trx('supplier_credentials').forUpdate()) as Row[]) {
        checked += 1;
        const sellerId = String(row.seller_id);
        const update: Row = {};
        for (const column of SUPPLIER_SEALED) {
          const value = again(row[column], sealedField.supplier(sellerId, column));
          if (value !== undefined) update[column] = value;
        }
        if (Object.keys(update).length === 0) continue;
        await trx('supplier_credentials').where({ seller_id: sellerId }).update(update);
        resealed += Object.keys(update).length;
      }
      for (const row of (await trx('marketplace_tokens').forUpdate()) as Row[]) {
        checked += 1;
        const value = again(row.access_token_sealed, sealedField.marketplaceToken(String(row.seller_id), String(row.marketplace)));
        if (value === undefined) continue;
        await trx('marketplace_tokens').where({ seller_id: row.seller_id, marketplace: row.marketplace }).update({ access_token_sealed: value });
        resealed += 1;
      }
      return { checked, resealed };
    });
  }

  /** Counts one supplier call against today's quota (Beijing day); false when the quota is used up. Atomic. */
  async takeDailyQuota(sellerId: string, quota: number, now = Date.now()): Promise<boolean> {
    return (await this.reserveDailyQuota(sellerId, quota, 1, now)) === 1;
  }

  /**
   * Reserves up to `block` supplier calls from today's quota (Beijing day) in one write and returns how many it got:
   * the whole block while it fits, then one at a time up to the quota, then 0. Atomic; never exceeds the quota.
   */
  async reserveDailyQuota(sellerId: string, quota: number, block: number, now = Date.now()): Promise<number> {
    const day = new Date(now + 8 * 3600_000).toISOString().slice(0, 10);
    for (const size of block > 1 ? [Math.min(block, quota), 1] : [1]) {
      const result = await this.db.raw(
        `insert into supplier_call_quota (seller_id, day, calls) values (?, ?, ?)
         on conflict (seller_id, day) do update set calls = supplier_call_quota.calls + excluded.calls
         where supplier_call_quota.calls + excluded.calls <= ?
         returning calls`,
        [sellerId, day, size, quota],
      );
      if (result.rows.length > 0) return size;
    }
    return 0;
  }
}

function toMapping(row: Row): ProductMapping {
  return {
    sellerId: String(row.seller_id),
    listingId: String(row.listing_id),
    sku: String(row.sku),
    productId: String(row.product_id),
    skuAttr: String(row.sku_attr),
    logisticsServiceName: (row.logistics_service_name as string) ?? null,
    purchaseChannel: (row.purchase_channel as PurchaseChannel) ?? null,
  };
}
