/** Shared jest settings: swc transpiles TypeScript (typechecking is `npm run typecheck`). */
const { join } = require('node:path');

module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60_000,
  // Integration tests share one broker and two cores: files run one at a time per package, packages one at a time.
  maxWorkers: 1,
  reporters: ['default', join(__dirname, 'tools', 'jest-count-reporter.js')],
};
