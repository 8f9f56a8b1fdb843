import { kafkaClientSecurity } from '@postsale/runtime';
import { loadOperatorConfig } from '../src/operator-config';

describe('operator config: Kafka authentication', () => {
  it('the CLI\'s Kafka client authenticates with the operator environment\'s SASL settings', () => {
    const config = loadOperatorConfig({ KAFKA_BROKERS: 'kafka-0:9093', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'operator-7', KAFKA_SASL_PASSWORD: 'op-password-123', KAFKA_SSL: 'true' });
    expect(kafkaClientSecurity(config)).toEqual({ sasl: { mechanism: 'scram-sha-512', username: 'operator-7', password: 'op-password-123' }, ssl: { rejectUnauthorized: true } });
  });

  it('half-configured SASL is refused rather than silently connecting without it', () => {
    const config = loadOperatorConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'operator-7', KAFKA_SASL_PASSWORD: '' });
    expect(() => kafkaClientSecurity(config)).toThrow(/KAFKA_SASL_PASSWORD/);
  });
});
