/**
 * The test environment of every package: Node's, plus work that must wait until a test file's tests and afterAll hooks
 * are done (its services stopped). Helpers in @postsale/runtime/testing queue it on the file's global
 * (`__postsaleWhenFileEnds`): testEnv() and testNamespace() queue deleting their namespace's topics from the local
 * broker, so test runs do not pile up partitions (each costs the broker open files). It runs in the file's own context,
 * on jest-circus's `run_finish` event, before jest tears the module registry down.
 */
const { TestEnvironment } = require('jest-environment-node');

const WHEN_FILE_ENDS = '__postsaleWhenFileEnds';

class PostsaleTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global[WHEN_FILE_ENDS] = [];
  }

  async handleTestEvent(event) {
    if (event.name !== 'run_finish') return;
    for (const task of this.global[WHEN_FILE_ENDS].splice(0)) {
      // A clean-up that fails (the broker is down) fails no test: the topics stay, as they did before.
      await task().catch((error) => process.stderr.write(`[test clean-up] ${error && error.message}\n`));
    }
  }
}

module.exports = PostsaleTestEnvironment;
