import { callHttp } from '@postsale/runtime';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { startFakeServer, type FakeServer } from '../fake-server';
import { basicCredentials, randomId } from '../fake-utils';
import {
  buildCheckoutOrder,
  configureCheckoutRoutes,
  newCheckoutState,
  type CaptureRecord,
  type CheckoutOrderInput,
  type CheckoutOrderSeed,
  type CheckoutState,
} from './checkout';
import { requireToken, sendError, sendJson, type TokenStore } from './paypal-http';
import {
  configurePayoutRoutes,
  newPayoutsState,
  paidItems,
  payoutBatches,
  refusePayoutCreates,
  answerDuplicates,
  type DuplicateAnswer,
  setBalance,
  setPayoutOutcome,
  settlePayouts,
  type PaidItem,
  type PayoutBatchSummary,
  type PayoutEvent,
  type PayoutMatcher,
  type PayoutOutcome,
  type PayoutOutcomeOptions,
  type PayoutRefusal,
  type PayoutRefusalOptions,
  type PayoutsState,
} from './payouts';
import {
  captureCompletedEvent,
  captureRefundedEvent,
  captureStatusEvent,
  certPath,
  configureWebhookRoutes,
  payoutBatchEvent,
  payoutItemEvent,
  signWebhook,
  webhookSigner,
  type CaptureEventInput,
  type PayoutItemEventType,
  type RefundEventInput,
  type SignedWebhook,
  type SignWebhookOptions,
  type WebhookEvent,
  type WebhookState,
} from './webhooks';

/**
 * Local fake of the PayPal REST APIs the pipeline uses: OAuth2 client credentials, Orders v2 capture, webhook
 * certificates and the online signature check, and Payouts v1. It speaks what both plain HTTP clients and the real
 * `@paypal/payouts-sdk` expect (JSON Content-Type on every answer, gzip on request, `token_type` + `access_token`,
 * 401 for stale tokens so the SDK refreshes once).
 */
export const PAYPAL_FAKE_CLIENT_ID = 'sandbox-client-id';
export const PAYPAL_FAKE_CLIENT_SECRET = 'sandbox-client-secret';

export interface PayPalFakeOptions {
  port?: number;
  clientId?: string;
  clientSecret?: string;
  /** access token lifetime; PayPal announces 32400 s (9 h) */
  tokenTtlSeconds?: number;
  /** payout batches settle on the first read after this delay (and by timer); Infinity = only processPayouts() */
  processAfterMs?: number;
  /** payout item fee as a fraction of the amount (capped at 20); 2 % by default */
  payoutFeeRate?: number;
  /** when set, payout item/batch webhooks are POSTed here, signed for `webhookId` */
  webhookUrl?: string;
  webhookId?: string;
  /** generate a new webhook signing key and certificate instead of the one shared by fakes in this process */
  freshWebhookKey?: boolean;
}

export interface WebhookDelivery {
  url: string;
  eventType: string;
  eventId: string;
  /** HTTP status, or 0 when the endpoint could not be reached */
  status: number;
  at: number;
}

export interface PayPalFake extends FakeServer {
  readonly clientId: string;
  readonly clientSecret: string;
  /** absolute URL of this fake's webhook signing certificate (what PAYPAL-CERT-URL carries) */
  readonly certUrl: string;
  readonly certificatePem: string;
  /** invalidate every issued access token: the next call gets 401 and must fetch a new token */
  expireTokens(): void;
  issuedTokenCount(): number;

  seedCheckoutOrder(input?: CheckoutOrderInput): CheckoutOrderSeed;
  /** every capture that really happened (replays of a PayPal-Request-Id are not counted) */
  captures(): CaptureRecord[];

  registerWebhook(webhookId: string): void;
  signedWebhook(event: unknown, options: SignWebhookOptions): SignedWebhook;
  /** POST a signed webhook to an endpoint the way PayPal delivers it */
  deliverWebhook(url: string, webhook: SignedWebhook): Promise<{ status: number; body: string }>;
  captureCompletedEvent(input: CaptureEventInput): WebhookEvent;
  captureRefundedEvent(input: RefundEventInput): WebhookEvent;
  /** PAYMENT.CAPTURE.DENIED / .PENDING for a capture (no fee breakdown: no money moved) */
  captureStatusEvent(type: 'DENIED' | 'PENDING', input: CaptureEventInput): WebhookEvent;
  payoutItemEvent(type: PayoutItemEventType, item: Record<string, unknown>): WebhookEvent;
  webhookDeliveries(): WebhookDelivery[];

