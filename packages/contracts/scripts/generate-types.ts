/**
 * Generates src/types.generated.ts from schemas/*.avsc. Run `npm run generate -w @postsale/contracts` after editing a
 * schema; a test fails when the committed file is stale, so types and schemas cannot drift.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSchema, SCHEMA_DIR } from '../src/schemas';

type Avro = string | Avro[] | { [k: string]: unknown };

export function generateTypes(): string {
  const declarations = new Map<string, string>();
  const envelopes: string[] = [];

  const declare = (name: string, body: string) => {
    const existing = declarations.get(name);
    if (existing !== undefined && existing !== body) {
      throw new Error(`two different Avro types share the short name ${name}; give one another name`);
    }
    declarations.set(name, body);
  };

  const shortName = (name: string) => name.split('.').pop() as string;

  const tsType = (t: Avro): string => {
    if (typeof t === 'string') {
      switch (t) {
        case 'string': return 'string';
        case 'int': case 'long': case 'float': case 'double': return 'number';
        case 'boolean': return 'boolean';
        case 'null': return 'null';
        case 'bytes': return 'Buffer';
        default: return shortName(t); // a named type declared earlier
      }
    }
    if (Array.isArray(t)) return t.map(tsType).join(' | ');
    switch (t.type) {
      case 'record': {
        const fields = (t.fields as Array<{ name: string; type: Avro; doc?: string; default?: unknown; tsOptional?: boolean }>).map((f) => {
          const doc = f.doc ? `  /** ${f.doc} */\n` : '';
          // A field added to a record producers already build (`"tsOptional": true`, null default) may be left out
          // when building; decoding always fills it (null when absent).
          const optional = f.tsOptional === true && f.default === null ? '?' : '';
          return `${doc}  ${f.name}${optional}: ${tsType(f.type)};`;
        });
        declare(shortName(t.name as string), `export interface ${shortName(t.name as string)} {\n${fields.join('\n')}\n}`);
        return shortName(t.name as string);
      }
      case 'enum': {
        const name = shortName(t.name as string);
        declare(name, `export type ${name} = ${(t.symbols as string[]).map((s) => `'${s}'`).join(' | ')};`);
        return name;
      }
      case 'array': return `Array<${tsType(t.items as Avro)}>`;
      default: return tsType(t.type as Avro); // primitive with a logical type
    }
  };

  for (const file of readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.avsc')).sort()) {
    const schema = loadSchema(file);
    const fields = schema.fields as Array<{ name: string; type: Avro }>;
    const payload = fields.find((f) => f.name === 'payload');
    if (!payload) {
      // a plain record topic (not an event stream), e.g. the compacted subject keys: its record type only
      tsType(schema as unknown as Avro);
      continue;
    }
    if (!Array.isArray(payload.type)) throw new Error(`${file}: an event envelope needs a payload union`);
    const variants = payload.type.map((member) => {
      const name = tsType(member);
      return `  | (EventEnvelope & { type: '${name}'; payload: ${name} })`;
    });
    const envelopeName = schema.name;
    envelopes.push(`/** ${file}: ${String(schema.doc ?? '')} */\nexport type ${envelopeName} =\n${variants.join('\n')};`);
    envelopes.push(`export type ${envelopeName}Type = ${envelopeName}['type'];`);
  }

  return [
    '// Generated from packages/contracts/schemas/*.avsc by scripts/generate-types.ts. Do not edit by hand.',
    '',
    '/** Fields every event carries, whatever its type. */',
    'export interface EventEnvelope {',
    '  eventId: string;',
    '  orderId: string;',
    '  sellerId: string;',
    '  /** epoch milliseconds */',
    '  occurredAt: number;',
    '  causationId: string | null;',
    '}',
    '',
    ...declarations.values(),
    '',
    ...envelopes,
    '',
  ].join('\n');
}

if (require.main === module) {
  writeFileSync(join(__dirname, '..', 'src', 'types.generated.ts'), generateTypes());
  console.log('wrote src/types.generated.ts');
}
