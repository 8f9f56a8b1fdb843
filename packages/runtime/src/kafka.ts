import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners, type KafkaConfig, type LogEntry, type ProducerConfig } from 'kafkajs';
import { kafkaSecurityProblems, kafkaSecuritySchema } from './config';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/**
 * The `sasl` and `ssl` options of a Kafka client, from the KAFKA_SASL_* / KAFKA_SSL* variables of a config (or a raw
 * environment). The one place where the product decides how it authenticates to Kafka.
 */
export function kafkaClientSecurity(source: Record<string, unknown> = {}): Pick<KafkaConfig, 'sasl' | 'ssl'> {
  const parsed = kafkaSecuritySchema.safeParse(source);
  if (!parsed.success) throw new Error(`invalid Kafka security settings: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  const c = parsed.data;
  const problems = kafkaSecurityProblems(c, undefined);
  if (problems.length > 0) throw new Error(`invalid Kafka security settings: ${problems.map(([n, m]) => `${n}: ${m}`).join('; ')}`);
  const security: Pick<KafkaConfig, 'sasl' | 'ssl'> = {};
  if (c.KAFKA_SSL) security.ssl = c.KAFKA_SSL_CA_FILE ? { ca: [readFileSync(c.KAFKA_SSL_CA_FILE, 'utf8')], rejectUnauthorized: true } : { rejectUnauthorized: true };
  if (c.KAFKA_SASL_MECHANISM) {
    security.sasl = { mechanism: c.KAFKA_SASL_MECHANISM, username: c.KAFKA_SASL_USERNAME!, password: c.KAFKA_SASL_PASSWORD! } as KafkaConfig['sasl'];
  }
  return security;
}

/**
 * The same settings as `key=value` properties for Kafka's own Java tools (the bench's ProducerPerformance), so they log
 * in exactly as the product's clients do.
 */
export function kafkaJavaClientProperties(source: Record<string, unknown> = {}): string[] {
  kafkaClientSecurity(source); // the same validation
  const c = kafkaSecuritySchema.parse(source);
  const props = [`security.protocol=${c.KAFKA_SASL_MECHANISM ? (c.KAFKA_SSL ? 'SASL_SSL' : 'SASL_PLAINTEXT') : c.KAFKA_SSL ? 'SSL' : 'PLAINTEXT'}`];
  if (c.KAFKA_SSL_CA_FILE) props.push('ssl.truststore.type=PEM', `ssl.truststore.location=${c.KAFKA_SSL_CA_FILE}`);
  if (c.KAFKA_SASL_MECHANISM) {
    const login = c.KAFKA_SASL_MECHANISM === 'plain' ? 'org.apache.kafka.common.security.plain.PlainLoginModule' : 'org.apache.kafka.common.security.scram.ScramLoginModule';
    props.push(`sasl.mechanism=${c.KAFKA_SASL_MECHANISM.toUpperCase()}`,
      `sasl.jaas.config=${login} required username=${JSON.stringify(c.KAFKA_SASL_USERNAME)} password=${JSON.stringify(c.KAFKA_SASL_PASSWORD)};`);
  }
  return props;
}

/**
 * kafkajs with its logs routed into the service's pino logger. `security` is the caller's config (or environment):
 * its KAFKA_SASL_* and KAFKA_SSL* variables decide authentication and TLS (none when absent; the local stack's broker
 * needs its dev user, which localInfraEnv() and testEnv() carry).
 */
export function createKafka(options: { clientId: string; brokers: string[]; logger: Logger; security?: Record<string, unknown> }): Kafka {
  const toPino = (level: logLevel) => ({ namespace, log }: LogEntry) => {
    const { message, ...rest } = log;
    const target = options.logger.child({ component: `kafkajs.${namespace}` });
    if (level === logLevel.ERROR) target.error(rest, message);
    else if (level === logLevel.WARN) target.warn(rest, message);
    else target.debug(rest, message);
  };
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...kafkaClientSecurity(options.security),
    logLevel: logLevel.WARN,
    logCreator: toPino,
    retry: { initialRetryTime: 200, retries: 8 },
  });
}

/**
 * Settings for every producer: idempotent (no duplicates from the producer's own retries), one request in flight (order
 * per partition), retries bounded by time rather than count (kafkajs warns that a count limit weakens idempotence),
 * and the default murmur2 partitioner, so one key lands on one partition whoever produces it.
 */
export function producerConfig(): ProducerConfig {
  return {
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 30_000, initialRetryTime: 200 },
  };
}

/** kafkajs's request queue, the part of it the fix below touches (kafkajs ships its sources; no types for them) */
interface KafkaJsRequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

let idleQueueChecksStopped = false;
/**
 * kafkajs 2.2.4 (unmaintained; tulios/kafkajs#1704, #1751) re-arms each broker connection's request-queue check after
 * every check, even with nothing pending and nothing throttled, with a negative delay that Node runs after 1 ms: every
 * open connection spins a 1 ms timer for as long as it is open — measured here at ≈ 9 ms of CPU per second per
 * connection, idle or not — and Node 24 prints a TimeoutNegativeWarning for each. With nothing pending and no
 * throttle there is nothing to check for: `push` sends a new request at once or queues it and schedules a check, and
 * every answer checks the queue itself. So that case schedules nothing; every other case is kafkajs's own.
 */
export function stopIdleRequestQueueChecks(): void {
  if (idleQueueChecksStopped) return;
  idleQueueChecksStopped = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kafkajs's internal module, not in its typings
  const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: KafkaJsRequestQueue };
  const schedule = RequestQueue.prototype.scheduleCheckPendingRequests;
  RequestQueue.prototype.scheduleCheckPendingRequests = function scheduleWhenThereIsSomethingToCheck(this: KafkaJsRequestQueue) {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
}
// At load: every kafkajs client in the process is fixed, ours and the ones tools and tests build with `new Kafka`.
stopIdleRequestQueueChecks();

/**
 * Counts the requests this service's Kafka clients send (produce, fetch, commit, heartbeat, metadata…), by kind, for
 * the benchmark's cost per order. kafkajs reports them only per producer/consumer/admin instance, so the factory
 * methods are wrapped once here, in our adapter.
 */
export function instrumentKafka(kafka: Kafka, metrics: Metrics): void {
  const requests = metrics.counter('kafka_requests_total', 'Requests sent to Kafka brokers', ['client', 'api']);
  const count = (client: string) => (event: { payload: { apiName: string } }) => requests.inc({ client, api: event.payload.apiName });
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (config) => {
    const instance = producer(config);
    instance.on(instance.events.REQUEST, count('producer'));
    return instance;
  };
  const consumer = kafka.consumer.bind(kafka);
  kafka.consumer = (config) => {
    const instance = consumer(config);
    instance.on(instance.events.REQUEST, count('consumer'));
    return instance;
  };
  const admin = kafka.admin.bind(kafka);
  kafka.admin = (config) => {
    const instance = admin(config);
    instance.on(instance.events.REQUEST, count('admin'));
    return instance;
  };
}
