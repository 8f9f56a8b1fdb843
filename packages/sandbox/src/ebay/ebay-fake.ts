import { callHttp } from '@postsale/runtime';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { startFakeServer, type FakeServer } from '../fake-server';
import { basicCredentials, bearerToken, cloneJson, randomDigits, randomId } from '../fake-utils';
import { applyEbayCancellation, applyEbayRefund, type EbayOrder } from './ebay-order';
import {
  challengeResponseFor,
  createSigningKey,
  orderConfirmationBody,
  signNotification,
  signatureHeader,
  type EbayNotificationInput,
  type EbaySignedNotification,
  type EbaySigningKey,
} from './ebay-notification';

/**
 * Local fake of the eBay REST APIs the pipeline uses: OAuth client-credentials tokens, the Notification API public
 * key, Fulfillment API orders and shipping fulfillments. Errors use eBay's `{errors:[{errorId, domain, category,
 * message, parameters}]}` shape. Orders belong to a seller (`sellerId` = username) and are readable only with a token
 * registered for that seller, which is how the real API keeps sellers apart.
 */
export interface EbayFakeOptions {
  port?: number;
  /** when set, the token endpoint accepts only these credentials; otherwise any Basic credentials pass */
  clientId?: string;
  clientSecret?: string;
  /** key id of the first signing key; random UUID by default */
  kid?: string;
  /** lifetime announced for application tokens (seconds); eBay uses 7200 */
  tokenTtlSeconds?: number;
}

export interface EbayShippingFulfillment {
  fulfillmentId: string;
  orderId: string;
  lineItems: Array<{ lineItemId: string; quantity: number }>;
  shippedDate: string;
  shippingCarrierCode: string;
  trackingNumber: string;
  /** the token's seller, for assertions on who pushed it */
  pushedBy: string;
  at: number;
}

export interface EbayDeliveryResult {
  status: number;
  body: string;
}

export interface EbayFake extends FakeServer {
  /** key id of the current signing key (the one new notifications are signed with) */
  readonly kid: string;
  /** current public key exactly as eBay publishes it (one line, PEM markers, no line breaks) */
  readonly publicKey: string;
  /** switch to a new signing key; old keys stay published so in-flight messages still verify */
  rotateKey(kid?: string): string;
  /** a user token that may read the orders of `ebayUsername` */
  registerSellerToken(token: string, ebayUsername: string): void;
  seedOrder(order: EbayOrder): EbayOrder;
  order(orderId: string): EbayOrder | undefined;
  updateOrder(orderId: string, patch: Partial<EbayOrder>): EbayOrder;
  /** a refund after confirmation: paymentSummary.refunds[] + orderPaymentStatus PARTIALLY_/FULLY_REFUNDED (no notification) */
  refundOrder(orderId: string, value: string): EbayOrder;
  /** a cancellation after confirmation: cancelStatus CANCELED and the rest refunded (no notification) */
  cancelOrder(orderId: string): EbayOrder;
  signedNotification(input: EbayNotificationInput): EbaySignedNotification;
  /** eBay sends ORDER_CONFIRMATION once per line item; this returns those messages */
  signedNotificationsPerLineItem(input: EbayNotificationInput): EbaySignedNotification[];
  /**
   * Any body signed with the current key, e.g. a MARKETPLACE_ACCOUNT_DELETION notification
   * (`notification.data = {username, userId, eiasToken}`) or a fuzzed body.
   */
  signBody<B>(body: B): { body: B; headers: Record<string, string> };
  /** POST a signed notification to an endpoint, as eBay does (JSON body, signature header) */
  deliver(url: string, notification: EbaySignedNotification): Promise<EbayDeliveryResult>;
  shippingFulfillments(orderId: string): EbayShippingFulfillment[];
  challengeResponseFor(challengeCode: string, verificationToken: string, endpointUrl: string): string;
  /** application tokens issued so far (client credentials) */
  issuedAppTokens(): string[];
}

interface EbayState {
  keys: Map<string, EbaySigningKey>;
  current: EbaySigningKey;
  sellerTokens: Map<string, string>;
  appTokens: Set<string>;
  orders: Map<string, EbayOrder>;
  fulfillments: Map<string, EbayShippingFulfillment[]>;
  options: EbayFakeOptions;
}

