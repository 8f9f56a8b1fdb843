import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, createKafka, createLogger, startService, type RunningService } from '../src';
import { dropSchema, testEnv, waitFor } from '../src/testing';
import { startPrivateBroker, type PrivateBroker } from '../src/private-broker';
import { fixtureService } from './fixture-service';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };

/**
 * Kafka authentication for real: a private KRaft broker whose only client listener is SASL_PLAINTEXT with SCRAM-SHA-512
 * (the user is created when its storage is formatted). The shared broker on 9092 stays as it is.
 */
describe('Kafka with SASL/SCRAM-SHA-512', () => {
  let broker: PrivateBroker | undefined;
  const schemas: string[] = [];
  let service: RunningService | undefined;
  const password = randomBytes(18).toString('hex');

  beforeAll(async () => {
    broker = await startPrivateBroker({ sasl: { username: 'postsale-svc', password } });
  }, 90_000);

  afterAll(async () => {
    await service?.stop().catch(() => undefined);
    await broker?.stop();
    for (const schema of schemas) await dropSchema(schema);
  });

  const envFor = (overrides: Record<string, string>) => {
    const env = testEnv('sasl', { ...broker!.env, ...overrides });
    schemas.push(env.DB_SCHEMA!);
    return env;
  };

  it('a service in production mode with the right credentials runs the outbox → Kafka → consumer flow', async () => {
    service = await startService(fixtureService, envFor({ NODE_ENV: 'production' }));
    const orderIds = Array.from({ length: 5 }, () => `o-${randomUUID()}`);
    for (const orderId of orderIds) {
      const response = await fetch(`${service.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ orderId }) });
      expect(response.status).toBe(201);
    }
    const { db } = service.ctx;
    await waitFor(async () => Number((await db('effects').count<{ n: string }[]>('* as n'))[0]!.n) === orderIds.length, {
      timeoutMs: 30_000, description: 'every event published over SASL and consumed back',
    });
    expect((await db('effects').pluck('order_id')).sort()).toEqual([...orderIds].sort());
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
  }, 90_000);

  it('production refuses to start without Kafka credentials, before touching anything', async () => {
    const { KAFKA_SASL_MECHANISM: _m, KAFKA_SASL_USERNAME: _u, KAFKA_SASL_PASSWORD: _p, ...withoutSasl } = envFor({ NODE_ENV: 'production' });
    await expect(startService(fixtureService, withoutSasl)).rejects.toThrow(ConfigError);
    await expect(startService(fixtureService, withoutSasl)).rejects.toThrow(/KAFKA_SASL_MECHANISM: required in production/);
  });

  // (The refusal is shown on the clients createKafka makes, not on a whole failed startService, which would leave its
  // database pool open in this process.)
  it('a client with wrong or no credentials is refused; with them it is served', async () => {
    const logger = createLogger('sasl-test', 'silent');
    const wrong = createKafka({ clientId: 'wrong', brokers: broker!.brokers, logger, security: { ...broker!.env, KAFKA_SASL_PASSWORD: `${password}x` } }).admin();
    await expect(wrong.connect()).rejects.toThrow(/authentication failed/i);
    await wrong.disconnect().catch(() => undefined);

    const unknownUser = createKafka({ clientId: 'unknown', brokers: broker!.brokers, logger, security: { ...broker!.env, KAFKA_SASL_USERNAME: 'nobody' } }).admin();
    await expect(unknownUser.connect()).rejects.toThrow(/authentication failed/i);
    await unknownUser.disconnect().catch(() => undefined);

    // No SASL at all: the broker answers only the handshake-level ApiVersions and closes the connection on anything else.
    const anonymous = new Kafka({ clientId: 'anonymous', brokers: broker!.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 100 }, connectionTimeout: 2000, requestTimeout: 5000 }).admin();
    const outcome = await anonymous.connect().then(() => anonymous.listTopics()).then(() => 'served', (error: Error) => error.name);
    await anonymous.disconnect().catch(() => undefined);
    expect(outcome).not.toBe('served');

    const right = createKafka({ clientId: 'right', brokers: broker!.brokers, logger, security: broker!.env }).admin();
    try {
      await right.connect();
      await waitFor(async () => (await right.describeCluster()).brokers.length === 1, { timeoutMs: 10_000, description: 'the authenticated client is served' });
    } finally {
      await right.disconnect();
    }
  }, 60_000);
});
