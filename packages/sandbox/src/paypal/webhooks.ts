import type { Express, Request, Response } from 'express';
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPair, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { fromMinorUnits, isoSeconds, randomHex, randomId } from '../fake-utils';
import { sendError, sendJson } from './paypal-http';

/**
 * PayPal webhook signing as PayPal does it: an RSA key with a self-signed X.509 certificate published at
 * `/v1/notifications/certs/{name}`, and `PAYPAL-TRANSMISSION-SIG` = base64 RSA-SHA256 over
 * `transmissionId|transmissionTime|webhookId|crc32(rawBody)` (CRC32 as an unsigned decimal). Also the online check
 * `POST /v1/notifications/verify-webhook-signature`, and builders for the event envelopes the pipeline consumes.
 */
export interface WebhookSigner {
  privateKey: KeyObject;
  certificatePem: string;
  certName: string;
}

export interface WebhookEvent<R = Record<string, unknown>> {
  id: string;
  event_version: string;
  create_time: string;
  resource_type: string;
  resource_version?: string;
  event_type: string;
  summary: string;
  resource: R;
  links: Array<{ href: string; rel: string; method: string }>;
}

export interface SignedWebhook {
  /** exactly the bytes PayPal would POST; the signature covers their CRC32 */
  rawBody: string;
  headers: Record<string, string>;
}

export interface SignWebhookOptions {
  webhookId: string;
  transmissionId?: string;
  transmissionTime?: string;
  /** send these bytes instead of `JSON.stringify(event)` (e.g. pretty-printed), still signed correctly */
  rawBody?: string;
}

export interface WebhookState {
  signer: WebhookSigner;
  webhookIds: Set<string>;
  /** transmission id → raw body, so the online check can use the exact bytes it signed */
  signedBodies: Map<string, string>;
}

const execFileAsync = promisify(execFile);
let shared: Promise<WebhookSigner> | undefined;

/**
 * One signer per process unless a fresh one is asked for: RSA key generation plus openssl costs ~200 ms, which
 * adds up over a test suite and the benchmark, and sharing a key between local fakes loses no fidelity.
 */
