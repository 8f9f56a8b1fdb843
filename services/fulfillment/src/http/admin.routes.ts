import type { Express, Request, Response } from 'express';
import { z } from 'zod';
import { formatDecimal, isKnownCurrency, parseDecimal, type Money } from '@postsale/contracts';
import { actorOf, type AdminAuditTrail, badRequest, maskAddress, notFound, requireRoles, revealRequest, validate } from '@postsale/runtime';
import { approveOrder, integrityReport, markPurchased, retryOrder, type Deadlines } from '../domain/admin.use-case';
import { cancelBeforePurchase } from '../domain/cancel-order.use-case';
import type { FulfillmentDeps } from '../domain/ports';
import type { Fulfillment } from '../db/fulfillment.repository';

/** Admin API, all behind the bearer token: validate, call one use case, map the result. */
const moneyInput = z.object({ amount: z.string().regex(/^\d+(\.\d+)?$/, 'decimal string, e.g. "12.50"'), currency: z.string().regex(/^[A-Z]{3}$/) });
const toMoney = (m: z.infer<typeof moneyInput>): Money => {
  if (!isKnownCurrency(m.currency)) throw badRequest('UNKNOWN_CURRENCY', `unknown currency ${m.currency}`);
  try {
    return parseDecimal(m.amount, m.currency);
  } catch (error) {
    throw badRequest('INVALID_AMOUNT', error instanceof Error ? error.message : 'invalid amount');
  }
};
const channel = z.enum(['API', 'BROWSER']);
const id = z.string().min(1).max(200);

const schemas = {
  approve: z.object({ maxSupplierCost: moneyInput }),
  // the reason is recorded (audit, transition): printable text only
  cancel: z.object({ reason: z.string().trim().min(3).max(500).regex(/^[^\p{Cc}]+$/u, 'printable text') }).strict(),
  markPurchased: z.object({ supplierOrderId: z.string().regex(/^\d{6,24}$/, 'the supplier order number'), supplierCost: moneyInput }),
  // Every field optional: an omitted field keeps its stored value (never a permissive default); null clears it.
  // minMarginBps is after fees; below 0 only when the seller explicitly accepts buying at a loss.
  policy: z.object({
    minMarginBps: z.number().int().min(-10_000).max(10_000).nullable().optional(),
    maxCost: moneyInput.nullable().optional(),
    purchaseChannel: channel.optional(),
    fxRates: z.record(z.string().regex(/^[A-Z]{3}:[A-Z]{3}$/), z.string().regex(/^\d+(\.\d+)?$/)).optional(),
    ratePerSecond: z.number().positive().max(1000).nullable().optional(),
    dailyQuota: z.number().int().positive().nullable().optional(),
  }).strict(),
  mappings: z.object({
    mappings: z
      .array(
        z.object({
          listingId: id,
          sku: z.string().max(200).nullable().default(null),
          productId: z.string().regex(/^\d+$/, 'the AliExpress product id'),
          skuAttr: z.string().max(500).default(''),
          logisticsServiceName: z.string().max(100).nullable().default(null),
          purchaseChannel: channel.nullable().default(null),
        }),
      )
      .min(1)
      .max(500),
  }),
  credentials: z
    .object({
      api: z.object({ appKey: z.string().min(1).max(100), appSecret: z.string().min(1).max(500), accessToken: z.string().min(1).max(2000) }).optional(),
      web: z.object({ email: z.string().email(), password: z.string().min(1).max(500) }).optional(),
    })
    .refine((c) => c.api || c.web, 'give api and/or web credentials'),
  marketplaceToken: z.object({
    accessToken: z.string().min(1).max(4000),
    mlServiceId: z.number().int().positive().nullable().default(null),
    ebayCarrierCode: z.string().max(50).nullable().default(null),
  }),
};

const showMoney = (m: Money | null) => (m ? { ...m, amount: formatDecimal(m) } : null);

