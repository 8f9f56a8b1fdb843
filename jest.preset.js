/** Shared jest settings: swc transpiles TypeScript (typechecking is `npm run typecheck`). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60_000,
  // Integration tests share one broker; run files one at a time per package (turbo runs packages one at a time too).
  maxWorkers: 1,
};
