// The console as a library: what its tests and the stack drive (main.ts is the process entry point).
export * from './audit';
export * from './config';
export * from './html';
export * from './mask';
export * from './server';
export * from './session';
