import { randomBytes } from 'node:crypto';

/**
 * The gateway's two answer shapes. Both are sent with HTTP 200 (as the Open Platform gateway does): a client must
 * read the body, not the status, to tell success from refusal.
 */
export interface GatewayError {
  type: 'ISV' | 'ISP' | 'SYSTEM';
  code: string;
  msg: string;
  sub_code?: string;
  sub_msg?: string;
}

export function newRequestId(): string {
  // Real ids look like "2101567a17104988838493654": hex-ish, ~25 characters.
  return `21${randomBytes(12).toString('hex').slice(0, 23)}`;
}

export function responseKey(method: string): string {
  return `${method.replace(/\./g, '_')}_response`;
}

export function successBody(method: string, result: unknown, requestId: string): Record<string, unknown> {
  return { [responseKey(method)]: { result, request_id: requestId } };
}

export function errorBody(error: GatewayError, requestId: string): Record<string, unknown> {
  return { error_response: { ...error, request_id: requestId } };
}

export const gatewayErrors = {
  missingParameter: (name: string): GatewayError => ({
    type: 'ISV',
    code: 'MissingParameter',
    msg: `The input parameter "${name}" that is mandatory for processing this request is not supplied`,
    sub_code: 'isv.missing-parameter',
  }),
  invalidParameter: (name: string, why: string): GatewayError => ({
    type: 'ISV',
    code: 'InvalidParameter',
    msg: `The input parameter "${name}" is invalid: ${why}`,
    sub_code: 'isv.invalid-parameter',
  }),
  invalidAppKey: (): GatewayError => ({ type: 'ISV', code: 'InvalidAppKey', msg: 'The specified app key is invalid' }),
  incompleteSignature: (): GatewayError => ({
    type: 'ISV',
    code: 'IncompleteSignature',
    msg: 'The request signature does not conform to platform standards',
  }),
  illegalAccessToken: (): GatewayError => ({
    type: 'ISV',
    code: 'IllegalAccessToken',
    msg: 'The specified access token is invalid or expired',
  }),
  invalidApiPath: (method: string): GatewayError => ({
    type: 'ISV',
    code: 'InvalidApiPath',
    msg: `The specified API method ${method} is invalid`,
  }),
  apiCallLimit: (banSeconds: number): GatewayError => ({
    type: 'ISP',
    code: 'ApiCallLimit',
    msg: 'App call limit exceeded',
    sub_code: 'isp.app-call-limited',
    sub_msg: `This ban will last ${banSeconds} more seconds`,
  }),
  // Shared by "no such order", "not yours" and the just-created lag window: a client must not read it as "never placed".
  orderNotFound: (orderId: string): GatewayError => ({
    type: 'ISV',
    code: 'ORDER_NOT_FOUND',
    msg: `Order ${orderId} does not exist or does not belong to the current user`,
    sub_code: 'isv.order-not-found',
  }),
  productNotFound: (productId: string): GatewayError => ({
    type: 'ISV',
    code: 'PRODUCT_NOT_EXIST',
    msg: `Product ${productId} does not exist`,
    sub_code: 'isv.product-not-exist',
  }),
};