function present(f: Fulfillment) {
  return {
    orderId: f.orderId,
    sellerId: f.sellerId,
    marketplace: f.marketplace,
    externalOrderId: f.externalOrderId,
    state: f.state,
    stateSince: f.stateSince.toISOString(),
    reason: f.reasonCode ? { code: f.reasonCode, details: f.reasonDetails } : null,
    saleAmount: showMoney(f.saleAmount),
    supplierCost: showMoney(f.supplierCost),
    approvedMax: showMoney(f.approvedMax),
    outOrderId: f.outOrderId,
    channel: f.channel,
    supplierOrderId: f.supplierOrderId,
    carrier: f.carrier,
    trackingNumber: f.trackingNumber,
    cancelRequested: f.cancelRequested,
    lines: f.lines,
    shipTo: f.shipTo,
    shipToIssue: f.shipToIssue,
    purchaseAttempts: f.purchaseAttempts,
    nextRunAt: f.nextRunAt?.toISOString() ?? null,
    receivedAt: f.receivedAt?.toISOString() ?? null,
    purchasedAt: f.purchasedAt?.toISOString() ?? null,
    shippedAt: f.shippedAt?.toISOString() ?? null,
  };
}

/** Who acts: from the credential (requireRoles), never from a header the caller chooses. */
const operatorOf = (_req: Request, res: Response) => actorOf(res);
const param = (req: Request, name: string) => validate(id, req.params[name], 'INVALID_PATH');

