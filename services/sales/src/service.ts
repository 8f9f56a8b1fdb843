import { Streams } from '@postsale/contracts';
import type { ServiceDefinition } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';

export const salesService: ServiceDefinition<typeof configSchema> = {
  name: 'sales',
  configSchema,
  migrations,
  produces: [Streams.sales],
  build() {
    return {};
  },
};
