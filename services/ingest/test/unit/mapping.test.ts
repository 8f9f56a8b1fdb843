import { buildEbayOrder, buildMlOrder, buildMlShipment } from '@postsale/sandbox';
import { Metrics } from '@postsale/runtime';
import { completeAddress } from '../../src/domain/address';
import { mapEbayOrder } from '../../src/domain/ebay-order.mapper';
import { mapMercadoLibreOrder } from '../../src/domain/mercadolibre-order.mapper';
import { orderIdFor } from '../../src/domain/order-id';
import { mapPayPalOrder } from '../../src/domain/paypal-order.mapper';
import { rateLimitPerAddress } from '../../src/http/rate-limit';
import { createIngestMetrics } from '../../src/metrics';

describe('order ids', () => {
  it('when the same (marketplace, external id) is seen again, then the same id comes out; another marketplace gives another id', () => {
    expect(orderIdFor('EBAY', '12-34567-89012')).toBe(orderIdFor('EBAY', '12-34567-89012'));
    expect(orderIdFor('EBAY', '1')).not.toBe(orderIdFor('MERCADOLIBRE', '1'));
    expect(orderIdFor('EBAY', '1')).toMatch(/^ord_[0-9a-f]{24}$/);
  });
});

describe('addresses', () => {
  it('when a required part is missing, then no address is invented and the issue names it', () => {
    expect(completeAddress({ fullName: 'A', line1: ' ', city: 'X', countryCode: 'US' })).toEqual({ shipTo: null, shipToIssue: 'MISSING_STREET' });
    expect(completeAddress({ fullName: 'A', line1: 'B', city: 'X', countryCode: 'Chile' })).toEqual({ shipTo: null, shipToIssue: 'INVALID_COUNTRY_CODE' });
    expect(completeAddress(null).shipToIssue).toBe('MISSING_ADDRESS');
    expect(completeAddress({ fullName: 'A', line1: 'B', city: 'X', countryCode: 'cl' }).shipTo?.countryCode).toBe('CL');
  });
});

describe('eBay mapping', () => {
  it('when ship-to is the documented array and amounts are strings, then everything is exact', () => {
    const order = buildEbayOrder({ lineItems: [{ title: 'A', quantity: 3, unitValue: '0.10' }], deliveryCost: '0.20' });
    const v = mapEbayOrder(order, 'seller', 1);
    if (v.kind !== 'paid') throw new Error(v.kind);
    expect(v.order.lines[0]!.unitPrice).toEqual({ amountMinor: 10, currency: 'USD' });
    expect(v.order.saleAmount).toEqual({ amountMinor: 50, currency: 'USD' });
    expect(v.order.shipTo?.countryCode).toBe('US');
  });
  it('when the order is not paid or a line cost does not divide by its quantity, then no OrderReceived is made', () => {
    expect(mapEbayOrder(buildEbayOrder({ lineItems: [{ title: 'A', quantity: 1, unitValue: '1.00' }], orderPaymentStatus: 'PENDING' }), 's', 1).kind).toBe('not-paid');
    const odd = buildEbayOrder({ lineItems: [{ title: 'A', quantity: 3, unitValue: '1.00' }] });
    odd.lineItems[0]!.lineItemCost.value = '1.00';
    expect(mapEbayOrder(odd, 's', 1)).toMatchObject({ kind: 'unmappable', reason: 'LINE_PRICE_NOT_DIVISIBLE' });
  });
});

describe('MercadoLibre mapping', () => {
  it('when the order is in CLP, then amounts have no minor digits and the country is the ISO id, not the name', () => {
    const order = buildMlOrder({ sellerId: 1, items: [{ id: 'MLC1', title: 't', quantity: 1, unitPrice: 15990 }] });
    const v = mapMercadoLibreOrder(order, buildMlShipment({ sellerId: 1 }), '1', 1);
    if (v.kind !== 'paid') throw new Error(v.kind);
    expect(v.order.saleAmount).toEqual({ amountMinor: 15990, currency: 'CLP' });
    expect(v.order.shipTo?.countryCode).toBe('CL');
  });
  it('when a CLP amount carries decimals, then it is refused rather than rounded', () => {
    const order = buildMlOrder({ sellerId: 1, items: [{ id: 'MLC1', title: 't', quantity: 1, unitPrice: 100 }] });
    order.order_items[0]!.unit_price = 100.5;
    expect(mapMercadoLibreOrder(order, null, '1', 1)).toMatchObject({ kind: 'unmappable', reason: 'INVALID_AMOUNT' });
  });
});

describe('PayPal mapping', () => {
  it('when the capture is still PENDING, then the order is not paid yet', () => {
    expect(mapPayPalOrder({ id: 'X', purchase_units: [{}] }, { id: 'C', status: 'PENDING', amount: { currency_code: 'USD', value: '1.00' } }, 's', 1)).toMatchObject({ kind: 'not-paid' });
  });
});

describe('rate limit per address', () => {
  const limiter = (now: () => number) =>
    rateLimitPerAddress({
      perSecond: 1, burst: 2, now, metrics: createIngestMetrics(new Metrics('t', { defaultMetrics: false })),
      unproven: (req) => req.path === '/unsigned',
    });
  /** one request through the limiter, answered with `status` when it gets through; returns the limiter's verdict */
  const call = (limit: ReturnType<typeof limiter>, ip: string, path: string, status = 200) => {
    let error: unknown = 'none';
    const finish: Array<() => void> = [];
    const res = { statusCode: status, set: () => undefined, once: (_event: string, listener: () => void) => finish.push(listener) };
    limit({ ip, path, socket: {} } as never, res as never, (e?: unknown) => { error = e; });
    const code = (error as { code?: string } | undefined)?.code ?? 'ok';
    if (code === 'ok') for (const listener of finish) listener();
    return code;
  };

  it('when an address sends more unproven requests than its burst, then 429 RATE_LIMITED until tokens refill; other addresses are unaffected', () => {
    let now = 0;
    const limit = limiter(() => now);
    expect([call(limit, 'a', '/unsigned'), call(limit, 'a', '/unsigned'), call(limit, 'a', '/unsigned'), call(limit, 'b', '/unsigned')]).toEqual(['ok', 'ok', 'RATE_LIMITED', 'ok']);
    now += 1000;
    expect(call(limit, 'a', '/unsigned')).toBe('ok');
  });

  it('when an address sends verified requests, then none is limited however many; once its requests are refused (4xx), it is', () => {
    const now = 0;
    const limit = limiter(() => now);
    expect(Array.from({ length: 50 }, () => call(limit, 'ebay', '/signed', 200))).toEqual(Array(50).fill('ok'));
    expect([call(limit, 'forger', '/signed', 401), call(limit, 'forger', '/signed', 400), call(limit, 'forger', '/signed', 200)]).toEqual(['ok', 'ok', 'RATE_LIMITED']);
    // our own failures (5xx) are not the sender's fault: they cost nothing
    expect(Array.from({ length: 5 }, () => call(limit, 'ebay', '/signed', 503))).toEqual(Array(5).fill('ok'));
  });
});
