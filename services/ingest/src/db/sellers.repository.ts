import type { Marketplace } from '@postsale/contracts';
import { conflict, type Db, type SealContext, type SecretBox } from '@postsale/runtime';

/**
 * What a sealed account secret is bound to (AES-GCM additional data): the seller that owns the account, and the column
 * plus the account. A token copied into another seller's row, or into another account's, does not open.
 */
export const sealedAccountField = {
  token: (a: { sellerId: string; marketplace: string; accountId: string }): SealContext => ({ owner: a.sellerId, field: `marketplace_accounts.token_sealed:${a.marketplace}:${a.accountId}` }),
  secret: (a: { sellerId: string; marketplace: string; accountId: string }): SealContext => ({ owner: a.sellerId, field: `marketplace_accounts.secret_sealed:${a.marketplace}:${a.accountId}` }),
};
const rowRef = (row: AccountRow) => ({ sellerId: row.seller_id, marketplace: row.marketplace, accountId: row.account_id });

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

  /**
   * Re-seals every account secret not sealed with the current key in the current format (older keys, v1 values), in
   * one transaction with the rows locked: afterwards the previous keys can be removed. Counts what it did.
   */
  async resealAll(box: SecretBox): Promise<{ checked: number; resealed: number }> {
    return this.db.transaction(async (trx) => {
      const rows: AccountRow[] = await trx('marketplace_accounts').where((q) => q.whereNotNull('token_sealed').orWhereNotNull('secret_sealed')).forUpdate();
      let resealed = 0;
      for (const row of rows) {
        const update: Partial<AccountRow> = {};
        if (row.token_sealed && !box.isCurrent(row.token_sealed)) {
          const context = sealedAccountField.token(rowRef(row));
          update.token_sealed = box.seal(box.open(row.token_sealed, context), context);
        }
        if (row.secret_sealed && !box.isCurrent(row.secret_sealed)) {
          const context = sealedAccountField.secret(rowRef(row));
          update.secret_sealed = box.seal(box.open(row.secret_sealed, context), context);
        }
        if (Object.keys(update).length === 0) continue;
        await trx('marketplace_accounts').where({ marketplace: row.marketplace, account_id: row.account_id }).update(update);
        resealed += Object.keys(update).length;
      }
      return { checked: rows.length, resealed };
    });
  }

  /** The account's token, opened; null when it has none. */
  openToken(row: AccountRow, box: SecretBox): string | null {
    return row.token_sealed ? box.open(row.token_sealed, sealedAccountField.token(rowRef(row))) : null;
  }

  /** The storefront's capture secret, opened; null when it has none. */
  openSecret(row: AccountRow, box: SecretBox): string | null {
    return row.secret_sealed ? box.open(row.secret_sealed, sealedAccountField.secret(rowRef(row))) : null;
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
