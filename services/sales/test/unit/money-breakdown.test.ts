import fc from 'fast-check';
import type { Money } from '@postsale/contracts';
import { convert, parseRate } from '../../src/domain/fx';
import { assertBalanced, balanceByCurrency, reversalPostings, salePostings } from '../../src/domain/ledger';
import { breakdownAfterRefunds, computeBreakdown, reversalBetween, scheduledMarketplaceFee } from '../../src/domain/money-breakdown';

const m = (amountMinor: number, currency: string): Money => ({ amountMinor, currency });
const CURRENCIES = ['CLP', 'USD', 'KWD'] as const; // 0, 2 and 3 minor digits
const MAX = 10_000_000_000; // 10^10 minor units: far beyond any real order, far below 2^53 / 10^4

/** Random sale inputs in one currency; fees and cost may exceed the sale (loss orders are generated too). */
const saleInput = fc.record({
  currency: fc.constantFrom(...CURRENCIES),
  sale: fc.integer({ min: 0, max: MAX }),
  marketplaceFee: fc.integer({ min: 0, max: MAX / 10 }),
  paymentFee: fc.integer({ min: 0, max: MAX / 10 }),
  supplierCost: fc.integer({ min: 0, max: MAX }),
  rateBps: fc.integer({ min: 0, max: 10_000 }),
});
const build = (i: { currency: string; sale: number; marketplaceFee: number; paymentFee: number; supplierCost: number; rateBps: number }) =>
  computeBreakdown({
    saleAmount: m(i.sale, i.currency), marketplaceFee: m(i.marketplaceFee, i.currency), paymentFee: m(i.paymentFee, i.currency),
    supplierCost: m(i.supplierCost, i.currency), commissionRateBps: i.rateBps,
  });

describe('money breakdown (property-tested in CLP, USD and KWD)', () => {
  it('fees + supplier cost + commission + net profit - loss always equals the sale amount exactly', () => {
    fc.assert(fc.property(saleInput, (i) => {
      const b = build(i);
      const parts = b.marketplaceFee.amountMinor + b.paymentFee.amountMinor + b.supplierCost.amountMinor + b.platformCommission.amountMinor
        + b.sellerNetProfit.amountMinor - b.loss.amountMinor;
      expect(parts).toBe(b.saleAmount.amountMinor);
      for (const part of [b.grossProfit, b.platformCommission, b.sellerNetProfit, b.loss]) {
        expect(part.currency).toBe(i.currency);
        expect(Number.isSafeInteger(part.amountMinor)).toBe(true);
      }
    }), { numRuns: 2000 });
  });

  it('commission is never negative, never above rate x profit, and loses less than one minor unit to rounding', () => {
    fc.assert(fc.property(saleInput, (i) => {
      const b = build(i);
      expect(b.platformCommission.amountMinor).toBeGreaterThanOrEqual(0);
      expect(b.sellerNetProfit.amountMinor).toBeGreaterThanOrEqual(0);
      expect(b.loss.amountMinor).toBeGreaterThanOrEqual(0);
      if (!b.isLoss) {
        const exact = BigInt(b.grossProfit.amountMinor) * BigInt(i.rateBps); // commission x 10000 scale
        const c = BigInt(b.platformCommission.amountMinor) * 10_000n;
        expect(c <= exact).toBe(true);
        expect(exact - c < 10_000n).toBe(true);
      }
    }), { numRuns: 2000 });
  });

  it('a loss order (gross profit <= 0) has no commission, zero net profit and the shortfall as loss', () => {
    fc.assert(fc.property(saleInput, (i) => {
      const b = build(i);
      expect(b.isLoss).toBe(b.grossProfit.amountMinor <= 0);
      if (b.isLoss) {
        expect(b.platformCommission.amountMinor).toBe(0);
        expect(b.sellerNetProfit.amountMinor).toBe(0);
        expect(b.loss.amountMinor).toBe(-b.grossProfit.amountMinor);
      } else {
        expect(b.loss.amountMinor).toBe(0);
      }
    }), { numRuns: 1000 });
  });

  it('the sale postings balance in every currency', () => {
    fc.assert(fc.property(saleInput, (i) => {
      const b = build(i);
      assertBalanced(salePostings(b, b.supplierCost));
      assertBalanced(salePostings(b, m(i.supplierCost * 3 + 7, 'EUR'))); // supplier charged another currency
    }), { numRuns: 500 });
  });

  it('any sequence of partial refunds reverses exactly the whole commission and net profit once fully refunded, and each reversal balances', () => {
    fc.assert(fc.property(saleInput, fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 }), (i, weights) => {
      const b = build(i);
      const total = b.saleAmount.amountMinor;
      const weightSum = weights.reduce((a, w) => a + w, 0);
      let refunded = 0;
      let commission = 0;
      let net = 0;
      let loss = 0;
      weights.forEach((w, k) => {
        const next = k === weights.length - 1 ? total : Math.min(total, refunded + Math.floor((total * w) / weightSum));
        const r = reversalBetween(b, refunded, next);
        expect(r.commissionReversed.amountMinor).toBeGreaterThanOrEqual(0);
        expect(r.sellerNetReversed.amountMinor).toBeGreaterThanOrEqual(0);
        expect(r.lossAdded.amountMinor).toBeGreaterThanOrEqual(0);
        expect(r.commissionReversed.amountMinor + r.sellerNetReversed.amountMinor + r.lossAdded.amountMinor).toBe(r.refunded.amountMinor);
        assertBalanced(reversalPostings(r));
        commission += r.commissionReversed.amountMinor;
        net += r.sellerNetReversed.amountMinor;
        loss += r.lossAdded.amountMinor;
        refunded = next;
      });
      expect(commission).toBe(b.platformCommission.amountMinor);
      expect(net).toBe(b.sellerNetProfit.amountMinor);
      const after = breakdownAfterRefunds(b, total);
      expect(after.platformCommission.amountMinor).toBe(0);
      expect(b.loss.amountMinor + loss).toBe(after.loss.amountMinor);
      // sale + all reversals leave every account but the loss and cost accounts at zero
      const all = [...salePostings(b, b.supplierCost)];
      expect(balanceByCurrency(all)[i.currency] ?? 0).toBe(0);
    }), { numRuns: 1000 });
  });

  it('exact example in USD: 100.00 sale, 13.25 fee, 3.79 PayPal fee, 52.10 cost, 15% commission', () => {
    const b = computeBreakdown({ saleAmount: m(10000, 'USD'), marketplaceFee: m(1325, 'USD'), paymentFee: m(379, 'USD'), supplierCost: m(5210, 'USD'), commissionRateBps: 1500 });
    expect(b.grossProfit).toEqual(m(3086, 'USD'));
    expect(b.platformCommission).toEqual(m(462, 'USD')); // 462.9 floored
    expect(b.sellerNetProfit).toEqual(m(2624, 'USD'));
  });

  it('scheduled marketplace fee rounds half up and adds the fixed part', () => {
    expect(scheduledMarketplaceFee(m(1000, 'USD'), 1325, 30)).toEqual(m(163, 'USD')); // 132.5 -> 133, + 30
    expect(scheduledMarketplaceFee(m(999, 'CLP'), 1300, 0)).toEqual(m(130, 'CLP')); // 129.87 -> 130
  });

  it('refuses bad inputs instead of guessing', () => {
    expect(() => computeBreakdown({ saleAmount: m(100, 'USD'), marketplaceFee: m(1, 'CLP'), paymentFee: m(0, 'USD'), supplierCost: m(0, 'USD'), commissionRateBps: 100 })).toThrow(/CLP/);
    expect(() => computeBreakdown({ saleAmount: m(100, 'USD'), marketplaceFee: m(-1, 'USD'), paymentFee: m(0, 'USD'), supplierCost: m(0, 'USD'), commissionRateBps: 100 })).toThrow();
    expect(() => computeBreakdown({ saleAmount: m(100, 'USD'), marketplaceFee: m(0, 'USD'), paymentFee: m(0, 'USD'), supplierCost: m(0, 'USD'), commissionRateBps: 10_001 })).toThrow();
  });
});

