import { createHash } from 'node:crypto';
import type { Express, Request, Response } from 'express';
import { z } from 'zod';
import type { PayPalWebhookVerifier } from '@postsale/paypal';
import { AppError, decimalId, storableText, validate } from '@postsale/runtime';
import type { Erasure } from '../domain/erase-personal-data.use-case';
import { orderIdFor } from '../domain/order-id';
import { DeliveryKinds } from '../domain/process-delivery.use-case';
import type { DeliveryReceiver } from '../domain/receive-delivery.use-case';
import type { Outcome } from '../domain/record-order.use-case';
import type { EbayApi } from '../domain/ports';
import type { IngestMetrics } from '../metrics';

export interface WebhookRouteDeps {
  receiver: DeliveryReceiver;
  ebay: Pick<EbayApi, 'verifySignature'>;
  paypalVerifier: PayPalWebhookVerifier | undefined;
  metrics: IngestMetrics;
  ebayVerificationToken: string;
  ebayEndpointUrl: string;
  /** PayPal webhooks are processed inline within this budget (answered 200 when committed) */
  inlineBudgetMs: number;
  erasure: Erasure;
  /** MercadoLibre application id of this deployment; notifications for another application are only counted */
  mercadoLibreApplicationId: string;
}

// Every value that reaches a column is bounded and storable (no NUL, valid Unicode); reasons built from a topic or an
// event type stay within the 64-character reason column.
const ebayEnvelope = z.object({
  metadata: z.object({ topic: z.string().regex(/^[A-Z0-9_]{1,40}$/) }),
  notification: z.object({ notificationId: storableText(200), data: z.unknown() }),
});
const ebayOrderData = z.object({
  user: z.object({ username: storableText(128) }),
  order: z.object({ orderId: z.string().regex(/^[A-Za-z0-9!._-]{1,64}$/) }).optional(),
});
/** MARKETPLACE_ACCOUNT_DELETION: `data = {username, userId, eiasToken}` (no `user` object) */
const ebayDeletionData = z.object({ username: storableText(128), userId: storableText(128), eiasToken: storableText(2048).optional() });
const mlNotification = z.object({
  _id: storableText(128).optional(),
  resource: storableText(256),
  user_id: decimalId(20),
  topic: z.string().regex(/^[A-Za-z0-9_]{1,40}$/),
  // may exceed 2^53: compared as the digits of the raw body
  application_id: z.union([z.number().nonnegative(), z.string().regex(/^\d{1,30}$/)]).optional(),
  attempts: z.number().int().min(0).max(1_000_000).optional(),
  sent: storableText(64).optional(),
  received: storableText(64).optional(),
});
const paypalId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const paypalEvent = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/),
  event_type: z.string().regex(/^[A-Z0-9_.-]{1,48}$/),
  create_time: storableText(64).optional(),
  resource: z.record(z.string(), z.unknown()),
});
/** The parts of a capture / refund resource processing uses (other fields are kept in the raw body, unread). */
const paypalCaptureResource = z.object({
  id: paypalId.optional(),
  custom_id: storableText(127).optional(),
  supplementary_data: z.object({ related_ids: z.object({ order_id: paypalId.optional() }).optional() }).optional(),
  links: z.array(z.object({ rel: storableText(64).optional(), href: storableText(2048).optional() })).max(20).optional(),
  amount: z.object({ value: storableText(32).optional(), currency_code: storableText(8).optional() }).optional(),
  note_to_payer: storableText(1000).optional(),
});

const ML_MAX_NOTIFICATION_BYTES = 4096;

/** application_id exactly as sent (JSON numbers above 2^53 lose digits when parsed). */
function applicationIdOf(raw: string): string | undefined {
  return /"application_id"\s*:\s*"?(\d{1,30})"?/.exec(raw)?.[1];
}

const PAYPAL_KINDS: Record<string, string> = {
  'PAYMENT.CAPTURE.COMPLETED': DeliveryKinds.paypalCaptureCompleted,
  'PAYMENT.CAPTURE.REFUNDED': DeliveryKinds.paypalCaptureRefunded,
  'PAYMENT.CAPTURE.REVERSED': DeliveryKinds.paypalCaptureReversed,
};

