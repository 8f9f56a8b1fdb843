import type { SecretBox } from '@postsale/runtime';
import { openSecret } from './credentials';
import { orderIdFor } from './order-id';
import type { SellerStore } from './ports';
import type { SellerAccount } from './records';
import { DeliveryKinds } from './process-delivery.use-case';
import type { DeliveryReceiver } from './receive-delivery.use-case';
import type { Outcome } from './record-order.use-case';

export type CheckoutResult =
  | { kind: 'unauthorized' }
  /** the order is received already: this storefront's (answered as a duplicate) or another's (answered as unknown) */
  | { kind: 'known'; orderId: string; ownOrder: boolean }
  | ({ kind: 'received'; deliveryId: string } & Outcome);

/**
 * Reseller storefront checkout: a registered storefront, signing with its own capture secret, captures a PayPal order
 * its buyer approved. Idempotent: an order already received answers without calling PayPal again; otherwise the
 * capture is a delivery processed inline (see process-delivery's checkoutCapture).
 */
export function createCheckout(deps: { sellers: SellerStore; secrets: SecretBox; receiver: DeliveryReceiver; inlineBudgetMs: number }) {
  /** The storefront's capture secret; undefined when unknown, missing or unopenable (moved to another row, tampered). */
  function secretOf(account: SellerAccount | undefined): string | undefined {
    try {
      return account ? openSecret(deps.secrets, account) ?? undefined : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    /**
     * `signatureMatches` checks the caller's signature with a secret; it is called even when there is none (with
     * undefined), so every refusal costs the same. Every refusal is the same answer, and nothing is written.
     */
    async capture(input: { storefrontId: string; paypalOrderId: string; sourceIp: string | null; signatureMatches: (secret: string | undefined) => boolean }): Promise<CheckoutResult> {
      const orderId = orderIdFor('PAYPAL_STOREFRONT', input.paypalOrderId);
      // one read for every caller (the order is looked at only once the signature matched)
      const { account, order: existing } = await deps.sellers.accountAndOrder('PAYPAL_STOREFRONT', input.storefrontId, orderId);
      const secret = secretOf(account);
      const matches = input.signatureMatches(secret);
      if (!secret || !matches) return { kind: 'unauthorized' };
      if (existing) return { kind: 'known', orderId, ownOrder: existing.accountId === input.storefrontId };
      const outcome = await deps.receiver.receive({
        marketplace: 'PAYPAL_STOREFRONT',
        kind: DeliveryKinds.paypalCheckoutCapture,
        // The storefront is part of the key: another storefront's call cannot take this one's place.
        dedupeKey: `checkout-capture:${input.storefrontId}:${input.paypalOrderId}`,
        accountId: input.storefrontId,
        externalOrderId: input.paypalOrderId,
        orderId,
        headers: {},
        rawBody: JSON.stringify({ paypalOrderId: input.paypalOrderId, storefrontId: input.storefrontId }),
        sourceIp: input.sourceIp,
        inlineBudgetMs: deps.inlineBudgetMs,
      });
      return { kind: 'received', ...outcome, orderId };
    },
  };
}
export type Checkout = ReturnType<typeof createCheckout>;
