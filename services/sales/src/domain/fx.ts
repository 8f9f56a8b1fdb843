import { convertExact, type Money } from '@postsale/contracts';
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
export { isValidRate, parseRate } from '@postsale/contracts';

export function convert(amount: Money, toCurrency: string, rate: string): Money {
  const { numerator, denominator } = convertExact(amount.amountMinor, amount.currency, toCurrency, rate);
  return toMoney(roundHalfUpDiv(numerator, denominator), toCurrency);
}
