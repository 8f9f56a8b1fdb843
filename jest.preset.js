/**
 * Shared jest settings: swc transpiles TypeScript (typechecking is `npm run typecheck`). Each package's `npm test` runs
 * jest with --experimental-vm-modules: ESM-only dependencies (puppeteer-core 25) are then loaded through Node 24's
 * require(esm), as they are in the compiled services.
 */
const { join } = require('node:path');

module.exports = {
  // Node's, plus deleting each test file's topics once its afterAll hooks ran (tools/jest-environment.js)
  testEnvironment: join(__dirname, 'tools', 'jest-environment.js'),
  // Workspace packages resolve to their TypeScript sources in tests (the "source" export condition), so a test never
  // runs against a stale dist/; the processes the e2e suite starts run the compiled output.
  testEnvironmentOptions: { customExportConditions: ['source', 'node', 'node-addons'] },
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60_000,
  // Integration tests share one broker and two cores: files run one at a time per package, packages one at a time.
  maxWorkers: 1,
  reporters: ['default', join(__dirname, 'tools', 'jest-count-reporter.js')],
};
