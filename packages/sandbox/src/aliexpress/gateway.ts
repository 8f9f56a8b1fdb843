import express, { type Express, type Request, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import type { ApiCall, ApiHandler } from './api-call';
import { orderCreate, orderGet, trackingGet } from './api-orders';
import { freightQuery, productGet } from './api-product';
import { errorBody, gatewayErrors, newRequestId, responseKey, successBody, type GatewayError } from './envelope';
import { applyHttpMode } from './method-failures';
import { signAliExpressRequest } from './sign';
import type { FakeState } from './state';
import type { MethodFailureMode } from './types';

/**
 * The Open Platform gateway, `GET|POST /sync`. Checks run in the gateway's order: system parameters, app key,
 * daily quota, signature, method, access token; only then the business handler. Every answer is HTTP 200.
 */
export const ALIEXPRESS_API_METHODS: Readonly<Record<string, ApiHandler>> = {
  'aliexpress.ds.product.get': productGet,
  'aliexpress.ds.freight.query': freightQuery,
  'aliexpress.ds.order.create': orderCreate,
  'aliexpress.trade.ds.order.get': orderGet,
  'aliexpress.ds.order.tracking.get': trackingGet,
};

const SYSTEM_PARAMS = ['method', 'app_key', 'timestamp', 'sign_method', 'sign'] as const;

export function mountGateway(app: Express, state: FakeState): void {
  const form = express.urlencoded({ extended: false, limit: '1mb' });
  const handle = (req: Request, res: Response) => gateway(state, req, res);
  app.get('/sync', handle);
  app.post('/sync', form, handle);
}

/** Query and form body together: SDKs put system parameters in the query and business ones in the body. */
function collectParams(req: Request): Record<string, string> {
  const params: Record<string, string> = {};
  const sources = [req.query as Record<string, unknown>, (req.body ?? {}) as Record<string, unknown>];
  for (const source of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (typeof value === 'string') params[name] = value;
      else if (Array.isArray(value) && typeof value[0] === 'string') params[name] = value[0];
    }
  }
  return params;
}

function gateway(state: FakeState, req: Request, res: Response): void {
  const params = collectParams(req);
  const method = params.method ?? '';
  state.countCall(method);
  const injected = state.failures.take(method);
  if (!injected) return answer(state, params, res);
  if (applyHttpMode(injected, req, res, () => answer(state, params, res))) return;
  if (injected.kind === 'drop-after-handling' || injected.kind === 'hold-answer') return answer(state, params, res);
  res.json(injectedBody(method, injected, newRequestId()));
}

function injectedBody(method: string, mode: MethodFailureMode, requestId: string): Record<string, unknown> {
  if (mode.kind === 'gateway-error') {
    const error: GatewayError = { type: mode.type ?? 'ISP', code: mode.code, msg: mode.msg ?? 'Injected failure' };
    if (mode.subCode) error.sub_code = mode.subCode;
    if (mode.subMsg) error.sub_msg = mode.subMsg;
    return errorBody(error, requestId);
  }
  if (mode.kind === 'flat-error') {
    return { type: mode.type ?? 'ISV', code: mode.code, message: mode.message ?? mode.code, request_id: requestId };
  }
  if (mode.kind === 'business-error') {
    return { [responseKey(method)]: { result: { is_success: false, error_code: mode.errorCode, error_msg: mode.errorMsg ?? mode.errorCode }, request_id: requestId } };
  }
  return errorBody({ type: 'SYSTEM', code: 'InternalError', msg: 'unexpected injected mode' }, requestId);
}

function answer(state: FakeState, params: Record<string, string>, res: Response): void {
  const requestId = newRequestId();
  const checked = authenticate(state, params);
  if ('error' in checked) {
    res.json(errorBody(checked.error, requestId));
    return;
  }
  const handler = ALIEXPRESS_API_METHODS[checked.method];
  const outcome = handler ? handler(state, checked) : { error: gatewayErrors.invalidApiPath(checked.method) };
  res.json('error' in outcome ? errorBody(outcome.error, requestId) : successBody(checked.method, outcome.result, requestId));
}

function authenticate(state: FakeState, params: Record<string, string>): ApiCall | { error: GatewayError } {
  const missing = SYSTEM_PARAMS.find((name) => !params[name]);
  if (missing) return { error: gatewayErrors.missingParameter(missing) };
  const { method = '', app_key: appKey = '', sign = '' } = params;
  const secret = state.accounts.secretOf(appKey);
  if (secret === undefined) return { error: gatewayErrors.invalidAppKey() };
  const now = state.now();
  if (!state.accounts.consumeQuota(appKey, state.dailyQuota, now)) {
    return { error: gatewayErrors.apiCallLimit(state.accounts.secondsUntilBeijingMidnight(now)) };
  }
  // Only HMAC-SHA256 is accepted; another sign_method cannot produce a signature this gateway recognises.
  if (params.sign_method !== 'sha256' || !sameSignature(sign, signAliExpressRequest(params, secret))) {
    return { error: gatewayErrors.incompleteSignature() };
  }
  if (!ALIEXPRESS_API_METHODS[method]) return { error: gatewayErrors.invalidApiPath(method) };
  // The official IOP SDKs send the token as `session` (Corrections); the documented name is `access_token`: both work.
  const token = params.access_token || params.session;
  if (!token) return { error: gatewayErrors.missingParameter('access_token') };
  const account = state.accounts.accountFor(appKey, token, now);
  if (account === undefined) return { error: gatewayErrors.illegalAccessToken() };
  return { method, params, appKey, account };
}

/** Uppercase hex, compared exactly (the documented form) and in constant time. */
function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
