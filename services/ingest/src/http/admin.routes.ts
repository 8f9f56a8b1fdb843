import type { Express, Request, Response } from 'express';
import { z } from 'zod';
import { safeInteger } from '@postsale/contracts';
import { actorOf, AppError, maskAddress, maskText, notFound, requireRoles, storableText, validate, whoami } from '@postsale/runtime';
import type { AuditRepository } from '../db/audit.repository';
import type { DeliveriesRepository, DeliveryRow } from '../db/deliveries.repository';
import type { ErasureRepository } from '../db/erasure.repository';
import type { OrdersRepository } from '../db/orders.repository';
import type { Erasure } from '../domain/erase-personal-data.use-case';
import type { createSellersUseCase } from '../domain/sellers.use-case';

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
const revealQuery = z.object({ reveal: z.literal('true').optional(), reason: storableText(500, 3).optional() });
const auditReason = (req: Request) => {
  const r = req.get('x-audit-reason');
  return r && r.length <= 500 ? r : null;
};

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

function deliveryView(d: DeliveryRow, withBody = false) {
  return {
    id: d.id, marketplace: d.marketplace, kind: d.kind, status: d.status, reason: d.reason, detail: d.detail,
    accountId: d.account_id, externalOrderId: d.external_order_id, orderId: d.order_id, attempts: d.attempts,
    receivedAt: new Date(d.received_at).toISOString(), processedAt: d.processed_at ? new Date(d.processed_at).toISOString() : null,
    nextAttemptAt: d.status === 'pending' ? new Date(d.next_attempt_at).toISOString() : null,
    ...(withBody ? { headers: d.headers, rawBody: d.raw_body } : {}),
  };
}

