import { buildTimeline, formatTimeline, showMoney } from '../src/timeline';

// What the four admin APIs answer for one paid-out order, cut to the fields the timeline reads.
const journey = {
  ingest: {
    service: 'ingest', orderId: 'ord_1', state: 'RECEIVED', marketplace: 'MERCADOLIBRE', externalOrderId: '2000', sellerId: 'demo-seller',
    received: { buyer: { name: 'Camila Rojas' }, shipTo: { fullName: 'Camila Rojas', line1: 'Av. Providencia 1234' } },
    history: [{ at: '2026-11-27T03:07:29.652Z', event: 'OrderReceived', eventId: 'ev-1', cause: 'received from marketplace', deliveryId: 'd-1', refundId: null }],
    deliveries: [{ id: 'd-1', kind: 'mercadolibre.orders_v2', status: 'accepted', reason: null, attempts: 1, receivedAt: '2026-11-27T03:07:29.416Z' }],
  },
  fulfillment: {
    state: 'PURCHASED', shipTo: { fullName: 'Camila Rojas' },
    transitions: [
      { from_state: null, to_state: 'RECEIVED', cause: 'OrderReceived ev-1', details: null, at: '2026-11-27T03:07:29.964Z' },
      { from_state: 'RECEIVED', to_state: 'PURCHASING', cause: 'purchase intent', details: { supplierCost: { currency: 'USD', amountMinor: 750 } }, at: '2026-11-27T03:07:30.054Z' },
    ],
    attempts: [{ attempt_no: 1, kind: 'CREATE', channel: 'API', out_order_id: 'PS869F', outcome: 'CREATED', supplier_order_id: '3842', started_at: '2026-11-27T03:07:30.054Z' }],
    responses: [],
  },
  sales: {
    state: 'RECORDED',
    sale: { breakdown: {
      saleAmount: { amountMinor: 19990, currency: 'CLP' }, marketplaceFee: { amountMinor: 2599, currency: 'CLP' }, paymentFee: { amountMinor: 0, currency: 'CLP' },
      supplierCost: { amountMinor: 7125, currency: 'CLP' }, grossProfit: { amountMinor: 10266, currency: 'CLP' }, commissionRateBps: 1000,
      platformCommission: { amountMinor: 1026, currency: 'CLP' }, sellerNetProfit: { amountMinor: 9240, currency: 'CLP' }, loss: { amountMinor: 0, currency: 'CLP' }, isLoss: false,
    } },
    history: [{ at: '2026-11-27T03:07:30.271Z', state: 'RECORDED', cause: 'SaleRecorded', detail: { saleId: 'sale-1' } }],
    journal: [],
  },
  payouts: {
    state: 'SETTLED',
    payouts: [{ id: 'i-1', recipient: 'SELLER', status: 'SENT', payable: { amountMinor: 9240, currency: 'CLP' }, payout: { amountMinor: 972, currency: 'USD' } }],
    history: [
      { intentId: 'i-1', from: 'DUE', to: 'SUBMITTED', cause: 'in batch postsale-abc as i1-a1: 9.72 USD for 9240 CLP owed', at: '2026-11-27T03:07:30.411Z' },
      { intentId: 'i-1', from: 'SUBMITTED', to: 'SENT', cause: 'PayPal webhook PAYMENT.PAYOUTS-ITEM.SUCCEEDED', at: '2026-11-27T03:07:30.551Z' },
    ],
  },
};

describe('order timeline', () => {
  it('when four services answer, then their events merge into one time-ordered list with the idempotency keys', () => {
    const t = buildTimeline('ord_1', journey, { actions: [{ at: '2026-11-27T03:07:30.000Z', who: 'ana', action: 'approve', orderId: 'ord_1', reason: 'fine', outcome: 'done' }] });
    expect(t.entries.map((e) => `${e.source} ${e.event}`)).toEqual([
      'ingest WebhookReceived', 'ingest OrderReceived', 'fulfillment ∅ → RECEIVED', 'operator Operator approve', 'fulfillment RECEIVED → PURCHASING',
      'fulfillment PurchaseAttempt #1', 'sales SaleRecorded', 'payouts DUE → SUBMITTED', 'payouts PayoutSent',
    ]);
    expect(t.entries.find((e) => e.event === 'PurchaseAttempt #1')?.keys).toEqual({ out_order_id: 'PS869F', supplierOrderId: '3842' });
    expect(t.entries.find((e) => e.event === 'DUE → SUBMITTED')?.keys).toEqual({ intentId: 'i-1', sender_batch_id: 'postsale-abc', sender_item_id: 'i1-a1' });
    expect(t.summary.breakdown).toBe('sale 19990 CLP = marketplace fee 2599 CLP + payment fee 0 CLP + supplier 7125 CLP + platform commission 1026 CLP (10 % of gross profit 10266 CLP) + seller net 9240 CLP');
  });

  it('when fulfillment audited an admin cancel, then the timeline shows it with the credential\'s actor and the reason', () => {
    const cancelled = {
      ...journey,
      fulfillment: { ...journey.fulfillment, audit: [{ actor: 'admin', action: 'CANCEL_ORDER', reason: 'buyer asked; not bought', before: { state: 'NEEDS_REVIEW', reason: 'PRICE_ABOVE_MAX' }, after: { state: 'CANCELLED' }, at: '2026-11-27T03:07:31.000Z' }] },
    };
    const entry = buildTimeline('ord_1', cancelled).entries.find((e) => e.event === 'Admin CANCEL_ORDER');
    expect(entry).toMatchObject({ source: 'fulfillment', detail: 'NEEDS_REVIEW → CANCELLED', actor: 'admin', reason: 'buyer asked; not bought' });
    expect(formatTimeline(buildTimeline('ord_1', cancelled))).toContain('by admin: "buyer asked; not bought"');
  });

  it('when printed, then it is a few readable lines without personal data', () => {
    const text = formatTimeline(buildTimeline('ord_1', journey));
    expect(text.split('\n')[0]).toBe('order ord_1  MERCADOLIBRE 2000  seller demo-seller');
    expect(text).toContain('payout to SELLER: 9240 CLP SENT (paid 9.72 USD)');
    expect(text).not.toContain('Camila');
    expect(text).not.toContain('Providencia');
  });

  it('when a service puts personal data in a state change, then the timeline masks it', () => {
    const withAddress = { ...journey, fulfillment: { ...journey.fulfillment, transitions: [
      { from_state: 'RECEIVED', to_state: 'NEEDS_REVIEW', cause: 'address incomplete', details: { shipTo: { fullName: 'Camila Rojas', phone: '56912345678' } }, at: '2026-11-27T03:07:30.000Z' },
    ] } };
    const text = formatTimeline(buildTimeline('ord_1', withAddress));
    expect(text).toContain('RECEIVED → NEEDS_REVIEW');
    expect(text).not.toContain('Camila');
    expect(text).not.toContain('56912345678');
  });

  it('when a service does not know the order, then the summary says so and the rest still shows', () => {
    const t = buildTimeline('ord_1', { ...journey, payouts: { status: 404, error: { code: 'ORDER_NOT_FOUND' } } });
    expect(t.summary.states.payouts).toBe('unknown to this service');
    expect(t.entries.some((e) => e.source === 'payouts')).toBe(false);
  });

  it('shows money exactly in each currency minor units', () => {
    expect(showMoney({ amountMinor: -5, currency: 'USD' })).toBe('-0.05 USD');
    expect(showMoney({ amountMinor: 19990, currency: 'CLP' })).toBe('19990 CLP');
  });
});
