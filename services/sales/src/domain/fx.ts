import { minorDigits, type Money } from '@postsale/contracts';
import { roundHalfUpDiv, toMoney } from './money-breakdown';

/**
 * Currency conversion with an explicit rate: "units of `to` per one unit of `from`" as an exact decimal string
 * (e.g. "947.35" CLP per USD). The arithmetic is exact bigint on minor units:
 *
 *   toMinor = roundHalfUp( fromMinor x rateNumerator x 10^digits(to) / (10^rateScale x 10^digits(from)) )
 *
 * Half-up to the nearest minor unit of the target currency: the error is at most half a minor unit, symmetric, and
 * the same rate and amount always give the same result. Amounts converted here are costs (never negative).
 */
export interface ParsedRate {
  numerator: bigint;
  scale: number;
}

const RATE_PATTERN = /^(\d{1,12})(?:\.(\d{1,12}))?$/;

export function parseRate(rate: string): ParsedRate {
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

export function convert(amount: Money, toCurrency: string, rate: string): Money {
  if (amount.amountMinor < 0 || !Number.isSafeInteger(amount.amountMinor)) throw new RangeError('only non-negative integer amounts convert');
  const { numerator, scale } = parseRate(rate);
  const n = BigInt(amount.amountMinor) * numerator * 10n ** BigInt(minorDigits(toCurrency));
  const d = 10n ** BigInt(scale) * 10n ** BigInt(minorDigits(amount.currency));
  return toMoney(roundHalfUpDiv(n, d), toCurrency);
}
