import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { ADMIN, orderPayouts, payoutsWithStatus, putPayee, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

describe('an operator cancels an UNCLAIMED payout through the admin API', () => {
  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest();
  });
  afterAll(() => under?.stop());

  it('when the seller\'s item is UNCLAIMED and an admin cancels it with a reason, then 202, PayPal cancels it, the payout is RETURNED (owed again) and the audit has the reason', async () => {
    const { service, fake, publish } = under;
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const sellerEmail = `${sellerId}@sellers.test`;
    fake.setPayoutOutcome(sellerEmail, 'UNCLAIMED');
    expect((await putPayee(service, sellerId, { email: sellerEmail, releasePolicy: 'immediate' })).status).toBe(200);
    await publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 300, netMinor: 1200 }));
    const seller = await waitFor(async () => (await orderPayouts(service, orderId)).find((p) => p.recipient === 'SELLER' && p.items?.some((i) => i.status === 'UNCLAIMED')),
      { description: "the seller's item UNCLAIMED" });

    const res = await fetch(`${service.url}/admin/payouts/${seller.id}/cancel`, { method: 'POST', headers: { ...ADMIN, 'x-audit-reason': 'seller will never claim it' } });
    expect(res.status).toBe(202);
    await waitFor(payoutsWithStatus(service, orderId, { SELLER: 'RETURNED' }), { description: 'the cancelled payout RETURNED' });
    const audit = await (await fetch(`${service.url}/admin/audit?target=payout:${seller.id}`, { headers: ADMIN })).json() as { audit: Array<{ action: string; reason: string; actor: string }> };
    expect(audit.audit).toEqual([expect.objectContaining({ action: 'CANCEL_PAYOUT', reason: 'seller will never claim it', actor: 'admin' })]);
    // a second cancel is refused with a code: the item is no longer UNCLAIMED
    const again = await fetch(`${service.url}/admin/payouts/${seller.id}/cancel`, { method: 'POST', headers: ADMIN });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('PAYOUT_NOT_CANCELLABLE');
  });
});