type EbayErrorInput = { errorId: number; domain: string; category?: string; message: string; parameters?: Array<{ name: string; value: string }> };

function sendErrors(res: Response, status: number, ...errors: EbayErrorInput[]): void {
  res.status(status).json({
    errors: errors.map((e) => ({
      errorId: e.errorId,
      domain: e.domain,
      category: e.category ?? 'REQUEST',
      message: e.message,
      ...(e.parameters ? { parameters: e.parameters } : {}),
    })),
  });
}

const invalidToken: EbayErrorInput = {
  errorId: 1001,
  domain: 'OAuth',
  message: 'Invalid access token',
};

export async function startEbayFake(options: EbayFakeOptions = {}): Promise<EbayFake> {
  const first = createSigningKey(options.kid);
  const state: EbayState = {
    keys: new Map([[first.kid, first]]),
    current: first,
    sellerTokens: new Map(),
    appTokens: new Set(),
    orders: new Map(),
    fulfillments: new Map(),
    options,
  };
  const server = await startFakeServer('ebay', (app) => configureRoutes(app, state), { port: options.port });
  return buildHandle(server, state);
}

function buildHandle(server: FakeServer, state: EbayState): EbayFake {
  const requireOrder = (orderId: string): EbayOrder => {
    const order = state.orders.get(orderId);
    if (!order) throw new Error(`eBay fake: no order ${orderId}`);
    return order;
  };
  return {
    ...server,
    get kid() {
      return state.current.kid;
    },
    get publicKey() {
      return state.current.publicKeyOneLine;
    },
    rotateKey(kid) {
      const key = createSigningKey(kid);
      state.keys.set(key.kid, key);
      state.current = key;
      return key.kid;
    },
    registerSellerToken(token, ebayUsername) {
      state.sellerTokens.set(token, ebayUsername);
    },
    seedOrder(order) {
      state.orders.set(order.orderId, cloneJson(order));
      return cloneJson(order);
    },
    order(orderId) {
      const order = state.orders.get(orderId);
      return order && cloneJson(order);
    },
    updateOrder(orderId, patch) {
      const updated = { ...requireOrder(orderId), ...cloneJson(patch), lastModifiedDate: new Date().toISOString() };
      state.orders.set(orderId, updated);
      return cloneJson(updated);
    },
    refundOrder(orderId, value) {
      const order = requireOrder(orderId);
      applyEbayRefund(order, value);
      return cloneJson(order);
    },
    cancelOrder(orderId) {
      const order = requireOrder(orderId);
      applyEbayCancellation(order);
      return cloneJson(order);
    },
    signedNotification(input) {
      return signNotification(orderConfirmationBody(input), state.current);
    },
    signBody(body) {
      return { body, headers: { 'Content-Type': 'application/json', 'X-EBAY-SIGNATURE': signatureHeader(body, state.current) } };
    },
    signedNotificationsPerLineItem(input) {
      return input.lineItems.map((line) =>
        signNotification(orderConfirmationBody({ ...input, lineItems: [line], notificationId: undefined }), state.current),
      );
    },
    deliver: deliverNotification,
    shippingFulfillments(orderId) {
      return cloneJson(state.fulfillments.get(orderId) ?? []);
    },
    challengeResponseFor,
    issuedAppTokens() {
      return [...state.appTokens];
    },
  };
}

async function deliverNotification(url: string, notification: EbaySignedNotification): Promise<EbayDeliveryResult> {
  const response = await callHttp(url, { method: 'POST', headers: notification.headers, body: JSON.stringify(notification.body), timeoutMs: 30_000 });
  return { status: response.status, body: response.text };
}

