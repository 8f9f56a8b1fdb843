import type { Marketplace } from '@postsale/contracts';
import { badRequest, type SecretBox } from '@postsale/runtime';
import { sealedAccountField } from './credentials';
import type { DeliveryStore, SellerStore } from './ports';

export interface SellerAccountInput {
  marketplace: Marketplace;
  /** eBay username, MercadoLibre user_id, storefront id */
  accountId: string;
  /** the seller's own marketplace token (eBay user token, MercadoLibre access token); sealed at rest */
  accessToken?: string;
  /** PAYPAL_STOREFRONT only: the secret the storefront's server signs capture calls with (HMAC-SHA256); sealed at rest */
  captureSecret?: string;
}

const NEEDS_TOKEN: Marketplace[] = ['EBAY', 'MERCADOLIBRE'];

export type SellersUseCase = ReturnType<typeof createSellersUseCase>;

export function createSellersUseCase(deps: { sellers: SellerStore; deliveries: DeliveryStore; secrets: SecretBox; requeueParked: boolean; nudgePoller: () => void }) {
  return {
    /** Registers or replaces a seller's accounts; optionally queues the deliveries parked for those accounts again. */
    async put(sellerId: string, displayName: string | null, accounts: SellerAccountInput[]): Promise<{ requeued: number }> {
      const seen = new Set<string>();
      for (const a of accounts) {
        const key = `${a.marketplace}:${a.accountId}`;
        if (seen.has(key)) throw badRequest('DUPLICATE_ACCOUNT', `${key} is listed twice`);
        seen.add(key);
        if (NEEDS_TOKEN.includes(a.marketplace) && !a.accessToken) throw badRequest('ACCESS_TOKEN_REQUIRED', `${a.marketplace} accounts need the seller's accessToken`);
        if (a.captureSecret && a.marketplace !== 'PAYPAL_STOREFRONT') throw badRequest('CAPTURE_SECRET_NOT_APPLICABLE', 'only PAYPAL_STOREFRONT accounts have a capture secret');
      }
      await deps.sellers.put(sellerId, displayName, accounts.map((a) => {
        const ref = { sellerId, marketplace: a.marketplace, accountId: a.accountId };
        return {
          marketplace: a.marketplace, accountId: a.accountId,
          tokenSealed: a.accessToken ? deps.secrets.seal(a.accessToken, sealedAccountField.token(ref)) : null,
          secretSealed: a.captureSecret ? deps.secrets.seal(a.captureSecret, sealedAccountField.secret(ref)) : null,
        };
      }));
      if (!deps.requeueParked) return { requeued: 0 };
      const requeued = await deps.deliveries.requeueUnroutable(accounts.map((a) => ({ marketplace: a.marketplace, accountId: a.accountId })));
      if (requeued > 0) deps.nudgePoller();
      return { requeued };
    },

    /** The seller and its accounts, never a token (only whether one is stored). */
    async get(sellerId: string) {
      const seller = await deps.sellers.seller(sellerId);
      if (!seller) return undefined;
      return {
        sellerId: seller.sellerId,
        displayName: seller.displayName,
        createdAt: seller.createdAt.toISOString(),
        updatedAt: seller.updatedAt.toISOString(),
        accounts: seller.accounts.map((a) => ({ marketplace: a.marketplace, accountId: a.accountId, hasAccessToken: a.tokenSealed !== null, ...(a.marketplace === 'PAYPAL_STOREFRONT' ? { hasCaptureSecret: a.secretSealed !== null } : {}), updatedAt: a.updatedAt.toISOString() })),
      };
    },
  };
}
