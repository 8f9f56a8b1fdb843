import { Streams } from '@postsale/contracts';
import type { ServiceDefinition } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';

export const ingestService: ServiceDefinition<typeof configSchema> = {
  name: 'ingest',
  configSchema,
  migrations,
  produces: [Streams.orders],
  build() {
    return {};
  },
};