function configureRoutes(app: Express, state: EbayState): void {
  app.use(express.json({ limit: '5mb' }));
  app.use(express.urlencoded({ extended: false }));
  app.post('/identity/v1/oauth2/token', (req, res) => issueToken(req, res, state));
  app.get('/commerce/notification/v1/public_key/:kid', (req, res) => publicKey(req, res, state));
  app.get('/sell/fulfillment/v1/order/:orderId', (req, res) => {
    const order = authorizedOrder(req, res, state);
    if (order) res.json(order);
  });
  app.post('/sell/fulfillment/v1/order/:orderId/shipping_fulfillment', (req, res) => createFulfillment(req, res, state));
  app.get('/sell/fulfillment/v1/order/:orderId/shipping_fulfillment', (req, res) => {
    const order = authorizedOrder(req, res, state);
    if (!order) return;
    const fulfillments = (state.fulfillments.get(order.orderId) ?? []).map(publicFulfillment);
    res.json({ fulfillments, total: fulfillments.length, warnings: [] });
  });
  app.get('/sell/fulfillment/v1/order/:orderId/shipping_fulfillment/:fulfillmentId', (req, res) => {
    const order = authorizedOrder(req, res, state);
    if (!order) return;
    const found = (state.fulfillments.get(order.orderId) ?? []).find((f) => f.fulfillmentId === req.params.fulfillmentId);
    if (!found) return sendErrors(res, 404, { errorId: 32400, domain: 'API_FULFILLMENT', message: 'Requested resource not found' });
    res.json(publicFulfillment(found));
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendErrors(res, 400, { errorId: 2004, domain: 'ACCESS', message: 'Request had bad syntax or the request parameters were invalid' });
  });
}

function issueToken(req: Request, res: Response, state: EbayState): void {
  const credentials = basicCredentials(req);
  const { clientId, clientSecret } = state.options;
  const wrongCredentials = clientId !== undefined && (credentials?.id !== clientId || credentials.secret !== clientSecret);
  if (!credentials || wrongCredentials) {
    res.status(401).json({ error: 'invalid_client', error_description: 'client authentication failed' });
    return;
  }
  const grant = (req.body as Record<string, unknown> | undefined)?.grant_type;
  if (grant !== 'client_credentials') {
    res.status(400).json({
      error: 'unsupported_grant_type',
      error_description: 'grant type in request is not supported by the authorization server',
    });
    return;
  }
  // Real application tokens are long opaque strings starting with "v^1.1#i^1#".
  const token = `v^1.1#i^1#p^1#r^0#I^3#f^0#t^${randomId(120, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')}`;
  state.appTokens.add(token);
  res.json({ access_token: token, expires_in: state.options.tokenTtlSeconds ?? 7200, token_type: 'Application Access Token' });
}

function publicKey(req: Request, res: Response, state: EbayState): void {
  if (!bearerToken(req)) return sendErrors(res, 401, invalidToken);
  const key = state.keys.get(String(req.params.kid));
  if (!key) {
    return sendErrors(res, 404, {
      errorId: 195002,
      domain: 'API_NOTIFICATION',
      message: 'The specified public key Id was not found.',
      parameters: [{ name: 'public_key_id', value: String(req.params.kid) }],
    });
  }
  res.json({ algorithm: 'ECDSA', digest: 'SHA1', key: key.publicKeyOneLine });
}

/** Resolves the order for the caller's seller token, or answers with eBay's error and returns undefined. */
function authorizedOrder(req: Request, res: Response, state: EbayState): EbayOrder | undefined {
  const token = bearerToken(req);
  if (!token) return void sendErrors(res, 401, invalidToken);
  if (state.appTokens.has(token)) {
    // Sell APIs need a user token with the sell.fulfillment scope; an application token is refused.
    return void sendErrors(res, 403, {
      errorId: 1100,
      domain: 'ACCESS',
      message: 'Access denied',
      parameters: [{ name: 'reason', value: 'Insufficient permissions to fulfill the request.' }],
    });
  }
  const seller = state.sellerTokens.get(token);
  if (!seller) return void sendErrors(res, 401, invalidToken);
  const orderId = String(req.params.orderId);
  const order = state.orders.get(orderId);
  // Another seller's order is reported exactly like a missing one: eBay does not reveal that it exists.
  if (!order || order.sellerId !== seller) {
    return void sendErrors(res, 404, {
      errorId: 32100,
      domain: 'API_FULFILLMENT',
      message: 'Invalid Order Id',
      parameters: [{ name: 'orderId', value: orderId }],
    });
  }
  return order;
}

interface FulfillmentBody {
  lineItems?: unknown;
  shippedDate?: unknown;
  shippingCarrierCode?: unknown;
  trackingNumber?: unknown;
}

function validationError(message: string, name: string, value: unknown): EbayErrorInput {
  return { errorId: 32800, domain: 'API_FULFILLMENT', message, parameters: [{ name, value: String(value) }] };
}

