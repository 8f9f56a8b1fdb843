export * from './types.generated';
export * from './topics';
export * from './subject-keys';
export * from './codec';
export * from './topic-admin';
export { loadSchema, SCHEMA_DIR, type AvroSchema } from './schemas';
export * from './money';
export { orderIdFor } from './order-id';
export * from './new-event';
