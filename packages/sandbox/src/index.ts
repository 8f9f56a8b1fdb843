// Faithful local fakes of the outside systems, for tests, the demo and the benchmark.
export * from './fake-server';
export * from './aliexpress';
