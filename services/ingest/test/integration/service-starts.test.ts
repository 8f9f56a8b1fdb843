import { randomBytes } from 'node:crypto';
import { dropSchema, startService, testEnv, type RunningService } from '@postsale/runtime';
import { ingestService } from '../../src/service';

describe('ingest service process', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('ingest', { CREDENTIALS_KEY: randomBytes(32).toString('base64') });
    service = await startService(ingestService, env);
  });
  afterAll(async () => {
    await service.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  it('starts, connects to its database and Kafka, and answers /healthz, /readyz and /metrics', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${service.url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', kafka: 'ok' } });
    expect(await (await fetch(`${service.url}/metrics`)).text()).toContain('service="ingest"');
  });
});
