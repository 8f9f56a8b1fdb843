import type { Db, SecretBox } from '@postsale/runtime';
import { SellerSettingsRepository, type MarketplaceToken, type ProductMapping, type SellerPolicy, type SupplierSecrets } from './seller-settings.repository';

export interface SellerSettingsCacheOptions {
  /**
   * How long a read (policy, mapping, opened credentials, marketplace token) is reused. An admin write through this
   * process drops the seller's entries at once; a write through another replica is seen after at most this long.
   */
  ttlMs: number;
  /**
   * supplier calls reserved from the daily quota per database write (1 = one write per call, as before); a busy seller's
   * blocks grow, up to QUOTA_BLOCK_GROWTH times this
   */
  quotaBlock: number;
  now?: () => number;
}

type Entry = { at: number; value: Promise<unknown> };

/** a block used up within this long is followed by one twice as large */
const QUOTA_BLOCK_FAST_MS = 10_000;
/** blocks grow up to this many times the configured size */
const QUOTA_BLOCK_GROWTH = 8;

/** this process's reserved calls of a seller's daily quota (Beijing day) */
interface QuotaAllowance {
  day: string;
  left: number;
  exhausted?: boolean;
  blocksFit?: boolean;
  refill?: Promise<void>;
  /** the last block asked for: when, and how large */
  lastBlock?: { at: number; size: number };
}

/**
 * The seller settings the purchase and tracking jobs read on every order (policy, mappings, opened supplier
 * credentials, marketplace tokens) rarely change, so this process keeps them for a short TTL instead of a round trip
 * (and an AES-GCM open) per job. Opened credentials stay in this process's memory for at most the TTL.
 *
 * The daily supplier quota is taken from the database in blocks: one write reserves `quotaBlock` calls, which this
 * process then hands out from memory. Calls reserved but not made (a restart, the end of the day) count as used, so
 * the quota is never exceeded. A seller whose block lasted less than QUOTA_BLOCK_FAST_MS gets one twice as large next
 * (up to QUOTA_BLOCK_GROWTH × `quotaBlock`; back to `quotaBlock` once one lasts longer): a busy seller costs fewer
 * writes, and what a replica's restart loses stays `quotaBlock` calls, or about twice QUOTA_BLOCK_FAST_MS of the
 * seller's calls at its pace when that is more.
 */
export class CachedSellerSettings extends SellerSettingsRepository {
  private readonly bySeller = new Map<string, Map<string, Entry>>();
  private readonly allowance = new Map<string, QuotaAllowance>();
  private readonly now: () => number;

  constructor(db: Db, box: SecretBox, private readonly options: SellerSettingsCacheOptions) {
    super(db, box);
    this.now = options.now ?? Date.now;
  }

  override policy(sellerId: string): Promise<SellerPolicy | undefined> {
    return this.cached(sellerId, 'policy', () => super.policy(sellerId));
  }

  override mappingFor(sellerId: string, listingId: string, sku: string | null): Promise<ProductMapping | undefined> {
    return this.cached(sellerId, `mapping\u0000${listingId}\u0000${sku ?? ''}`, () => super.mappingFor(sellerId, listingId, sku));
  }

  override supplierSecrets(sellerId: string): Promise<SupplierSecrets> {
    return this.cached(sellerId, 'supplier-secrets', () => super.supplierSecrets(sellerId));
  }

  override marketplaceToken(sellerId: string, marketplace: string): Promise<MarketplaceToken | undefined> {
    return this.cached(sellerId, `token\u0000${marketplace}`, () => super.marketplaceToken(sellerId, marketplace));
  }

  // Every admin write drops what this process holds for the seller, after the write: the next read sees it.
  override async putPolicy(p: SellerPolicy): Promise<void> {
    await this.afterWrite(p.sellerId, super.putPolicy(p));
  }

  override async putMappings(sellerId: string, mappings: Omit<ProductMapping, 'sellerId'>[]): Promise<void> {
    await this.afterWrite(sellerId, super.putMappings(sellerId, mappings));
  }

  override async deleteMapping(sellerId: string, listingId: string, sku: string): Promise<number> {
    return this.afterWrite(sellerId, super.deleteMapping(sellerId, listingId, sku));
  }

  override async putSupplierCredentials(sellerId: string, c: { api?: SupplierSecrets['api']; web?: SupplierSecrets['web'] }): Promise<void> {
    await this.afterWrite(sellerId, super.putSupplierCredentials(sellerId, c));
  }

  override async putMarketplaceToken(sellerId: string, marketplace: string, t: MarketplaceToken): Promise<void> {
    await this.afterWrite(sellerId, super.putMarketplaceToken(sellerId, marketplace, t));
  }

  override async resealAll(): Promise<{ checked: number; resealed: number }> {
    try {
      return await super.resealAll();
    } finally {
      this.bySeller.clear();
    }
  }

  /** One call from the daily quota (Beijing day), from this process's reserved block; false when the quota is used up. */
  override async takeDailyQuota(sellerId: string, quota: number, now = this.now()): Promise<boolean> {
    if (this.options.quotaBlock <= 1) return super.takeDailyQuota(sellerId, quota, now);
    const day = beijingDay(now);
    for (;;) {
      let held = this.allowance.get(sellerId);
      if (!held || held.day !== day) {
        held = { day, left: 0 };
        this.allowance.set(sellerId, held);
      }
      if (held.left > 0) {
        held.left -= 1;
        return true;
      }
      if (!held.refill) {
        const block = held;
        // once a whole block no longer fits today, ask for one call at a time (one statement instead of two)
        const size = block.blocksFit === false ? 1 : this.nextBlockSize(block, now);
        block.refill = this.reserveDailyQuota(sellerId, quota, size, now)
          .then((granted) => {
            block.left += granted;
            block.exhausted = granted === 0;
            if (granted < Math.min(size, quota)) block.blocksFit = false;
          })
          .finally(() => {
            block.refill = undefined;
          });
      }
      const waitingOn = held;
      await waitingOn.refill;
      if (waitingOn.exhausted && waitingOn.left === 0) return false;
    }
  }

  /** the size of the seller's next block: doubled when the last one was used up fast, else the configured one */
  private nextBlockSize(held: QuotaAllowance, now: number): number {
    const base = this.options.quotaBlock;
    const fast = held.lastBlock !== undefined && now - held.lastBlock.at < QUOTA_BLOCK_FAST_MS;
    const size = fast ? Math.min(held.lastBlock!.size * 2, base * QUOTA_BLOCK_GROWTH) : base;
    held.lastBlock = { at: now, size };
    return size;
  }

  private cached<T>(sellerId: string, key: string, load: () => Promise<T>): Promise<T> {
    let entries = this.bySeller.get(sellerId);
    if (!entries) {
      entries = new Map();
      this.bySeller.set(sellerId, entries);
    }
    const hit = entries.get(key);
    if (hit && this.now() - hit.at < this.options.ttlMs) return hit.value as Promise<T>;
    const value = load();
    const entry = { at: this.now(), value };
    entries.set(key, entry);
    // a failed read (database down, a value that does not open) is not kept
    value.catch(() => {
      if (entries.get(key) === entry) entries.delete(key);
    });
    return value;
  }

  private async afterWrite<T>(sellerId: string, write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.bySeller.delete(sellerId);
    }
  }
}

function beijingDay(now: number): string {
  return new Date(now + 8 * 3600_000).toISOString().slice(0, 10);
}