export function adminRoutes(app: Express, deps: {
  adminToken: string;
  sellers: ReturnType<typeof createSellersUseCase>;
  deliveries: DeliveriesRepository;
  orders: OrdersRepository;
  nudgePoller: () => void;
  integrity: () => Promise<unknown>;
  operatorToken?: string;
  erasure: Erasure;
  erasures: ErasureRepository;
  audit: AuditRepository;
}): void {
  app.use('/admin', requireRoles({ admin: deps.adminToken, operator: deps.operatorToken }));
  // the CLI asks which credential it holds before touching Kafka (replay, dlq, topics need the admin one)
  app.get('/admin/whoami', whoami());
  const actor = (_req: Request, res: Response) => actorOf(res);
  /** Reads show personal data only when asked for with a reason (`?reveal=true&reason=…`), and the reveal is audited. */
  async function revealed(req: Request, res: Response, target: string, orderId: string | null): Promise<boolean> {
    const q = validate(revealQuery, { reveal: req.query.reveal, reason: req.query.reason }, 'INVALID_QUERY');
    if (q.reveal !== 'true') return false;
    if (!q.reason) throw new AppError('REASON_REQUIRED', 'revealing personal data needs a reason', { status: 400 });
    await deps.audit.record({ actor: actor(req, res), action: 'REVEAL_PERSONAL_DATA', target, orderId, reason: q.reason });
    return true;
  }

  app.put('/admin/sellers/:sellerId', async (req, res) => {
    const { sellerId } = validate(sellerParams, req.params, 'INVALID_SELLER_ID');
    const body = validate(sellerBody, req.body ?? {});
    const before = (await deps.sellers.get(sellerId)) ?? null;
    const { requeued } = await deps.sellers.put(sellerId, body.displayName ?? null, body.accounts);
    const after = await deps.sellers.get(sellerId);
    // before/after are the seller views: account ids and whether a token/secret is held, never the secrets
    await deps.audit.record({ actor: actor(req, res), action: 'PUT_SELLER', target: sellerId, before, after, reason: auditReason(req) });
    res.status(200).json({ ...after, requeuedDeliveries: requeued });
  });
  app.get('/admin/sellers/:sellerId', async (req, res) => {
    const { sellerId } = validate(sellerParams, req.params, 'INVALID_SELLER_ID');
    const seller = await deps.sellers.get(sellerId);
    if (!seller) throw notFound('SELLER_NOT_FOUND', 'no such seller');
    res.json(seller);
  });

  app.get('/admin/deliveries', async (req, res) => {
    const q = validate(listQuery, req.query, 'INVALID_QUERY');
    res.json({ deliveries: (await deps.deliveries.list(q)).map((d) => deliveryView(d)) });
  });
  app.get('/admin/deliveries/:id', async (req, res) => {
    const { id } = validate(uuid, req.params, 'INVALID_DELIVERY_ID');
    const d = await deps.deliveries.get(id);
    if (!d) throw notFound('DELIVERY_NOT_FOUND', 'no such delivery');
    res.json(deliveryView(d, await revealed(req, res, `delivery:${id}`, d.order_id)));
  });
  app.post('/admin/deliveries/:id/reprocess', async (req, res) => {
    const { id } = validate(uuid, req.params, 'INVALID_DELIVERY_ID');
    const d = await deps.deliveries.get(id);
    if (!d) throw notFound('DELIVERY_NOT_FOUND', 'no such delivery');
    if (!(await deps.deliveries.requeue(id))) throw new AppError('DELIVERY_NOT_PARKED', `only parked deliveries can be reprocessed (this one is ${d.status})`, { status: 409 });
    await deps.audit.record({ actor: actor(req, res), action: 'REPROCESS_DELIVERY', target: `delivery:${id}`, orderId: d.order_id, before: { status: d.status, reason: d.reason }, after: { status: 'pending' }, reason: auditReason(req) });
    deps.nudgePoller();
    res.status(202).json({ id, status: 'pending' });
  });

  // Erase the buyer's personal data of one order (any marketplace): same path as eBay account deletion and retention.
  app.post('/admin/orders/:orderId/erase', async (req, res) => {
    const { orderId } = validate(orderParams, req.params, 'INVALID_ORDER_ID');
    const { reason } = validate(eraseBody, req.body ?? {}, 'REASON_REQUIRED');
    if (!(await deps.orders.get(orderId))) throw notFound('ORDER_NOT_FOUND', 'ingest has no such order');
    const erased = await deps.erasure.eraseOrder({ orderId, requestedBy: actor(req, res), reason });
    await deps.audit.record({ actor: actor(req, res), action: 'ERASE_PERSONAL_DATA', target: orderId, orderId, before: { personalData: 'held' }, after: { personalData: 'erased', ...erased }, reason });
    res.status(200).json({ orderId, erased });
  });

  app.get('/admin/dropped-notifications', async (_req, res) => {
    res.json({ dropped: (await deps.deliveries.droppedCounts()).map((r) => ({ marketplace: r.marketplace, reason: r.reason, day: r.day, count: Number(r.count) })) });
  });

  app.get('/admin/orders', async (req, res) => {
    const { buyerEmail } = validate(buyerQuery, req.query, 'INVALID_QUERY');
    res.json({ orderIds: await deps.orders.orderIdsByBuyerEmail(buyerEmail) });
  });

  app.get('/admin/orders/:orderId', async (req, res) => {
    const orderId = String(req.params.orderId);
    const order = await deps.orders.get(orderId);
    const deliveries = await deps.deliveries.forOrder(orderId);
    if (!order && deliveries.length === 0) throw notFound('ORDER_NOT_FOUND', 'ingest knows nothing about this order');
    const events = order ? await deps.orders.events(orderId) : [];
    const reveal = order ? await revealed(req, res, orderId, orderId) : false;
    res.json({
      service: 'ingest',
      orderId,
      state: order?.state ?? 'NOT_RECEIVED',
      ...(order ? {
        marketplace: order.marketplace, externalOrderId: order.external_order_id, sellerId: order.seller_id, accountId: order.account_id,
        saleAmount: { amountMinor: safeInteger(order.sale_amount_minor), currency: order.currency },
        refundedAmount: { amountMinor: safeInteger(order.refunded_amount_minor), currency: order.currency },
        paymentReference: order.payment_reference, receivedAt: new Date(order.received_at).toISOString(), received: reveal ? order.received_payload : maskedPayload(order.received_payload as unknown as Record<string, unknown>),
      } : {}),
      history: events.map((e) => ({ at: new Date(e.at).toISOString(), event: e.event_type, eventId: e.event_id, cause: e.cause, deliveryId: e.delivery_id, refundId: e.refund_id })),
      deliveries: deliveries.map((d) => deliveryView(d)),
      audit: (await deps.audit.forOrder(orderId)).map((a) => ({ at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, reason: a.reason, before: a.before, after: a.after })),
      erasures: (await deps.erasures.forOrder(orderId)).map((e) => ({ at: new Date(e.at).toISOString(), cause: e.cause, by: e.requested_by, reason: e.reason })),
    });
  });

  app.get('/admin/integrity', async (_req, res) => {
    res.json(await deps.integrity());
  });
}
