#!/usr/bin/env bash
# `npm test`: prepares the machine (deploy/local/prepare.sh: programs, `npm ci`, build), then every package's tests on
# the real infrastructure (started here when it is not already running), then one closing line with the totals. Extra arguments go to turbo (e.g. `npm test -- --filter=@postsale/sales`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

bash deploy/local/prepare.sh || { echo "could not prepare the machine (programs, Node dependencies, build)"; exit 1; }
echo "[test] Node $(node --version) ($(command -v node))"
bash deploy/local/infra.sh up || { echo "infrastructure did not come up"; exit 1; }

rm -rf .local/test-results
# Two packages' suites at once (TEST_CONCURRENCY): each test owns its topics, groups, subjects and schema, and most of a
# suite's time is spent waiting on Kafka and on services it started, so two share the two cores without waiting on
# each other. Each package's own files still run one at a time (--runInBand).
npx turbo run test --concurrency="${TEST_CONCURRENCY:-2}" --continue --log-order=stream --output-logs=full "$@"
status=$?

node -e '
const fs = require("fs"), dir = ".local/test-results";
const rows = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"))) : [];
const t = rows.reduce((a, r) => ({ passed: a.passed + r.passed, failed: a.failed + r.failed, skipped: a.skipped + r.skipped }), { passed: 0, failed: 0, skipped: 0 });
for (const r of rows.sort((a, b) => a.package.localeCompare(b.package))) console.log(`  ${r.package.padEnd(12)} ${r.passed} passed, ${r.failed} failed`);
console.log(`Tests: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
'
exit $status
