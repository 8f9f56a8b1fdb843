import { runMain } from '@postsale/runtime';
import { payoutsService } from './service';

void runMain(payoutsService);
