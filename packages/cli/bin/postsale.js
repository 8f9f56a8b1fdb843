#!/usr/bin/env node
// The operator CLI runs the compiled output (`npm run build`).
require('../dist/postsale.js');
