import { randomBytes, randomInt } from 'node:crypto';
import type { Request } from 'express';

/**
 * Small helpers shared by the marketplace/payment fakes (eBay, MercadoLibre, PayPal). They only read HTTP; every
 * provider-specific shape (error bodies, ids) stays in the fake that imitates that provider.
 */

/** The token of an `Authorization: Bearer …` header, or undefined when absent/empty (scheme is case-insensitive). */
export function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization');
  const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return match?.[1]?.trim() || undefined;
}

/** `{ id, secret }` of an `Authorization: Basic …` header, or undefined when absent/malformed. */
export function basicCredentials(req: Request): { id: string; secret: string } | undefined {
  const header = req.get('authorization');
  const match = header ? /^Basic\s+(.+)$/i.exec(header.trim()) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Random id from an alphabet; PayPal ids look like `5UXD2E8A7EBQJ` (upper-case alphanumerics). */
export function randomId(length: number, alphabet = UPPER_ALNUM): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** Random decimal digits, first digit non-zero (marketplace numeric ids). */
export function randomDigits(length: number): string {
  return String(randomInt(1, 10)) + randomId(length - 1, '0123456789');
}

/** Lower-case hex, e.g. debug ids and correlation ids. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** ISO timestamp without milliseconds (`2024-05-01T10:00:00Z`), the form PayPal uses. */
export function isoSeconds(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Decimal money string → integer minor units, exact (no floating point). Returns undefined when the string does not
 * have exactly `decimals` fraction digits, which is how PayPal and eBay reject "1.5" for USD.
 */
export function toMinorUnits(value: string, decimals: number): bigint | undefined {
  const pattern = decimals === 0 ? /^\d+$/ : new RegExp(`^\\d+\\.\\d{${decimals}}$`);
  if (!pattern.test(value)) return undefined;
  return BigInt(value.replace('.', ''));
}

/** Integer minor units → decimal money string with exactly `decimals` fraction digits. */
export function fromMinorUnits(minor: bigint, decimals: number): string {
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(decimals + 1, '0');
  const whole = decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  return negative ? `-${whole}` : whole;
}

/** ISO-4217 currencies without minor units in PayPal/eBay amounts; everything else uses two decimals. */
const ZERO_DECIMAL = new Set(['JPY', 'HUF', 'TWD', 'CLP', 'KRW', 'ISK', 'VND', 'PYG', 'COP']);

export function currencyDecimals(currency: string): number {
  return ZERO_DECIMAL.has(currency.toUpperCase()) ? 0 : 2;
}

/** Multiply a money string by a rate (e.g. a fee percentage), rounding half-up to the currency's minor unit. */
export function applyRate(value: string, rate: number, currency: string): string {
  const decimals = currencyDecimals(currency);
  const minor = toMinorUnits(value, decimals) ?? toMinorUnits(Number(value).toFixed(decimals), decimals) ?? 0n;
  // Rates are given with at most 6 significant decimals; scale to integers to stay exact.
  const scaled = BigInt(Math.round(rate * 1_000_000));
  const product = minor * scaled;
  const rounded = (product + 500_000n) / 1_000_000n;
  return fromMinorUnits(rounded, decimals);
}

/** Deep copy through JSON, so callers of accessors cannot mutate a fake's state by accident. */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
