import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { payoutsWithStatus, saleRecorded, startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

const ADMIN = 'Bearer test-admin-token-0123456789';
const OPERATOR = 'Bearer test-operator-token-0123456789';

describe('payouts admin roles and audit: a payee email change is recorded with who, before/after and why', () => {
  let under: PayoutsUnderTest;
  beforeAll(async () => {
    under = await startPayoutsUnderTest({ env: { OPERATOR_TOKEN: OPERATOR.slice('Bearer '.length) } });
  });
  afterAll(() => under?.stop());
  const call = (auth: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${under.service.url}${path}`, { method, headers: { authorization: auth, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('when the operator credential changes a payee, then 403 and nothing changes; the admin\'s change is audited in the same transaction', async () => {
    const sellerId = uniqueId('s-');
    expect((await call(ADMIN, 'PUT', `/admin/sellers/${sellerId}/payee`, { email: 'first@sellers.test', releasePolicy: 'immediate' }, { 'x-audit-reason': 'onboarding' })).status).toBe(200);
    const forbidden = await call(OPERATOR, 'PUT', `/admin/sellers/${sellerId}/payee`, { email: 'attacker@evil.test', releasePolicy: 'immediate' });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    expect((await under.service.ctx.db('payees').where({ seller_id: sellerId }).first()).email).toBe('first@sellers.test');
    expect((await call(OPERATOR, 'PUT', '/admin/fx-rates/CLP/USD/2026-01-02', { rate: '0.001' })).status).toBe(403);
    expect((await call(OPERATOR, 'GET', '/admin/payouts')).status).toBe(200);
    expect((await call(OPERATOR, 'GET', '/admin/integrity')).status).toBe(200);

    const changed = await call(ADMIN, 'PUT', `/admin/sellers/${sellerId}/payee`, { email: 'second@sellers.test', releasePolicy: 'after_shipment' }, { 'x-audit-reason': 'seller changed PayPal account (ticket 31)', 'x-operator': 'mallory' });
    expect(changed.status).toBe(200);
    const audit = ((await (await call(OPERATOR, 'GET', `/admin/audit?target=seller:${sellerId}`)).json()) as { audit: Array<{ actor: string; action: string; reason: string | null; before: { email: string } | null; after: { email: string; releasePolicy: string } }> }).audit;
    expect(audit.map((a) => [a.actor, a.action, a.reason, a.before?.email ?? null, a.after.email])).toEqual([
      ['admin', 'PUT_PAYEE', 'seller changed PayPal account (ticket 31)', 'first@sellers.test', 'second@sellers.test'],
      ['admin', 'PUT_PAYEE', 'onboarding', null, 'first@sellers.test'],
    ]);
    expect(audit[0]!.after.releasePolicy).toBe('after_shipment');
    expect(JSON.stringify(audit)).not.toContain('mallory');
  });

  it('when payouts are read, then payee emails and receivers are masked unless an admin reveals them with a reason, and the reveal is audited', async () => {
    const sellerId = uniqueId('s-');
    const orderId = uniqueId('o-');
    const email = `${sellerId}@sellers.test`;
    expect((await call(ADMIN, 'PUT', `/admin/sellers/${sellerId}/payee`, { email, releasePolicy: 'immediate' })).status).toBe(200);
    await under.publish.sale(saleRecorded({ orderId, sellerId, commissionMinor: 100, netMinor: 500 }));
    await waitFor(payoutsWithStatus(under.service, orderId, { PLATFORM: 'SENT', SELLER: 'SENT' }), { description: 'both payouts sent' });

    type Views = { payouts: Array<{ recipient: string; items: Array<{ receiver: string }> }> };
    const receivers = (body: Views) => body.payouts.flatMap((p) => p.items.map((i) => i.receiver));
    for (const auth of [OPERATOR, ADMIN]) {
      const masked = await call(auth, 'GET', `/admin/orders/${orderId}/payouts`);
      expect(masked.status).toBe(200);
      const text = JSON.stringify(await masked.clone().json());
      expect(text).not.toContain(email);
      expect(text).not.toContain('platform-payouts@postsale.test');
      expect(receivers((await masked.json()) as Views).sort()).toEqual(['p***', `${sellerId[0]}***`].sort());
      expect(JSON.stringify(await (await call(auth, 'GET', `/admin/orders/${orderId}`)).json())).not.toContain(email);
      expect(JSON.stringify(await (await call(auth, 'GET', `/admin/payouts?sellerId=${sellerId}`)).json())).not.toContain(email);
      const balance = (await (await call(auth, 'GET', `/admin/sellers/${sellerId}/balance`)).json()) as { payee: { email: string } };
      expect(balance.payee.email).toBe(`${sellerId[0]}***`);
    }

    const noReason = await call(ADMIN, 'GET', `/admin/orders/${orderId}/payouts?reveal=true`);
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as { error: { code: string } }).error.code).toBe('REASON_REQUIRED');
    const byOperator = await call(OPERATOR, 'GET', `/admin/orders/${orderId}/payouts?reveal=true&reason=${encodeURIComponent('checking a payment')}`);
    expect(byOperator.status).toBe(403);

    const revealed = await call(ADMIN, 'GET', `/admin/orders/${orderId}/payouts?reveal=true&reason=${encodeURIComponent('seller asks where the money went (ticket 7)')}`);
    expect(revealed.status).toBe(200);
    expect(receivers((await revealed.json()) as Views)).toContain(email);
    const balance = (await (await call(ADMIN, 'GET', `/admin/sellers/${sellerId}/balance?reveal=true&reason=payee%20check`)).json()) as { payee: { email: string } };
    expect(balance.payee.email).toBe(email);

    const reveals = (await under.service.ctx.db('admin_audit').where({ action: 'REVEAL_PERSONAL_DATA' }).whereIn('target', [`order:${orderId}`, `seller:${sellerId}`]).orderBy('id'))
      .map((a: { actor: string; target: string; reason: string; after: unknown }) => [a.actor, a.target, a.reason, a.after]);
    expect(reveals).toEqual([
      ['admin', `order:${orderId}`, 'seller asks where the money went (ticket 7)', null],
      ['admin', `seller:${sellerId}`, 'payee check', null],
    ]);
  });
});
