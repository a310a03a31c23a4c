#!/usr/bin/env bash
# Installs the Node client's dependencies (npm ci, skipped while
# package-lock.json is unchanged), builds it with tsc, and runs its tests
# (node --test) against real batond servers that the tests start on
# 127.0.0.1 port 0 and stop: once against plaintext servers, then once more
# with BATON_TEST_SECURE=1, where the tests' servers serve TLS and check a
# bearer token (test/helpers.ts; BATON_NODE_SECURE=0 skips that run). Prints
# each run's wall time. Exits non-zero on any failure.
#
#   BATOND=/path/to/batond bash clients/node/test.sh
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
export BATOND="${BATOND:-$repo/build/service/batond}"

if [ ! -x "$BATOND" ]; then
  echo "clients/node/test.sh: no batond at $BATOND (build the server, or set BATOND)" >&2
  exit 1
fi
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "clients/node/test.sh: Node.js 20 or newer is required" >&2
  exit 1
fi

stamp=node_modules/.baton-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  npm ci --no-audit --no-fund --ignore-scripts
  echo "$want" >"$stamp"
fi

rm -rf dist dist-test
npm run --silent build
npm run --silent build:test

# run LABEL SECURE: one run of the tests; prints its wall time.
run() {
  local rc=0 start end
  echo "clients/node/test.sh: $1 run"
  start=$(date +%s.%N)
  BATON_TEST_SECURE="$2" timeout 900 npm run --silent test:run || rc=$?
  end=$(date +%s.%N)
  echo "clients/node/test.sh: $1 run: exit $rc, $(awk "BEGIN{printf \"%.1f\", $end - $start}") s wall time"
  return "$rc"
}

rc=0
run plaintext 0 || rc=$?
if [ "${BATON_NODE_SECURE:-1}" != 0 ]; then
  rc2=0
  run "TLS + token (BATON_TEST_SECURE=1)" 1 || rc2=$?
  [ "$rc" != 0 ] || rc=$rc2
fi
exit "$rc"
