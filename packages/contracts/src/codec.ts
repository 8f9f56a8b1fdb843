import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { AnyStream, StreamDefinition } from './topics';
import { topicName, valueSubject } from './topics';
import { SubjectKeys, subjectKeysTopic } from './subject-keys';
import type { EventEnvelope, SubjectKey } from './types.generated';

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
    return this.registry.encode(id, toAvroRecord(stream, event));
  }

  /** The compacted subject-keys topic in this codec's namespace. */
  subjectKeysTopic(): string {
    return subjectKeysTopic(this.namespace);
  }

  /** Encodes a record of the compacted subject-keys topic (a plain record, not an event envelope). */
  async encodeSubjectKey(record: SubjectKey): Promise<Buffer> {
    const topic = this.subjectKeysTopic();
    let id = this.schemaIds.get(topic);
    if (id === undefined) {
      ({ id } = await this.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(SubjectKeys.schema) }, { subject: valueSubject(topic) }));
      this.schemaIds.set(topic, id);
    }
    return this.registry.encode(id, record);
  }

  async decodeSubjectKey(value: Buffer): Promise<SubjectKey> {
    return (await this.registry.decode(value)) as SubjectKey;
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

/** The Avro form of an event: the payload wrapped in its union branch's full name. */
export function toAvroRecord(stream: AnyStream | StreamDefinition<unknown>, event: TypedEvent): Record<string, unknown> {
  const { type, payload, ...envelope } = event;
  return { ...envelope, payload: { [`${stream.schema.namespace}.${type}`]: payload } };
}

const avroTypes = new Map<string, avro.Type>();

/**
 * Checks an event against its stream's schema without a registry round trip. Producers call it before writing to the
 * outbox, so a malformed event fails the business transaction instead of sitting unpublishable in the outbox.
 */
export function schemaErrors(stream: AnyStream | StreamDefinition<unknown>, event: TypedEvent): string[] {
  let type = avroTypes.get(stream.baseName);
  if (!type) {
    type = avro.Type.forSchema(stream.schema as avro.Schema);
    avroTypes.set(stream.baseName, type);
  }
  const errors: string[] = [];
  type.isValid(toAvroRecord(stream, event), {
    errorHook: (path, value) => errors.push(`${path.join('.') || '(root)'}: ${JSON.stringify(value)}`),
  });
  return errors;
}
