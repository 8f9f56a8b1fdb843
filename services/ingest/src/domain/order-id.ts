// The order id is part of the contracts (every topic is keyed by it); ingest derives it from there.
export { orderIdFor } from '@postsale/contracts';
