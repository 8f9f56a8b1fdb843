import type { Express, Request, Response } from 'express';
import { applyRate, currencyDecimals, fromMinorUnits, isoSeconds, randomId, toMinorUnits } from '../fake-utils';
import { baseUrlOf, sendError, sendJson } from './paypal-http';

/**
 * Orders v2 capture: `POST /v2/checkout/orders/{id}/capture` with PayPal-Request-Id idempotency (a replay within the
 * key's life answers 200, not 201), the seller receivable breakdown (gross, PayPal fee, net), PENDING captures without
 * a breakdown, and the 422 ORDER_ALREADY_CAPTURED PayPal returns for a second capture.
 *
 * Capture outcomes (external-apis.md "Corrections", PayPal's Orders v2 OpenAPI: capture status COMPLETED | DECLINED |
 * PARTIALLY_REFUNDED | PENDING | REFUNDED | FAILED): COMPLETED (default); PENDING (201, capture PENDING, no fee);
 * DECLINED (422 INSTRUMENT_DECLINED with a rel:"redirect" link); CAPTURE_DECLINED / CAPTURE_FAILED (201 while
 * `captures[0].status` is DECLINED / FAILED and the order status still reads COMPLETED: only a COMPLETED capture is
 * paid money).
 */
export type CaptureOutcome = 'COMPLETED' | 'PENDING' | 'DECLINED' | 'CAPTURE_DECLINED' | 'CAPTURE_FAILED';

export interface PayPalMoney {
  currency_code: string;
  value: string;
}

export interface CheckoutPayer {
  name: { given_name: string; surname: string };
  email_address: string;
  payer_id: string;
  address?: { country_code: string };
}

export interface CheckoutShipping {
  name: { full_name: string };
  address: {
    address_line_1: string;
    address_line_2?: string;
    admin_area_2: string;
    admin_area_1?: string;
    postal_code: string;
    country_code: string;
  };
}

export interface CheckoutOrderSeed {
  id: string;
  /** APPROVED orders can be captured; CREATED ones answer ORDER_NOT_APPROVED */
  status: 'CREATED' | 'APPROVED' | 'COMPLETED' | 'VOIDED';
  amount: string;
  currency: string;
  payer: CheckoutPayer;
  shipping: CheckoutShipping;
  /** PayPal's fee on the capture, e.g. "3.98" */
  fee: string;
  captureOutcome: CaptureOutcome;
  referenceId: string;
  customId?: string;
  invoiceId?: string;
  createTime: string;
}

export type CheckoutOrderInput = Partial<Omit<CheckoutOrderSeed, 'payer' | 'shipping'>> & {
  payer?: Partial<CheckoutPayer>;
  shipping?: { name?: { full_name: string }; address?: Partial<CheckoutShipping['address']> };
};

export interface CaptureRecord {
  orderId: string;
  captureId: string;
  status: 'COMPLETED' | 'PENDING' | 'DECLINED' | 'FAILED';
  amount: PayPalMoney;
  requestId?: string;
  at: number;
}

export interface CheckoutState {
  orders: Map<string, { seed: CheckoutOrderSeed; capture?: Record<string, unknown> }>;
  /** PayPal-Request-Id → the reply it produced, replayed verbatim for retries */
  replies: Map<string, { status: number; body: unknown }>;
  captures: CaptureRecord[];
}

export function newCheckoutState(): CheckoutState {
  return { orders: new Map(), replies: new Map(), captures: [] };
}

/** PayPal's standard US rate: 3.49 % plus a fixed fee (0.49, or 40 in zero-decimal currencies such as JPY). */
function defaultFee(amount: string, currency: string): string {
  const decimals = currencyDecimals(currency);
  const pct = toMinorUnits(applyRate(amount, 0.0349, currency), decimals) ?? 0n;
  const fixed = decimals === 0 ? 40n : 49n;
  return fromMinorUnits(pct + fixed, decimals);
}

