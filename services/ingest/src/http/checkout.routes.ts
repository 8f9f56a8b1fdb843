import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Express } from 'express';
import { z } from 'zod';
import { AppError, notFound, unauthorized, validate } from '@postsale/runtime';
import type { Checkout } from '../domain/checkout.use-case';

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
export function checkoutRoutes(app: Express, deps: { checkout: Checkout; signatureWindowSeconds: number; now?: () => number }): void {
  const now = deps.now ?? Date.now;
  const refuse = () => unauthorized('the capture call is not signed by a registered storefront');

  app.post('/checkout/paypal/orders/:paypalOrderId/capture', async (req, res) => {
    const { paypalOrderId } = validate(params, req.params, 'INVALID_PAYPAL_ORDER_ID');
    // The caller must be a registered storefront signing with its own secret. Every failure is the same 401 — unknown
    // storefront, no secret, stale timestamp, wrong signature — so a stranger learns nothing, and nothing is written.
    const parsed = body.safeParse(req.body ?? {});
    const timestamp = req.get('x-storefront-timestamp') ?? '';
    const signature = SIGNATURE.exec(req.get('x-storefront-signature') ?? '')?.[1];
    if (!parsed.success || !TIMESTAMP.test(timestamp) || !signature) throw refuse();
    if (Math.abs(now() / 1000 - Number(timestamp)) > deps.signatureWindowSeconds) throw refuse();
    const signatureMatches = (secret: string | undefined) =>
      timingSafeEqual(Buffer.from(storefrontSignature(secret ?? 'no-secret', timestamp, paypalOrderId, req.rawBody ?? Buffer.alloc(0)), 'hex'), Buffer.from(signature, 'hex'));
    const result = await deps.checkout.capture({ storefrontId: parsed.data.storefrontId, paypalOrderId, sourceIp: req.ip ?? null, signatureMatches });
    switch (result.kind) {
      case 'unauthorized':
        throw refuse();
      case 'known':
        // Another storefront's order: answered like an order PayPal does not know, never "it exists".
        if (!result.ownOrder) throw notFound('PAYPAL_ORDER_NOT_FOUND', 'no such PayPal order for this storefront');
        res.status(200).json({ orderId: result.orderId, status: 'duplicate' });
        return;
      case 'received':
        break;
    }
    const { orderId, deliveryId } = result;
    switch (result.status) {
      case 'accepted':
        res.status(201).json({ orderId, status: 'accepted', deliveryId });
        return;
      case 'duplicate':
        res.status(200).json({ orderId, status: 'duplicate', deliveryId });
        return;
      case 'rejected':
        throw new AppError(result.reason === 'ORDER_NOT_APPROVED' ? 'ORDER_NOT_APPROVED' : 'PAYMENT_DECLINED', `PayPal refused the capture (${result.reason})`, { status: 422, details: { paypalIssue: result.reason } });
      case 'ignored':
        // Capture PENDING at PayPal: the order is received when PAYMENT.CAPTURE.COMPLETED arrives.
        res.status(202).json({ orderId, status: 'awaiting_payment', deliveryId });
        return;
      case 'parked':
        if (result.reason === 'STOREFRONT_MISMATCH' || result.reason === 'NOT_FOUND_AT_MARKETPLACE') throw notFound('PAYPAL_ORDER_NOT_FOUND', 'no such PayPal order for this storefront');
        throw new AppError(result.reason ?? 'NEEDS_REVIEW', `the order could not be received (${result.reason}); it is parked for review`, { status: 409, details: { deliveryId } });
      case 'pending':
        res.status(202).json({ orderId, status: 'pending', deliveryId });
        return;
    }
  });
}
