import fc from 'fast-check';
import { money } from '@postsale/contracts';
import { convert, evaluatePriceGuard } from '../../src/domain/price-guard';

const policy = (p: Partial<Parameters<typeof evaluatePriceGuard>[0]['policy']> = {}) => ({ minMarginBps: 0, maxCost: null, fxRates: {}, ...p });

describe('price guard', () => {
  it('when the supplier cost leaves at least the minimum margin, then it passes', () => {
    const verdict = evaluatePriceGuard({ supplierCost: money(7000, 'USD'), sale: money(10000, 'USD'), policy: policy({ minMarginBps: 3000 }) });
    expect(verdict.ok).toBe(true);
  });

  it('when the margin is one minor unit short of the minimum, then it refuses with PRICE_ABOVE_MAX and the numbers', () => {
    const verdict = evaluatePriceGuard({ supplierCost: money(7001, 'USD'), sale: money(10000, 'USD'), policy: policy({ minMarginBps: 3000 }) });
    expect(verdict).toMatchObject({ ok: false, reason: 'PRICE_ABOVE_MAX', details: { supplierCost: '70.01 USD', saleAmount: '100.00 USD', margin: '29.99 USD' } });
  });

  it('when the cost is above the absolute maximum, then it refuses even with a healthy margin', () => {
    const verdict = evaluatePriceGuard({ supplierCost: money(2001, 'USD'), sale: money(10000, 'USD'), policy: policy({ maxCost: money(2000, 'USD') }) });
    expect(verdict).toMatchObject({ ok: false, reason: 'PRICE_ABOVE_MAX', details: { maxCost: '20.00 USD' } });
  });

  it('when the supplier charges another currency and no rate is configured, then it sends to review instead of comparing', () => {
    const verdict = evaluatePriceGuard({ supplierCost: money(1000, 'USD'), sale: money(20000, 'CLP'), policy: policy() });
    expect(verdict).toMatchObject({ ok: false, reason: 'FX_RATE_MISSING', details: { missingRate: 'USD:CLP' } });
  });

  it('when a rate is configured, then the cost is converted exactly and rounded up before comparing', () => {
    expect(convert(money(1001, 'USD'), 'CLP', { 'USD:CLP': '950.5' })).toEqual(money(9515, 'CLP')); // 10.01 × 950.5 = 9514.505 → 9515
    const verdict = evaluatePriceGuard({ supplierCost: money(1000, 'USD'), sale: money(9505, 'CLP'), policy: policy({ fxRates: { 'USD:CLP': '950.5' } }) });
    expect(verdict.ok).toBe(true);
    const tooDear = evaluatePriceGuard({ supplierCost: money(1000, 'USD'), sale: money(9504, 'CLP'), policy: policy({ fxRates: { 'USD:CLP': '950.5' } }) });
    expect(tooDear.ok).toBe(false);
  });

  it('when an operator approved a limit, then the cost is checked against that limit only', () => {
    const over = { supplierCost: money(12000, 'USD'), sale: money(10000, 'USD'), policy: policy({ minMarginBps: 2000 }) };
    expect(evaluatePriceGuard(over).ok).toBe(false);
    expect(evaluatePriceGuard({ ...over, approvedMax: money(12000, 'USD') }).ok).toBe(true);
    expect(evaluatePriceGuard({ ...over, approvedMax: money(11999, 'USD') })).toMatchObject({ ok: false, reason: 'PRICE_ABOVE_MAX' });
  });

  it('property: with a zero-margin policy it passes exactly when cost ≤ sale', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 9 }), fc.integer({ min: 1, max: 10 ** 9 }), (cost, sale) => {
        const verdict = evaluatePriceGuard({ supplierCost: money(cost, 'USD'), sale: money(sale, 'USD'), policy: policy() });
        expect(verdict.ok).toBe(cost <= sale);
      }),
    );
  });

  it('when fees are counted, then a cost that leaves a margin before fees but a loss after them is refused by the default (zero) minimum', () => {
    const fees = { marketplaceFee: money(1300, 'USD'), paymentFee: money(379, 'USD') };
    // 100.00 sale − 16.79 fees − 85.00 cost = −1.79: a loss the old guard (margin before fees) let through
    const verdict = evaluatePriceGuard({ supplierCost: money(8500, 'USD'), sale: money(10000, 'USD'), fees, policy: policy() });
    expect(verdict).toMatchObject({ ok: false, reason: 'PRICE_ABOVE_MAX', details: { margin: '-1.79 USD', fees: '16.79 USD' } });
    expect(evaluatePriceGuard({ supplierCost: money(8321, 'USD'), sale: money(10000, 'USD'), fees, policy: policy() }).ok).toBe(true);
    expect(evaluatePriceGuard({ supplierCost: money(8322, 'USD'), sale: money(10000, 'USD'), fees, policy: policy() }).ok).toBe(false);
    // a seller may explicitly accept a loss (negative minimum)
    expect(evaluatePriceGuard({ supplierCost: money(8500, 'USD'), sale: money(10000, 'USD'), fees, policy: policy({ minMarginBps: -200 }) }).ok).toBe(true);
  });

  it('property: with the default (zero) minimum it passes exactly when cost + fees ≤ sale', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 9 }), fc.integer({ min: 1, max: 10 ** 9 }), fc.integer({ min: 0, max: 10 ** 8 }), fc.integer({ min: 0, max: 10 ** 8 }), (cost, sale, mFee, pFee) => {
        const verdict = evaluatePriceGuard({ supplierCost: money(cost, 'USD'), sale: money(sale, 'USD'), fees: { marketplaceFee: money(mFee, 'USD'), paymentFee: money(pFee, 'USD') }, policy: policy() });
        expect(verdict.ok).toBe(cost + mFee + pFee <= sale);
      }),
    );
  });
});
