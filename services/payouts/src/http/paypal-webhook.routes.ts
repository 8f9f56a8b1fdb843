import type { Express } from 'express';
import { z } from 'zod';
import { AppError, isAppError, unauthorized, validate } from '@postsale/runtime';
import type { PayPalWebhookVerifier } from '@postsale/paypal';
import { payPalItemFromJson } from '../clients/paypal-payouts.client';
import type { PayoutsContext } from '../domain/context';
import { applyItemState } from '../domain/reconcile.use-case';
import { statusFromWebhookEvent } from '../domain/payout-rules';

const envelope = z.object({
  id: z.string().min(1).max(200),
  event_type: z.string().min(1).max(200),
  resource: z.record(z.string(), z.unknown()),
});

/**
 * PayPal's payout webhooks (`PAYMENT.PAYOUTS-ITEM.*`), signature-verified. They speed up reconciliation and are the
 * only source for a batch whose PayPal id we never learnt. Every verified delivery gets a 2xx (PayPal retries
 * non-2xx for days), including items we do not know; a check that cannot be done now answers 503 so PayPal retries.
 */
export function paypalWebhookRoutes(app: Express, ctx: PayoutsContext, verifier: PayPalWebhookVerifier | undefined): void {
  app.post('/webhooks/paypal', async (req, res) => {
    if (!verifier) throw new AppError('WEBHOOK_NOT_CONFIGURED', 'PAYPAL_WEBHOOK_ID is not configured', { status: 503 });
    let authentic: boolean;
    try {
      authentic = await verifier.verify({ headers: req.headers, rawBody: req.rawBody ?? Buffer.alloc(0), parsedBody: req.body });
    } catch (error) {
      if (isAppError(error) && error.retriable) throw new AppError('WEBHOOK_VERIFICATION_UNAVAILABLE', 'signature cannot be checked now', { status: 503, cause: error });
      throw error;
    }
    if (!authentic) throw unauthorized('webhook signature is invalid');
    const event = validate(envelope, req.body, 'INVALID_WEBHOOK');
    if (!event.event_type.startsWith('PAYMENT.PAYOUTS-ITEM.')) {
      if (event.event_type.startsWith('PAYMENT.PAYOUTSBATCH.')) ctx.nudgeReconciler();
      res.json({ received: true, applied: false });
      return;
    }
    const item = payPalItemFromJson(event.resource, String(event.resource.payout_batch_id ?? ''));
    const status = typeof event.resource.transaction_status === 'string' ? event.resource.transaction_status : statusFromWebhookEvent(event.event_type);
    if (!status) {
      res.json({ received: true, applied: false });
      return;
    }
    const applied = await applyItemState(ctx, { ...item, transactionStatus: status }, `PayPal webhook ${event.event_type} (${event.id})`);
    await ctx.repo.recordWebhookEvent(ctx.db, event.id, event.event_type);
    res.json({ received: true, applied });
  });
}
