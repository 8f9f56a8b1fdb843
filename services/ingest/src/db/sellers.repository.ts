import type { Marketplace } from '@postsale/contracts';
import { conflict, type Db, type SecretBox } from '@postsale/runtime';
import { sealedAccountField } from '../domain/credentials';
import type { SellerStore } from '../domain/ports';
import type { OrderRecord, SellerAccount, SellerRecord } from '../domain/records';
import { toOrder } from './orders.repository';

type Row = Record<string, unknown>;
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const toAccount = (r: Row): SellerAccount => ({
  marketplace: r.marketplace as Marketplace, accountId: String(r.account_id), sellerId: String(r.seller_id),
  tokenSealed: (r.token_sealed as string | null) ?? null, secretSealed: (r.secret_sealed as string | null) ?? null, updatedAt: date(r.updated_at),
});

export class SellersRepository implements SellerStore {
  constructor(private readonly db: Db) {}

  /** Replaces the seller's accounts; an account owned by another seller is a conflict and nothing changes. */
  async put(sellerId: string, displayName: string | null, accounts: Array<{ marketplace: Marketplace; accountId: string; tokenSealed: string | null; secretSealed: string | null }>): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx('sellers')
        .insert({ seller_id: sellerId, display_name: displayName })
        .onConflict('seller_id')
        .merge({ display_name: displayName, updated_at: trx.fn.now() });
      for (const a of accounts) {
        const owner = await trx('marketplace_accounts').where({ marketplace: a.marketplace, account_id: a.accountId }).forUpdate().first<{ seller_id: string } | undefined>();
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
      const rows: SellerAccount[] = (await trx('marketplace_accounts').where((q) => q.whereNotNull('token_sealed').orWhereNotNull('secret_sealed')).forUpdate()).map(toAccount);
      let resealed = 0;
      for (const row of rows) {
        const update: { token_sealed?: string; secret_sealed?: string } = {};
        if (row.tokenSealed && !box.isCurrent(row.tokenSealed)) {
          const context = sealedAccountField.token(row);
          update.token_sealed = box.seal(box.open(row.tokenSealed, context), context);
        }
        if (row.secretSealed && !box.isCurrent(row.secretSealed)) {
          const context = sealedAccountField.secret(row);
          update.secret_sealed = box.seal(box.open(row.secretSealed, context), context);
        }
        if (Object.keys(update).length === 0) continue;
        await trx('marketplace_accounts').where({ marketplace: row.marketplace, account_id: row.accountId }).update(update);
        resealed += Object.keys(update).length;
      }
      return { checked: rows.length, resealed };
    });
  }

  async account(marketplace: Marketplace, accountId: string): Promise<SellerAccount | undefined> {
    const row = await this.db('marketplace_accounts').where({ marketplace, account_id: accountId }).first();
    return row ? toAccount(row) : undefined;
  }

  /**
   * The account a delivery routes by and, in the same round trip, the order when it is received already: read fresh
   * every time (another replica may have changed the seller or its token a moment ago).
   */
  async accountAndOrder(marketplace: Marketplace, accountId: string, orderId: string): Promise<{ account: SellerAccount | undefined; order: OrderRecord | undefined }> {
    const result = await this.db.raw(
      `select (select row_to_json(a) from marketplace_accounts a where a.marketplace = ? and a.account_id = ?) as account,
              (select row_to_json(o) from orders o where o.order_id = ?) as order`,
      [marketplace, accountId, orderId],
    );
    const row = result.rows[0] as { account: Row | null; order: Row | null };
    return { account: row.account ? toAccount(row.account) : undefined, order: row.order ? toOrder(row.order) : undefined };
  }

  async seller(sellerId: string): Promise<SellerRecord | undefined> {
    const seller = await this.db('sellers').where({ seller_id: sellerId }).first();
    if (!seller) return undefined;
    const accounts: Row[] = await this.db('marketplace_accounts').where({ seller_id: sellerId }).orderBy(['marketplace', 'account_id']);
    return { sellerId: seller.seller_id, displayName: seller.display_name ?? null, createdAt: date(seller.created_at), updatedAt: date(seller.updated_at), accounts: accounts.map(toAccount) };
  }
}
