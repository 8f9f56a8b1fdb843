import { loadSchema, type AvroSchema } from './schemas';
import type { FulfillmentEvent, OrderEvent, PayoutEvent, SaleEvent } from './types.generated';

/**
 * The single list of streams. One topic per producing service; its value is an envelope whose payload is a union of
 * that service's event records, so every event about one order (key = orderId) stays in order on one partition.
 */
export interface StreamDefinition<E> {
  /** logical name, e.g. 'orders' */
  stream: string;
  /** the topic name before any namespace: <domain>.<stream>.v<N> */
  baseName: string;
  producer: 'ingest' | 'fulfillment' | 'sales' | 'payouts';
  partitions: number;
  /** what the key is; always the order id */
  key: 'orderId';
  schemaFile: string;
  schema: AvroSchema;
  retentionMs: number;
  /** phantom field carrying the event type */
  readonly _event?: E;
}

const WEEK_MS = 7 * 24 * 3600 * 1000;
// Long retention: replay from offset 0 is a supported operation (postsale replay), so history must stay.
const RETENTION_MS = 90 * 24 * 3600 * 1000;

function stream<E>(def: Omit<StreamDefinition<E>, 'schema' | 'key'>): StreamDefinition<E> {
  return { ...def, key: 'orderId', schema: loadSchema(def.schemaFile) };
}

export const Streams = {
  orders: stream<OrderEvent>({
    stream: 'orders', baseName: 'postsale.orders.v1', producer: 'ingest', partitions: 6,
    schemaFile: 'orders.v1.avsc', retentionMs: RETENTION_MS,
  }),
  fulfillment: stream<FulfillmentEvent>({
    stream: 'fulfillment', baseName: 'postsale.fulfillment.v1', producer: 'fulfillment', partitions: 6,
    schemaFile: 'fulfillment.v1.avsc', retentionMs: RETENTION_MS,
  }),
  sales: stream<SaleEvent>({
    stream: 'sales', baseName: 'postsale.sales.v1', producer: 'sales', partitions: 6,
    schemaFile: 'sales.v1.avsc', retentionMs: RETENTION_MS,
  }),
  payouts: stream<PayoutEvent>({
    stream: 'payouts', baseName: 'postsale.payouts.v1', producer: 'payouts', partitions: 6,
    schemaFile: 'payouts.v1.avsc', retentionMs: RETENTION_MS,
  }),
} as const;

export type StreamName = keyof typeof Streams;
export type AnyStream = (typeof Streams)[StreamName];
export type EventOf<S> = S extends StreamDefinition<infer E> ? E : never;
export type PipelineEvent = OrderEvent | FulfillmentEvent | SaleEvent | PayoutEvent;

export const DLQ_RETENTION_MS = 4 * WEEK_MS;

/**
 * A namespace prefixes every topic (and so every registry subject): tests use a unique one each, a deployment uses
 * none. Topic names are always derived here, never written as literals in a service.
 */
export function topicName(stream: AnyStream | StreamDefinition<unknown>, namespace = ''): string {
  return namespace ? `${namespace}.${stream.baseName}` : stream.baseName;
}

export function dlqTopicName(stream: AnyStream | StreamDefinition<unknown>, namespace = ''): string {
  return `${topicName(stream, namespace)}.dlq`;
}

/** Confluent TopicNameStrategy: the value schema of topic T is registered under subject `T-value`. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

export function allStreams(): AnyStream[] {
  return Object.values(Streams);
}

export function streamForTopic(topic: string, namespace = ''): AnyStream | undefined {
  return allStreams().find((s) => topicName(s, namespace) === topic || dlqTopicName(s, namespace) === topic);
}
