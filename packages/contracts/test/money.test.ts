import fc from 'fast-check';
import { formatDecimal, minorDigits, parseDecimal } from '../src';

describe('money parsing', () => {
  it('parses decimal strings exactly for 0, 2 and 3 minor digits', () => {
    expect(parseDecimal('40.85', 'USD')).toEqual({ amountMinor: 4085, currency: 'USD' });
    expect(parseDecimal('0.1', 'USD').amountMinor).toBe(10);
    expect(parseDecimal('1500', 'CLP').amountMinor).toBe(1500);
    expect(parseDecimal(1500, 'CLP').amountMinor).toBe(1500);
    expect(parseDecimal('1500.00', 'CLP').amountMinor).toBe(1500);
    expect(parseDecimal('1.234', 'KWD').amountMinor).toBe(1234);
    expect(parseDecimal(19.99, 'USD').amountMinor).toBe(1999);
  });

  it('refuses what it cannot represent instead of rounding', () => {
    expect(() => parseDecimal('1500.5', 'CLP')).toThrow(/precision/);
    expect(() => parseDecimal('1.005', 'USD')).toThrow(/precision/);
    expect(() => parseDecimal('12,50', 'USD')).toThrow(/not a decimal/);
    expect(() => parseDecimal('10', 'XXX')).toThrow(/unknown currency/);
  });

  it('format and parse are inverse for any amount in any digit count', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e12, max: 1e12 }), fc.constantFrom('USD', 'CLP', 'KWD', 'JPY', 'EUR'), (amountMinor, currency) => {
        const text = formatDecimal({ amountMinor, currency });
        expect(text.split('.')[1]?.length ?? 0).toBe(minorDigits(currency));
        expect(parseDecimal(text, currency)).toEqual({ amountMinor, currency });
      }),
    );
  });
});
