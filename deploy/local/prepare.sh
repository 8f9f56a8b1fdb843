#!/usr/bin/env bash
# What `npm start` and `npm test` do first, so that they work as the first commands after `git clone`:
#   1. the machine's programs the product needs (Java + Maven for Kafka and the registry, Chromium for the browser
#      fallback, Prometheus for the alert rules, the Postgres client tools): installed through apt when running as
#      root, otherwise a stop with the exact command to run;
#   2. the Node dependencies, exactly as package-lock.json pins them (npm ci), when node_modules is missing or was
#      installed from another lock; this includes Node 24 itself (the `node` package), which npm scripts then run on;
#   3. the compiled JavaScript (npm run build), which services, the CLI and the benchmark run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

say() { printf '[prepare] %s\n' "$*"; }

# program → Debian package that provides it
declare -A PACKAGE_OF=(
  [java]=default-jre-headless [mvn]=maven [chromium]=chromium [prometheus]=prometheus [promtool]=prometheus
  [psql]=postgresql-client [pg_isready]=postgresql-client [pgbench]=postgresql-contrib [curl]=curl
)
missing=()
for program in "${!PACKAGE_OF[@]}"; do
  command -v "$program" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$program]}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[prepare] missing programs. Install them, then run the command again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# node_modules is current when it was installed from exactly these manifests.
stamp_file=node_modules/.postsale-installed
wanted="$(cat package-lock.json package.json packages/*/package.json services/*/package.json bench/package.json | sha256sum | cut -d' ' -f1)"
if [[ ! -f $stamp_file || "$(cat "$stamp_file")" != "$wanted" ]]; then
  say "installing Node dependencies from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" >"$stamp_file"
fi

node_version="$("$ROOT/node_modules/.bin/node" --version)"
[[ $node_version == v24.* ]] || { echo "[prepare] expected Node 24 from the lock, found $node_version" >&2; exit 1; }

say "building (Node $node_version)"
"$ROOT/node_modules/.bin/turbo" run build --output-logs=errors-only --log-prefix=none >/dev/null
