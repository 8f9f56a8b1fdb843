export { ingestService } from './service';
export { configSchema } from './config';
export { rotateCredentials } from './rotate-credentials';
