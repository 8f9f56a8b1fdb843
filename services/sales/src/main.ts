import { runMain } from '@postsale/runtime';
import { salesService } from './service';

void runMain(salesService);