export function adminRoutes(deps: FulfillmentDeps, options: { adminToken: string; operatorToken?: string; deadlines: Deadlines; wake: () => void; audit: AdminAuditTrail }) {
  return (app: Express) => {
    app.use('/admin', requireRoles({ admin: options.adminToken, operator: options.operatorToken }));
    /** The ship-to is masked unless asked for with a reason (`?reveal=true&reason=…`); a reveal is audited first. */
    const shown = async (req: Request, res: Response, f: Fulfillment) => {
      const reveal = revealRequest(req, res);
      if (reveal) {
        await options.audit.record({ actor: reveal.actor, action: 'REVEAL_PERSONAL_DATA', target: `order:${f.orderId}`, orderId: f.orderId, reason: reveal.reason });
        return present(f);
      }
      return { ...present(f), shipTo: maskAddress(f.shipTo as unknown as Record<string, unknown> | null) };
    };

    app.get('/admin/orders', async (req, res) => {
      const supplierOrderId = validate(z.string().regex(/^[0-9A-Za-z_-]{1,64}$/), req.query.supplierOrderId, 'INVALID_QUERY');
      res.json({ orderIds: await deps.repo.orderIdsBySupplierOrder(supplierOrderId) });
    });

    app.get('/admin/orders/:orderId', async (req, res) => {
      const orderId = param(req, 'orderId');
      const f = await deps.repo.get(orderId);
      if (!f) throw notFound('ORDER_NOT_FOUND', `no fulfillment for order ${orderId}`);
      const history = await deps.repo.history(orderId);
      res.json({ ...(await shown(req, res, f)), ...history, audit: await options.audit.forOrder(orderId) });
    });

    app.get('/admin/review-queue', async (req, res) => {
      const limit = validate(z.coerce.number().int().min(1).max(1000).default(200), req.query.limit, 'INVALID_QUERY');
      const queue = await deps.repo.reviewQueue(limit);
      res.json({ count: queue.length, orders: queue.map((f) => ({ ...present(f), shipTo: maskAddress(f.shipTo as unknown as Record<string, unknown> | null) })) });
    });

    app.get('/admin/integrity', async (_req, res) => {
      res.json(await integrityReport(deps, options.deadlines));
    });

    app.post('/admin/orders/:orderId/retry', async (req, res) => {
      const f = await retryOrder(deps, param(req, 'orderId'), operatorOf(req, res));
      options.wake();
      res.json(present(f));
    });

    app.post('/admin/orders/:orderId/approve', async (req, res) => {
      const body = validate(schemas.approve, req.body);
      const f = await approveOrder(deps, param(req, 'orderId'), toMoney(body.maxSupplierCost), operatorOf(req, res));
      options.wake();
      res.json(present(f));
    });

    app.post('/admin/orders/:orderId/mark-purchased', async (req, res) => {
      const body = validate(schemas.markPurchased, req.body);
      const f = await markPurchased(deps, param(req, 'orderId'), { supplierOrderId: body.supplierOrderId, supplierCost: toMoney(body.supplierCost) }, operatorOf(req, res));
      options.wake();
      res.json(present(f));
    });

    /** Cancel an order not bought at the supplier (see cancelBeforePurchase for exactly which); 409 with a code otherwise. */
    app.post('/admin/orders/:orderId/cancel', async (req, res) => {
      const body = validate(schemas.cancel, req.body);
      const f = await cancelBeforePurchase(deps, options.audit, param(req, 'orderId'), { reason: body.reason, actor: operatorOf(req, res) });
      res.json(present(f));
    });

    app.get('/admin/sellers/:sellerId', async (req, res) => {
      const sellerId = param(req, 'sellerId');
      const [policy, mappings, credentials] = await Promise.all([deps.sellers.policy(sellerId), deps.sellers.mappings(sellerId), deps.sellers.credentialSummary(sellerId)]);
      res.json({ sellerId, policy: policy ? { ...policy, maxCost: showMoney(policy.maxCost) } : null, mappings, credentials });
    });

    app.put('/admin/sellers/:sellerId/policy', async (req, res) => {
      const sellerId = param(req, 'sellerId');
      const body = validate(schemas.policy, req.body);
      for (const pair of Object.keys(body.fxRates ?? {})) {
        if (!pair.split(':').every(isKnownCurrency)) throw badRequest('UNKNOWN_CURRENCY', `unknown currency in ${pair}`);
      }
      const current = await deps.sellers.policy(sellerId);
      const keep = <K extends keyof typeof body>(k: K, fallback: unknown) => (body[k] !== undefined ? body[k] : current ? current[k as keyof typeof current] : fallback);
      await deps.sellers.putPolicy({
        sellerId,
        minMarginBps: keep('minMarginBps', null) as number | null,
        maxCost: body.maxCost !== undefined ? (body.maxCost ? toMoney(body.maxCost) : null) : (current?.maxCost ?? null),
        purchaseChannel: keep('purchaseChannel', 'API') as 'API' | 'BROWSER',
        fxRates: keep('fxRates', {}) as Record<string, string>,
        ratePerSecond: keep('ratePerSecond', null) as number | null,
        dailyQuota: keep('dailyQuota', null) as number | null,
      });
      res.json({ sellerId, policy: await deps.sellers.policy(sellerId) });
    });

    app.put('/admin/sellers/:sellerId/mappings', async (req, res) => {
      const sellerId = param(req, 'sellerId');
      const body = validate(schemas.mappings, req.body);
      await deps.sellers.putMappings(sellerId, body.mappings.map((m) => ({ ...m, sku: m.sku ?? '' })));
      res.json({ sellerId, mappings: await deps.sellers.mappings(sellerId) });
    });

    app.delete('/admin/sellers/:sellerId/mappings/:listingId', async (req, res) => {
      const sku = typeof req.query.sku === 'string' ? req.query.sku : '';
      const deleted = await deps.sellers.deleteMapping(param(req, 'sellerId'), param(req, 'listingId'), sku);
      if (deleted === 0) throw notFound('MAPPING_NOT_FOUND', 'no such mapping');
      res.status(204).end();
    });

    app.put('/admin/sellers/:sellerId/credentials', async (req, res) => {
      const sellerId = param(req, 'sellerId');
      const body = validate(schemas.credentials, req.body);
      await deps.sellers.putSupplierCredentials(sellerId, body);
      res.json({ sellerId, credentials: await deps.sellers.credentialSummary(sellerId) });
    });

    app.put('/admin/sellers/:sellerId/marketplace-tokens/:marketplace', async (req, res) => {
      const sellerId = param(req, 'sellerId');
      const marketplace = validate(z.enum(['EBAY', 'MERCADOLIBRE']), req.params.marketplace, 'UNKNOWN_MARKETPLACE');
      const body = validate(schemas.marketplaceToken, req.body);
      await deps.sellers.putMarketplaceToken(sellerId, marketplace, body);
      res.json({ sellerId, credentials: await deps.sellers.credentialSummary(sellerId) });
    });
  };
}
