import type { SealContext, SecretBox } from '@postsale/runtime';
import type { SellerAccount } from './records';

/**
 * What a sealed account secret is bound to (AES-GCM additional data): the seller that owns the account, and the column
 * plus the account. A token copied into another seller's row, or into another account's, does not open.
 */
export const sealedAccountField = {
  token: (a: { sellerId: string; marketplace: string; accountId: string }): SealContext => ({ owner: a.sellerId, field: `marketplace_accounts.token_sealed:${a.marketplace}:${a.accountId}` }),
  secret: (a: { sellerId: string; marketplace: string; accountId: string }): SealContext => ({ owner: a.sellerId, field: `marketplace_accounts.secret_sealed:${a.marketplace}:${a.accountId}` }),
};

/** The account's marketplace token, opened; null when it has none. */
export function openToken(box: SecretBox, account: SellerAccount): string | null {
  return account.tokenSealed ? box.open(account.tokenSealed, sealedAccountField.token(account)) : null;
}

/** The storefront's capture secret, opened; null when it has none. */
export function openSecret(box: SecretBox, account: SellerAccount): string | null {
  return account.secretSealed ? box.open(account.secretSealed, sealedAccountField.secret(account)) : null;
}
