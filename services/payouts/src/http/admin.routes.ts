import type { Express } from 'express';
import { z } from 'zod';
import { notFound, requireBearer, validate } from '@postsale/runtime';
import { integrityReport, listPayouts, orderDetails, orderPayouts, sellerBalance, type IntegrityDeadlines } from '../domain/admin-queries';
import type { PayoutsContext } from '../domain/context';
import { requestCancel, retryIntent, setPayee } from '../domain/intents.use-case';

const STATUSES = ['HELD', 'DUE', 'SUBMITTED', 'SENT', 'FAILED', 'RETURNED', 'CANCELLED', 'SKIPPED', 'OFFSET', 'DRY_RUN', 'NEEDS_REVIEW'] as const;
const idParam = z.string().min(1).max(200);
const uuidParam = z.object({ id: z.uuid() });

const payeeBody = z.union([
  z.object({ email: z.email(), releasePolicy: z.enum(['immediate', 'after_shipment']) }).strict(),
  z.object({ email: z.email(), releasePolicy: z.literal('after_delivery_plus_days'), releaseDelayDays: z.number().int().min(0).max(365) }).strict(),
]);

/** The operator API. Every route behind the admin bearer token. */
export function adminRoutes(app: Express, ctx: PayoutsContext, options: { adminToken: string; deadlines: IntegrityDeadlines }): void {
  const auth = requireBearer(options.adminToken);

  app.get('/admin/payouts', auth, async (req, res) => {
    const q = validate(z.object({
      status: z.enum(STATUSES).optional(),
      sellerId: idParam.optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(200),
    }), req.query, 'INVALID_QUERY');
    res.json({ payouts: await listPayouts(ctx, q) });
  });

  app.get('/admin/orders/:orderId/payouts', auth, async (req, res) => {
    const { orderId } = validate(z.object({ orderId: idParam }), req.params);
    res.json({ orderId, payouts: await orderPayouts(ctx, orderId) });
  });

  app.get('/admin/orders/:orderId', auth, async (req, res) => {
    const { orderId } = validate(z.object({ orderId: idParam }), req.params);
    const details = await orderDetails(ctx, orderId);
    if (!details) throw notFound('ORDER_NOT_FOUND', 'payouts knows nothing about this order');
    res.json(details);
  });

  app.post('/admin/payouts/:id/retry', auth, async (req, res) => {
    const { id } = validate(uuidParam, req.params, 'INVALID_PAYOUT_ID');
    const intent = await retryIntent(ctx, id, 'operator retry');
    res.status(202).json({ id: intent.id, status: intent.status, attempt: intent.attempt });
  });

  app.post('/admin/payouts/:id/cancel', auth, async (req, res) => {
    const { id } = validate(uuidParam, req.params, 'INVALID_PAYOUT_ID');
    await requestCancel(ctx, id);
    res.status(202).json({ id, cancelRequested: true });
  });

  app.get('/admin/sellers/:sellerId/balance', auth, async (req, res) => {
    const { sellerId } = validate(z.object({ sellerId: idParam }), req.params);
    res.json(await sellerBalance(ctx, sellerId));
  });

  app.put('/admin/sellers/:sellerId/payee', auth, async (req, res) => {
    const { sellerId } = validate(z.object({ sellerId: idParam }), req.params);
    const body = validate(payeeBody, req.body, 'INVALID_PAYEE');
    const payee = await setPayee(ctx, { sellerId, email: body.email, releasePolicy: body.releasePolicy, releaseDelayDays: 'releaseDelayDays' in body ? body.releaseDelayDays : 0 });
    res.json({ sellerId, email: payee?.email, releasePolicy: payee?.releasePolicy, releaseDelayDays: payee?.releaseDelayDays });
  });

  app.get('/admin/integrity', auth, async (_req, res) => {
    res.json(await integrityReport(ctx, options.deadlines));
  });
}
