import { uniqueId, waitFor } from '@postsale/runtime/testing';
import { buildEbayOrder } from '@postsale/sandbox';
import { orderIdFor } from '../../src/domain/order-id';
import { ADMIN, useIngest } from '../support/ingest-harness';

const OPERATOR = 'test-operator-token-9876543210';

describe('ingest admin roles: operator reads (masked), admin writes, every write audited', () => {
  const h = useIngest({ collect: true, env: { OPERATOR_TOKEN: OPERATOR } });
  let orderId: string;
  const sellerId = uniqueId('seller-');
  const username = uniqueId('ebayseller');
  const token = uniqueId('tok-');
  const call = (bearer: string, path: string, init: RequestInit = {}) => h.admin(path, init, bearer);

  beforeAll(async () => {
    h.ebay.registerSellerToken(token, username);
    expect((await call(ADMIN, `/admin/sellers/${sellerId}`, { method: 'PUT', body: JSON.stringify({ accounts: [{ marketplace: 'EBAY', accountId: username, accessToken: token }] }), headers: { 'X-Audit-Reason': 'onboarding' } })).status).toBe(200);
    const order = h.ebay.seedOrder(buildEbayOrder({ sellerUsername: username, buyerUsername: 'buyer_rosa', lineItems: [{ title: 'Lamp', quantity: 1, unitValue: '19.99' }],
      shipTo: { fullName: 'Rosa Masked', contactAddress: { addressLine1: '12 Hidden Way', city: 'Denver', stateOrProvince: 'CO', postalCode: '80202', countryCode: 'US' } } }));
    expect((await h.ebay.deliver(`${h.url}/webhooks/ebay`, h.ebay.signedNotification({ orderId: order.orderId, lineItems: order.lineItems, username, userId: 'u' }))).status).toBe(200);
    orderId = orderIdFor('EBAY', order.orderId);
    await waitFor(() => h.collector.messages.find((m) => m.event.orderId === orderId));
  });

  it('when the operator credential writes, then 403 and nothing changes; its reads answer 200', async () => {
    const delivery = (await h.service.ctx.db('deliveries').where({ order_id: orderId }).first()).id as string;
    const writes: Array<[string, string, unknown]> = [
      ['PUT', `/admin/sellers/${sellerId}`, { accounts: [] }],
      ['POST', `/admin/deliveries/${delivery}/reprocess`, {}],
      ['POST', `/admin/orders/${orderId}/erase`, { reason: 'operator tries' }],
    ];
    const auditBefore = (await h.service.ctx.db('admin_audit').count<{ c: string }[]>('* as c'))[0]!.c;
    for (const [method, path, body] of writes) {
      const res = await call(OPERATOR, path, { method, body: JSON.stringify(body) });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect((await h.service.ctx.db('marketplace_accounts').where({ seller_id: sellerId })).length).toBe(1);
    expect((await h.service.ctx.db('orders').where({ order_id: orderId }).first()).personal_data_erased_at).toBeNull();
    expect((await h.service.ctx.db('admin_audit').count<{ c: string }[]>('* as c'))[0]!.c).toBe(auditBefore);
    for (const path of [`/admin/orders/${orderId}`, '/admin/deliveries', `/admin/sellers/${sellerId}`, '/admin/integrity', `/admin/deliveries/${delivery}`]) {
      expect((await call(OPERATOR, path)).status).toBe(200);
    }
    expect(await (await call(OPERATOR, '/admin/whoami')).json()).toEqual({ role: 'operator' });
    expect(await (await call(ADMIN, '/admin/whoami')).json()).toEqual({ role: 'admin' });
    // a header naming someone does not make anyone admin
    expect((await call(OPERATOR, `/admin/orders/${orderId}/erase`, { method: 'POST', body: '{"reason":"x-y-z"}', headers: { 'X-Operator': 'admin', 'X-Role': 'admin' } })).status).toBe(403);
  });

  it('when an order is read, then the buyer is masked unless revealed with a reason, and the reveal is audited with who asked', async () => {
    const masked = await (await call(OPERATOR, `/admin/orders/${orderId}`)).text();
    expect(masked).not.toContain('Rosa Masked');
    expect(masked).not.toContain('12 Hidden Way');
    expect(JSON.parse(masked).received.shipTo).toMatchObject({ fullName: 'R***', countryCode: 'US' });
    expect((await call(OPERATOR, `/admin/orders/${orderId}?reveal=true`)).status).toBe(400);
    const revealed = await (await call(OPERATOR, `/admin/orders/${orderId}?reveal=true&reason=${encodeURIComponent('courier asked for the address, ticket 9')}`)).json();
    expect(revealed.received.shipTo).toMatchObject({ fullName: 'Rosa Masked', line1: '12 Hidden Way' });
    const journey = await (await call(ADMIN, `/admin/orders/${orderId}`)).json();
    expect(journey.audit).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'operator', action: 'REVEAL_PERSONAL_DATA', reason: 'courier asked for the address, ticket 9' })]));
    const rawMasked = await (await call(OPERATOR, `/admin/deliveries/${journey.deliveries[0].id}`)).json();
    expect(rawMasked.rawBody).toBeUndefined();
  });

  it('when the admin changes a seller, then the audit row names the admin, the reason and before/after without secrets', async () => {
    const res = await call(ADMIN, `/admin/sellers/${sellerId}`, { method: 'PUT', body: JSON.stringify({ displayName: 'Renamed', accounts: [{ marketplace: 'EBAY', accountId: username, accessToken: 'super-secret-token-value' }] }), headers: { 'X-Audit-Reason': 'seller asked to rename' } });
    expect(res.status).toBe(200);
    const rows = await h.service.ctx.db('admin_audit').where({ action: 'PUT_SELLER', target: sellerId }).orderBy('id');
    expect(rows.map((r) => [r.actor, r.reason])).toEqual([['admin', 'onboarding'], ['admin', 'seller asked to rename']]);
    expect(rows[1].before).toMatchObject({ displayName: null });
    expect(rows[1].after).toMatchObject({ displayName: 'Renamed', accounts: [{ marketplace: 'EBAY', accountId: username, hasAccessToken: true }] });
    expect(JSON.stringify(rows)).not.toContain('super-secret-token-value');
    expect(JSON.stringify(rows)).not.toContain(token);
  });
});
