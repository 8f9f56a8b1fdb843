import { randomBytes, randomUUID } from 'node:crypto';
import type { OrderReceived } from '@postsale/contracts';
import { applySubjectKeys, createDb, HeldSubjectKeys, keyEncryptionKey, localInfraEnv, migrate, newDataKey, openOrderReceived, sealOrderReceived, subjectKeysMigration, type Db } from '../src';
import { dropSchema, uniqueId } from '../src/testing';

const order: OrderReceived = {
  marketplace: 'EBAY', externalOrderId: '12-34567-89012', marketplaceAccountId: 'seller-account',
  lines: [{ lineId: 'l1', listingId: 'i1', sku: null, title: 'Lamp', quantity: 1, unitPrice: { amountMinor: 2599, currency: 'USD' } }],
  buyer: { externalId: 'ana_p', name: 'Ana Perez', email: 'ana@example.com' },
  shipTo: { fullName: 'Ana Perez', line1: 'Av. Siempre Viva 742', line2: null, city: 'Springfield', region: 'OR', postalCode: '97403', countryCode: 'US', phone: null },
  shipToIssue: null,
  itemsAmount: { amountMinor: 2599, currency: 'USD' }, shippingAmount: { amountMinor: 0, currency: 'USD' }, saleAmount: { amountMinor: 2599, currency: 'USD' },
  marketplaceFee: null, paymentFee: null, paymentReference: null, receivedAt: 1_763_800_000_000,
};

/**
 * A subject's key travels on its own topic, read by another consumer, and is usually a few milliseconds behind its
 * order: the reader looks again for a moment before it gives the event back to be retried (real Postgres).
 */
