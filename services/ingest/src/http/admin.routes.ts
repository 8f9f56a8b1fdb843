import type { Express, Request, Response } from 'express';
import { z } from 'zod';
import { actorOf, auditReason, maskAddress, maskText, requireRoles, revealRequest, storableText, validate, whoami } from '@postsale/runtime';
import type { Admin } from '../domain/admin.use-case';
import type { Delivery } from '../domain/records';

const marketplace = z.enum(['EBAY', 'MERCADOLIBRE', 'PAYPAL_STOREFRONT']);
const sellerParams = z.object({ sellerId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/) });
const sellerBody = z.object({
  displayName: z.string().max(200).nullish(),
  accounts: z.array(z.object({ marketplace, accountId: z.string().min(1).max(128), accessToken: z.string().min(1).max(4096).optional(), captureSecret: z.string().min(32).max(256).optional() })).max(50),
});
const listQuery = z.object({
  status: z.enum(['pending', 'accepted', 'duplicate', 'ignored', 'rejected', 'parked']).optional(),
  marketplace: marketplace.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const uuid = z.object({ id: z.string().uuid() });
const orderParams = z.object({ orderId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/) });
const eraseBody = z.object({ reason: storableText(500, 3) });
const buyerQuery = z.object({ buyerEmail: z.string().min(3).max(254).regex(/^[^\s@]+@[^\s@]+$/).refine((s) => !s.includes('\u0000'), 'no NUL bytes') });

/** An OrderReceived payload with the buyer's personal data masked (country and amounts stay). */
function maskedPayload(p: Record<string, unknown> | null | undefined): unknown {
  if (!p) return p;
  const buyer = p.buyer as Record<string, unknown> | null;
  return {
    ...p,
    buyer: buyer ? { externalId: maskText(buyer.externalId), name: maskText(buyer.name), email: maskText(buyer.email) } : buyer,
    shipTo: maskAddress(p.shipTo as Record<string, unknown> | null),
  };
}

function deliveryView(d: Delivery, withBody = false) {
  return {
    id: d.id, marketplace: d.marketplace, kind: d.kind, status: d.status, reason: d.reason, detail: d.detail,
    accountId: d.accountId, externalOrderId: d.externalOrderId, orderId: d.orderId, attempts: d.attempts,
    receivedAt: d.receivedAt.toISOString(), processedAt: d.processedAt ? d.processedAt.toISOString() : null,
    nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
    ...(withBody ? { headers: d.headers, rawBody: d.rawBody } : {}),
  };
}

export function adminRoutes(app: Express, deps: { adminToken: string; operatorToken?: string; admin: Admin; integrity: () => Promise<unknown> }): void {
  const { admin } = deps;
  app.use('/admin', requireRoles({ admin: deps.adminToken, operator: deps.operatorToken }));
  // the CLI asks which credential it holds before touching Kafka (replay, dlq, topics need the admin one)
  app.get('/admin/whoami', whoami());
  const actor = (_req: Request, res: Response) => actorOf(res);
  /** Reads show personal data only when asked for with a reason (`?reveal=true&reason=…`), and the reveal is audited. */
  async function revealed(req: Request, res: Response, target: string, orderId: string | null): Promise<boolean> {
    const reveal = revealRequest(req, res);
    if (!reveal) return false;
    await admin.recordReveal(reveal.actor, reveal.reason, target, orderId);
    return true;
  }

  app.put('/admin/sellers/:sellerId', async (req, res) => {
    const { sellerId } = validate(sellerParams, req.params, 'INVALID_SELLER_ID');
    const body = validate(sellerBody, req.body ?? {});
    res.status(200).json(await admin.putSeller(actor(req, res), auditReason(req), sellerId, body.displayName ?? null, body.accounts));
  });
  app.get('/admin/sellers/:sellerId', async (req, res) => {
    const { sellerId } = validate(sellerParams, req.params, 'INVALID_SELLER_ID');
    res.json(await admin.seller(sellerId));
  });

  app.get('/admin/deliveries', async (req, res) => {
    const q = validate(listQuery, req.query, 'INVALID_QUERY');
    res.json({ deliveries: (await admin.listDeliveries(q)).map((d) => deliveryView(d)) });
  });
  app.get('/admin/deliveries/:id', async (req, res) => {
    const { id } = validate(uuid, req.params, 'INVALID_DELIVERY_ID');
    const d = await admin.delivery(id);
    res.json(deliveryView(d, await revealed(req, res, `delivery:${id}`, d.orderId)));
  });
  app.post('/admin/deliveries/:id/reprocess', async (req, res) => {
    const { id } = validate(uuid, req.params, 'INVALID_DELIVERY_ID');
    await admin.reprocess(actor(req, res), auditReason(req), id);
    res.status(202).json({ id, status: 'pending' });
  });

  // Erase the buyer's personal data of one order (any marketplace): same path as eBay account deletion and retention.
  app.post('/admin/orders/:orderId/erase', async (req, res) => {
    const { orderId } = validate(orderParams, req.params, 'INVALID_ORDER_ID');
    const { reason } = validate(eraseBody, req.body ?? {}, 'REASON_REQUIRED');
    res.status(200).json({ orderId, erased: await admin.eraseOrder(actor(req, res), reason, orderId) });
  });

  app.get('/admin/dropped-notifications', async (_req, res) => {
    res.json({ dropped: await admin.droppedNotifications() });
  });

  app.get('/admin/orders', async (req, res) => {
    const { buyerEmail } = validate(buyerQuery, req.query, 'INVALID_QUERY');
    res.json({ orderIds: await admin.orderIdsByBuyerEmail(buyerEmail) });
  });

  app.get('/admin/orders/:orderId', async (req, res) => {
    const orderId = String(req.params.orderId);
    const { order, deliveries, events, audit, erasures } = await admin.orderJourney(orderId);
    const reveal = order ? await revealed(req, res, orderId, orderId) : false;
    res.json({
      service: 'ingest',
      orderId,
      state: order?.state ?? 'NOT_RECEIVED',
      ...(order ? {
        marketplace: order.marketplace, externalOrderId: order.externalOrderId, sellerId: order.sellerId, accountId: order.accountId,
        saleAmount: { amountMinor: order.saleAmountMinor, currency: order.currency },
        refundedAmount: { amountMinor: order.refundedAmountMinor, currency: order.currency },
        paymentReference: order.paymentReference, receivedAt: order.receivedAt.toISOString(), received: reveal ? order.receivedPayload : maskedPayload(order.receivedPayload as unknown as Record<string, unknown>),
      } : {}),
      history: events.map((e) => ({ at: e.at.toISOString(), event: e.eventType, eventId: e.eventId, cause: e.cause, deliveryId: e.deliveryId, refundId: e.refundId })),
      deliveries: deliveries.map((d) => deliveryView(d)),
      audit: (await audit()).map((a) => ({ at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, reason: a.reason, before: a.before, after: a.after })),
      erasures: (await erasures()).map((e) => ({ at: e.at.toISOString(), cause: e.cause, by: e.requestedBy, reason: e.reason })),
    });
  });

  app.get('/admin/integrity', async (_req, res) => {
    res.json(await deps.integrity());
  });
}
