import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { EventCodec, schemaErrors, Streams, subjectKeysTopic, valueSubject, type AnyStream } from '../src';
import { generateTypes } from '../scripts/generate-types';
import { samples } from './samples';

const REGISTRY_URL = process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';

describe('contracts against the real schema registry', () => {
  const namespace = `test-${randomUUID().slice(0, 8)}`;
  const codec = EventCodec.connect(REGISTRY_URL, namespace);

  it.each(Object.keys(samples) as Array<keyof typeof samples>)(
    'every %s event round-trips through the registry unchanged',
    async (stream) => {
      for (const event of samples[stream]) {
        const bytes = await codec.encode(Streams[stream], event);
        expect(bytes[0]).toBe(0); // Confluent wire format: magic byte, then the schema id
        expect(await codec.decode(bytes)).toEqual(event);
      }
    },
  );

  it('registers every value schema with BACKWARD compatibility', async () => {
    for (const stream of Object.values(Streams) as AnyStream[]) {
      await codec.register(stream);
      const response = await fetch(`${REGISTRY_URL}/config/${valueSubject(codec.topic(stream))}`);
      expect(((await response.json()) as { compatibilityLevel: string }).compatibilityLevel).toBe('BACKWARD');
    }
  });

  it('accepts a backward-compatible change (new optional field) and rejects an incompatible one (new required field)', async () => {
    const stream = Streams.orders;
    const subject = valueSubject(codec.topic(stream));
    await codec.register(stream);
    const withField = (field: Record<string, unknown>) => ({
      ...stream.schema,
      fields: [...(stream.schema.fields as unknown[]), field],
    });
    const compatible = withField({ name: 'channelHint', type: ['null', 'string'], default: null });
    await expect(
      codec.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(compatible) }, { subject }),
    ).resolves.toHaveProperty('id');
    const incompatible = withField({ name: 'mandatoryNewThing', type: 'string' });
    await expect(
      codec.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(incompatible) }, { subject }),
    ).rejects.toThrow(/compatib|409|incompatible/i);
  });

  it('when OrderReceived gained sealedPersonal (crypto-shredding), then the registry accepts it over the schema without it (BACKWARD)', async () => {
    const stream = Streams.orders;
    const subject = valueSubject(`${namespace}.before-sealing`);
    const withoutSealing = JSON.parse(JSON.stringify(stream.schema)) as { fields: Array<{ name: string; type: unknown }> };
    const union = withoutSealing.fields.find((f) => f.name === 'payload')!.type as Array<{ name: string; fields: Array<{ name: string }> }>;
    const received = union.find((r) => r.name === 'OrderReceived')!;
    received.fields = received.fields.filter((f) => f.name !== 'sealedPersonal');
    await codec.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(withoutSealing) }, { subject });
    await fetch(`${REGISTRY_URL}/config/${subject}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'BACKWARD' }) });
    await expect(
      codec.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(stream.schema) }, { subject }),
    ).resolves.toHaveProperty('id');
    // an event written before the change decodes (with its writer's schema) as "nothing sealed": buyer data in clear
    const oldId = await codec.registry.getRegistryId(subject, 1);
    const { sealedPersonal: _dropped, ...oldPayload } = samples.orders[0]!.payload as Record<string, unknown>;
    const { type: _type, ...envelope } = samples.orders[0]!;
    const bytes = await codec.registry.encode(oldId, { ...envelope, payload: { 'postsale.orders.OrderReceived': oldPayload } });
    const decoded = JSON.parse(JSON.stringify((await codec.decode(bytes)).payload)) as Record<string, unknown>;
    expect(decoded.sealedPersonal ?? null).toBeNull();
    expect({ ...decoded, sealedPersonal: undefined }).toEqual(JSON.parse(JSON.stringify(oldPayload)));
  });

  it('a subject key and its erasure round-trip through the registry (compacted subject-keys topic)', async () => {
    const key = { subjectId: randomUUID(), sealedKey: 'v1:kek1:aXY=:dGFn:Ym9keQ==', erasedAt: null, occurredAt: 1_763_800_000_000 };
    const erased = { subjectId: key.subjectId, sealedKey: null, erasedAt: 1_763_900_000_000, occurredAt: 1_763_900_000_000 };
    for (const record of [key, erased]) {
      const bytes = await codec.encodeSubjectKey(record);
      expect(await codec.decodeSubjectKey(bytes)).toEqual(record);
    }
    const response = await fetch(`${REGISTRY_URL}/subjects/${valueSubject(subjectKeysTopic(namespace))}/versions`);
    expect(response.status).toBe(200);
  });

  it('rejects an event that does not match its schema instead of publishing it', async () => {
    const received = samples.orders[0]!;
    const broken = { ...received, payload: { ...received.payload, saleAmount: { amountMinor: 10.5, currency: 'USD' } } };
    expect(schemaErrors(Streams.orders, broken)).toEqual([expect.stringContaining('saleAmount.amountMinor')]);
    expect(schemaErrors(Streams.orders, received)).toEqual([]);
    await expect(codec.encode(Streams.orders, broken)).rejects.toThrow();
  });
});

describe('generated TypeScript types', () => {
  it('match the .avsc files (regenerate with npm run generate -w @postsale/contracts)', () => {
    const committed = readFileSync(join(__dirname, '..', 'src', 'types.generated.ts'), 'utf8');
    expect(committed).toBe(generateTypes());
  });
});
