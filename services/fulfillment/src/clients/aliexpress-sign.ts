import { createHmac } from 'node:crypto';

/**
 * AliExpress Open Platform request signature, sign_method=sha256: every parameter except `sign`, sorted by name in
 * ASCII order, concatenated as name+value with no separators, HMAC-SHA256 with the app secret, uppercase hex. System
 * APIs (/auth/token/create, …) prefix their API path. Our own implementation; a unit test cross-checks it against the
 * sandbox's verifier.
 */
export function aliExpressSignature(params: Record<string, string>, appSecret: string, apiPath = ''): string {
  const names = Object.keys(params)
    .filter((name) => name !== 'sign')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // byte order, not locale order
  const text = apiPath + names.map((name) => `${name}${params[name]}`).join('');
  return createHmac('sha256', appSecret).update(text, 'utf8').digest('hex').toUpperCase();
}
