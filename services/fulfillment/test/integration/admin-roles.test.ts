import { dropSchema, uniqueId, waitFor } from '@postsale/runtime/testing';
import { orderReceived, publishOrders, startHarness, type Harness } from './harness';

const ADMIN = 'Bearer test-admin-token-0123456789';
const OPERATOR = 'Bearer test-operator-token-0123456789';

describe('fulfillment admin roles: operator reads with the address masked, admin writes, the actor comes from the credential', () => {
  let h: Harness;
  let orderId: string;
  beforeAll(async () => {
    h = await startHarness({ OPERATOR_TOKEN: OPERATOR.slice('Bearer '.length) });
    // no mapping for the listing: the order waits in review (a state an operator can act on)
    const event = orderReceived({ sellerId: uniqueId('seller-'), listingId: 'UNMAPPED-1', sale: { amountMinor: 1500, currency: 'USD' },
      shipTo: { fullName: 'Nadia Private', line1: '8 Quiet Lane', line2: null, city: 'Boise', region: 'ID', postalCode: '83702', countryCode: 'US', phone: null } });
    orderId = event.orderId;
    await publishOrders(h, event);
    await waitFor(async () => (await h.service.ctx.db('fulfillments').where({ order_id: orderId, state: 'NEEDS_REVIEW' }).first()), { description: 'in review' });
  });
  afterAll(async () => {
    await h?.stop();
    if (h) await dropSchema(h.env.DB_SCHEMA!);
  });
  const call = (auth: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${h.service.url}${path}`, { method, headers: { authorization: auth, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('when the operator credential writes, then 403 and the order does not move; its reads are 200 with the ship-to masked', async () => {
    const retry = await call(OPERATOR, 'POST', `/admin/orders/${orderId}/retry`, {});
    expect(retry.status).toBe(403);
    expect((await h.service.ctx.db('fulfillments').where({ order_id: orderId }).first()).state).toBe('NEEDS_REVIEW');
    expect((await call(OPERATOR, 'PUT', `/admin/sellers/x/policy`, {})).status).toBe(403);
    const read = await call(OPERATOR, 'GET', `/admin/orders/${orderId}`);
    expect(read.status).toBe(200);
    const text = await read.text();
    expect(text).not.toContain('Nadia Private');
    expect(text).not.toContain('8 Quiet Lane');
    expect(JSON.parse(text).shipTo).toMatchObject({ fullName: 'N***', countryCode: 'US' });
    expect((await call(OPERATOR, 'GET', `/admin/review-queue`)).status).toBe(200);
    expect(await (await call(OPERATOR, 'GET', `/admin/review-queue`)).text()).not.toContain('Nadia Private');
    expect((await call(OPERATOR, 'GET', `/admin/orders/${orderId}?reveal=true`)).status).toBe(400);
    const revealed = await (await call(OPERATOR, 'GET', `/admin/orders/${orderId}?reveal=true&reason=carrier%20dispute%20ticket%2012`)).json();
    expect(revealed.shipTo).toMatchObject({ fullName: 'Nadia Private' });
    // the reveal is in the audit trail (who from the credential, why), without the data itself
    expect(revealed.audit).toEqual([expect.objectContaining({ actor: 'operator', action: 'REVEAL_PERSONAL_DATA', reason: 'carrier dispute ticket 12' })]);
    expect(JSON.stringify(await h.service.ctx.db('admin_audit').where({ order_id: orderId }))).not.toContain('Nadia');
  });

  it('when the admin acts while naming someone else in X-Operator, then the transition records the credential\'s actor', async () => {
    const res = await call(ADMIN, 'POST', `/admin/orders/${orderId}/retry`, {}, { 'x-operator': 'mallory' });
    expect(res.status).toBe(200);
    const causes = (await h.service.ctx.db('transitions').where({ order_id: orderId })).map((t) => t.cause as string);
    expect(causes).toContain('operator retry by admin');
    expect(causes.join(' ')).not.toContain('mallory');
  });
});
