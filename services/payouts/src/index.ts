export { payoutsService } from './service';
export { configSchema } from './config';
