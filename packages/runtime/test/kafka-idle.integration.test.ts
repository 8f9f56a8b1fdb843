import { ensureTopics, Streams, topicName } from '@postsale/contracts';
import { createKafka, createLogger, localInfraEnv, producerConfig, stopIdleRequestQueueChecks } from '../src';
import { testNamespace } from '../src/testing';

/** kafkajs's request queue as the fix in our adapter sees it (its own module; kafkajs ships no types for it) */
interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the module the adapter patches
const RequestQueueClass = require('kafkajs/src/network/requestQueue') as { prototype: RequestQueue };

/**
 * kafkajs 2.2.4 re-armed every broker connection's request-queue check every millisecond while idle (tulios/kafkajs
 * #1704): CPU spent for nothing, in every service, for as long as it runs. The adapter stops that case only.
 */
describe('Kafka connections at rest', () => {
  beforeAll(() => stopIdleRequestQueueChecks());

  const queue = (state: Partial<RequestQueue>): RequestQueue => Object.assign(Object.create(RequestQueueClass.prototype) as RequestQueue, {
    pending: [], throttledUntil: -1, throttleCheckTimeoutId: null, checkPendingRequests: () => undefined, ...state,
  });

  it('when nothing is pending and nothing throttled, no check is scheduled; a pending request or a throttle still schedules one', () => {
    const idle = queue({});
    idle.scheduleCheckPendingRequests();
    expect(idle.throttleCheckTimeoutId).toBeNull();

    const waiting = queue({ pending: [{}] });
    waiting.scheduleCheckPendingRequests();
    expect(waiting.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(waiting.throttleCheckTimeoutId!);

    const throttled = queue({ throttledUntil: Date.now() + 60_000 });
    throttled.scheduleCheckPendingRequests();
    expect(throttled.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(throttled.throttleCheckTimeoutId!);
  });

  it('when a producer on the real broker has sent and waits, its connections do not spin; it sends again when asked', async () => {
    const infra = localInfraEnv();
    const logger = createLogger('kafka-idle', 'silent');
    const kafka = createKafka({ clientId: 'kafka-idle', brokers: infra.KAFKA_BROKERS!.split(','), logger, security: infra });
    const namespace = testNamespace();
    await ensureTopics(kafka, { namespace, streams: [Streams.orders] });
    const topic = topicName(Streams.orders, namespace);
    const producer = kafka.producer(producerConfig());
    await producer.connect();
    const checks = jest.spyOn(RequestQueueClass.prototype, 'checkPendingRequests');
    try {
      await producer.send({ topic, messages: [{ key: 'k', value: 'first' }] });
      const after = checks.mock.calls.length;
      // A window of rest, not a wait for a condition: the stock queue checks ≈ 300 times in it per connection.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(checks.mock.calls.length - after).toBeLessThan(5);
      await expect(producer.send({ topic, messages: [{ key: 'k', value: 'second' }] })).resolves.toHaveLength(1);
    } finally {
      checks.mockRestore();
      await producer.disconnect();
    }
  });
});