export function webhookSigner(fresh = false): Promise<WebhookSigner> {
  if (fresh) return createWebhookSigner();
  shared ??= createWebhookSigner().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

/** RSA-2048 key and a self-signed certificate made with the openssl CLI; files live only in a temp dir. */
export async function createWebhookSigner(): Promise<WebhookSigner> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const dir = await mkdtemp(join(tmpdir(), 'paypal-fake-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await execFileAsync('openssl', [
      'req', '-new', '-x509', '-key', keyPath, '-out', certPath, '-days', '365', '-sha256',
      '-subj', '/C=US/ST=California/L=San Jose/O=PayPal, Inc./OU=Sandbox Fake/CN=messageverificationcerts.sandbox.paypal.com',
    ]);
    const certificatePem = await readFile(certPath, 'utf8');
    return { privateKey, certificatePem, certName: `CERT-360caa42-fca2a594-${randomHex(4)}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function certPath(signer: WebhookSigner): string {
  return `/v1/notifications/certs/${signer.certName}`;
}

/** The string PayPal signs: `transmissionId|transmissionTime|webhookId|crc32(rawBody)`. */
export function signedMessage(transmissionId: string, transmissionTime: string, webhookId: string, rawBody: string): string {
  return `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(Buffer.from(rawBody, 'utf8')) >>> 0}`;
}

export function signWebhook(state: WebhookState, baseUrl: string, event: unknown, options: SignWebhookOptions): SignedWebhook {
  const rawBody = options.rawBody ?? JSON.stringify(event);
  const transmissionId = options.transmissionId ?? randomUUID();
  const transmissionTime = options.transmissionTime ?? isoSeconds();
  const message = signedMessage(transmissionId, transmissionTime, options.webhookId, rawBody);
  const signature = sign('sha256', Buffer.from(message, 'utf8'), state.signer.privateKey).toString('base64');
  state.signedBodies.set(transmissionId, rawBody);
  // Bounded memory for long benchmark runs: the online check only needs recent transmissions.
  if (state.signedBodies.size > 10_000) state.signedBodies.delete(state.signedBodies.keys().next().value!);
  return {
    rawBody,
    headers: {
      'Content-Type': 'application/json',
      'PAYPAL-TRANSMISSION-ID': transmissionId,
      'PAYPAL-TRANSMISSION-TIME': transmissionTime,
      'PAYPAL-TRANSMISSION-SIG': signature,
      'PAYPAL-CERT-URL': `${baseUrl}${certPath(state.signer)}`,
      'PAYPAL-AUTH-ALGO': 'SHA256withRSA',
      'PAYPAL-AUTH-VERSION': 'v2',
    },
  };
}

export function configureWebhookRoutes(app: Express, state: WebhookState, auth: (req: Request, res: Response, next: () => void) => void): void {
  // Certificates are public: PayPal serves them without authentication.
  app.get('/v1/notifications/certs/:name', (req, res) => {
    if (req.params.name !== state.signer.certName) {
      return sendError(req, res, 404, 'RESOURCE_NOT_FOUND', 'The specified resource does not exist.');
    }
    res.status(200).type('text/plain').send(state.signer.certificatePem);
  });
  app.post('/v1/notifications/verify-webhook-signature', auth, (req, res) => verifyOnline(req, res, state));
}

const REQUIRED = ['auth_algo', 'cert_url', 'transmission_id', 'transmission_sig', 'transmission_time', 'webhook_id', 'webhook_event'] as const;

function verifyOnline(req: Request, res: Response, state: WebhookState): void {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const missing = REQUIRED.filter((field) => body[field] === undefined || body[field] === null || body[field] === '');
  if (missing.length > 0) {
    return sendError(req, res, 400, 'VALIDATION_ERROR', 'Invalid request - see details', missing.map((field) => ({
      field, location: 'body' as const, issue: 'MISSING_REQUIRED_PARAMETER', description: `${field} is required`,
    })));
  }
  const ok = isAuthentic(state, body);
  sendJson(req, res, 200, { verification_status: ok ? 'SUCCESS' : 'FAILURE' });
}

/** The real check PayPal performs, against this fake's own certificate and its registered webhook ids. */
function isAuthentic(state: WebhookState, body: Record<string, unknown>): boolean {
  const webhookId = String(body.webhook_id);
  if (!state.webhookIds.has(webhookId) || body.auth_algo !== 'SHA256withRSA') return false;
  if (!certUrlIsOurs(state, String(body.cert_url))) return false;
  const transmissionId = String(body.transmission_id);
  const event = JSON.stringify(body.webhook_event);
  // PayPal only sees the parsed event here; use the exact signed bytes when they are the same event.
  const stored = state.signedBodies.get(transmissionId);
  const raw = stored !== undefined && JSON.stringify(JSON.parse(stored)) === event ? stored : event;
  const message = signedMessage(transmissionId, String(body.transmission_time), webhookId, raw);
  const key = createPublicKey(state.signer.certificatePem);
  return verify('sha256', Buffer.from(message, 'utf8'), key, Buffer.from(String(body.transmission_sig), 'base64'));
}

function certUrlIsOurs(state: WebhookState, certUrl: string): boolean {
  try {
    return new URL(certUrl).pathname === certPath(state.signer);
  } catch {
    return false;
  }
}

// ---- event builders -------------------------------------------------------------------------------------------

const DEFAULT_BASE = 'https://api.sandbox.paypal.com';

/** The webhook envelope: `{id:"WH-…", event_version, create_time, resource_type, event_type, summary, resource}`. */
export function webhookEvent<R extends Record<string, unknown>>(
  eventType: string,
  resourceType: string,
  resource: R,
  summary: string,
  options: { eventVersion?: string; resourceVersion?: string; baseUrl?: string } = {},
): WebhookEvent<R> {
  const id = `WH-${randomId(17)}-${randomId(17)}`;
  const base = options.baseUrl ?? DEFAULT_BASE;
  return {
    id,
    event_version: options.eventVersion ?? '1.0',
    create_time: new Date().toISOString(),
    resource_type: resourceType,
    ...(options.resourceVersion ? { resource_version: options.resourceVersion } : {}),
    event_type: eventType,
    summary,
    resource,
    links: [
      { href: `${base}/v1/notifications/webhooks-events/${id}`, rel: 'self', method: 'GET' },
      { href: `${base}/v1/notifications/webhooks-events/${id}/resend`, rel: 'resend', method: 'POST' },
    ],
  };
}

export interface CaptureEventInput {
  captureId?: string;
  orderId?: string;
  amount: string;
  currency?: string;
  /** PayPal fee; omit to leave the breakdown out */
  fee?: string;
  net?: string;
  customId?: string;
  invoiceId?: string;
  baseUrl?: string;
}

export function captureCompletedEvent(input: CaptureEventInput): WebhookEvent {
  const currency = input.currency ?? 'USD';
  const captureId = input.captureId ?? randomId(17);
  const base = input.baseUrl ?? DEFAULT_BASE;
  const m = (value: string) => ({ currency_code: currency, value });
  const now = new Date().toISOString();
  const resource = {
    id: captureId,
    amount: m(input.amount),
    final_capture: true,
    seller_protection: { status: 'ELIGIBLE', dispute_categories: ['ITEM_NOT_RECEIVED', 'UNAUTHORIZED_TRANSACTION'] },
    ...(input.fee !== undefined
      ? { seller_receivable_breakdown: { gross_amount: m(input.amount), paypal_fee: m(input.fee), net_amount: m(input.net ?? subtract(input.amount, input.fee)) } }
      : {}),
    ...(input.customId ? { custom_id: input.customId } : {}),
    ...(input.invoiceId ? { invoice_id: input.invoiceId } : {}),
    status: 'COMPLETED',
    supplementary_data: { related_ids: { order_id: input.orderId ?? randomId(17) } },
    create_time: now,
    update_time: now,
    links: [
      { href: `${base}/v2/payments/captures/${captureId}`, rel: 'self', method: 'GET' },
      { href: `${base}/v2/payments/captures/${captureId}/refund`, rel: 'refund', method: 'POST' },
    ],
  };
  return webhookEvent('PAYMENT.CAPTURE.COMPLETED', 'capture', resource, `Payment completed for ${currencySymbol(currency)} ${input.amount} ${currency}`, { resourceVersion: '2.0', baseUrl: base });
}

/**
 * PAYMENT.CAPTURE.DENIED / .PENDING (Corrections: PayPal's webhook events include them): the capture resource with
 * that status and no fee breakdown (no money moved). DENIED ends a PENDING capture: it never becomes paid money.
 */
export function captureStatusEvent(type: 'DENIED' | 'PENDING', input: CaptureEventInput): WebhookEvent {
  const completed = captureCompletedEvent({ ...input, fee: undefined });
  const resource = { ...(completed.resource as Record<string, unknown>), status: type, ...(type === 'PENDING' ? { status_details: { reason: 'PENDING_REVIEW' } } : {}) };
  const currency = input.currency ?? 'USD';
  const summary = type === 'DENIED' ? `Payment denied for ${currencySymbol(currency)} ${input.amount} ${currency}` : `Payment pending for ${currencySymbol(currency)} ${input.amount} ${currency}`;
  return webhookEvent(`PAYMENT.CAPTURE.${type}`, 'capture', resource, summary, { resourceVersion: '2.0', baseUrl: input.baseUrl ?? DEFAULT_BASE });
}

export interface RefundEventInput {
  refundId?: string;
  captureId: string;
  amount: string;
  currency?: string;
  /** PayPal fee returned with the refund, "0.00" by default */
  feeRefunded?: string;
  customId?: string;
  baseUrl?: string;
}

export function captureRefundedEvent(input: RefundEventInput): WebhookEvent {
  const currency = input.currency ?? 'USD';
  const refundId = input.refundId ?? randomId(17);
  const base = input.baseUrl ?? DEFAULT_BASE;
  const m = (value: string) => ({ currency_code: currency, value });
  const fee = input.feeRefunded ?? '0.00';
  const now = new Date().toISOString();
  const resource = {
    id: refundId,
    amount: m(input.amount),
    seller_payable_breakdown: {
      gross_amount: m(input.amount),
      paypal_fee: m(fee),
      net_amount: m(subtract(input.amount, fee)),
      total_refunded_amount: m(input.amount),
    },
    ...(input.customId ? { custom_id: input.customId } : {}),
    status: 'COMPLETED',
    create_time: now,
    update_time: now,
    links: [
      { href: `${base}/v2/payments/refunds/${refundId}`, rel: 'self', method: 'GET' },
      { href: `${base}/v2/payments/captures/${input.captureId}`, rel: 'up', method: 'GET' },
    ],
  };
  return webhookEvent('PAYMENT.CAPTURE.REFUNDED', 'refund', resource, `A ${currencySymbol(currency)} ${input.amount} ${currency} capture payment was refunded`, { resourceVersion: '2.0', baseUrl: base });
}

type ItemEventSuffix = 'SUCCEEDED' | 'FAILED' | 'RETURNED' | 'UNCLAIMED' | 'BLOCKED' | 'HELD' | 'REFUNDED' | 'CANCELED' | 'DENIED';
export type PayoutItemEventType = ItemEventSuffix | `PAYMENT.PAYOUTS-ITEM.${ItemEventSuffix}`;

/** `PAYMENT.PAYOUTS-ITEM.*` event; `item` is the payout item as `GET /v1/payments/payouts-item/{id}` returns it. */
export function payoutItemEvent(type: PayoutItemEventType, item: Record<string, unknown>, options: { baseUrl?: string } = {}): WebhookEvent {
  const eventType = type.startsWith('PAYMENT.') ? type : `PAYMENT.PAYOUTS-ITEM.${type}`;
  const suffix = eventType.split('.').pop()!.toLowerCase();
  return webhookEvent(eventType, 'payouts_item', item, `A payout item has ${suffix === 'held' ? 'been held' : suffix}`, { baseUrl: options.baseUrl });
}

/** `PAYMENT.PAYOUTSBATCH.*` event; `batch` is the batch as `GET /v1/payments/payouts/{id}` returns it. */
export function payoutBatchEvent(type: 'PROCESSING' | 'SUCCESS' | 'DENIED', batch: Record<string, unknown>, options: { baseUrl?: string } = {}): WebhookEvent {
  const summary = type === 'SUCCESS' ? 'Payouts batch completed successfully.' : type === 'DENIED' ? 'Payouts batch got denied.' : 'Payouts batch is getting processed.';
  return webhookEvent(`PAYMENT.PAYOUTSBATCH.${type}`, 'payouts', batch, summary, { baseUrl: options.baseUrl });
}

function currencySymbol(currency: string): string {
  return ({ USD: '$', EUR: '€', GBP: '£', JPY: '¥' } as Record<string, string>)[currency] ?? currency;
}

/** Money strings subtract exactly by aligning decimals (both operands come from the same currency). */
function subtract(a: string, b: string): string {
  const decimals = Math.max(a.split('.')[1]?.length ?? 0, b.split('.')[1]?.length ?? 0);
  const scale = (v: string) => BigInt(Number(v).toFixed(decimals).replace('.', ''));
  return fromMinorUnits(scale(a) - scale(b), decimals);
}
