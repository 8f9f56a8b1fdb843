import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Express, Request } from 'express';
import { z } from 'zod';
import { AppError, notFound, unauthorized, validate, type SecretBox } from '@postsale/runtime';
import type { OrdersRepository } from '../db/orders.repository';
import type { SellersRepository } from '../db/sellers.repository';
import { orderIdFor } from '../domain/order-id';
import { DeliveryKinds } from '../domain/process-delivery.use-case';
import type { DeliveryReceiver } from '../domain/receive-delivery.use-case';

const params = z.object({ paypalOrderId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/) });
/** The storefront identifies itself in the body; it must be registered as a PAYPAL_STOREFRONT account of a seller. */
const body = z.object({ storefrontId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/) });
const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^(?:sha256=)?([0-9a-f]{64})$/;

/**
 * What a storefront signs: `X-Storefront-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + paypalOrderId +
 * "." + rawBody)>` with `X-Storefront-Timestamp: <unix seconds>`. The order id is part of the message so a signature
 * seen once cannot capture another order; the timestamp bounds replays to the window.
 */
export function storefrontSignature(secret: string, timestamp: string, paypalOrderId: string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.${paypalOrderId}.`).update(rawBody).digest('hex');
}

/**
 * Reseller storefront checkout: capture a PayPal order the buyer approved. Idempotent: the capture carries a
 * PayPal-Request-Id derived from the PayPal order id, ORDER_ALREADY_CAPTURED is resolved by reading the order, and
 * an order already received answers 200 without calling PayPal again.
 */
export function checkoutRoutes(app: Express, deps: { receiver: DeliveryReceiver; orders: OrdersRepository; sellers: SellersRepository; secrets: SecretBox; inlineBudgetMs: number; signatureWindowSeconds: number; now?: () => number }): void {
  const now = deps.now ?? Date.now;
  /**
   * The caller must be a registered storefront signing with its own secret. Every failure is the same 401 — unknown
   * storefront, no secret, stale timestamp, wrong signature — so a stranger learns nothing, and nothing is written.
   */
  async function authenticate(req: Request, paypalOrderId: string): Promise<string> {
    const parsed = body.safeParse(req.body ?? {});
    const timestamp = req.get('x-storefront-timestamp') ?? '';
    const signature = SIGNATURE.exec(req.get('x-storefront-signature') ?? '')?.[1];
    if (!parsed.success || !TIMESTAMP.test(timestamp) || !signature) throw unauthorized('the capture call is not signed by a registered storefront');
    if (Math.abs(now() / 1000 - Number(timestamp)) > deps.signatureWindowSeconds) throw unauthorized('the capture call is not signed by a registered storefront');
    const account = await deps.sellers.account('PAYPAL_STOREFRONT', parsed.data.storefrontId);
    // A secret that does not open (moved to another row, tampered) is no secret: the same 401 as any other failure.
    let secret: string | undefined;
    try {
      secret = account ? deps.sellers.openSecret(account, deps.secrets) ?? undefined : undefined;
    } catch {
      secret = undefined;
    }
    const expected = Buffer.from(storefrontSignature(secret ?? 'no-secret', timestamp, paypalOrderId, req.rawBody ?? Buffer.alloc(0)), 'hex');
    const matches = timingSafeEqual(expected, Buffer.from(signature, 'hex'));
    if (!secret || !matches) throw unauthorized('the capture call is not signed by a registered storefront');
    return parsed.data.storefrontId;
  }

  app.post('/checkout/paypal/orders/:paypalOrderId/capture', async (req, res) => {
    const { paypalOrderId } = validate(params, req.params, 'INVALID_PAYPAL_ORDER_ID');
    const storefrontId = await authenticate(req, paypalOrderId);
    const orderId = orderIdFor('PAYPAL_STOREFRONT', paypalOrderId);
    const existing = await deps.orders.get(orderId);
    if (existing) {
      // Another storefront's order: answered like an order PayPal does not know, never "it exists".
      if (existing.account_id !== storefrontId) throw notFound('PAYPAL_ORDER_NOT_FOUND', 'no such PayPal order for this storefront');
      res.status(200).json({ orderId, status: 'duplicate' });
      return;
    }
    const outcome = await deps.receiver.receive({
      marketplace: 'PAYPAL_STOREFRONT',
      kind: DeliveryKinds.paypalCheckoutCapture,
      // The storefront is part of the key: another storefront's call cannot take this one's place.
      dedupeKey: `checkout-capture:${storefrontId}:${paypalOrderId}`,
      accountId: storefrontId,
      externalOrderId: paypalOrderId,
      orderId,
      headers: {},
      rawBody: JSON.stringify({ paypalOrderId, storefrontId }),
      sourceIp: req.ip ?? null,
      inlineBudgetMs: deps.inlineBudgetMs,
    });
    switch (outcome.status) {
      case 'accepted':
        res.status(201).json({ orderId, status: 'accepted', deliveryId: outcome.deliveryId });
        return;
      case 'duplicate':
        res.status(200).json({ orderId, status: 'duplicate', deliveryId: outcome.deliveryId });
        return;
      case 'rejected':
        throw new AppError(outcome.reason === 'ORDER_NOT_APPROVED' ? 'ORDER_NOT_APPROVED' : 'PAYMENT_DECLINED', `PayPal refused the capture (${outcome.reason})`, { status: 422, details: { paypalIssue: outcome.reason } });
      case 'ignored':
        // Capture PENDING at PayPal: the order is received when PAYMENT.CAPTURE.COMPLETED arrives.
        res.status(202).json({ orderId, status: 'awaiting_payment', deliveryId: outcome.deliveryId });
        return;
      case 'parked':
        if (outcome.reason === 'STOREFRONT_MISMATCH' || outcome.reason === 'NOT_FOUND_AT_MARKETPLACE') throw notFound('PAYPAL_ORDER_NOT_FOUND', 'no such PayPal order for this storefront');
        throw new AppError(outcome.reason ?? 'NEEDS_REVIEW', `the order could not be received (${outcome.reason}); it is parked for review`, { status: 409, details: { deliveryId: outcome.deliveryId } });
      case 'pending':
        res.status(202).json({ orderId, status: 'pending', deliveryId: outcome.deliveryId });
        return;
    }
  });
}
