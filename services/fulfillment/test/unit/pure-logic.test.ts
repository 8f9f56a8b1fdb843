import { signAliExpressRequest } from '@postsale/sandbox';
import { aliExpressSignature } from '../../src/clients/aliexpress-sign';
import { configSchema, isSandboxUrl } from '../../src/config';
import { retryDelayMs } from '@postsale/runtime';
import { outOrderIdFor } from '../../src/domain/out-order-id';

describe('AliExpress request signature', () => {
  it('matches the sandbox verifier for parameters with mixed case, underscores and JSON values', () => {
    const params = {
      method: 'aliexpress.ds.order.create',
      app_key: '501001',
      access_token: '50000abc',
      timestamp: '1700000000000',
      sign_method: 'sha256',
      Zeta: 'upper sorts first',
      param_place_order_request4_open_api_d_t_o: JSON.stringify({ out_order_id: 'PS1', product_items: [{ product_id: '1' }] }),
    };
    expect(aliExpressSignature(params, 'secret-1')).toBe(signAliExpressRequest(params, 'secret-1'));
    expect(aliExpressSignature(params, 'secret-1')).toMatch(/^[0-9A-F]{64}$/);
    expect(aliExpressSignature(params, 'secret-2')).not.toBe(aliExpressSignature(params, 'secret-1'));
  });
});

describe('backoff', () => {
  it('grows exponentially, stays within [ceiling/2, ceiling] and respects the cap', () => {
    expect(retryDelayMs(1, 100, 10_000, () => 0)).toBe(50);
    expect(retryDelayMs(1, 100, 10_000, () => 1)).toBe(100);
    expect(retryDelayMs(4, 100, 10_000, () => 1)).toBe(800);
    expect(retryDelayMs(30, 100, 10_000, () => 1)).toBe(10_000);
    expect(retryDelayMs(30, 100, 10_000, () => 0)).toBe(5_000);
  });
});

describe('out_order_id', () => {
  it('is derived from the order id alone: the same order always gets the same key, different orders different keys', () => {
    expect(outOrderIdFor('order-1')).toBe(outOrderIdFor('order-1'));
    expect(outOrderIdFor('order-1')).not.toBe(outOrderIdFor('order-2'));
    expect(outOrderIdFor('order-1')).toMatch(/^PS[0-9A-F]{30}$/);
  });
});

describe('supplier mode', () => {
  const base = {
    NODE_ENV: 'test', PORT: '0', DATABASE_URL: 'postgres://x@127.0.0.1/db', KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r:8081',
    ADMIN_TOKEN: 'x'.repeat(20), CREDENTIALS_KEY: Buffer.alloc(32, 1).toString('base64'),
  };
  const live = { ALIEXPRESS_GATEWAY_URL: 'https://api-sg.aliexpress.com/sync', ALIEXPRESS_WEB_URL: 'https://www.aliexpress.com', EBAY_API_BASE_URL: 'https://api.ebay.com', MERCADOLIBRE_API_BASE_URL: 'https://api.mercadolibre.com' };

  it('live mode accepts the real hosts', () => {
    expect(configSchema.safeParse({ ...base, ...live, SUPPLIER_MODE: 'live' }).success).toBe(true);
  });

  it('live mode refuses loopback and sandbox URLs; sandbox mode accepts them', () => {
    for (const url of ['http://127.0.0.1:4000/sync', 'https://localhost/sync', 'https://api.sandbox.ebay.com']) {
      const result = configSchema.safeParse({ ...base, ...live, ALIEXPRESS_GATEWAY_URL: url, SUPPLIER_MODE: 'live' });
      expect(result.success).toBe(false);
      expect(configSchema.safeParse({ ...base, ...live, ALIEXPRESS_GATEWAY_URL: url, SUPPLIER_MODE: 'sandbox' }).success).toBe(true);
    }
    expect(isSandboxUrl('https://api-sg.aliexpress.com/sync')).toBe(false);
  });

  it('the mode must be stated explicitly', () => {
    expect(configSchema.safeParse({ ...base, ...live }).success).toBe(false);
  });
});