/** A realistic approved checkout order; tests state only the amount, fee or outcome they care about. */
export function buildCheckoutOrder(input: CheckoutOrderInput = {}): CheckoutOrderSeed {
  const currency = input.currency ?? 'USD';
  const amount = input.amount ?? '100.00';
  return {
    id: input.id ?? randomId(17),
    status: input.status ?? 'APPROVED',
    amount,
    currency,
    payer: {
      name: { given_name: 'John', surname: 'Doe' },
      email_address: 'buyer@example.com',
      payer_id: randomId(13),
      address: { country_code: 'US' },
      ...input.payer,
    },
    shipping: {
      name: input.shipping?.name ?? { full_name: 'John Doe' },
      address: {
        address_line_1: '2211 N First Street',
        address_line_2: 'Building 17',
        admin_area_2: 'San Jose',
        admin_area_1: 'CA',
        postal_code: '95131',
        country_code: 'US',
        ...input.shipping?.address,
      },
    },
    fee: input.fee ?? defaultFee(amount, currency),
    captureOutcome: input.captureOutcome ?? 'COMPLETED',
    referenceId: input.referenceId ?? 'default',
    ...(input.customId === undefined ? {} : { customId: input.customId }),
    ...(input.invoiceId === undefined ? {} : { invoiceId: input.invoiceId }),
    createTime: input.createTime ?? isoSeconds(),
  };
}

function money(value: string, currency: string): PayPalMoney {
  return { currency_code: currency, value };
}

function buildCapture(seed: CheckoutOrderSeed, base: string): Record<string, unknown> {
  const id = randomId(17);
  const now = isoSeconds();
  const completed = seed.captureOutcome === 'COMPLETED';
  const decimals = currencyDecimals(seed.currency);
  const net = (toMinorUnits(seed.amount, decimals) ?? 0n) - (toMinorUnits(seed.fee, decimals) ?? 0n);
  const status = completed ? 'COMPLETED' : seed.captureOutcome === 'CAPTURE_DECLINED' ? 'DECLINED' : seed.captureOutcome === 'CAPTURE_FAILED' ? 'FAILED' : 'PENDING';
  return {
    id,
    status,
    ...(status === 'PENDING' ? { status_details: { reason: 'PENDING_REVIEW' } } : {}),
    amount: money(seed.amount, seed.currency),
    final_capture: true,
    seller_protection: { status: 'ELIGIBLE', dispute_categories: ['ITEM_NOT_RECEIVED', 'UNAUTHORIZED_TRANSACTION'] },
    // PayPal only reports the fee once the money has actually moved.
    ...(completed
      ? {
          seller_receivable_breakdown: {
            gross_amount: money(seed.amount, seed.currency),
            paypal_fee: money(seed.fee, seed.currency),
            net_amount: money(fromMinorUnits(net, decimals), seed.currency),
          },
        }
      : {}),
    ...(seed.customId ? { custom_id: seed.customId } : {}),
    ...(seed.invoiceId ? { invoice_id: seed.invoiceId } : {}),
    links: [
      { href: `${base}/v2/payments/captures/${id}`, rel: 'self', method: 'GET' },
      { href: `${base}/v2/payments/captures/${id}/refund`, rel: 'refund', method: 'POST' },
      { href: `${base}/v2/checkout/orders/${seed.id}`, rel: 'up', method: 'GET' },
    ],
    create_time: now,
    update_time: now,
  };
}

function orderView(state: CheckoutState, id: string, base: string): Record<string, unknown> {
  const entry = state.orders.get(id)!;
  const { seed, capture } = entry;
  return {
    id: seed.id,
    intent: 'CAPTURE',
    status: seed.status,
    payment_source: { paypal: { email_address: seed.payer.email_address, account_id: seed.payer.payer_id, account_status: 'VERIFIED', name: seed.payer.name } },
    payer: seed.payer,
    purchase_units: [
      {
        reference_id: seed.referenceId,
        amount: money(seed.amount, seed.currency),
        ...(seed.customId ? { custom_id: seed.customId } : {}),
        shipping: seed.shipping,
        ...(capture ? { payments: { captures: [capture] } } : {}),
      },
    ],
    create_time: seed.createTime,
    update_time: isoSeconds(),
    links: [{ href: `${base}/v2/checkout/orders/${seed.id}`, rel: 'self', method: 'GET' }],
  };
}

