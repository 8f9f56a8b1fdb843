import { Streams } from '@postsale/contracts';
import type { ServiceDefinition } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';

export const payoutsService: ServiceDefinition<typeof configSchema> = {
  name: 'payouts',
  configSchema,
  migrations,
  produces: [Streams.payouts],
  build() {
    return {};
  },
};
