import { callHttp } from '@postsale/runtime';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { startFakeServer, type FakeServer } from '../fake-server';
import { bearerToken, cloneJson } from '../fake-utils';
import { applyCancellation, applyChargeback, applyRefund, mlDate, type MlOrder, type MlOrderStatus, type MlShipment } from './mercadolibre-order';

/**
 * Local fake of the MercadoLibre API parts the pipeline uses: orders, shipments, me1 tracking reports, and the
 * (unsigned) orders_v2 notifications. Authenticity on MercadoLibre comes from fetching the resource with the seller's
 * own token, so the fake enforces ownership: only the owning seller's token can read an order or shipment.
 * Errors use MercadoLibre's `{message, error, status, cause}` shape.
 */
export interface MercadoLibreFakeOptions {
  port?: number;
  /** application id put in notifications; a text longer than 2^53 by default, as real ids can be */
  applicationId?: string;
}

export interface MlNotificationInput {
  orderId: number | string;
  /** the seller's user id */
  userId: number;
  applicationId?: string;
  attempts?: number;
  topic?: string;
}

/** The notification body; `application_id` is kept as text because it can exceed Number.MAX_SAFE_INTEGER. */
export interface MlNotification {
  _id: string;
  resource: string;
  user_id: number;
  topic: string;
  application_id: string;
  attempts: number;
  sent: string;
  received: string;
}

export type MlTrackingReport =
  | { kind: 'tracking_update'; shipmentId: number; body: { service_id: number; tracking_number: string }; at: number }
  | {
      kind: 'seller_notification';
      shipmentId: number;
      body: {
        payload: { service_id: number; comment?: string; date: string };
        tracking_number: string;
        tracking_url?: string;
        status: 'shipped';
        substatus: string;
      };
      at: number;
    };

export interface MlDeliveryResult {
  status: number;
  body: string;
}

export interface MercadoLibreFake extends FakeServer {
  registerSeller(seller: { userId: number; accessToken: string; nickname?: string }): void;
  seedOrder(order: MlOrder): MlOrder;
  order(id: number): MlOrder | undefined;
  setOrderStatus(id: number, status: MlOrderStatus): MlOrder;
  /** refund part or all of the order's payment; the order stays `paid` (Corrections). Deliver a new notification after it. */
  refundPayment(id: number, amount: number): MlOrder;
  /** the payment is charged back (`charged_back`); the order stays `paid` (Corrections) */
  chargeBack(id: number): MlOrder;
  seedShipment(shipment: MlShipment): MlShipment;
  shipment(id: number): MlShipment | undefined;
  /** every me1 tracking call (PUT /shipments/:id and POST /shipments/:id/seller_notifications), in order */
  trackingReports(shipmentId: number): MlTrackingReport[];
  notification(input: MlNotificationInput): MlNotification;
  /** the notification as MercadoLibre puts it on the wire: `application_id` is an unquoted JSON number */
  notificationJson(input: MlNotificationInput | MlNotification): string;
  /** POST the wire form of a notification to an endpoint (JSON), as MercadoLibre does */
  deliver(url: string, notification: MlNotificationInput | MlNotification): Promise<MlDeliveryResult>;
}

interface MlState {
  sellers: Map<string, { userId: number; nickname: string }>;
  orders: Map<number, MlOrder>;
  shipments: Map<number, MlShipment>;
  reports: Map<number, MlTrackingReport[]>;
  options: MercadoLibreFakeOptions;
}

const DEFAULT_APPLICATION_ID = '9187654321098765'; // > 2^53: a naive JSON.parse would corrupt it

function sendError(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ message, error, status, cause: [] });
}

export async function startMercadoLibreFake(options: MercadoLibreFakeOptions = {}): Promise<MercadoLibreFake> {
  const state: MlState = { sellers: new Map(), orders: new Map(), shipments: new Map(), reports: new Map(), options };
  const server = await startFakeServer('mercadolibre', (app) => configureRoutes(app, state), { port: options.port });
  return buildHandle(server, state);
}