/** Checks a shipping_fulfillment body against the order; returns eBay errors (empty when valid). */
function validateFulfillment(body: FulfillmentBody, order: EbayOrder): EbayErrorInput[] {
  const errors: EbayErrorInput[] = [];
  if (!Array.isArray(body.lineItems) || body.lineItems.length === 0) {
    errors.push(validationError('lineItems is required and must not be empty', 'lineItems', body.lineItems));
  } else {
    body.lineItems.forEach((raw: unknown, i: number) => {
      const line = (raw ?? {}) as { lineItemId?: unknown; quantity?: unknown };
      const orderLine = order.lineItems.find((l) => l.lineItemId === line.lineItemId);
      if (!orderLine) errors.push(validationError('Invalid line item id', `lineItems[${i}].lineItemId`, line.lineItemId));
      const q = line.quantity;
      if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || (orderLine && q > orderLine.quantity)) {
        errors.push(validationError('Invalid quantity', `lineItems[${i}].quantity`, q));
      }
    });
  }
  if (typeof body.shippingCarrierCode !== 'string' || body.shippingCarrierCode.trim() === '') {
    errors.push(validationError('shippingCarrierCode is required', 'shippingCarrierCode', body.shippingCarrierCode));
  }
  // eBay accepts only alphanumeric tracking numbers (no spaces or dashes).
  if (typeof body.trackingNumber !== 'string' || !/^[A-Za-z0-9]+$/.test(body.trackingNumber)) {
    errors.push(validationError('Invalid tracking number', 'trackingNumber', body.trackingNumber));
  }
  const date = body.shippedDate;
  if (date !== undefined && (typeof date !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(date))) {
    errors.push(validationError('Invalid shippedDate; use UTC ISO 8601 (YYYY-MM-DDThh:mm:ss.sssZ)', 'shippedDate', date));
  }
  return errors;
}

function createFulfillment(req: Request, res: Response, state: EbayState): void {
  const order = authorizedOrder(req, res, state);
  if (!order) return;
  const body = (req.body ?? {}) as FulfillmentBody;
  const errors = validateFulfillment(body, order);
  if (errors.length > 0) return sendErrors(res, 400, ...errors);
  const lineItems = (body.lineItems as Array<{ lineItemId: string; quantity: number }>).map((l) => ({
    lineItemId: l.lineItemId,
    quantity: l.quantity,
  }));
  const fulfillment: EbayShippingFulfillment = {
    fulfillmentId: randomDigits(16),
    orderId: order.orderId,
    lineItems,
    shippedDate: (body.shippedDate as string | undefined) ?? new Date().toISOString(),
    shippingCarrierCode: body.shippingCarrierCode as string,
    trackingNumber: body.trackingNumber as string,
    pushedBy: order.sellerId,
    at: Date.now(),
  };
  const list = state.fulfillments.get(order.orderId) ?? [];
  list.push(fulfillment);
  state.fulfillments.set(order.orderId, list);
  const location = `${req.protocol}://${req.get('host')}/sell/fulfillment/v1/order/${encodeURIComponent(order.orderId)}/shipping_fulfillment/${fulfillment.fulfillmentId}`;
  markShipped(order, list, location);
  res.status(201).location(location).end();
}

/** Updates the order's fulfillment statuses the way eBay reflects shipped quantities. */
function markShipped(order: EbayOrder, fulfillments: EbayShippingFulfillment[], href: string): void {
  for (const line of order.lineItems) {
    const shipped = fulfillments.flatMap((f) => f.lineItems).filter((l) => l.lineItemId === line.lineItemId);
    const quantity = shipped.reduce((sum, l) => sum + l.quantity, 0);
    line.lineItemFulfillmentStatus = quantity >= line.quantity ? 'FULFILLED' : quantity > 0 ? 'IN_PROGRESS' : 'NOT_STARTED';
  }
  const all = order.lineItems.every((l) => l.lineItemFulfillmentStatus === 'FULFILLED');
  order.orderFulfillmentStatus = all ? 'FULFILLED' : 'IN_PROGRESS';
  order.fulfillmentHrefs.push(href);
  order.lastModifiedDate = new Date().toISOString();
}

function publicFulfillment(f: EbayShippingFulfillment) {
  return {
    fulfillmentId: f.fulfillmentId,
    shipmentTrackingNumber: f.trackingNumber,
    shippingCarrierCode: f.shippingCarrierCode,
    shippedDate: f.shippedDate,
    lineItems: f.lineItems,
  };
}
