import type { Money } from './types.generated';

/**
 * Exact money helpers shared by every service. Amounts are integers in minor units; decimal strings from outside
 * systems ("40.85", "1500") are parsed digit by digit, never through a float.
 */
const MINOR_DIGITS: Record<string, number> = {
  // ISO 4217 currencies with other than two minor digits; everything else listed below has two.
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0,
  XAF: 0, XOF: 0, XPF: 0, HUF: 2, TWD: 2,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3, CLF: 4, UYW: 4,
};
const TWO_DIGIT = 'AED ARS AUD BOB BRL CAD CHF CNY COP CRC CZK DKK DOP EGP EUR GBP GTQ HKD HNL IDR ILS INR MXN MYR NIO NOK NZD PAB PEN PHP PLN RON RUB SAR SEK SGD THB TRY UAH USD ZAR'.split(' ');
for (const c of TWO_DIGIT) MINOR_DIGITS[c] ??= 2;

export function isKnownCurrency(currency: string): boolean {
  return currency in MINOR_DIGITS;
}

export function minorDigits(currency: string): number {
  const digits = MINOR_DIGITS[currency];
  if (digits === undefined) throw new RangeError(`unknown currency ${currency}`);
  return digits;
}

export function money(amountMinor: number, currency: string): Money {
  if (!Number.isSafeInteger(amountMinor)) throw new RangeError(`amount must be a safe integer of minor units, got ${amountMinor}`);
  minorDigits(currency);
  return { amountMinor, currency };
}

/**
 * "40.85" USD -> 4085; "1500" CLP -> 1500; "1500.00" CLP -> 1500 (trailing zeros beyond the currency's digits are
 * accepted, anything else there is refused rather than rounded). Also accepts JSON numbers that are exact decimals.
 */
export function parseDecimal(value: string | number, currency: string): Money {
  const digits = minorDigits(currency);
  const text = typeof value === 'number' ? numberToPlainString(value) : value.trim();
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(value)}`);
  const [, sign, whole, fraction = ''] = match;
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > digits) throw new RangeError(`${text} has more precision than ${currency} allows`);
  const minor = BigInt(whole!) * 10n ** BigInt(digits) + BigInt(significant.padEnd(digits, '0') || '0');
  const result = Number(sign ? -minor : minor);
  return money(result, currency);
}

/** 4085 USD -> "40.85"; 1500 CLP -> "1500"; -5 USD -> "-0.05". */
export function formatDecimal(m: Money): string {
  const digits = minorDigits(m.currency);
  const negative = m.amountMinor < 0;
  const abs = BigInt(Math.abs(m.amountMinor)).toString().padStart(digits + 1, '0');
  const text = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return negative ? `-${text}` : text;
}

function numberToPlainString(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite amount: ${n}`);
  // JSON numbers like 1500 or 12.5 print exactly for the magnitudes money takes; exponent forms are refused.
  const text = String(n);
  if (/e/i.test(text)) throw new RangeError(`amount out of range: ${text}`);
  return text;
}

function sameCurrency(a: Money, b: Money): void {
  if (a.currency !== b.currency) throw new RangeError(`currency mismatch: ${a.currency} vs ${b.currency}`);
}

export function add(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return money(a.amountMinor + b.amountMinor, a.currency);
}

export function subtract(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return money(a.amountMinor - b.amountMinor, a.currency);
}

export function sum(currency: string, amounts: Money[]): Money {
  return amounts.reduce((total, m) => add(total, m), money(0, currency));
}

export function zero(currency: string): Money {
  return money(0, currency);
}

/**
 * An exchange rate as stored everywhere in the pipeline: an exact decimal string, units of `to` per ONE unit of `from`
 * (e.g. "947.35" CLP per USD), parsed to numerator / 10^scale. Never a float.
 */
export interface ExactRate {
  numerator: bigint;
  scale: number;
}

const RATE_PATTERN = /^(\d{1,12})(?:\.(\d{1,12}))?$/;

export function parseRate(rate: string): ExactRate {
  const match = RATE_PATTERN.exec(rate);
  if (!match) throw new RangeError(`rate must be a plain positive decimal string, got ${JSON.stringify(rate)}`);
  const fraction = match[2] ?? '';
  const parsed = { numerator: BigInt(`${match[1]}${fraction}`), scale: fraction.length };
  if (parsed.numerator === 0n) throw new RangeError('rate must be positive');
  return parsed;
}

export function isValidRate(rate: string): boolean {
  try {
    parseRate(rate);
    return true;
  } catch {
    return false;
  }
}

/**
 * The exact value of `amountMinor` of `from` in minor units of `to`, as a fraction (callers choose the rounding):
 *
 *   amountMinor × rateNumerator × 10^digits(to) / (10^rateScale × 10^digits(from))
 */
export function convertExact(amountMinor: number, from: string, to: string, rate: string): { numerator: bigint; denominator: bigint } {
  if (!Number.isSafeInteger(amountMinor) || amountMinor < 0) throw new RangeError(`only non-negative integer amounts convert, got ${amountMinor}`);
  const { numerator, scale } = parseRate(rate);
  return {
    numerator: BigInt(amountMinor) * numerator * 10n ** BigInt(minorDigits(to)),
    denominator: 10n ** BigInt(scale) * 10n ** BigInt(minorDigits(from)),
  };
}

/**
 * A stored integer as a JS number. pg returns bigint columns (minor units, counts) as strings; anything beyond the
 * safe integer range is refused rather than rounded.
 */
export function safeInteger(value: unknown): number {
  const n = typeof value === 'bigint' ? Number(value) : Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${String(value)}`);
  return n;
}

/** An exchange rate as entered: exact decimal text, dated, with where it came from. */
export interface FxRate {
  from: string;
  to: string;
  rateDate: string;
  rate: string;
  source: string;
}
