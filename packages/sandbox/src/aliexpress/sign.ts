import { createHmac } from 'node:crypto';

/**
 * The AliExpress Open Platform signature (sign_method=sha256), shared by the fake and by any client or test that
 * wants the exact same algorithm. Pure: no clock, no I/O.
 *
 * Rules (Open Platform "signature algorithm"): take every parameter except `sign`, sort by name in ASCII order,
 * concatenate name and value with no separators (`k1v1k2v2…`), HMAC-SHA256 with the app secret, uppercase hex.
 * System APIs (`/auth/token/create`, …) put their API path in front of that string; pass it as `apiPath`.
 */
export type AliExpressParams = Record<string, string | number | boolean | null | undefined>;

export function aliExpressStringToSign(params: AliExpressParams, apiPath = ''): string {
  const names = Object.keys(params)
    .filter((name) => name !== 'sign' && params[name] !== undefined && params[name] !== null)
    // ASCII order, not locale order: 'Z' sorts before 'a', '_' (0x5F) between them.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return apiPath + names.map((name) => `${name}${String(params[name])}`).join('');
}

export function signAliExpressRequest(params: AliExpressParams, appSecret: string, apiPath = ''): string {
  return createHmac('sha256', appSecret).update(aliExpressStringToSign(params, apiPath), 'utf8').digest('hex').toUpperCase();
}

/** The same parameters as strings, with `sign` added: ready to send as a form body or query string. */
export function withAliExpressSignature(params: AliExpressParams, appSecret: string, apiPath = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (name !== 'sign' && value !== undefined && value !== null) out[name] = String(value);
  }
  out.sign = signAliExpressRequest(out, appSecret, apiPath);
  return out;
}
