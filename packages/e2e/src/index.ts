export * from './harness';
export * from './journey';
