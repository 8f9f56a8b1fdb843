import type { Express } from 'express';
import { z } from 'zod';
import { AppError, isAppError, requireCleanInput, storableText, unauthorized, validate } from '@postsale/runtime';
import type { PayPalWebhookVerifier } from '@postsale/paypal';
import { payPalItemFromJson } from '../clients/paypal-payouts.client';
import type { PayoutsContext } from '../domain/context';
import { batchChanged, type WebhookItem } from '../domain/reconcile.use-case';
import { statusFromWebhookEvent } from '../domain/payout-rules';

const envelope = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,200}$/),
  event_type: z.string().regex(/^[A-Z0-9_.-]{1,100}$/),
  resource: z.record(z.string(), z.unknown()),
});
const paypalId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
/** The fields an item event is applied with; each bounded to its column and storable (other fields are not read). */
const itemResource = z.object({
  payout_item_id: paypalId.optional(),
  payout_batch_id: paypalId.optional(),
  sender_batch_id: storableText(255).optional(),
  transaction_status: z.string().regex(/^[A-Z_]{1,32}$/).optional(),
  transaction_id: paypalId.optional(),
  payout_item: z.object({ sender_item_id: storableText(255).optional() }).optional(),
  errors: z.object({ name: storableText(255).optional(), message: storableText(5000).optional() }).optional(),
});
/** A batch event's resource: the batch header (Corrections: no items); only its PayPal id is read. */
const batchResource = z.object({ batch_header: z.object({ payout_batch_id: paypalId.optional() }).optional() });

/**
 * PayPal's payout webhooks (`PAYMENT.PAYOUTS-ITEM.*`), signature-verified. They speed up reconciliation and are the
 * only source for a batch whose PayPal id we never learnt. Every verified delivery gets a 2xx (PayPal retries
 * non-2xx for days), including items we do not know; a check that cannot be done now answers 503 so PayPal retries.
 */
export function paypalWebhookRoutes(
  app: Express, ctx: PayoutsContext, verifier: PayPalWebhookVerifier | undefined, applyWebhookItem: (item: WebhookItem) => Promise<boolean>,
): void {
  // Before any handler: valid UTF-8, no NUL or lone surrogates, bounded depth (refusals are 400 and write nothing).
  app.use('/webhooks', requireCleanInput());
  app.post('/webhooks/paypal', async (req, res) => {
    if (!verifier) throw new AppError('WEBHOOK_NOT_CONFIGURED', 'PAYPAL_WEBHOOK_ID is not configured', { status: 503 });
    let authentic: boolean;
    let replay: boolean;
    let handled: () => void;
    try {
      ({ authentic, replay, handled } = await verifier.check({ headers: req.headers, rawBody: req.rawBody ?? Buffer.alloc(0), parsedBody: req.body }));
    } catch (error) {
      if (isAppError(error) && error.retriable) throw new AppError('WEBHOOK_VERIFICATION_UNAVAILABLE', 'signature cannot be checked now', { status: 503, cause: error });
      throw error;
    }
    if (!authentic) throw unauthorized('webhook signature is invalid');
    // the same transmission again inside the time window: acknowledged, applied once
    if (replay) {
      res.json({ received: true, applied: false, replay: true });
      return;
    }
    const event = validate(envelope, req.body, 'INVALID_WEBHOOK');
    if (!event.event_type.startsWith('PAYMENT.PAYOUTS-ITEM.')) {
      if (event.event_type.startsWith('PAYMENT.PAYOUTSBATCH.')) {
        await batchChanged(ctx, validate(batchResource, event.resource, 'INVALID_WEBHOOK').batch_header?.payout_batch_id);
      }
      handled();
      res.json({ received: true, applied: false });
      return;
    }
    validate(itemResource, event.resource, 'INVALID_WEBHOOK');
    const item = payPalItemFromJson(event.resource, String(event.resource.payout_batch_id ?? ''));
    const status = typeof event.resource.transaction_status === 'string' ? event.resource.transaction_status : statusFromWebhookEvent(event.event_type);
    if (!status) {
      handled();
      res.json({ received: true, applied: false });
      return;
    }
    // with the item webhooks arriving at the same moment (applyWebhookItems); true when it changed the item
    const applied = await applyWebhookItem({ event: { id: event.id, type: event.event_type }, state: { ...item, transactionStatus: status } });
    handled(); // applied and recorded: from now on the same transmission is a replay
    res.json({ received: true, applied });
  });
}
