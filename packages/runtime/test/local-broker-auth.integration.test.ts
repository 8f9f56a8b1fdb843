import { Kafka, logLevel } from 'kafkajs';
import { createKafka, createLogger, localInfraEnv, localKafkaCredentials } from '../src';

/**
 * The local stack's broker (deploy/local/infra.sh, the one `npm test` runs on; POSTSALE_KAFKA_PORT picks a second one)
 * takes only SASL/SCRAM-SHA-512, with the dev user of deploy/local/kafka-dev.env that localInfraEnv() hands to every
 * local client.
 */
describe("the local stack's Kafka broker", () => {
  const infra = localInfraEnv();
  const brokers = infra.KAFKA_BROKERS!.split(',');
  const logger = createLogger('local-broker-auth', 'silent');

  it('localInfraEnv() gives every local client the dev SCRAM user, unless the environment names its own', () => {
    expect(localKafkaCredentials()).toEqual({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: expect.any(String), KAFKA_SASL_PASSWORD: expect.any(String) });
    expect(localInfraEnv({})).toMatchObject({ KAFKA_BROKERS: '127.0.0.1:9092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7', ...localKafkaCredentials() });
    // a second stack's ports, as infra.sh reads them
    expect(localInfraEnv({ POSTSALE_KAFKA_PORT: '19092', POSTSALE_REGISTRY_PORT: '18081' })).toMatchObject({
      KAFKA_BROKERS: '127.0.0.1:19092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7',
    });
    // another broker's credentials replace the dev user entirely (no mixing of the two)
    const own = localInfraEnv({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'me', KAFKA_SASL_PASSWORD: 'pw' });
    expect(own).toMatchObject({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'me', KAFKA_SASL_PASSWORD: 'pw' });
    expect(localInfraEnv({ KAFKA_SSL: 'true' })).not.toHaveProperty('KAFKA_SASL_USERNAME');
  });

  it('an anonymous client is refused, a wrong password fails authentication, the dev user is served', async () => {
    // No SASL at all: the listener answers only the handshake-level ApiVersions and closes the connection on anything else.
    const anonymous = new Kafka({ clientId: 'anonymous', brokers, logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 100 }, connectionTimeout: 2000, requestTimeout: 5000 }).admin();
    const outcome = await anonymous.connect().then(() => anonymous.listTopics()).then(() => 'served', (error: Error) => error.name);
    await anonymous.disconnect().catch(() => undefined);
    expect(outcome).not.toBe('served');

    const wrong = createKafka({ clientId: 'wrong-password', brokers, logger, security: { ...infra, KAFKA_SASL_PASSWORD: `${infra.KAFKA_SASL_PASSWORD}x` } }).admin();
    await expect(wrong.connect()).rejects.toThrow(/authentication failed/i);
    await wrong.disconnect().catch(() => undefined);

    const dev = createKafka({ clientId: 'dev-user', brokers, logger, security: infra }).admin();
    try {
      await dev.connect();
      expect((await dev.describeCluster()).brokers.length).toBeGreaterThan(0);
    } finally {
      await dev.disconnect();
    }
  }, 60_000);
});
