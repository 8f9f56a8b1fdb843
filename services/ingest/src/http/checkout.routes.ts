import type { Express } from 'express';
import { z } from 'zod';
import { AppError, notFound, validate } from '@postsale/runtime';
import type { OrdersRepository } from '../db/orders.repository';
import type { SellersRepository } from '../db/sellers.repository';
import { orderIdFor } from '../domain/order-id';
import { DeliveryKinds } from '../domain/process-delivery.use-case';
import type { DeliveryReceiver } from '../domain/receive-delivery.use-case';

const params = z.object({ paypalOrderId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/) });
/** The storefront identifies itself in the body; it must be registered as a PAYPAL_STOREFRONT account of a seller. */
const body = z.object({ storefrontId: z.string().min(1).max(128) });

/**
 * Reseller storefront checkout: capture a PayPal order the buyer approved. Idempotent: the capture carries a
 * PayPal-Request-Id derived from the PayPal order id, ORDER_ALREADY_CAPTURED is resolved by reading the order, and
 * an order already received answers 200 without calling PayPal again.
 */
export function checkoutRoutes(app: Express, deps: { receiver: DeliveryReceiver; orders: OrdersRepository; sellers: SellersRepository; inlineBudgetMs: number }): void {
  app.post('/checkout/paypal/orders/:paypalOrderId/capture', async (req, res) => {
    const { paypalOrderId } = validate(params, req.params, 'INVALID_PAYPAL_ORDER_ID');
    const { storefrontId } = validate(body, req.body ?? {}, 'INVALID_REQUEST');
    const orderId = orderIdFor('PAYPAL_STOREFRONT', paypalOrderId);
    const existing = await deps.orders.get(orderId);
    if (existing) {
      if (existing.account_id !== storefrontId) throw new AppError('STOREFRONT_MISMATCH', 'this PayPal order belongs to another storefront', { status: 409 });
      res.status(200).json({ orderId, status: 'duplicate' });
      return;
    }
    // Refuse before touching PayPal: money captured for a storefront nobody owns could not be routed.
    if (!(await deps.sellers.account('PAYPAL_STOREFRONT', storefrontId))) throw notFound('UNKNOWN_STOREFRONT', 'no seller has this storefront');
    const outcome = await deps.receiver.receive({
      marketplace: 'PAYPAL_STOREFRONT',
      kind: DeliveryKinds.paypalCheckoutCapture,
      dedupeKey: `checkout-capture:${paypalOrderId}`,
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
        throw new AppError(outcome.reason ?? 'NEEDS_REVIEW', `the order could not be received (${outcome.reason}); it is parked for review`, { status: 409, details: { deliveryId: outcome.deliveryId } });
      case 'pending':
        res.status(202).json({ orderId, status: 'pending', deliveryId: outcome.deliveryId });
        return;
    }
  });
}
