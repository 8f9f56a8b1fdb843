// The CLI as a library: what the e2e suite and the benchmark drive (entry points — stack, demo, postsale — are not here).
export * from './admin-client';
export * from './demo-orders';
export * from './demo-seller';
export * from './kafka-tools';
export * from './operator-config';
export * from './pipeline';
export * from './processes';
export * from './commands/dlq';
export * from './commands/integrity';
export * from './commands/orders';
export * from './commands/replay';
export * from './commands/stream-integrity';
export * from './commands/topics';
export * from './commands/replay-dry-run';
export * from './timeline';
export * from './mask';
