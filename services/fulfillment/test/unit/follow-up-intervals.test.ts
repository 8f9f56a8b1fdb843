import { runFollowUp } from '../../src/domain/follow-up.use-case';
import type { FulfillmentDeps, SupplierApi } from '../../src/domain/ports';
import type { Fulfillment, FulfillmentPatch } from '../../src/domain/records';
import { States, type State } from '../../src/domain/states';

/**
 * How soon an order that did not move is looked at again: a payment settles in seconds to minutes, tracking and
 * delivery take days. The follow-up runs against stand-in ports here; the supplier answers "not yet" every time.
 */
const MINUTE = 60_000;
const settings = {
  defaultMinMarginBps: 0, purchaseMaxAttempts: 3, purchaseRetryBaseMs: 1_000, purchaseRetryMaxMs: 10_000, outOrderIdWindowMs: 23 * 3600_000,
  statusPollMinMs: 30_000, statusPollMaxMs: 6 * 3600_000, trackingPollMinMs: 30 * MINUTE, trackingPollMaxMs: 12 * 3600_000,
  pushMaxAttempts: 3, pushRetryBaseMs: 1_000, leaseMs: 60_000,
};

function order(state: State, statusChecks = 0): Fulfillment {
  return {
    orderId: 'order-1', sellerId: 'seller-1', marketplace: 'EBAY', externalOrderId: 'ext-1', marketplaceAccountId: null, state, stateSince: new Date(),
    reasonCode: null, reasonDetails: null, lines: [], shipTo: null, shipToIssue: null, saleAmount: null, marketplaceFee: null, paymentFee: null,
    outOrderId: 'PS1', channel: 'API', supplierOrderId: 'ali-1', supplierCost: null, approvedMax: null, purchaseAttempts: 1, statusChecks,
    nextRunAt: new Date(), carrier: null, trackingNumber: null, cancelRequested: false, receivedAt: null, purchasedAt: null, shippedAt: null, leaseVersion: 7,
  };
}

/** the next check the use case scheduled, in ms from now, and the fencing token it wrote with */
async function nextCheck(f: Fulfillment, supplierStatus: string): Promise<{ inMs: number; fence: number | undefined; checks: number | undefined }> {
  let written: { patch: FulfillmentPatch; fence: number | undefined } | undefined;
  const api = {
    getOrder: async () => ({ status: supplierStatus, amount: undefined, endReasons: [] }),
    getTracking: async () => [],
  } as unknown as SupplierApi;
  const deps = {
    supplierFor: async () => api,
    repo: {
      recordSupplierResponse: async () => undefined,
      update: async (_trx: unknown, _orderId: string, _state: State, patch: FulfillmentPatch, fence?: number) => {
        written = { patch, fence };
        return true;
      },
    },
    settings,
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  } as unknown as FulfillmentDeps;
  const before = Date.now();
  await runFollowUp(deps, f);
  if (!written?.patch.nextRunAt) throw new Error('the follow-up scheduled no next check');
  return { inMs: written.patch.nextRunAt.getTime() - before, fence: written.fence, checks: written.patch.statusChecks };
}

describe('follow-up intervals: payments are checked in seconds, tracking and delivery in tens of minutes', () => {
  it('when an order awaits the supplier\'s payment, then it is checked again within the payment interval (30 s at the first check)', async () => {
    const next = await nextCheck(order(States.AWAITING_PAYMENT), 'PLACE_ORDER_SUCCESS');
    expect(next.inMs).toBeGreaterThanOrEqual(15_000 - 50);
    expect(next.inMs).toBeLessThanOrEqual(30_000 + 50);
    expect(next).toMatchObject({ fence: 7, checks: 1 });
  });

  it('when a purchased order has no tracking yet, then it waits the tracking interval (30 min at the first check), not the payment one', async () => {
    const next = await nextCheck(order(States.PURCHASED), 'WAIT_SELLER_SEND_GOODS');
    expect(next.inMs).toBeGreaterThanOrEqual(15 * MINUTE - 50);
    expect(next.inMs).toBeLessThanOrEqual(30 * MINUTE + 50);
  });

  it('when a shipped order is not delivered yet, then the wait grows with each check up to the tracking maximum (12 h)', async () => {
    const second = await nextCheck(order(States.SHIPPED, 1), 'WAIT_BUYER_ACCEPT_GOODS');
    expect(second.inMs).toBeGreaterThanOrEqual(30 * MINUTE - 50);
    expect(second.inMs).toBeLessThanOrEqual(60 * MINUTE + 50);
    const late = await nextCheck(order(States.SHIPPED, 40), 'WAIT_BUYER_ACCEPT_GOODS');
    expect(late.inMs).toBeGreaterThanOrEqual(6 * 3600_000 - 50);
    expect(late.inMs).toBeLessThanOrEqual(12 * 3600_000 + 50);
  });

  it('when the supplier reports the order paid, then it becomes PURCHASED and its first tracking look is a tracking interval away', async () => {
    let written: { to: State; patch: FulfillmentPatch; fence: number | undefined } | undefined;
    const api = { getOrder: async () => ({ status: 'WAIT_SELLER_SEND_GOODS', amount: { amount: '12.34', currency: 'USD' }, endReasons: [] }) } as unknown as SupplierApi;
    const deps = {
      supplierFor: async () => api,
      repo: {
        transaction: async (fn: (trx: unknown) => Promise<unknown>) => fn({}),
        recordSupplierResponse: async () => undefined,
        transition: async (_trx: unknown, _orderId: string, _from: State[], to: State, _cause: string, _details: unknown, patch: FulfillmentPatch, fence?: number) => {
          written = { to, patch, fence };
          return true;
        },
      },
      outbox: { row: () => ({}), written: () => undefined },
      metrics: { purchases: { inc: () => undefined }, orderToPurchase: { observe: () => undefined } },
      settings,
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    } as unknown as FulfillmentDeps;
    const before = Date.now();
    await runFollowUp(deps, order(States.AWAITING_PAYMENT));
    expect(written).toMatchObject({ to: States.PURCHASED, fence: 7 });
    expect(written!.patch.nextRunAt!.getTime() - before).toBeGreaterThanOrEqual(30 * MINUTE - 50);
  });
});
