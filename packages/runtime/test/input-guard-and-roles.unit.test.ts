import { decimalId, isStorableText, jsonProblem, maskAddress, roleOf, storableText } from '../src';

describe('input guard', () => {
  it('when a string holds a NUL or a lone surrogate, then it is not storable; well-formed pairs and emoji are', () => {
    expect(isStorableText('plain')).toBe(true);
    expect(isStorableText('🙂 ok')).toBe(true);
    expect(isStorableText('a\u0000b')).toBe(false);
    expect(isStorableText('\ud800')).toBe(false);
    expect(isStorableText('x\udc00')).toBe(false);
  });

  it('when a parsed body hides a NUL in a nested value or a key, or nests too deep, then jsonProblem names it', () => {
    expect(jsonProblem({ a: [{ b: 'ok' }] })).toBeUndefined();
    expect(jsonProblem({ a: [{ b: 'x\u0000' }] })?.code).toBe('INVALID_CHARACTERS');
    expect(jsonProblem({ ['k\u0000']: 1 })?.code).toBe('INVALID_CHARACTERS');
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(jsonProblem(deep)?.code).toBe('BODY_TOO_DEEP');
    expect(jsonProblem(Array.from({ length: 30_000 }, () => 1))?.code).toBe('BODY_TOO_COMPLEX');
  });

  it('when a value is longer than its column or not a safe decimal id, then the schema refuses it', () => {
    expect(storableText(5).safeParse('12345').success).toBe(true);
    expect(storableText(5).safeParse('123456').success).toBe(false);
    expect(storableText(5).safeParse('a\u0000').success).toBe(false);
    expect(decimalId().parse(123)).toBe('123');
    expect(decimalId().safeParse(2 ** 60).success).toBe(false);
    expect(decimalId().safeParse('12a').success).toBe(false);
    expect(decimalId(3).safeParse('1234').success).toBe(false);
  });
});

describe('roles', () => {
  const tokens = { admin: 'admin-token-0123456789', operator: 'operator-token-0123456789' };
  it('when a bearer token is given, then the role comes from which credential it is; anything else is no role', () => {
    expect(roleOf('Bearer admin-token-0123456789', tokens)).toBe('admin');
    expect(roleOf('Bearer operator-token-0123456789', tokens)).toBe('operator');
    expect(roleOf('Bearer nope', tokens)).toBeUndefined();
    expect(roleOf(undefined, tokens)).toBeUndefined();
    expect(roleOf('Bearer operator-token-0123456789', { admin: tokens.admin })).toBeUndefined();
  });

  it('when an address is masked, then only the country stays readable', () => {
    expect(maskAddress({ fullName: 'Rosa Díaz', line1: '1 Main', line2: null, countryCode: 'US' })).toEqual({ fullName: 'R***', line1: '1***', line2: null, countryCode: 'US' });
    expect(maskAddress(null)).toBeNull();
  });
});
