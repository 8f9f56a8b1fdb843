import { randomBytes, randomUUID } from 'node:crypto';
import type { OrderReceived } from '@postsale/contracts';
import {
  DEVELOPMENT_PERSONAL_DATA_KEY, erasedOrderReceived, keyEncryptionKey, newDataKey, openPersonalData, personalDataKeyProblems, sealOrderReceived,
  sealPersonalData,
} from '../src';

const order: OrderReceived = {
  marketplace: 'EBAY', externalOrderId: '12-34567-89012', marketplaceAccountId: 'seller-account',
  lines: [{ lineId: 'l1', listingId: 'i1', sku: null, title: 'Lamp', quantity: 1, unitPrice: { amountMinor: 2599, currency: 'USD' } }],
  buyer: { externalId: 'ana_p', name: 'Ana Perez', email: 'ana@example.com' },
  shipTo: { fullName: 'Ana Perez', line1: 'Av. Siempre Viva 742', line2: null, city: 'Springfield', region: 'OR', postalCode: '97403', countryCode: 'US', phone: '+1 555 0100' },
  shipToIssue: null,
  itemsAmount: { amountMinor: 2599, currency: 'USD' }, shippingAmount: { amountMinor: 0, currency: 'USD' }, saleAmount: { amountMinor: 2599, currency: 'USD' },
  marketplaceFee: null, paymentFee: null, paymentReference: null, receivedAt: 1_763_800_000_000,
};

describe('sealing buyers\' personal data per data subject (crypto-shredding)', () => {
  const kek = keyEncryptionKey({ NODE_ENV: 'test', PERSONAL_DATA_KEY: randomBytes(32).toString('base64') });

  it('when an order is sealed, then buyer and ship-to are null in clear, amounts and ids stay, and the subject key opens them', () => {
    const subject = { subjectId: randomUUID(), dataKey: newDataKey() };
    const sealed = sealOrderReceived(order, 'ord_1', subject);
    expect(sealed.buyer).toBeNull();
    expect(sealed.shipTo).toBeNull();
    expect({ ...sealed, sealedPersonal: undefined, buyer: order.buyer, shipTo: order.shipTo }).toEqual({ ...order, sealedPersonal: undefined });
    const text = JSON.stringify(sealed);
    for (const personal of ['Ana Perez', 'Siempre Viva', 'ana@example.com', 'ana_p', '555 0100']) expect(text).not.toContain(personal);
    expect(openPersonalData(subject.dataKey, { orderId: 'ord_1', subjectId: subject.subjectId }, sealed.sealedPersonal!.ciphertext))
      .toEqual({ buyer: order.buyer, shipTo: order.shipTo });
  });

  it('when the ciphertext is moved to another order or subject, or opened with another key, then it does not open (AAD, GCM tag)', () => {
    const subject = { subjectId: randomUUID(), dataKey: newDataKey() };
    const { ciphertext } = sealOrderReceived(order, 'ord_1', subject).sealedPersonal!;
    expect(() => openPersonalData(subject.dataKey, { orderId: 'ord_2', subjectId: subject.subjectId }, ciphertext)).toThrow();
    expect(() => openPersonalData(subject.dataKey, { orderId: 'ord_1', subjectId: randomUUID() }, ciphertext)).toThrow();
    expect(() => openPersonalData(newDataKey(), { orderId: 'ord_1', subjectId: subject.subjectId }, ciphertext)).toThrow();
    const [v, iv, tag, body] = ciphertext.split(':');
    expect(() => openPersonalData(subject.dataKey, { orderId: 'ord_1', subjectId: subject.subjectId }, [v, iv, Buffer.from(tag!, 'base64').subarray(0, 8).toString('base64'), body].join(':'))).toThrow(/16 bytes/);
  });

  it('seals each order with a fresh IV: the same data twice gives two ciphertexts', () => {
    const at = { orderId: 'ord_1', subjectId: randomUUID() };
    const key = newDataKey();
    expect(sealPersonalData(key, at, order)).not.toBe(sealPersonalData(key, at, order));
  });

  it('when a data key is wrapped by the key-encryption key, then it opens only for its subject and only with that key', () => {
    const dataKey = newDataKey();
    const subjectId = randomUUID();
    const wrapped = kek.wrap(dataKey, subjectId);
    expect(wrapped).not.toContain(dataKey.toString('base64'));
    expect(kek.unwrap(wrapped, subjectId).equals(dataKey)).toBe(true);
    expect(() => kek.unwrap(wrapped, randomUUID())).toThrow();
    const other = keyEncryptionKey({ NODE_ENV: 'test', PERSONAL_DATA_KEY: randomBytes(32).toString('base64') });
    expect(() => other.unwrap(wrapped, subjectId)).toThrow();
  });

  it('after a key-encryption key rotation, data keys sealed with the previous key still open', () => {
    const old = randomBytes(32).toString('base64');
    const before = keyEncryptionKey({ NODE_ENV: 'production', PERSONAL_DATA_KEY: old, PERSONAL_DATA_KEY_ID: 'kek-old' });
    const after = keyEncryptionKey({ NODE_ENV: 'production', PERSONAL_DATA_KEY: randomBytes(32).toString('base64'), PERSONAL_DATA_KEY_ID: 'kek-new', PERSONAL_DATA_PREVIOUS_KEYS: `kek-old:${old}` });
    const dataKey = newDataKey();
    expect(after.unwrap(before.wrap(dataKey, 's1'), 's1').equals(dataKey)).toBe(true);
  });

  it('subject refs are keyed hashes: stable for one key, unrelated across keys, never the natural id', () => {
    const ref = kek.subjectRef('buyer:EBAY:ana_p');
    expect(ref).toBe(kek.subjectRef('buyer:EBAY:ana_p'));
    expect(ref).not.toContain('ana_p');
    expect(keyEncryptionKey({ NODE_ENV: 'test' }).subjectRef('buyer:EBAY:ana_p')).not.toBe(ref);
  });

  it('production refuses to start without PERSONAL_DATA_KEY; development uses the documented development key', () => {
    expect(personalDataKeyProblems({ NODE_ENV: 'production' })).toEqual([['PERSONAL_DATA_KEY', expect.stringContaining('required in production')]]);
    expect(() => keyEncryptionKey({ NODE_ENV: 'production' })).toThrow(/PERSONAL_DATA_KEY/);
    expect(personalDataKeyProblems({ NODE_ENV: 'production', PERSONAL_DATA_KEY: 'c2hvcnQ=' })).toEqual([['PERSONAL_DATA_KEY', expect.stringContaining('32 bytes')]]);
    expect(personalDataKeyProblems({ NODE_ENV: 'development' })).toEqual([]);
    const dev = keyEncryptionKey({ NODE_ENV: 'development' });
    const explicit = keyEncryptionKey({ NODE_ENV: 'development', PERSONAL_DATA_KEY: DEVELOPMENT_PERSONAL_DATA_KEY });
    expect(explicit.unwrap(dev.wrap(Buffer.alloc(32, 1), 's'), 's').equals(Buffer.alloc(32, 1))).toBe(true);
  });

  it('an erased subject\'s order is read without buyer or address, and says why', () => {
    const erased = erasedOrderReceived({ ...order, buyer: null, shipTo: null, sealedPersonal: { subjectId: 's', ciphertext: 'v1:x:y:z' } });
    expect(erased).toMatchObject({ buyer: null, shipTo: null, shipToIssue: 'PERSONAL_DATA_ERASED', sealedPersonal: null, saleAmount: order.saleAmount });
  });
});
