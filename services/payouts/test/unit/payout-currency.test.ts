import fc from 'fast-check';
import { minorDigits } from '@postsale/contracts';
import {
  choosePayoutCurrency, convertRoundingDown, formatPayPalValue, isPayPalPayoutCurrency, parseRate, payoutStepMinor, PAYPAL_PAYOUT_CURRENCIES, unpayableReason,
} from '../../src/domain/payout-currency';
import type { Intent } from '../../src/db/payouts.repository';
import { planPayout } from '../../src/domain/submit-batches.use-case';

const SOURCES = ['CLP', 'USD', 'EUR', 'JPY', 'KWD', 'HUF', 'BRL', 'MXN'];
const TARGETS = ['USD', 'EUR', 'JPY', 'HUF', 'TWD', 'GBP'];

/** a decimal rate string with 0..8 fraction digits, never zero */
const rateArb = fc.tuple(fc.bigInt({ min: 0n, max: 99_999n }), fc.nat({ max: 8 }), fc.bigInt({ min: 0n, max: 99_999_999n }))
  .map(([whole, scale, frac]) => {
    const fraction = scale === 0 ? '' : (frac % 10n ** BigInt(scale)).toString().padStart(scale, '0');
    return fraction ? `${whole}.${fraction}` : `${whole}`;
  })
  .filter((r) => /[1-9]/.test(r));

describe('conversion into a payout currency (rounded down, exact integers)', () => {
  it('when any amount is converted, then the result never exceeds the exact value and misses it by less than one payable unit', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 10_000_000_000 }), fc.constantFrom(...SOURCES), fc.constantFrom(...TARGETS), rateArb,
      (amountMinor, from, to, rate) => {
        const { numerator, scale } = parseRate(rate);
        // exact value in minor units of `to` is N / D; compare with integers only
        const N = BigInt(amountMinor) * numerator * 10n ** BigInt(minorDigits(to));
        const D = 10n ** BigInt(scale) * 10n ** BigInt(minorDigits(from));
        let result: number;
        try {
          result = convertRoundingDown(amountMinor, from, to, rate);
        } catch {
          // only a result beyond the safe integer range may be refused
          expect(N / D > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
          return;
        }
        const r = BigInt(result);
        const step = payoutStepMinor(to);
        expect(r * D <= N).toBe(true); // never more than owed
        expect((r + step) * D > N).toBe(true); // less than one payable unit short
        expect(r % step).toBe(0n); // something PayPal accepts
      },
    ), { numRuns: 2000 });
  });

  it('when 10000 CLP is converted at 0.00105263 USD per CLP, then 10.52 USD is paid (10.5263 rounded down)', () => {
    expect(convertRoundingDown(10_000, 'CLP', 'USD', '0.00105263')).toBe(1052);
    expect(convertRoundingDown(9, 'CLP', 'USD', '0.00105263')).toBe(0); // 0.0094737 USD: less than a cent
    expect(convertRoundingDown(1999, 'USD', 'JPY', '150.5')).toBe(3008); // 3008.495 JPY
    expect(convertRoundingDown(12_345, 'HUF', 'HUF', '1')).toBe(12_300); // PayPal pays whole forints only
  });

  it('when a rate is not a plain positive decimal, then it is refused rather than guessed', () => {
    for (const bad of ['0', '0.000', '-1', '1e-3', '1,5', '', ' 1', '1.', '.5', '1234567890123']) {
      expect(() => convertRoundingDown(100, 'CLP', 'USD', bad)).toThrow(RangeError);
    }
    expect(() => convertRoundingDown(-1, 'CLP', 'USD', '1')).toThrow(RangeError);
  });
});

