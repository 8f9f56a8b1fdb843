import { runMain } from '@postsale/runtime';
import { ingestService } from './service';

void runMain(ingestService);
