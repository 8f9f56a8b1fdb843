import type { Marketplace } from '@postsale/contracts';
import { conflict, type Db } from '@postsale/runtime';

export interface AccountRow {
  marketplace: Marketplace;
  account_id: string;
  seller_id: string;
  token_sealed: string | null;
  secret_sealed: string | null;
  updated_at: Date;
}

export class SellersRepository {
  constructor(private readonly db: Db) {}

  /** Replaces the seller's accounts; an account owned by another seller is a conflict and nothing changes. */
  async put(sellerId: string, displayName: string | null, accounts: Array<{ marketplace: Marketplace; accountId: string; tokenSealed: string | null; secretSealed: string | null }>): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx('sellers')
        .insert({ seller_id: sellerId, display_name: displayName })
        .onConflict('seller_id')
        .merge({ display_name: displayName, updated_at: trx.fn.now() });
      for (const a of accounts) {
        const owner = await trx('marketplace_accounts').where({ marketplace: a.marketplace, account_id: a.accountId }).forUpdate().first<AccountRow | undefined>();
        if (owner && owner.seller_id !== sellerId) {
          throw conflict('ACCOUNT_OWNED_BY_OTHER_SELLER', `${a.marketplace} account ${a.accountId} belongs to another seller`);
        }
      }
      await trx('marketplace_accounts').where({ seller_id: sellerId }).delete();
      if (accounts.length > 0) {
        await trx('marketplace_accounts').insert(accounts.map((a) => ({ marketplace: a.marketplace, account_id: a.accountId, seller_id: sellerId, token_sealed: a.tokenSealed, secret_sealed: a.secretSealed })));
      }
    });
  }

  async account(marketplace: Marketplace, accountId: string): Promise<AccountRow | undefined> {
    return this.db('marketplace_accounts').where({ marketplace, account_id: accountId }).first();
  }

  async seller(sellerId: string): Promise<{ seller_id: string; display_name: string | null; created_at: Date; updated_at: Date; accounts: AccountRow[] } | undefined> {
    const seller = await this.db('sellers').where({ seller_id: sellerId }).first();
    if (!seller) return undefined;
    const accounts = await this.db('marketplace_accounts').where({ seller_id: sellerId }).orderBy(['marketplace', 'account_id']);
    return { ...seller, accounts };
  }
}
