import type { Express } from 'express';
import { z } from 'zod';
import { formatDecimal, isKnownCurrency, parseDecimal, type Money } from '@postsale/contracts';
import { actorOf, auditReason, badRequest, notFound, requireRoles, validate } from '@postsale/runtime';
import { auditTrail, commercialTerms, setCommercialTerms, setFxRate } from '../domain/admin.use-case';
import { isValidRate } from '../domain/fx';
import type { CommercialTerms, SalesDeps } from '../domain/ports';
import { integrityReport, openPayables, orderDetail, saleDetail, sellerPayouts, sellerStatement, statementCsv, trialBalance } from '../domain/reports.use-case';

export interface AdminRouteOptions {
  adminToken: string;
  /** read-only credential: GET routes only */
  operatorToken?: string;
  saleDeadlineSeconds: number;
}

const id = z.string().min(1).max(200);
const currency = z.string().regex(/^[A-Z]{3}$/).refine(isKnownCurrency, 'unknown ISO 4217 currency');
const bps = z.number().int().min(0).max(10_000);
const feeSchedule = z.object({
  percentBps: bps,
  fixed: z.record(currency, z.string()).optional(),
}).strict().superRefine((s, ctx) => {
  for (const [c, text] of Object.entries(s.fixed ?? {})) {
    try {
      if (parseDecimal(text, c).amountMinor < 0) throw new RangeError('negative');
    } catch {
      ctx.addIssue({ code: 'custom', path: ['fixed', c], message: `not a non-negative ${c} amount` });
    }
  }
});
const termsBody = z.object({
  commissionRateBps: bps,
  marketplaceFees: z.object({ EBAY: feeSchedule, MERCADOLIBRE: feeSchedule, PAYPAL_STOREFRONT: feeSchedule }).partial().strict().default({}),
}).strict();
const isoDay = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'not a calendar date');
const fxParams = z.object({ from: currency, to: currency, date: isoDay }).refine((p) => p.from !== p.to, 'from and to must differ');
const fxBody = z.object({ rate: z.string().refine(isValidRate, 'a positive plain decimal string, e.g. "947.35"'), source: z.string().min(1).max(200).default('manual') }).strict();
const statementQuery = z.object({
  from: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'ISO date or date-time').optional(),
  to: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'ISO date or date-time').optional(),
});

const auditQuery = z.object({ target: z.string().min(1).max(255).regex(/^[\x20-\x7e]+$/).optional(), limit: z.coerce.number().int().min(1).max(500).default(100) });

const withDecimal = (m: Money) => ({ ...m, decimal: formatDecimal(m) });

