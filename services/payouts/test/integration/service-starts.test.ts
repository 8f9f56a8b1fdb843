import { dropSchema, startService, testEnv, type RunningService } from '@postsale/runtime';
import { payoutsService } from '../../src/service';

describe('payouts service process', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('payouts', { PAYOUTS_MODE: 'dry-run' });
    service = await startService(payoutsService, env);
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
    expect(metrics).toContain('service="payouts"');
    expect(metrics).toContain('payouts_reconciliation_lag_seconds');
  });
});
