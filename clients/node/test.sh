#!/usr/bin/env bash
# Installs the Node client's dependencies (npm ci, skipped while
# package-lock.json is unchanged), builds it with tsc, and runs its tests
# (node --test) against real batond servers that the tests start on
# 127.0.0.1 port 0 and stop. Exits non-zero on any failure.
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
timeout 900 npm run --silent test
