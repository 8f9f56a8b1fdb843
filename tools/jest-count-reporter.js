/**
 * Records each package's jest totals under .local/test-results/, so `npm test` can print one closing line
 * ("N passed, N failed") for the whole monorepo.
 */
const { mkdirSync, writeFileSync } = require('node:fs');
const { join, basename } = require('node:path');

class CountReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }
  onRunComplete(_contexts, results) {
    const dir = join(__dirname, '..', '.local', 'test-results');
    mkdirSync(dir, { recursive: true });
    const name = basename(this.rootDir);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify({
      package: name,
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
    }));
  }
}
module.exports = CountReporter;
