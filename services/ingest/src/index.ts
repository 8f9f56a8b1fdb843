export { ingestService } from './service';
export { configSchema } from './config';
