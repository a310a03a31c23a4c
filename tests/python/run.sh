#!/usr/bin/env bash
# Runs Baton's Python integration tests (API behaviour and cancellation races)
# against a batond binary. Entry point for ctest and for people.
#
#   BATOND=/path/to/batond tests/python/run.sh [pytest args...]
#
# BATOND defaults to build/service/batond. The Python environment is .venv
# (created by `scripts/setup.sh --test`); BATON_VENV overrides it.
# Race knobs: BATON_RACE_ITERS, BATON_RACE_SECONDS, BATON_RACE_SEED (see test_race_cancel.py,
# test_race_queue.py).
# Exit status: pytest's, except that "no tests collected" (5) is a failure too.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${BATON_VENV:-$root/.venv}"
py="$venv/bin/python"

if [ ! -x "$py" ] || ! "$py" -c 'import grpc, grpc_tools, pytest, pytest_asyncio' 2>/dev/null; then
  echo "run.sh: no usable Python test environment at $venv; run: bash $root/scripts/setup.sh --test" >&2
  exit 1
fi

export BATOND="${BATOND:-$root/build/service/batond}"
if [ ! -x "$BATOND" ]; then
  echo "run.sh: batond not found or not executable at $BATOND (build it, or set BATOND)" >&2
  exit 1
fi
export PYTHONDONTWRITEBYTECODE=1

cd "$here"
# The whole run is bounded; each race test has its own time budget besides.
timeout --signal=TERM --kill-after=30 "${BATON_PYTEST_TIMEOUT:-900}" \
  "$py" -m pytest -q -c "$here/pytest.ini" "$@"
rc=$?
case "$rc" in
  0) ;;
  5) echo "run.sh: pytest collected no tests; counting that as a failure" >&2; rc=1 ;;
  124) echo "run.sh: the test run timed out" >&2 ;;
esac
exit "$rc"
