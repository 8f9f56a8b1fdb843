#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so operators need no build step.
require('tsx/cjs');
require('../src/postsale.ts');
