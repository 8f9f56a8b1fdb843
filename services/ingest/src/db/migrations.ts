import type { Migration } from '@postsale/runtime';

/** ingest's own tables, in its own schema. Append new migrations; never edit one that has shipped. */
export const migrations: Migration[] = [];
