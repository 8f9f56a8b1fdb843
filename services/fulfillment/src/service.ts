import { Streams } from '@postsale/contracts';
import type { ServiceDefinition } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';

export const fulfillmentService: ServiceDefinition<typeof configSchema> = {
  name: 'fulfillment',
  configSchema,
  migrations,
  produces: [Streams.fulfillment],
  build() {
    return {};
  },
};