  setPayoutOutcome(matcher: PayoutMatcher, outcome: PayoutOutcome, options?: PayoutOutcomeOptions): void;
  clearPayoutOutcomes(): void;
  /** limit the account balance for a currency (undefined = unlimited); payouts beyond it get INSUFFICIENT_FUNDS */
  setBalance(currency: string, value: string | undefined): void;
  /** answer the next payout creates with one of PayPal's documented refusals (nothing is created) */
  refusePayoutCreates(refusal: PayoutRefusal, options?: PayoutRefusalOptions): void;
  /** how a reused sender_batch_id is answered: 'link' (default), 'no-link', 'other-batch' (cleared by clearPayoutOutcomes) */
  answerDuplicates(answer: DuplicateAnswer): void;
  /** settle every pending payout batch now, whatever processAfterMs says */
  processPayouts(): void;
  payoutBatches(): PayoutBatchSummary[];
  /** every payout item ever accepted, across batches: count these to prove "no duplicate payouts" */
  paidItems(): PaidItem[];
}

interface PayPalState {
  options: PayPalFakeOptions;
  clientId: string;
  clientSecret: string;
  tokens: TokenStore;
  checkout: CheckoutState;
  webhooks: WebhookState;
  payouts: PayoutsState;
  deliveries: WebhookDelivery[];
}

export async function startPayPalFake(options: PayPalFakeOptions = {}): Promise<PayPalFake> {
  const state: PayPalState = {
    options,
    clientId: options.clientId ?? PAYPAL_FAKE_CLIENT_ID,
    clientSecret: options.clientSecret ?? PAYPAL_FAKE_CLIENT_SECRET,
    tokens: { tokens: new Map() },
    checkout: newCheckoutState(),
    webhooks: { signer: await webhookSigner(options.freshWebhookKey), webhookIds: new Set(), signedBodies: new Map() },
    payouts: newPayoutsState({ processAfterMs: options.processAfterMs, feeRate: options.payoutFeeRate }),
    deliveries: [],
  };
  const server = await startFakeServer('paypal', (app) => configureRoutes(app, state), { port: options.port });
  state.payouts.baseUrl = server.url;
  if (options.webhookUrl) {
    const webhookId = options.webhookId ?? `WH-FAKE-${randomId(10)}`;
    state.webhooks.webhookIds.add(webhookId);
    state.payouts.notify = (event) => void sendPayoutWebhook(state, server.url, options.webhookUrl!, webhookId, event);
  }
  return buildHandle(server, state);
}

function configureRoutes(app: Express, state: PayPalState): void {
  app.use(express.json({ limit: '20mb' }));
  app.use(express.urlencoded({ extended: false }));
  app.post('/v1/oauth2/token', (req, res) => issueToken(req, res, state));
  const auth = requireToken(state.tokens);
  configureWebhookRoutes(app, state.webhooks, auth);
  app.use(['/v1/payments', '/v2'], auth);
  configureCheckoutRoutes(app, state.checkout);
  configurePayoutRoutes(app, state.payouts);
  app.use((req: Request, res: Response) => sendError(req, res, 404, 'RESOURCE_NOT_FOUND', 'The specified resource does not exist.'));
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(req, res, 400, 'MALFORMED_REQUEST_JSON', 'The request JSON is not well formed.', [
      { issue: 'MALFORMED_REQUEST_JSON', description: 'The request JSON is not well formed.' },
    ]);
  });
}

function issueToken(req: Request, res: Response, state: PayPalState): void {
  const credentials = basicCredentials(req);
  if (credentials?.id !== state.clientId || credentials.secret !== state.clientSecret) {
    return sendJson(req, res, 401, { error: 'invalid_client', error_description: 'Client Authentication failed' });
  }
  const grant = (req.body as Record<string, unknown> | undefined)?.grant_type;
  if (grant !== 'client_credentials') {
    return sendJson(req, res, 400, { error: 'unsupported_grant_type', error_description: `Grant Type is not supported: ${String(grant)}` });
  }
  const ttl = state.options.tokenTtlSeconds ?? 32_400;
  const token = `A21AA${randomId(90, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')}`;
  state.tokens.tokens.set(token, { expiresAt: Date.now() + ttl * 1000 });
  sendJson(req, res, 200, {
    scope: 'https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/payouts https://uri.paypal.com/services/payments/realtimepayment https://uri.paypal.com/services/applications/webhooks openid',
    access_token: token,
    token_type: 'Bearer',
    app_id: 'APP-80W284485P519543T',
    expires_in: ttl,
    nonce: `${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}${randomId(43)}`,
  });
}

