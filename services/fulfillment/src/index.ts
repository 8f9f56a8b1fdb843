export { fulfillmentService } from './service';
export { configSchema } from './config';
