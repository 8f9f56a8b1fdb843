import { z } from 'zod';
import { baseConfigSchema } from '@postsale/runtime';

/** ingest's environment: the shared variables plus its own. Parsed first; a bad value stops the process. */
export const configSchema = baseConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('ingest'),
});
export type IngestConfig = z.infer<typeof configSchema>;
