import { randomBytes } from 'node:crypto';
import { dropSchema, startService, testEnv, type RunningService } from '@postsale/runtime';
import { fulfillmentService } from '../../src/service';

describe('fulfillment service process', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('fulfillment', {
      SUPPLIER_MODE: 'sandbox',
      CREDENTIALS_KEY: randomBytes(32).toString('base64'),
      ALIEXPRESS_GATEWAY_URL: 'http://127.0.0.1:9/sync',
      ALIEXPRESS_WEB_URL: 'http://127.0.0.1:9',
      EBAY_API_BASE_URL: 'http://127.0.0.1:9',
      MERCADOLIBRE_API_BASE_URL: 'http://127.0.0.1:9',
    });
    service = await startService(fulfillmentService, env);
  });
  afterAll(async () => {
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  it('starts, connects to its database and Kafka, and answers /healthz, /readyz and /metrics', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${service.url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', kafka: 'ok' } });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain('service="fulfillment"');
    expect(metrics).toContain('fulfillment_review_queue_size');
  });

  it('refuses to start in live mode with sandbox URLs', async () => {
    await expect(startService(fulfillmentService, { ...env, SUPPLIER_MODE: 'live', DB_SCHEMA: `${env.DB_SCHEMA}_live` })).rejects.toThrow(/SUPPLIER_MODE=live refuses/);
  });
});
