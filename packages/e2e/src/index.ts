export * from './harness';
export * from './journey';
export * from './prometheus';
export * from './replay';