function buildHandle(server: FakeServer, state: PayPalState): PayPalFake {
  const base = server.url;
  const timers = state.payouts.timers;
  return {
    ...server,
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await server.stop();
    },
    clientId: state.clientId,
    clientSecret: state.clientSecret,
    certUrl: `${base}${certPath(state.webhooks.signer)}`,
    certificatePem: state.webhooks.signer.certificatePem,
    expireTokens: () => state.tokens.tokens.clear(),
    issuedTokenCount: () => state.tokens.tokens.size,
    seedCheckoutOrder(input) {
      const seed = buildCheckoutOrder(input);
      state.checkout.orders.set(seed.id, { seed });
      return structuredClone(seed);
    },
    captures: () => structuredClone(state.checkout.captures),
    registerWebhook: (webhookId) => void state.webhooks.webhookIds.add(webhookId),
    signedWebhook: (event, options) => signWebhook(state.webhooks, base, event, options),
    deliverWebhook: postWebhook,
    captureCompletedEvent: (input) => captureCompletedEvent({ baseUrl: base, ...input }),
    captureRefundedEvent: (input) => captureRefundedEvent({ baseUrl: base, ...input }),
    captureStatusEvent: (type, input) => captureStatusEvent(type, { baseUrl: base, ...input }),
    payoutItemEvent: (type, item) => payoutItemEvent(type, item, { baseUrl: base }),
    webhookDeliveries: () => structuredClone(state.deliveries),
    setPayoutOutcome: (matcher, outcome, options) => setPayoutOutcome(state.payouts, matcher, outcome, options),
    clearPayoutOutcomes: () => {
      state.payouts.outcomes.splice(0);
      state.payouts.refusals.splice(0);
      state.payouts.duplicateAnswer = 'link';
    },
    answerDuplicates: (answer) => answerDuplicates(state.payouts, answer),
    setBalance: (currency, value) => setBalance(state.payouts, currency, value),
    refusePayoutCreates: (refusal, options) => refusePayoutCreates(state.payouts, refusal, options),
    processPayouts: () => settlePayouts(state.payouts, true),
    payoutBatches: () => payoutBatches(state.payouts),
    paidItems: () => paidItems(state.payouts),
  };
}

async function postWebhook(url: string, webhook: SignedWebhook): Promise<{ status: number; body: string }> {
  const response = await callHttp(url, { method: 'POST', headers: webhook.headers, body: webhook.rawBody, timeoutMs: 10_000 });
  return { status: response.status, body: response.text };
}

const ITEM_EVENT: Record<string, PayoutItemEventType> = {
  SUCCESS: 'SUCCEEDED', FAILED: 'FAILED', RETURNED: 'RETURNED', UNCLAIMED: 'UNCLAIMED', BLOCKED: 'BLOCKED',
  ONHOLD: 'HELD', REFUNDED: 'REFUNDED', CANCELED: 'CANCELED',
};

/** Best effort, one attempt: real PayPal retries for days, tests that need retries can call deliverWebhook. */
async function sendPayoutWebhook(state: PayPalState, base: string, url: string, webhookId: string, event: PayoutEvent): Promise<void> {
  let body: WebhookEvent;
  if (event.kind === 'batch') body = payoutBatchEvent(event.status === 'DENIED' ? 'DENIED' : 'SUCCESS', event.batch, { baseUrl: base });
  else {
    const type = ITEM_EVENT[event.status];
    if (!type) return;
    body = payoutItemEvent(type, event.item, { baseUrl: base });
  }
  const signed = signWebhook(state.webhooks, base, body, { webhookId });
  const record: WebhookDelivery = { url, eventType: body.event_type, eventId: body.id, status: 0, at: Date.now() };
  try {
    record.status = (await postWebhook(url, signed)).status;
  } catch {
    record.status = 0;
  }
  state.deliveries.push(record);
}