describe('what PayPal Payouts accepts', () => {
  it('when the currency is CLP, then it is not payable; USD, EUR, JPY are', () => {
    expect(isPayPalPayoutCurrency('CLP')).toBe(false);
    expect(unpayableReason(1000, 'CLP')).toMatch(/does not support CLP/);
    for (const c of ['USD', 'EUR', 'JPY', 'HUF', 'TWD']) expect(isPayPalPayoutCurrency(c)).toBe(true);
    expect(Object.keys(PAYPAL_PAYOUT_CURRENCIES)).toHaveLength(25);
  });

  it('when the currency takes no decimals at PayPal (HUF, JPY, TWD), then values are whole and fractions are refused', () => {
    expect(formatPayPalValue(123_400, 'HUF')).toBe('1234');
    expect(formatPayPalValue(1234, 'JPY')).toBe('1234');
    expect(formatPayPalValue(1050, 'USD')).toBe('10.50');
    expect(unpayableReason(123_450, 'HUF')).toMatch(/0 decimals/);
    expect(() => formatPayPalValue(123_450, 'TWD')).toThrow(RangeError);
  });

  it('when no payout currency is chosen, then the sale currency is used if PayPal pays it, else the default; an explicit choice wins', () => {
    const base = { platformCurrency: undefined, defaultCurrency: 'EUR', payeeChoice: null };
    expect(choosePayoutCurrency({ ...base, recipient: 'SELLER', saleCurrency: 'CLP' })).toBe('EUR');
    expect(choosePayoutCurrency({ ...base, recipient: 'SELLER', saleCurrency: 'GBP' })).toBe('GBP');
    expect(choosePayoutCurrency({ ...base, recipient: 'SELLER', saleCurrency: 'CLP', payeeChoice: 'JPY' })).toBe('JPY');
    expect(choosePayoutCurrency({ ...base, recipient: 'PLATFORM', saleCurrency: 'GBP' })).toBe('GBP');
    expect(choosePayoutCurrency({ ...base, recipient: 'PLATFORM', saleCurrency: 'CLP' })).toBe('EUR');
    expect(choosePayoutCurrency({ ...base, platformCurrency: 'USD', recipient: 'PLATFORM', saleCurrency: 'GBP', payeeChoice: 'JPY' })).toBe('USD');
  });
});

describe('the batcher\'s check of one item before it goes into a batch', () => {
  const intent = (over: Partial<Intent>): Intent => ({
    id: 'i', saleId: 's', orderId: 'o', sellerId: 'x', recipient: 'SELLER', currency: 'CLP', amountMinor: 10_000, reversedMinor: 0, offsetMinor: 0,
    pendingReversalMinor: 0, payableMinor: 10_000, status: 'DUE', holdReason: null, releaseAt: null, attempt: 1, batchId: null,
    saleRecordedAt: new Date(), statusSince: new Date(), createdAt: new Date(), payoutCurrency: 'USD', fxRate: '0.00105263',
    fxRateDate: '2025-01-01', fxSource: 't', skipReason: null, ...over,
  });

  it('when an intent would be paid in a currency PayPal refuses, or converted without a rate, then it is decided again, never batched', () => {
    expect(planPayout(intent({ payoutCurrency: 'CLP', fxRate: null })).kind).toBe('redecide');
    expect(planPayout(intent({ payoutCurrency: null })).kind).toBe('redecide');
    expect(planPayout(intent({ fxRate: null })).kind).toBe('redecide');
  });

  it('when an intent converts, then the item pays the rounded-down amount and records what it was converted from', () => {
    expect(planPayout(intent({}))).toEqual({
      kind: 'pay', amountMinor: 1052, currency: 'USD', source: { amountMinor: 10_000, currency: 'CLP', fxRate: '0.00105263', fxRateDate: '2025-01-01' },
    });
    expect(planPayout(intent({ payableMinor: 9 })).kind).toBe('skip');
    expect(planPayout(intent({ currency: 'USD', payoutCurrency: 'USD', fxRate: null, payableMinor: 1234 }))).toEqual({ kind: 'pay', amountMinor: 1234, currency: 'USD', source: null });
  });
});
