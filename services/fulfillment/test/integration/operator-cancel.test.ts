import { dropSchema, uniqueId, waitFor } from '@postsale/runtime/testing';
import { ADMIN, admin, eventsFor, orderReceived, publishOrders, startHarness, waitForState, type Harness } from './harness';

const OPERATOR = { authorization: 'Bearer test-operator-token-0123456789', 'content-type': 'application/json' };

describe('admin cancel of an order not bought at the supplier', () => {
  let h: Harness;
  const seller = uniqueId('seller-');
  beforeAll(async () => {
    h = await startHarness({ OPERATOR_TOKEN: OPERATOR.authorization.slice('Bearer '.length) });
  });
  afterAll(async () => {
    await h?.stop();
    if (h) await dropSchema(h.env.DB_SCHEMA!);
  });

  /** No mapping for the listing: the order waits in review, nothing bought. */
  async function orderInReview(): Promise<string> {
    const event = orderReceived({ sellerId: seller, listingId: uniqueId('UNMAPPED-'), sale: { amountMinor: 2500, currency: 'USD' } });
    await publishOrders(h, event);
    await waitForState(h, event.orderId, 'NEEDS_REVIEW');
    return event.orderId;
  }
  const audit = (orderId: string) => h.service.ctx.db('admin_audit').where({ order_id: orderId }).orderBy('id');

  it('when an admin cancels an order in review with a reason, then it is CANCELLED, audited with the credential\'s actor, and PurchaseFailed (needsReview false) is published', async () => {
    const orderId = await orderInReview();
    const r = await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, { reason: 'buyer asked to cancel; not bought yet' }, { ...ADMIN, 'x-operator': 'mallory' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'CANCELLED', reason: { code: 'CANCELLED_BY_OPERATOR' } });

    const rows = await audit(orderId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: 'admin', action: 'CANCEL_ORDER', target: `order:${orderId}`, reason: 'buyer asked to cancel; not bought yet',
      before: { state: 'NEEDS_REVIEW', reason: 'UNMAPPED_LISTING' }, after: { state: 'CANCELLED', reason: 'CANCELLED_BY_OPERATOR' } });
    const detail = (await admin(h, 'GET', `/admin/orders/${orderId}`)).body as { audit: unknown[]; transitions: Array<{ cause: string; to_state: string }> };
    expect(detail.audit).toEqual([expect.objectContaining({ actor: 'admin', action: 'CANCEL_ORDER', reason: 'buyer asked to cancel; not bought yet' })]);
    expect(detail.transitions.at(-1)).toMatchObject({ to_state: 'CANCELLED', cause: 'operator cancel by admin' });
    expect(JSON.stringify(detail)).not.toContain('mallory');

    const failed = await waitFor(() => eventsFor(h, orderId).find((e) => e.type === 'PurchaseFailed' && e.payload.reasonCode === 'CANCELLED_BY_OPERATOR'), {
      timeoutMs: 20_000, description: 'PurchaseFailed CANCELLED_BY_OPERATOR published',
    });
    expect(failed.type === 'PurchaseFailed' && failed.payload).toMatchObject({ needsReview: false, supplierErrorCode: null });
    // the operator's words stay in fulfillment's audit, not in the event
    expect(JSON.stringify(failed)).not.toContain('buyer asked');

    // a second cancel changes nothing
    const again = await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, { reason: 'double click' });
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'ALREADY_CANCELLED' } } });
    expect(await audit(orderId)).toHaveLength(1);
  });

  it('when the reason is missing, too short or has control characters, or the credential is the operator\'s, then 4xx and nothing is written', async () => {
    const orderId = await orderInReview();
    for (const body of [{}, { reason: 'no' }, { reason: 'bad\u0000reason' }, { reason: 'x'.repeat(501) }, { reason: 'fine reason', extra: 1 }]) {
      const r = await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, body);
      expect({ body, status: r.status, code: r.body?.error?.code }).toEqual({ body, status: 400, code: expect.any(String) });
    }
    expect((await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, { reason: 'operator trying' }, OPERATOR)).status).toBe(403);
    expect((await admin(h, 'POST', `/admin/orders/ord-unknown-${uniqueId('')}/cancel`, { reason: 'no such order' })).status).toBe(404);
    expect((await waitForState(h, orderId, 'NEEDS_REVIEW')).state).toBe('NEEDS_REVIEW');
    expect(await audit(orderId)).toHaveLength(0);
    expect(eventsFor(h, orderId).filter((e) => e.type === 'PurchaseFailed' && !e.payload.needsReview)).toHaveLength(0);
  });

  it('when the order was already bought at the supplier, then 409 BOUGHT_AT_SUPPLIER and it stays as it is', async () => {
    const orderId = await orderInReview();
    const marked = await admin(h, 'POST', `/admin/orders/${orderId}/mark-purchased`, { supplierOrderId: '3000000000000999', supplierCost: { amount: '9.99', currency: 'USD' } });
    expect(marked.status).toBe(200);
    const r = await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, { reason: 'too late for this' });
    expect(r).toMatchObject({ status: 409, body: { error: { code: 'BOUGHT_AT_SUPPLIER' } } });
    expect((await admin(h, 'GET', `/admin/orders/${orderId}`)).body.state).not.toBe('CANCELLED');
    expect(await audit(orderId)).toHaveLength(0);
  });

  it('when an earlier attempt may have placed the order (outcome unknown), then 409 BOUGHT_AT_SUPPLIER', async () => {
    const orderId = await orderInReview();
    // an attempt whose outcome was never resolved, as a crash mid-call leaves it
    await h.service.ctx.db('purchase_attempts').insert({ order_id: orderId, attempt_no: 1, kind: 'CREATE', channel: 'API', out_order_id: `oo-${orderId}`.slice(0, 64), outcome: 'UNKNOWN' });
    const r = await admin(h, 'POST', `/admin/orders/${orderId}/cancel`, { reason: 'maybe bought' });
    expect(r).toMatchObject({ status: 409, body: { error: { code: 'BOUGHT_AT_SUPPLIER' } } });
    expect((await admin(h, 'GET', `/admin/orders/${orderId}`)).body.state).toBe('NEEDS_REVIEW');
  });
});
