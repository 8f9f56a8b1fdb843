import type { Express, Request, Response } from 'express';
import { z } from 'zod';
import { isKnownCurrency } from '@postsale/contracts';
import { actorOf, auditReason, AppError, notFound, requireRoles, revealRequest, validate } from '@postsale/runtime';
import type { PayoutsContext } from '../domain/context';
import { requestCancel, retryPayout, setFxRate, setPayee, type AuditContext } from '../domain/payout-admin.use-case';
import { isPayPalPayoutCurrency, isValidRate } from '../domain/payout-currency';
import {
  auditTrail, fxRates, integrityReport, listPayouts, orderDetails, orderPayouts, sellerBalance, type IntegrityDeadlines, type Reveal,
} from '../domain/payout-queries.use-case';

const STATUSES = ['HELD', 'DUE', 'SUBMITTED', 'SENT', 'FAILED', 'RETURNED', 'CANCELLED', 'SKIPPED', 'OFFSET', 'DRY_RUN', 'NEEDS_REVIEW'] as const;
const idParam = z.string().min(1).max(200);
const uuidParam = z.object({ id: z.uuid() });

/** optional: omitted = the sale's currency when PayPal pays it, else DEFAULT_PAYOUT_CURRENCY */
const payoutCurrency = z.string().refine(isPayPalPayoutCurrency, 'a currency PayPal Payouts supports, e.g. USD, EUR').optional();
const payeeBody = z.union([
  z.object({ email: z.email(), releasePolicy: z.enum(['immediate', 'after_shipment']), payoutCurrency }).strict(),
  z.object({ email: z.email(), releasePolicy: z.literal('after_delivery_plus_days'), releaseDelayDays: z.number().int().min(0).max(365), payoutCurrency }).strict(),
]);

// Same route shape and meaning as the sales service's rate table: `rate` units of `to` per ONE unit of `from`.
const currency = z.string().regex(/^[A-Z]{3}$/).refine(isKnownCurrency, 'unknown ISO 4217 currency');
const isoDay = z.string().regex(/^\d{4}-\d{2}-\d{2}$/)
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'not a calendar date');
const fxParams = z.object({ from: currency, to: currency, date: isoDay }).refine((p) => p.from !== p.to, 'from and to must differ');
const fxBody = z.object({
  rate: z.string().refine(isValidRate, 'a positive plain decimal string of units of `to` per 1 `from`, e.g. "0.00105263"'),
  source: z.string().min(1).max(200).default('manual'),
}).strict();

const auditOf = (req: Request, res: Response): AuditContext => ({ actor: actorOf(res), reason: auditReason(req) });

/**
 * Personal data (payee emails, item receivers) is masked unless an admin asks for it with a reason; the query use case
 * records the reveal in admin_audit. The operator credential may not reveal.
 */
function revealOf(req: Request, res: Response): Reveal | undefined {
  const reveal = revealRequest(req, res);
  if (reveal && reveal.actor !== 'admin') throw new AppError('FORBIDDEN', 'only the admin credential may reveal personal data', { status: 403 });
  return reveal;
}

/** The operator API: the operator token reads, the admin token writes; every admin write is in admin_audit. */
export function adminRoutes(app: Express, ctx: PayoutsContext, options: {
  adminToken: string; operatorToken?: string; deadlines: IntegrityDeadlines;
}): void {
  const auth = requireRoles({ admin: options.adminToken, operator: options.operatorToken });

  app.get('/admin/payouts', auth, async (req, res) => {
    const q = validate(z.object({
      status: z.enum(STATUSES).optional(),
      sellerId: idParam.optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(200),
    }), req.query, 'INVALID_QUERY');
    res.json({ payouts: await listPayouts(ctx, q, revealOf(req, res)) });
  });

  app.get('/admin/orders/:orderId/payouts', auth, async (req, res) => {
    const { orderId } = validate(z.object({ orderId: idParam }), req.params);
    res.json({ orderId, payouts: await orderPayouts(ctx, orderId, revealOf(req, res)) });
  });

  app.get('/admin/orders/:orderId', auth, async (req, res) => {
    const { orderId } = validate(z.object({ orderId: idParam }), req.params);
    const details = await orderDetails(ctx, orderId, revealOf(req, res));
    if (!details) throw notFound('ORDER_NOT_FOUND', 'payouts knows nothing about this order');
    res.json(details);
  });

  app.post('/admin/payouts/:id/retry', auth, async (req, res) => {
    const { id } = validate(uuidParam, req.params, 'INVALID_PAYOUT_ID');
    const intent = await retryPayout(ctx, id, auditOf(req, res));
    res.status(202).json({ id: intent.id, status: intent.status, attempt: intent.attempt });
  });

  app.post('/admin/payouts/:id/cancel', auth, async (req, res) => {
    const { id } = validate(uuidParam, req.params, 'INVALID_PAYOUT_ID');
    await requestCancel(ctx, id, auditOf(req, res));
    res.status(202).json({ id, cancelRequested: true });
  });

  app.get('/admin/sellers/:sellerId/balance', auth, async (req, res) => {
    const { sellerId } = validate(z.object({ sellerId: idParam }), req.params);
    res.json(await sellerBalance(ctx, sellerId, revealOf(req, res)));
  });

  app.put('/admin/sellers/:sellerId/payee', auth, async (req, res) => {
    const { sellerId } = validate(z.object({ sellerId: idParam }), req.params);
    const body = validate(payeeBody, req.body, 'INVALID_PAYEE');
    const payee = await setPayee(ctx, {
      sellerId, email: body.email, releasePolicy: body.releasePolicy, releaseDelayDays: 'releaseDelayDays' in body ? body.releaseDelayDays : 0,
      payoutCurrency: body.payoutCurrency ?? null,
    }, auditOf(req, res));
    res.json({
      sellerId, email: payee?.email, releasePolicy: payee?.releasePolicy, releaseDelayDays: payee?.releaseDelayDays,
      payoutCurrency: payee?.payoutCurrency ?? null, defaultPayoutCurrency: ctx.settings.defaultPayoutCurrency,
    });
  });

  app.put('/admin/fx-rates/:from/:to/:date', auth, async (req, res) => {
    const params = validate(fxParams, req.params, 'INVALID_FX_RATE');
    const body = validate(fxBody, req.body ?? {}, 'INVALID_FX_RATE');
    const rate = { from: params.from, to: params.to, rateDate: params.date, rate: body.rate, source: body.source };
    const result = await setFxRate(ctx, rate, auditOf(req, res));
    res.json({ ...rate, reevaluatedPayouts: result.reevaluated });
  });

  app.get('/admin/fx-rates', auth, async (req, res) => {
    const q = validate(z.object({ from: currency.optional(), to: currency.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }), req.query, 'INVALID_QUERY');
    res.json({ rates: await fxRates(ctx, q) });
  });

  app.get('/admin/audit', auth, async (req, res) => {
    const q = validate(z.object({ target: z.string().min(1).max(255).optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }), req.query, 'INVALID_QUERY');
    res.json({ audit: await auditTrail(ctx, q) });
  });

  app.get('/admin/integrity', auth, async (_req, res) => {
    res.json(await integrityReport(ctx, options.deadlines));
  });
}
