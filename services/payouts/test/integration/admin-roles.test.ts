import { uniqueId } from '@postsale/runtime/testing';
import { startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

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
});