describe('opening an order whose subject key is a moment behind', () => {
  const kek = keyEncryptionKey({ NODE_ENV: 'test', PERSONAL_DATA_KEY: randomBytes(32).toString('base64') });
  const schema = uniqueId('t_keywait_');
  let db: Db;
  beforeAll(async () => {
    db = createDb({ url: localInfraEnv().DATABASE_URL!, schema, poolMax: 4 });
    await migrate(db, schema, [subjectKeysMigration]);
  });
  afterAll(async () => {
    await db.destroy();
    await dropSchema(schema);
  });

  const sealedOrder = () => {
    const subject = { subjectId: randomUUID(), dataKey: newDataKey() };
    const orderId = `ord_${randomUUID()}`;
    return { subject, orderId, sealed: sealOrderReceived(order, orderId, subject) };
  };
  const keyArrives = (subject: { subjectId: string; dataKey: Buffer }) => db.transaction((trx) =>
    applySubjectKeys(trx, [{ subjectId: subject.subjectId, sealedKey: kek.wrap(subject.dataKey, subject.subjectId), erasedAt: null, occurredAt: Date.now() }]));

  it('when the key commits 200 ms after the order is read, then the order opens in the same transaction, without a retry', async () => {
    const { subject, orderId, sealed } = sealedOrder();
    const opening = db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed));
    await new Promise((r) => setTimeout(r, 200)); // the key consumer's commit, a moment later
    await keyArrives(subject);
    expect(await opening).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
  });

  it('when this process stores the key a moment later, then the order is woken by its arrival, not on a 20 ms timer', async () => {
    const { subject, orderId, sealed } = sealedOrder();
    const looks: string[] = [];
    const countLooks = (q: { sql: string }) => {
      if (/^select "sealed_key", "erased_at" from "subject_keys"/.test(q.sql)) looks.push(q.sql);
    };
    db.on('query', countLooks);
    try {
      const opening = db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed));
      await new Promise((r) => setTimeout(r, 250)); // the key consumer's commit, a moment later
      await keyArrives(subject);
      expect(await opening).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
    } finally {
      db.off('query', countLooks);
    }
    // the first look and the looks every 100 ms for a key another replica may store (two here); its arrival is handed over
    expect(looks.length).toBeGreaterThanOrEqual(1);
    expect(looks.length).toBeLessThanOrEqual(3);
  });

  it('when this process stores the key while the order waits, then the order is handed the stored row: one look, not a second', async () => {
    const { subject, orderId, sealed } = sealedOrder();
    const looks: string[] = [];
    const countLooks = (q: { sql: string }) => {
      if (/^select "sealed_key", "erased_at" from "subject_keys"/.test(q.sql)) looks.push(q.sql);
    };
    db.on('query', countLooks);
    try {
      const opening = db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed));
      await new Promise((r) => setTimeout(r, 40)); // before the first look again (100 ms)
      await applySubjectKeys(db, [{ subjectId: subject.subjectId, sealedKey: kek.wrap(subject.dataKey, subject.subjectId), erasedAt: null, occurredAt: Date.now() }]);
      expect(await opening).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
    } finally {
      db.off('query', countLooks);
    }
    expect(looks).toHaveLength(1);
  });

  it('applies a batch of key records in one statement on its own: an erasure wins, and a key never comes back after it', async () => {
    const [a, b] = [sealedOrder().subject, sealedOrder().subject];
    const key = (s: { subjectId: string; dataKey: Buffer }) => ({ subjectId: s.subjectId, sealedKey: kek.wrap(s.dataKey, s.subjectId), erasedAt: null, occurredAt: Date.now() });
    const erasure = (s: { subjectId: string }) => ({ subjectId: s.subjectId, sealedKey: null, erasedAt: Date.now(), occurredAt: Date.now() });
    const statements: string[] = [];
    const count = (q: { sql: string }) => statements.push(q.sql);
    db.on('query', count);
    try {
      await applySubjectKeys(db, [key(a), key(b), erasure(a)]);
    } finally {
      db.off('query', count);
    }
    expect(statements).toHaveLength(1);
    const rows = () => db('subject_keys').whereIn('subject_id', [a.subjectId, b.subjectId]).select('subject_id', 'sealed_key', 'erased_at');
    const state = async () => Object.fromEntries((await rows()).map((r) => [r.subject_id, r.sealed_key === null ? (r.erased_at ? 'erased' : 'none') : 'key']));
    expect(await state()).toEqual({ [a.subjectId]: 'erased', [b.subjectId]: 'key' });
    await applySubjectKeys(db, [key(a)]); // a redelivered older key
    await db.transaction((trx) => applySubjectKeys(trx, [erasure(b)]));
    expect(await state()).toEqual({ [a.subjectId]: 'erased', [b.subjectId]: 'erased' });
  });

  describe('when this process\'s replica holds the key it read (not stored yet)', () => {
    const keyRecord = (s: { subjectId: string; dataKey: Buffer }) => ({ subjectId: s.subjectId, sealedKey: kek.wrap(s.dataKey, s.subjectId), erasedAt: null, occurredAt: Date.now() });
    /** the batch settles within `ms`, or the test fails saying so (a hold of 10 s must not be what settled it) */
    const settledWithin = async (batch: { settled: Promise<void> }, ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([batch.settled.then(() => 'settled'), new Promise((r) => (timer = setTimeout(() => r(`not settled within ${ms} ms`), ms)))]);
      } finally {
        clearTimeout(timer);
      }
    };
    const statementsOn = async <T>(run: () => Promise<T>): Promise<{ result: T; statements: string[] }> => {
      const statements: string[] = [];
      const count = (q: { sql: string }) => {
        if (/subject_keys/.test(q.sql)) statements.push(q.sql.replace(/\s+/g, ' '));
      };
      db.on('query', count);
      try {
        return { result: await run(), statements };
      } finally {
        db.off('query', count);
      }
    };

    it('then the order stores it in its own transaction, in the statement that looks for it, and the replica has nothing left to store', async () => {
      const { subject, orderId, sealed } = sealedOrder();
      const held = new HeldSubjectKeys();
      const record = keyRecord(subject);
      const batch = held.hold([record], 10_000);
      try {
        const { result, statements } = await statementsOn(() => db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed, { held })));
        expect(result).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
        expect(statements).toEqual([expect.stringMatching(/^with stored as \(insert into subject_keys/)]);
        expect(await settledWithin(batch, 2_000)).toBe('settled');
        expect(batch.unstored()).toEqual([]);
        expect(await db('subject_keys').where({ subject_id: subject.subjectId }).first('sealed_key', 'erased_at')).toEqual({ sealed_key: record.sealedKey, erased_at: null });
      } finally {
        batch.release();
      }
    });

    it('when the order\'s transaction rolls back, then the key is still the replica\'s to store once the hold is over', async () => {
      const { subject, orderId, sealed } = sealedOrder();
      const held = new HeldSubjectKeys();
      const record = keyRecord(subject);
      const batch = held.hold([record], 300);
      try {
        await expect(db.transaction(async (trx) => {
          await openOrderReceived(trx, kek, orderId, sealed, { held });
          throw new Error('the inbox transaction failed');
        })).rejects.toThrow('the inbox transaction failed');
        await batch.settled;
        expect(batch.unstored()).toEqual([record]);
        expect(await db('subject_keys').where({ subject_id: subject.subjectId }).first()).toBeUndefined();
      } finally {
        batch.release();
      }
    });

    it('when the hold ends while an order\'s transaction is storing the key, then the batch waits for that transaction instead of storing the key beside it: committed, nothing is left to store; rolled back, the key is the replica\'s', async () => {
      for (const outcome of ['commit', 'rollback'] as const) {
        const { subject, orderId, sealed } = sealedOrder();
        const held = new HeldSubjectKeys();
        const record = keyRecord(subject);
        const batch = held.hold([record], 100);
        let decide!: () => void;
        const decided = new Promise<void>((r) => (decide = r));
        let opened!: () => void;
        const openedKey = new Promise<void>((r) => (opened = r));
        try {
          const order = db.transaction(async (trx) => {
            await openOrderReceived(trx, kek, orderId, sealed, { held });
            opened();
            await decided; // the order's transaction still open when the hold ends
            if (outcome === 'rollback') throw new Error('the inbox transaction failed');
          });
          await openedKey;
          // the hold (100 ms) is long over, and the batch still waits for the order's outcome
          expect(await settledWithin(batch, 400)).toBe('not settled within 400 ms');
          decide();
          if (outcome === 'commit') {
            await order;
            expect(await settledWithin(batch, 2_000)).toBe('settled');
            expect(batch.unstored()).toEqual([]);
          } else {
            await expect(order).rejects.toThrow('the inbox transaction failed');
            expect(await settledWithin(batch, 2_000)).toBe('settled');
            expect(batch.unstored()).toEqual([record]);
            // left the hold: an order that comes now reads the replica's row instead of inserting it beside the replica
            expect(held.sealedKeyOf(subject.subjectId)).toBeUndefined();
          }
        } finally {
          decide();
          batch.release();
        }
      }
    });

    it('when the hold ends and no order is storing the key, then it leaves the hold at once: an order that comes later looks it up instead of inserting it', async () => {
      const { subject } = sealedOrder();
      const held = new HeldSubjectKeys();
      const batch = held.hold([keyRecord(subject)], 50);
      try {
        expect(held.sealedKeyOf(subject.subjectId)).toBeDefined();
        expect(await settledWithin(batch, 2_000)).toBe('settled');
        expect(held.sealedKeyOf(subject.subjectId)).toBeUndefined();
        expect(batch.unstored()).toHaveLength(1);
      } finally {
        batch.release();
      }
    });

    it('when the order was waiting for its key, then the replica\'s hold wakes it and it stores the key itself', async () => {
      const { subject, orderId, sealed } = sealedOrder();
      const held = new HeldSubjectKeys();
      let batch: ReturnType<HeldSubjectKeys['hold']> | undefined;
      try {
        const { result, statements } = await statementsOn(async () => {
          const opening = db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed, { held }));
          await new Promise((r) => setTimeout(r, 40)); // the key is read a moment after the order (before the look again at 100 ms)
          batch = held.hold([keyRecord(subject)], 10_000);
          return opening;
        });
        expect(result).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
        // the first look found nothing; the wake-up stored the held key
        expect(statements).toEqual([expect.stringMatching(/^select "sealed_key", "erased_at" from "subject_keys"/), expect.stringMatching(/^with stored as \(insert into subject_keys/)]);
        expect(await settledWithin(batch!, 2_000)).toBe('settled');
        expect(batch!.unstored()).toEqual([]);
      } finally {
        batch?.release();
      }
    });

    it('when the subject was erased already (an older key redelivered), then the held key does not replace the erasure and the order opens without personal data', async () => {
      const { subject, orderId, sealed } = sealedOrder();
      await applySubjectKeys(db, [{ subjectId: subject.subjectId, sealedKey: null, erasedAt: Date.now(), occurredAt: Date.now() }]);
      const held = new HeldSubjectKeys();
      const batch = held.hold([keyRecord(subject)], 10_000);
      try {
        const opened = await db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed, { held }));
        expect(opened).toMatchObject({ buyer: null, shipTo: null, shipToIssue: 'PERSONAL_DATA_ERASED' });
        expect(await db('subject_keys').where({ subject_id: subject.subjectId }).first('sealed_key')).toEqual({ sealed_key: null });
      } finally {
        batch.release();
      }
    });

    it('when a batch brings an erasure, then it is never held: the batch is settled at once and the erasure is the replica\'s to store', async () => {
      const { subject } = sealedOrder();
      const erasure = { subjectId: subject.subjectId, sealedKey: null, erasedAt: Date.now(), occurredAt: Date.now() };
      const held = new HeldSubjectKeys();
      const batch = held.hold([keyRecord(subject), erasure], 10_000);
      try {
        expect(await settledWithin(batch, 500)).toBe('settled');
        expect(held.sealedKeyOf(subject.subjectId)).toBeUndefined();
        expect(batch.unstored()).toHaveLength(2);
      } finally {
        batch.release();
      }
    });
  });

  it('when another replica stores the key (no signal in this process), then the order still finds it within the wait', async () => {
    const { subject, orderId, sealed } = sealedOrder();
    const opening = db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed));
    await new Promise((r) => setTimeout(r, 150)); // the other replica's commit, a moment later
    await db('subject_keys').insert({ subject_id: subject.subjectId, sealed_key: kek.wrap(subject.dataKey, subject.subjectId) });
    expect(await opening).toMatchObject({ buyer: order.buyer, shipTo: order.shipTo });
  });

  it('when the key does not come within the wait, then the event is given back as retriable (SUBJECT_KEY_NOT_RECEIVED), never opened without it', async () => {
    const { orderId, sealed } = sealedOrder();
    const started = Date.now();
    await expect(db.transaction((trx) => openOrderReceived(trx, kek, orderId, sealed, { waitMs: 150 }))).rejects.toMatchObject({ code: 'SUBJECT_KEY_NOT_RECEIVED', retriable: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });
});
