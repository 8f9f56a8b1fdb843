import { runMain } from '@postsale/runtime';
import { fulfillmentService } from './service';

void runMain(fulfillmentService);