export function configureCheckoutRoutes(app: Express, state: CheckoutState): void {
  app.get('/v2/checkout/orders/:id', (req, res) => {
    const id = String(req.params.id);
    if (!state.orders.has(id)) return notFound(req, res, id);
    sendJson(req, res, 200, orderView(state, id, baseUrlOf(req)));
  });
  app.post('/v2/checkout/orders/:id/capture', (req, res) => capture(req, res, state));
}

function notFound(req: Request, res: Response, id: string): void {
  sendError(req, res, 404, 'RESOURCE_NOT_FOUND', 'The specified resource does not exist.', [
    { field: 'order_id', value: id, location: 'path', issue: 'INVALID_RESOURCE_ID', description: 'Specified resource ID does not exist. Please check the resource ID and try again.' },
  ], 'https://developer.paypal.com/docs/api/orders/v2/#error-INVALID_RESOURCE_ID');
}

const UNPROCESSABLE = 'The requested action could not be performed, semantically incorrect, or failed business validation.';

function capture(req: Request, res: Response, state: CheckoutState): void {
  const requestId = req.get('paypal-request-id') || undefined;
  const replay = requestId ? state.replies.get(requestId) : undefined;
  // Corrections: a replay of a PayPal-Request-Id answers 200 (the first success was 201) with the same body.
  if (replay) return sendJson(req, res, replay.status === 201 ? 200 : replay.status, replay.body);
  const reply = (status: number, body: unknown) => {
    if (requestId) state.replies.set(requestId, { status, body });
    sendJson(req, res, status, body);
  };
  const id = String(req.params.id);
  const entry = state.orders.get(id);
  if (!entry) return notFound(req, res, id);
  const issue = captureBlocker(entry.seed, Boolean(entry.capture));
  if (issue) {
    const links: Array<Record<string, string>> = [{ href: `https://developer.paypal.com/docs/api/orders/v2/#error-${issue.issue}`, rel: 'information_link', method: 'GET' }];
    // Corrections: INSTRUMENT_DECLINED carries a redirect link for the buyer to choose another funding source.
    if (issue.issue === 'INSTRUMENT_DECLINED') links.push({ href: `https://www.paypal.com/checkoutnow?token=${id}`, rel: 'redirect', method: 'GET' });
    const body = { name: 'UNPROCESSABLE_ENTITY', details: [issue], message: UNPROCESSABLE, debug_id: randomId(13).toLowerCase(), links };
    // A repeated request id after a failed attempt replays the failure, like PayPal's idempotency cache.
    return reply(422, body);
  }
  const base = baseUrlOf(req);
  entry.capture = buildCapture(entry.seed, base);
  entry.seed.status = 'COMPLETED';
  state.captures.push({
    orderId: id,
    captureId: String(entry.capture.id),
    status: entry.capture.status as CaptureRecord['status'],
    amount: money(entry.seed.amount, entry.seed.currency),
    ...(requestId ? { requestId } : {}),
    at: Date.now(),
  });
  const minimal = /return=minimal/i.test(req.get('prefer') ?? '');
  const full = orderView(state, id, base);
  reply(201, minimal ? { id, status: 'COMPLETED', links: full.links } : full);
}

function captureBlocker(seed: CheckoutOrderSeed, captured: boolean) {
  if (captured) {
    return { issue: 'ORDER_ALREADY_CAPTURED', description: "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed." };
  }
  if (seed.status !== 'APPROVED') {
    return { issue: 'ORDER_NOT_APPROVED', description: "Payer has not yet approved the Order for payment. Please redirect the payer to the 'rel':'approve' url returned as part of the HATEOAS links within the Create Order call or provide a valid payment_source in the request." };
  }
  if (seed.captureOutcome === 'DECLINED') {
    return { issue: 'INSTRUMENT_DECLINED', description: 'The instrument presented  was either declined by the processor or bank, or it can\'t be used for this payment.' };
  }
  return undefined;
}
