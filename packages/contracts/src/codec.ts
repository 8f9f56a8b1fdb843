import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { AnyStream, StreamDefinition } from './topics';
import { topicName, valueSubject } from './topics';
import type { EventEnvelope } from './types.generated';

/**
 * Encodes pipeline events to Confluent wire format (magic byte + schema id + Avro) and back, through a real
 * Confluent-compatible registry. Avro represents the payload union as `{ "<full record name>": {...} }`; in
 * TypeScript an event is `{ ...envelope, type: '<record name>', payload }`. This file is the only place that knows both.
 */
export type TypedEvent = EventEnvelope & { type: string; payload: unknown };

export class EventCodec {
  private readonly schemaIds = new Map<string, number>();

  constructor(
    readonly registry: SchemaRegistry,
    private readonly namespace = '',
  ) {}

  static connect(registryUrl: string, namespace = ''): EventCodec {
    return new EventCodec(new SchemaRegistry({ host: registryUrl }), namespace);
  }

  topic(stream: AnyStream | StreamDefinition<unknown>): string {
    return topicName(stream, this.namespace);
  }

  /** Registers the stream's value schema (BACKWARD compatibility; idempotent) and remembers its id for encoding. */
  async register(stream: AnyStream | StreamDefinition<unknown>): Promise<number> {
    const topic = this.topic(stream);
    const known = this.schemaIds.get(topic);
    if (known !== undefined) return known;
    const { id } = await this.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(stream.schema) },
      { subject: valueSubject(topic) },
    );
    this.schemaIds.set(topic, id);
    return id;
  }

  async encode(stream: AnyStream | StreamDefinition<unknown>, event: TypedEvent): Promise<Buffer> {
    const id = await this.register(stream);
    const { type, payload, ...envelope } = event;
    const namespace = stream.schema.namespace;
    return this.registry.encode(id, { ...envelope, payload: { [`${namespace}.${type}`]: payload } });
  }

  /** Decodes any pipeline event; the schema comes from the id in the message, so old messages decode too. */
  async decode<E extends TypedEvent = TypedEvent>(value: Buffer): Promise<E> {
    const record = (await this.registry.decode(value)) as Record<string, unknown> & { payload: Record<string, unknown> };
    const { payload, ...envelope } = record;
    const [fullName, inner] = Object.entries(payload)[0] ?? [];
    if (!fullName) throw new Error('event payload union is empty');
    return { ...(envelope as unknown as EventEnvelope), type: fullName.split('.').pop() as string, payload: inner } as E;
  }
}