describe('fx conversion', () => {
  it('converts USD cents to CLP with an exact decimal rate, rounding half up', () => {
    expect(convert(m(2599, 'USD'), 'CLP', '947.35')).toEqual(m(24622, 'CLP')); // 25.99 x 947.35 = 24621.6265
    expect(convert(m(1, 'USD'), 'CLP', '950')).toEqual(m(10, 'CLP')); // 9.5 -> 10
    expect(convert(m(1000, 'CLP'), 'KWD', '0.000325')).toEqual(m(325, 'KWD')); // 0.325 KWD
  });

  it('never drifts from the exact product by more than half a minor unit (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 1_000_000_000 }), fc.constantFrom(...CURRENCIES), fc.constantFrom(...CURRENCIES),
      fc.integer({ min: 1, max: 99_999_999 }), fc.integer({ min: 0, max: 6 }),
      (amount, from, to, digits, scale) => {
        const text = (BigInt(digits) * 1n).toString().padStart(scale + 1, '0');
        const rate = scale === 0 ? text : `${text.slice(0, -scale)}.${text.slice(-scale)}`;
        const { numerator, scale: s } = parseRate(rate);
        const dig = { CLP: 0, USD: 2, KWD: 3 } as const;
        // exact value x 2 x denominator, compared with the result scaled the same way
        const denominator = 10n ** BigInt(s + dig[from]);
        const exactTimesDen = BigInt(amount) * numerator * 10n ** BigInt(dig[to]);
        if (exactTimesDen / denominator > BigInt(Number.MAX_SAFE_INTEGER) - 1n) {
          expect(() => convert(m(amount, from), to, rate)).toThrow(RangeError); // refused, never silently imprecise
          return;
        }
        const out = convert(m(amount, from), to, rate);
        const diff = BigInt(out.amountMinor) * denominator - exactTimesDen;
        expect(2n * (diff < 0n ? -diff : diff) <= denominator).toBe(true);
      },
    ), { numRuns: 1000 });
  });

  it('refuses rates that are not plain positive decimals', () => {
    for (const bad of ['0', '-1', '1e3', '1,5', '', ' 1', 'NaN']) expect(() => parseRate(bad)).toThrow();
  });
});
