export { salesService } from './service';
export { configSchema } from './config';
