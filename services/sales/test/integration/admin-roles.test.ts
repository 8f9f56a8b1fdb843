import { startService, type RunningService } from '@postsale/runtime';
import { dropSchema, testEnv, uniqueId } from '@postsale/runtime/testing';
import { salesService } from '../../src/service';

const ADMIN = 'Bearer test-admin-token-0123456789';
const OPERATOR = 'Bearer test-operator-token-0123456789';

describe('sales admin roles: the operator token reads, only the admin token writes', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('sales', { OPERATOR_TOKEN: OPERATOR.slice('Bearer '.length) });
    service = await startService(salesService, env);
  });
  afterAll(async () => {
    await service?.stop();
    await dropSchema(env.DB_SCHEMA!);
  });
  const call = (auth: string | null, method: string, path: string, body?: unknown) =>
    fetch(`${service.url}${path}`, { method, headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('when the operator credential writes, then 403 and nothing is stored; reads answer 200; no credential is 401', async () => {
    const sellerId = uniqueId('s-');
    const terms = { commissionRateBps: 1000, marketplaceFees: { EBAY: { percentBps: 1325 } } };
    const forbidden = await call(OPERATOR, 'PUT', `/admin/sellers/${sellerId}/commercial-terms`, terms);
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    expect((await call(OPERATOR, 'GET', `/admin/sellers/${sellerId}/commercial-terms`)).status).toBe(404);
    expect((await call(OPERATOR, 'PUT', '/admin/fx-rates/CLP/USD/2026-01-02', { rate: '0.001' })).status).toBe(403);
    expect((await call(OPERATOR, 'GET', '/admin/ledger/trial-balance')).status).toBe(200);
    expect((await call(null, 'GET', '/admin/ledger/trial-balance')).status).toBe(401);
    expect((await call(ADMIN, 'PUT', `/admin/sellers/${sellerId}/commercial-terms`, terms)).status).toBe(200);
    expect((await call(OPERATOR, 'GET', `/admin/sellers/${sellerId}/commercial-terms`)).status).toBe(200);
  });

  it('when the admin changes commercial terms or an FX rate, then the audit trail names the admin, the reason and before/after', async () => {
    const sellerId = uniqueId('s-');
    const first = { commissionRateBps: 1000, marketplaceFees: { EBAY: { percentBps: 1325 } } };
    const second = { commissionRateBps: 1200, marketplaceFees: { EBAY: { percentBps: 1325 } } };
    const put = (body: unknown, reason: string) => fetch(`${service.url}/admin/sellers/${sellerId}/commercial-terms`, {
      method: 'PUT', headers: { authorization: ADMIN, 'content-type': 'application/json', 'x-audit-reason': reason }, body: JSON.stringify(body),
    });
    expect((await put(first, 'onboarding')).status).toBe(200);
    expect((await put(second, 'renegotiated (ticket 12)')).status).toBe(200);
    expect((await call(ADMIN, 'PUT', '/admin/fx-rates/CLP/USD/2026-01-02', { rate: '0.001' })).status).toBe(200);
    const trail = await call(OPERATOR, 'GET', `/admin/audit?target=seller:${sellerId}`);
    expect(trail.status).toBe(200);
    const { audit } = (await trail.json()) as { audit: Array<{ actor: string; action: string; reason: string | null; before: { commissionRateBps: number } | null; after: { commissionRateBps: number } }> };
    expect(audit.map((a) => [a.actor, a.action, a.reason, a.before?.commissionRateBps ?? null, a.after.commissionRateBps])).toEqual([
      ['admin', 'PUT_COMMERCIAL_TERMS', 'renegotiated (ticket 12)', 1000, 1200],
      ['admin', 'PUT_COMMERCIAL_TERMS', 'onboarding', null, 1000],
    ]);
    const fx = (await (await call(OPERATOR, 'GET', '/admin/audit?target=fx:CLP:USD:2026-01-02')).json()) as { audit: Array<{ actor: string; action: string }> };
    expect(fx.audit).toEqual([expect.objectContaining({ actor: 'admin', action: 'PUT_FX_RATE' })]);
    // a refused write leaves no audit row
    expect((await call(OPERATOR, 'PUT', `/admin/sellers/${sellerId}/commercial-terms`, first)).status).toBe(403);
    expect(((await (await call(OPERATOR, 'GET', `/admin/audit?target=seller:${sellerId}`)).json()) as { audit: unknown[] }).audit).toHaveLength(2);
  });
});
