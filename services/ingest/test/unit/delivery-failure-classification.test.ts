import { AppError, createLogger, Metrics } from '@postsale/runtime';
import type { Delivery } from '../../src/domain/records';
import { createIngestMetrics } from '../../src/metrics';
import { createDeliveryProcessor, DeliveryKinds, type ProcessDeps } from '../../src/domain/process-delivery.use-case';

/**
 * The delivery processor classifies a failure with the runtime's one classification: a refusal caused by the request
 * parks the delivery; anything that only says "unavailable" — even wrapped in an AppError marked permanent — is retried.
 */
function processorFailingWith(error: unknown) {
  const deliveries = { decideNow: jest.fn(async () => undefined), retryLater: jest.fn(async () => undefined) };
  const deps = {
    sellers: { accountAndOrder: async () => ({ account: { sellerId: 'seller-1', tokenSealed: 'sealed' }, order: undefined }) },
    deliveries,
    recorder: {},
    secrets: { open: () => 'token' },
    ebay: {
      getOrder: async () => {
        throw error;
      },
    },
    mercadolibre: {},
    paypal: {},
    logger: createLogger('ingest-test', 'error'),
    metrics: createIngestMetrics(new Metrics('ingest-test', { defaultMetrics: false })),
    retryDelayMs: () => 1000,
  } as unknown as ProcessDeps;
  return { processor: createDeliveryProcessor(deps), deliveries };
}

const delivery = {
  id: 'd1', marketplace: 'EBAY', kind: DeliveryKinds.ebayOrderConfirmation, dedupeKey: 'k', accountId: 'u1', externalOrderId: 'o1', orderId: null,
  status: 'pending', reason: null, detail: null, headers: {}, sourceIp: null, attempts: 0, receivedAt: new Date(),
  rawBody: JSON.stringify({ notification: { data: { user: { username: 'u1' }, order: { orderId: 'o1' } } } }),
} as unknown as Delivery;

describe('delivery processing: which failures park a delivery and which are retried', () => {
  it('when an AppError marked permanent wraps a refused connection, then the delivery is retried (pending), not parked', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { processor, deliveries } = processorFailingWith(new AppError('EBAY_READ_FAILED', 'reading the order failed', { retriable: false, cause: refused }));
    const outcome = await processor.process(delivery);
    expect(outcome).toMatchObject({ status: 'pending', reason: 'EBAY_READ_FAILED' });
    expect(deliveries.retryLater).toHaveBeenCalledTimes(1);
    expect(deliveries.decideNow).not.toHaveBeenCalled();
  });

  it('when the marketplace refuses the request (a permanent AppError with no outage behind it), then the delivery is parked with the code', async () => {
    const { processor, deliveries } = processorFailingWith(new AppError('EBAY_TOKEN_REFUSED', 'eBay refused the token', { retriable: false }));
    const outcome = await processor.process(delivery);
    expect(outcome).toMatchObject({ status: 'parked', reason: 'EBAY_TOKEN_REFUSED' });
    expect(deliveries.decideNow).toHaveBeenCalledWith('d1', 'parked', expect.objectContaining({ reason: 'EBAY_TOKEN_REFUSED' }));
    expect(deliveries.retryLater).not.toHaveBeenCalled();
  });

  it('when a database serialization failure escapes, then the delivery is retried', async () => {
    const { processor, deliveries } = processorFailingWith(Object.assign(new Error('could not serialize access'), { code: '40001' }));
    expect(await processor.process(delivery)).toMatchObject({ status: 'pending', reason: 'DB_CONFLICT' });
    expect(deliveries.retryLater).toHaveBeenCalledTimes(1);
  });
});
