import fc from 'fast-check';
import { applyReversal, classifyItemStatus, decideRelease, FINAL_ITEM_STATUSES, offsetAgainstDebt, parseReleasePolicy, senderItemId, UNPAID_STATUSES } from '../../src/domain/payout-rules';

const recorded = new Date('2025-01-01T00:00:00Z');
const DAY = 86_400_000;

describe('release decisions', () => {
  it('when the payee is missing, then the intent is held for that reason whatever the policy', () => {
    expect(decideRelease({ recipient: 'SELLER', payeeKnown: false, policy: { kind: 'immediate' }, saleRecordedAt: recorded, shippedAt: null, deliveredAt: null }))
      .toEqual({ status: 'HELD', holdReason: 'PAYEE_MISSING', releaseAt: null });
    expect(decideRelease({ recipient: 'PLATFORM', payeeKnown: false, policy: { kind: 'immediate' }, saleRecordedAt: recorded, shippedAt: null, deliveredAt: null }).holdReason)
      .toBe('PLATFORM_PAYEE_MISSING');
  });

  it('when the policy waits for shipment or delivery + N days, then the intent is held until that happens', () => {
    const base = { recipient: 'SELLER' as const, payeeKnown: true, saleRecordedAt: recorded };
    expect(decideRelease({ ...base, policy: { kind: 'after_shipment' }, shippedAt: null, deliveredAt: null }).holdReason).toBe('AWAITING_SHIPMENT');
    const shipped = new Date(recorded.getTime() + DAY);
    expect(decideRelease({ ...base, policy: { kind: 'after_shipment' }, shippedAt: shipped, deliveredAt: null })).toEqual({ status: 'DUE', holdReason: null, releaseAt: shipped });
    const policy = parseReleasePolicy('after_delivery_plus_days:7');
    expect(decideRelease({ ...base, policy, shippedAt: shipped, deliveredAt: null }).holdReason).toBe('AWAITING_DELIVERY');
    const delivered = new Date(recorded.getTime() + 3 * DAY);
    expect(decideRelease({ ...base, policy, shippedAt: shipped, deliveredAt: delivered }).releaseAt).toEqual(new Date(delivered.getTime() + 7 * DAY));
  });
});

describe('reversals and clawbacks', () => {
  it('when a reversal hits an unpaid intent, then payable + clawback always equals what was there minus what was reversed, never negative', () => {
    fc.assert(fc.property(fc.constantFrom(...UNPAID_STATUSES), fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), (status, payable, reversed) => {
      const r = applyReversal({ status, payableMinor: payable }, reversed);
      expect(r.payableMinor).toBeGreaterThanOrEqual(0);
      expect(r.clawbackMinor).toBeGreaterThanOrEqual(0);
      expect(r.payableMinor - r.clawbackMinor).toBe(payable - reversed);
      expect(r.cancel).toBe(r.payableMinor === 0);
    }));
  });

  it('when the intent was paid, then all of the reversal is a clawback; when it is in flight, it waits for the outcome', () => {
    expect(applyReversal({ status: 'SENT', payableMinor: 1000 }, 400)).toMatchObject({ payableMinor: 1000, clawbackMinor: 400, cancel: false });
    expect(applyReversal({ status: 'SUBMITTED', payableMinor: 1000 }, 400)).toMatchObject({ clawbackMinor: 0, pendingMinor: 400, cancel: false });
    // a payout under review may have been paid: the reversal is kept pending, not dropped
    expect(applyReversal({ status: 'NEEDS_REVIEW', payableMinor: 1000 }, 400)).toMatchObject({ payableMinor: 1000, clawbackMinor: 0, pendingMinor: 400, cancel: false });
    expect(applyReversal({ status: 'CANCELLED', payableMinor: 0 }, 400)).toMatchObject({ clawbackMinor: 0 });
  });

  it('when a payee owes money, then netting never takes more than the payment nor more than the debt', () => {
    fc.assert(fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: -1e9, max: 1e9 }), (payable, owed) => {
      const offset = offsetAgainstDebt(payable, owed);
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset).toBeLessThanOrEqual(Math.max(0, payable));
      expect(offset).toBeLessThanOrEqual(Math.max(0, owed));
    }));
  });
});

describe('PayPal identifiers and statuses', () => {
  it('when an intent is retried, then each attempt has its own sender_item_id within PayPal\'s 63 characters', () => {
    const id = '0b6f7d3e-1c2a-4f5e-9a8b-7c6d5e4f3a2b';
    expect(senderItemId(id, 1)).not.toEqual(senderItemId(id, 2));
    expect(senderItemId(id, 9999).length).toBeLessThanOrEqual(63);
  });

  it('when PayPal reports UNCLAIMED, then the item is still in flight (paying again could pay twice)', () => {
    expect(classifyItemStatus('UNCLAIMED')).toBe('IN_FLIGHT');
    expect(classifyItemStatus('SUCCESS')).toBe('SENT');
    expect(classifyItemStatus('BLOCKED')).toBe('FAILED');
    expect(classifyItemStatus('REVERSED')).toBe('RETURNED');
  });
});

describe('final item statuses', () => {
  it('when a batch is closed by its final item statuses, then they are exactly the ones not in flight', () => {
    for (const status of FINAL_ITEM_STATUSES) expect(classifyItemStatus(status)).not.toBe('IN_FLIGHT');
    for (const status of ['SUBMITTED', 'PENDING', 'ONHOLD', 'UNCLAIMED', 'NEW', 'REJECTED', 'DRY_RUN']) {
      expect(classifyItemStatus(status)).toBe('IN_FLIGHT');
      expect(FINAL_ITEM_STATUSES).not.toContain(status);
    }
  });
});