/** Headers kept with the raw body (signatures included: they live in the database, never in logs). */
function storedHeaders(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k === 'authorization' || k === 'cookie') continue;
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
const rawText = (req: Request) => (req.rawBody ?? Buffer.from(JSON.stringify(req.body ?? null))).toString('utf8');

/** 2xx only for committed outcomes: 200 decided, 202 persisted and still being worked on (or parked for review). */
function answer(res: Response, outcome: Outcome & { deliveryId: string }): void {
  const status = (outcome.status === 'pending' || outcome.status === 'parked') ? 202 : 200;
  res.status(status).json({ deliveryId: outcome.deliveryId, status: outcome.status, reason: outcome.reason, orderId: outcome.orderId });
}

export function webhookRoutes(app: Express, deps: WebhookRouteDeps): void {
  const { signatureFailures, ackSeconds } = deps.metrics;
  const timed = (marketplace: string, handler: (req: Request, res: Response) => Promise<void>) => async (req: Request, res: Response) => {
    const end = ackSeconds.startTimer({ marketplace });
    try {
      await handler(req, res);
    } finally {
      end();
    }
  };
  const refuse = (marketplace: string, status: number, code: string) => {
    signatureFailures.inc({ marketplace });
    return new AppError(code, 'the delivery is not signed by the marketplace', { status });
  };

  // eBay endpoint validation: hex(sha256(challengeCode + verificationToken + endpointUrl)).
  app.get('/webhooks/ebay', (req, res) => {
    const challenge = req.query.challenge_code;
    if (typeof challenge !== 'string' || challenge === '') throw new AppError('CHALLENGE_CODE_REQUIRED', 'challenge_code is required', { status: 400 });
    if (!deps.ebayVerificationToken || !deps.ebayEndpointUrl) throw new AppError('EBAY_NOT_CONFIGURED', 'the eBay verification token / endpoint URL are not configured', { status: 503 });
    const challengeResponse = createHash('sha256').update(challenge).update(deps.ebayVerificationToken).update(deps.ebayEndpointUrl).digest('hex');
    res.status(200).json({ challengeResponse });
  });

  app.post('/webhooks/ebay', timed('EBAY', async (req, res) => {
    // eBay's convention: 412 when the signature does not verify. Nothing is stored.
    if (!(await deps.ebay.verifySignature(req.get('x-ebay-signature'), req.body))) throw refuse('EBAY', 412, 'INVALID_SIGNATURE');
    const body = validate(ebayEnvelope, req.body, 'MALFORMED_NOTIFICATION');
    if (body.metadata.topic === 'MARKETPLACE_ACCOUNT_DELETION') {
      // Every eBay app must honour it: erase what we hold about that eBay user, then acknowledge (eBay's SDK: 204).
      // The notification itself (it names the user) is not stored.
      const user = validate(ebayDeletionData, body.notification.data, 'MALFORMED_NOTIFICATION');
      await deps.erasure.eraseEbayUser({ username: user.username, userId: user.userId });
      res.status(204).end();
      return;
    }
    const data = validate(ebayOrderData, body.notification.data, 'MALFORMED_NOTIFICATION');
    const orderId = data.order?.orderId ?? null;
    // Acknowledged as soon as the verified notification is stored (eBay retries anything slower or not 2xx); the order
    // is read by the delivery worker. eBay redelivers, so a notification id already held is stored as a duplicate.
    const outcome = await deps.receiver.receive({
      marketplace: 'EBAY',
      kind: DeliveryKinds.ebayOrderConfirmation,
      dedupeKey: body.notification.notificationId,
      accountId: data.user.username,
      externalOrderId: orderId,
      orderId: orderId ? orderIdFor('EBAY', orderId) : null,
      headers: storedHeaders(req),
      rawBody: rawText(req),
      sourceIp: req.ip ?? null,
      ...(body.metadata.topic !== 'ORDER_CONFIRMATION' || !orderId ? { ignoreReason: `UNSUPPORTED_TOPIC_${body.metadata.topic}` } : {}),
    });
    res.status(200).json({ deliveryId: outcome.deliveryId, status: outcome.status, reason: outcome.reason, orderId: outcome.orderId });
  }));

  // MercadoLibre has no signature: trust comes from reading the order with the seller's token later. Acknowledge
  // as soon as the raw notification is persisted (well within MercadoLibre's ~500 ms); the poller does the work.
  app.post('/webhooks/mercadolibre', timed('MERCADOLIBRE', async (req, res) => {
    // A real notification is a few hundred bytes; nothing bigger is kept (the service-wide limit is far larger).
    if ((req.rawBody?.length ?? 0) > ML_MAX_NOTIFICATION_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', 'a MercadoLibre notification is at most 4 KB', { status: 413 });
    const body = validate(mlNotification, req.body, 'MALFORMED_NOTIFICATION');
    const raw = rawText(req);
    const orderMatch = /^\/orders\/(\d{1,20})$/.exec(body.resource);
    const supported = body.topic === 'orders_v2' && orderMatch;
    const externalOrderId = orderMatch?.[1] ?? null;
    // Flood-proofing: a notification for another application or for an account no seller registered is answered as
    // MercadoLibre expects (200) and only counted, never queued or read with a token (see receiveUnverified).
    await deps.receiver.receiveUnverified({
      marketplace: 'MERCADOLIBRE',
      kind: supported ? DeliveryKinds.mercadoLibreOrder : DeliveryKinds.mercadoLibreOther,
      dedupeKey: body._id ?? createHash('sha256').update(raw).digest('hex'),
      accountId: String(body.user_id),
      externalOrderId,
      orderId: externalOrderId ? orderIdFor('MERCADOLIBRE', externalOrderId) : null,
      headers: storedHeaders(req),
      rawBody: raw,
      sourceIp: req.ip ?? null,
      ...(supported ? {} : { ignoreReason: `UNSUPPORTED_TOPIC_${body.topic}` }),
    }, { foreignApplication: Boolean(deps.mercadoLibreApplicationId) && applicationIdOf(raw) !== deps.mercadoLibreApplicationId });
    res.status(200).json({ status: 'received' }); // MercadoLibre expects a plain 200 once the notification is safe
  }));

  app.post('/webhooks/paypal', timed('PAYPAL_STOREFRONT', async (req, res) => {
    if (!deps.paypalVerifier) throw new AppError('PAYPAL_NOT_CONFIGURED', 'PAYPAL_WEBHOOK_ID is not configured', { status: 503 });
    const { authentic, replay, handled } = await deps.paypalVerifier.check({ headers: req.headers, rawBody: req.rawBody ?? Buffer.alloc(0), parsedBody: req.body });
    if (!authentic) throw refuse('PAYPAL_STOREFRONT', 401, 'INVALID_SIGNATURE');
    // The same transmission again (inside the time window): acknowledged, nothing done twice.
    if (replay) {
      res.status(200).json({ status: 'duplicate', reason: 'REPLAYED_TRANSMISSION' });
      return;
    }
    const event = validate(paypalEvent, req.body, 'MALFORMED_EVENT');
    const kind = PAYPAL_KINDS[event.event_type];
    if (kind) validate(paypalCaptureResource, event.resource, 'MALFORMED_EVENT');
    const outcome = await deps.receiver.receive({
      marketplace: 'PAYPAL_STOREFRONT',
      kind: kind ?? DeliveryKinds.paypalOtherEvent,
      dedupeKey: event.id,
      accountId: null,
      externalOrderId: null,
      orderId: null,
      headers: storedHeaders(req),
      rawBody: rawText(req),
      sourceIp: req.ip ?? null,
      inlineBudgetMs: deps.inlineBudgetMs,
      ...(kind ? {} : { ignoreReason: `UNHANDLED_EVENT_${event.event_type}` }),
    });
    handled(); // stored (and decided or queued): from now on the same transmission is a replay
    answer(res, outcome);
  }));
}