function buildHandle(server: FakeServer, state: MlState): MercadoLibreFake {
  const notification = (input: MlNotificationInput): MlNotification => {
    const now = new Date();
    return {
      _id: randomUUID(),
      resource: `/orders/${input.orderId}`,
      user_id: input.userId,
      topic: input.topic ?? 'orders_v2',
      application_id: input.applicationId ?? state.options.applicationId ?? DEFAULT_APPLICATION_ID,
      attempts: input.attempts ?? 1,
      sent: now.toISOString(),
      received: now.toISOString(),
    };
  };
  const toWire = (n: MlNotificationInput | MlNotification) => notificationWire('_id' in n ? n : notification(n));
  return {
    ...server,
    registerSeller({ userId, accessToken, nickname }) {
      state.sellers.set(accessToken, { userId, nickname: nickname ?? `SELLER${userId}` });
    },
    seedOrder(order) {
      state.orders.set(order.id, cloneJson(order));
      return cloneJson(order);
    },
    order(id) {
      const order = state.orders.get(id);
      return order && cloneJson(order);
    },
    setOrderStatus(id, status) {
      const order = state.orders.get(id);
      if (!order) throw new Error(`MercadoLibre fake: no order ${id}`);
      if (status === 'cancelled') applyCancellation(order);
      else {
        order.status = status;
        order.last_updated = mlDate(new Date(), order.context.site);
      }
      return cloneJson(order);
    },
    refundPayment(id, amount) {
      const order = state.orders.get(id);
      if (!order) throw new Error(`MercadoLibre fake: no order ${id}`);
      applyRefund(order, amount);
      return cloneJson(order);
    },
    chargeBack(id) {
      const order = state.orders.get(id);
      if (!order) throw new Error(`MercadoLibre fake: no order ${id}`);
      applyChargeback(order);
      return cloneJson(order);
    },
    seedShipment(shipment) {
      state.shipments.set(shipment.id, cloneJson(shipment));
      return cloneJson(shipment);
    },
    shipment(id) {
      const shipment = state.shipments.get(id);
      return shipment && cloneJson(shipment);
    },
    trackingReports(shipmentId) {
      return cloneJson(state.reports.get(shipmentId) ?? []);
    },
    notification,
    notificationJson: toWire,
    async deliver(url, n) {
      const response = await callHttp(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: toWire(n), timeoutMs: 30_000 });
      return { status: response.status, body: response.text };
    },
  };
}

/** Serialises with `application_id` as a bare number literal, digits intact (JSON.stringify cannot do that). */
function notificationWire(n: MlNotification): string {
  if (!/^\d+$/.test(n.application_id)) throw new Error(`application_id must be digits, got ${n.application_id}`);
  const placeholder = '"__APPLICATION_ID__"';
  return JSON.stringify({ ...n, application_id: '__APPLICATION_ID__' }).replace(placeholder, n.application_id);
}

function configureRoutes(app: Express, state: MlState): void {
  app.use(express.json({ limit: '1mb' }));
  app.get('/users/me', (req, res) => {
    const seller = callerOf(req, res, state);
    if (seller) res.json({ id: seller.userId, nickname: seller.nickname, site_id: 'MLC', user_type: 'normal' });
  });
  app.get('/orders/:id', (req, res) => {
    const order = ownedResource(req, res, state, state.orders, (o) => o.seller.id, 'Order');
    if (order) res.json(order);
  });
  app.get('/shipments/:id', (req, res) => {
    const shipment = ownedResource(req, res, state, state.shipments, (s) => s.sender_id, 'Shipment');
    if (shipment) res.json(shipment);
  });
  app.put('/shipments/:id', (req, res) => updateTracking(req, res, state));
  app.post('/shipments/:id/seller_notifications', (req, res) => sellerNotification(req, res, state));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(res, 400, 'bad_request', 'Malformed JSON body');
  });
}

