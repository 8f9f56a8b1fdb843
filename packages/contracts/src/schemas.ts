import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The .avsc files are the source of truth; everything else (types, topics, codecs) is derived from them. */
export const SCHEMA_DIR = join(__dirname, '..', 'schemas');

export type AvroSchema = Record<string, unknown> & { name: string; namespace: string };

export function loadSchema(file: string): AvroSchema {
  return JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')) as AvroSchema;
}
