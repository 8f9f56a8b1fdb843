import { convertExact, formatDecimal, isKnownCurrency, minorDigits } from '@postsale/contracts';

/**
 * What PayPal Payouts accepts, and the exact arithmetic that turns what is owed (in the sale's currency) into what is
 * paid (in the payee's payout currency). Pure: no I/O.
 *
 * Source: PayPal REST "Currency codes" (https://developer.paypal.com/reference/currency-codes/), the currencies
 * marked as supported for Payouts, and "Payouts: amount.value … HUF, JPY and TWD do not support decimals"
 * (https://developer.paypal.com/docs/api/payments.payouts-batch/v1/#definition-currency). PayPal rejects the WHOLE
 * batch (VALIDATION_ERROR) when one item names another currency or has more decimals, so every item is checked
 * against this table before it is put into a batch (the sandbox fake, packages/sandbox/src/paypal/payouts.ts, imitates
 * exactly this list). Value = decimals PayPal accepts in amount.value.
 */
export const PAYPAL_PAYOUT_CURRENCIES: Readonly<Record<string, number>> = Object.freeze({
  AUD: 2, BRL: 2, CAD: 2, CNY: 2, CZK: 2, DKK: 2, EUR: 2, HKD: 2, HUF: 0, ILS: 2, JPY: 0, MYR: 2, MXN: 2, TWD: 0,
  NZD: 2, NOK: 2, PHP: 2, PLN: 2, GBP: 2, RUB: 2, SGD: 2, SEK: 2, CHF: 2, THB: 2, USD: 2,
});

export function isPayPalPayoutCurrency(currency: string): boolean {
  return Object.prototype.hasOwnProperty.call(PAYPAL_PAYOUT_CURRENCIES, currency) && isKnownCurrency(currency);
}

/**
 * The smallest amount PayPal can pay in `currency`, in our minor units. Our minor units follow ISO 4217 (HUF and TWD
 * have 2 digits there) while PayPal takes whole HUF/TWD: one payable step is then 100 of our minor units.
 */
export function payoutStepMinor(currency: string): bigint {
  const paypal = PAYPAL_PAYOUT_CURRENCIES[currency];
  if (paypal === undefined) throw new RangeError(`${currency} is not a PayPal payout currency`);
  return 10n ** BigInt(Math.max(0, minorDigits(currency) - paypal));
}

/** Why PayPal would refuse this amount (null: it is payable). Checked for every item before batching. */
export function unpayableReason(amountMinor: number, currency: string): string | null {
  if (!isPayPalPayoutCurrency(currency)) return `PayPal Payouts does not support ${currency}`;
  if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) return `amount ${amountMinor} is not a positive amount`;
  const step = payoutStepMinor(currency);
  if (BigInt(amountMinor) % step !== 0n) return `PayPal takes ${PAYPAL_PAYOUT_CURRENCIES[currency]} decimals in ${currency}`;
  return null;
}

/** amount.value as PayPal wants it: 2 decimals, or none for HUF/JPY/TWD ("1234.50" USD, "1234" HUF). */
export function formatPayPalValue(amountMinor: number, currency: string): string {
  const reason = unpayableReason(amountMinor, currency);
  if (reason) throw new RangeError(reason);
  const text = formatDecimal({ amountMinor, currency });
  return PAYPAL_PAYOUT_CURRENCIES[currency] === 0 ? text.replace(/\.0+$/, '') : text;
}

export { isValidRate, parseRate } from '@postsale/contracts';

/**
 * Converts `amountMinor` of `from` into `to` at `rate`, ROUNDED DOWN to what PayPal can pay in `to`:
 *
 *   exact    = amountMinor × rateNumerator × 10^digits(to) / (10^rateScale × 10^digits(from))   (in minor units of `to`)
 *   result   = floor(exact / step) × step        where step = payoutStepMinor(to) (1, or 100 for HUF/TWD)
 *
 * Rounding down means the payee is never paid more than it is owed at the rate; the difference is less than one
 * payable unit of `to` (one cent for USD). Integer bigint arithmetic only. Same currency: rate "1", only the step
 * applies. Non-negative amounts only (what is owed; debts are netted before conversion, in the sale's currency).
 */
export function convertRoundingDown(amountMinor: number, from: string, to: string, rate: string): number {
  const { numerator: n, denominator: d } = convertExact(amountMinor, from, to, rate);
  const step = payoutStepMinor(to);
  const result = (n / (d * step)) * step; // bigint division truncates; both are non-negative, so this is floor
  const asNumber = Number(result);
  if (!Number.isSafeInteger(asNumber)) throw new RangeError(`converted amount out of range: ${result}`);
  return asNumber;
}

/**
 * The payout currency of a recipient: its explicit choice (PLATFORM_PAYOUT_CURRENCY for the platform, the payee's
 * `payoutCurrency` for a seller), else the sale's currency when PayPal pays it, else DEFAULT_PAYOUT_CURRENCY.
 */
export function choosePayoutCurrency(input: {
  recipient: 'PLATFORM' | 'SELLER';
  saleCurrency: string;
  payeeChoice: string | null;
  platformCurrency: string | undefined;
  defaultCurrency: string;
}): string {
  const explicit = input.recipient === 'PLATFORM' ? input.platformCurrency : input.payeeChoice;
  if (explicit) return explicit;
  return isPayPalPayoutCurrency(input.saleCurrency) ? input.saleCurrency : input.defaultCurrency;
}

/** The UTC day of a time, as rates are dated ("YYYY-MM-DD"). */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}