function callerOf(req: Request, res: Response, state: MlState): { userId: number; nickname: string } | undefined {
  const token = bearerToken(req) ?? (typeof req.query.access_token === 'string' ? req.query.access_token : undefined);
  if (!token) return void sendError(res, 401, 'unauthorized', 'authorization value not present');
  const seller = state.sellers.get(token);
  if (!seller) return void sendError(res, 401, 'invalid_token', 'invalid access token');
  return seller;
}

/** Looks a resource up for the calling seller; answers 401/403/404 the MercadoLibre way when it cannot. */
function ownedResource<T>(
  req: Request,
  res: Response,
  state: MlState,
  store: Map<number, T>,
  ownerOf: (value: T) => number,
  label: 'Order' | 'Shipment',
): T | undefined {
  const seller = callerOf(req, res, state);
  if (!seller) return undefined;
  const id = Number(req.params.id);
  const found = Number.isSafeInteger(id) ? store.get(id) : undefined;
  if (!found) return void sendError(res, 404, 'not_found', `${label} not found`);
  if (ownerOf(found) !== seller.userId) {
    return void sendError(res, 403, 'forbidden', `The caller is not authorized to access this ${label.toLowerCase()}`);
  }
  return found;
}

/** Self-shipped (me1) orders only: MercadoLibre manages tracking itself for me2. */
function me1Shipment(req: Request, res: Response, state: MlState): MlShipment | undefined {
  const shipment = ownedResource(req, res, state, state.shipments, (s) => s.sender_id, 'Shipment');
  if (shipment && shipment.mode !== 'me1') {
    return void sendError(res, 400, 'bad_request', `Shipment mode ${shipment.mode} does not allow tracking updates by the seller`);
  }
  return shipment;
}

function record(state: MlState, report: MlTrackingReport): void {
  const list = state.reports.get(report.shipmentId) ?? [];
  list.push(report);
  state.reports.set(report.shipmentId, list);
}

function updateTracking(req: Request, res: Response, state: MlState): void {
  const shipment = me1Shipment(req, res, state);
  if (!shipment) return;
  const body = (req.body ?? {}) as { service_id?: unknown; tracking_number?: unknown };
  if (typeof body.tracking_number !== 'string' || body.tracking_number.trim() === '') {
    return sendError(res, 400, 'bad_request', 'tracking_number is required');
  }
  if (typeof body.service_id !== 'number' || !Number.isInteger(body.service_id)) {
    return sendError(res, 400, 'bad_request', 'service_id must be a number');
  }
  record(state, { kind: 'tracking_update', shipmentId: shipment.id, body: { service_id: body.service_id, tracking_number: body.tracking_number }, at: Date.now() });
  shipment.tracking_number = body.tracking_number;
  shipment.service_id = body.service_id;
  shipment.last_updated = mlDate(new Date(), shipment.site_id);
  res.json(shipment);
}

function sellerNotification(req: Request, res: Response, state: MlState): void {
  const shipment = me1Shipment(req, res, state);
  if (!shipment) return;
  const body = (req.body ?? {}) as Record<string, unknown>;
  const payload = (body.payload ?? {}) as Record<string, unknown>;
  const problems = [
    typeof payload.service_id !== 'number' && 'payload.service_id',
    (typeof payload.date !== 'string' || Number.isNaN(Date.parse(payload.date))) && 'payload.date',
    (typeof body.tracking_number !== 'string' || body.tracking_number === '') && 'tracking_number',
    body.status !== 'shipped' && 'status',
  ].filter((p): p is string => typeof p === 'string');
  if (problems.length > 0) return sendError(res, 400, 'bad_request', `Invalid fields: ${problems.join(', ')}`);
  const report = { kind: 'seller_notification' as const, shipmentId: shipment.id, body: cloneJson(body) as never, at: Date.now() };
  record(state, report);
  shipment.status = 'shipped';
  // The API takes the literal string "null" for substatus and stores no substatus.
  shipment.substatus = body.substatus === 'null' || body.substatus === undefined ? null : String(body.substatus);
  shipment.tracking_number = body.tracking_number as string;
  shipment.last_updated = mlDate(new Date(), shipment.site_id);
  res.json(shipment);
}