/** Admin API, behind the bearer tokens: validate, call one use case, map the result. */
export function adminRoutes(deps: SalesDeps, options: AdminRouteOptions) {
  return (app: Express) => {
    const auth = requireRoles({ admin: options.adminToken, operator: options.operatorToken });

    app.get('/admin/sales/:orderId', auth, async (req, res) => {
      const { orderId } = validate(z.object({ orderId: id }), req.params);
      const detail = await saleDetail(deps, orderId);
      if (!detail) throw notFound('SALE_NOT_FOUND', 'no sale is recorded for this order');
      const { sale } = detail;
      const b = sale.breakdown;
      res.json({
        saleId: sale.saleId, orderId, sellerId: sale.sellerId, recordedAt: sale.recordedAt.toISOString(),
        breakdown: {
          saleAmount: withDecimal(b.saleAmount), marketplaceFee: withDecimal(b.marketplaceFee), paymentFee: withDecimal(b.paymentFee),
          supplierCost: withDecimal(b.supplierCost), supplierCostCharged: withDecimal(sale.supplierCostCharged), grossProfit: withDecimal(b.grossProfit),
          commissionRateBps: b.commissionRateBps, platformCommission: withDecimal(b.platformCommission), sellerNetProfit: withDecimal(b.sellerNetProfit),
          loss: withDecimal(b.loss), isLoss: b.isLoss,
        },
        marketplaceFeeSource: sale.marketplaceFeeSource, termsSource: sale.termsSource, fx: sale.fx,
        refunded: withDecimal({ amountMinor: sale.refundedMinor, currency: b.saleAmount.currency }),
        adjustments: detail.adjustments,
        journal: detail.journal,
      });
    });

    app.get('/admin/orders/:orderId', auth, async (req, res) => {
      const { orderId } = validate(z.object({ orderId: id }), req.params);
      const detail = await orderDetail(deps, orderId);
      if (!detail) throw notFound('ORDER_NOT_FOUND', 'this service has no record of the order');
      const { order, sale } = detail;
      res.json({
        orderId, sellerId: order.sellerId, state: order.state, stateReason: order.stateReason, stateSince: order.stateSince.toISOString(),
        order: order.order, purchase: order.purchase, sale: sale ?? null,
        adjustments: detail.adjustments,
        history: detail.history,
        journal: detail.journal,
      });
    });

    app.get('/admin/sellers/:sellerId/statement', auth, async (req, res) => {
      const { sellerId } = validate(z.object({ sellerId: id }), req.params);
      const q = validate(statementQuery, req.query, 'INVALID_QUERY');
      const from = q.from ? new Date(q.from) : new Date(0);
      const to = q.to ? new Date(q.to) : new Date(Date.now() + 1000);
      if (from >= to) throw badRequest('INVALID_RANGE', '`from` must be before `to`');
      const statement = await sellerStatement(deps, sellerId, from, to);
      if (req.accepts(['application/json', 'text/csv']) === 'text/csv') {
        res.type('text/csv').attachment(`statement-${sellerId}.csv`).send(statementCsv(statement));
        return;
      }
      res.json(statement);
    });

    app.get('/admin/ledger/trial-balance', auth, async (_req, res) => {
      res.json(await trialBalance(deps, new Date()));
    });

    // Every payable account (seller_payable per seller, platform_commission) whose balance is not zero: after a clean
    // run (every sale paid out, every return re-paid) this list is empty.
    app.get('/admin/ledger/payables', auth, async (_req, res) => {
      const open = (await openPayables(deps)).map((p) => ({ ...p, balance: withDecimal(p.balance) }));
      res.json({ generatedAt: new Date().toISOString(), settled: open.length === 0, open });
    });

    // "What did we pay seller X": the seller's payout settlement entries (net profit paid, returns) and totals of
    // what left through PayPal per payout currency.
    app.get('/admin/sellers/:sellerId/payouts', auth, async (req, res) => {
      const { sellerId } = validate(z.object({ sellerId: id }), req.params);
      const { paid, entries } = await sellerPayouts(deps, sellerId);
      res.json({
        sellerId,
        paid: paid.map(withDecimal),
        entries: entries.map((r) => ({ entryKey: r.entry_key, kind: r.kind, orderId: r.order_id, description: r.description, postedAt: new Date(String(r.posted_at)).toISOString(), account: r.account_code, amount: withDecimal({ amountMinor: Number(r.amount_minor), currency: String(r.currency).trim() }) })),
      });
    });

    app.get('/admin/sellers/:sellerId/commercial-terms', auth, async (req, res) => {
      const { sellerId } = validate(z.object({ sellerId: id }), req.params);
      const terms = await commercialTerms(deps, sellerId);
      if (!terms) throw notFound('TERMS_NOT_FOUND', 'this seller has no commercial terms');
      res.json(terms);
    });

    app.put('/admin/sellers/:sellerId/commercial-terms', auth, async (req, res) => {
      const { sellerId } = validate(z.object({ sellerId: id }), req.params);
      const body = validate(termsBody, req.body, 'INVALID_TERMS');
      const terms: CommercialTerms = { sellerId, commissionRateBps: body.commissionRateBps, marketplaceFees: body.marketplaceFees };
      const result = await setCommercialTerms(deps, terms, { actor: actorOf(res), reason: auditReason(req) });
      res.json({ ...terms, releasedOrders: result.released });
    });

    app.put('/admin/fx-rates/:from/:to/:date', auth, async (req, res) => {
      const params = validate(fxParams, req.params, 'INVALID_FX_RATE');
      const body = validate(fxBody, req.body ?? {}, 'INVALID_FX_RATE');
      const rate = { from: params.from, to: params.to, rateDate: params.date, rate: body.rate, source: body.source };
      const result = await setFxRate(deps, rate, { actor: actorOf(res), reason: auditReason(req) });
      res.json({ ...rate, examinedOrders: result.examined });
    });

    // every admin write with who, before/after and why (newest first); `target` is e.g. seller:<id> or fx:<from>:<to>:<day>
    app.get('/admin/audit', auth, async (req, res) => {
      const q = validate(auditQuery, req.query, 'INVALID_QUERY');
      res.json({ audit: await auditTrail(deps, q) });
    });

    app.get('/admin/integrity', auth, async (_req, res) => {
      res.json(await integrityReport(deps, new Date(), options.saleDeadlineSeconds));
    });
  };
}
