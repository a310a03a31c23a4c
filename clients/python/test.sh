#!/usr/bin/env bash
# Tests the Python client against a real batond.
#
#   bash clients/python/test.sh [pytest args...]
#
# Creates clients/python/.venv once (its own, apart from the repository's
# .venv), installs grpcio-tools, setuptools, pytest and pytest-asyncio into it
# when missing, installs this package (which generates its gRPC stubs from
# ../../proto), and runs tests/ with pytest. The tests start their own batond
# (from $BATOND, default build/service/batond) on 127.0.0.1 port 0 and stop
# it at the end.
#
# The suite runs twice: against a plaintext batond, then once more with
# BATON_TEST_SECURE=1, against a batond serving TLS and checking a bearer
# token (tests/secure.py; BATON_PY_SECURE=0 skips that second run). Each run's
# wall time is printed. Exits non-zero on any failure; each run is bounded by
# BATON_PY_TIMEOUT seconds (default 600).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

export BATOND="${BATOND:-$root/build/service/batond}"
if [ ! -x "$BATOND" ]; then
  echo "test.sh: batond not found or not executable at $BATOND (build it, or set BATOND)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "test.sh: creating $venv"
  if ! python3 -m venv "$venv"; then
    rm -rf "$venv"
    # Debian's python3 needs python3-venv for ensurepip.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; }
      python3 -m venv "$venv" || exit 1
    else
      echo "test.sh: python3 -m venv failed; install python3-venv" >&2
      exit 1
    fi
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip || exit 1
fi

if ! "$venv/bin/python" -c 'import grpc_tools, setuptools, pytest, pytest_asyncio' 2>/dev/null; then
  echo "test.sh: installing grpcio-tools, setuptools, pytest, pytest-asyncio"
  "$venv/bin/python" -m pip install -q "grpcio-tools>=1.60" "setuptools>=64" "pytest>=7" "pytest-asyncio>=0.23" || exit 1
fi

# The package itself, built with the venv's grpcio-tools (no build isolation),
# so that the generated stubs match the venv's grpcio and protobuf. Cheap, and
# done every run so that the stubs follow the protos.
"$venv/bin/python" -m pip install -q --no-build-isolation "$here[test]" 2>&1 |
  grep -v -e "Warning" -e "^\s*$" -e "^ *!!" -e "\*\*\*\*" -e "^ " >&2
if ! "$venv/bin/python" -c 'import baton, baton.v1.stream_pb2_grpc' 2>/dev/null; then
  echo "test.sh: installing the baton package failed" >&2
  exit 1
fi

cd "$here"
export PYTHONDONTWRITEBYTECODE=1

# run LABEL SECURE [pytest args...]: one pytest run; prints its wall time.
run() {
  local label="$1" secure="$2" rc start end
  shift 2
  echo "test.sh: $label run"
  start=$(date +%s.%N)
  BATON_TEST_SECURE="$secure" timeout --signal=TERM --kill-after=30 "${BATON_PY_TIMEOUT:-600}" \
    "$venv/bin/pytest" -q tests "$@"
  rc=$?
  end=$(date +%s.%N)
  case "$rc" in
    0) ;;
    5) echo "test.sh: pytest collected no tests; counting that as a failure" >&2; rc=1 ;;
    124) echo "test.sh: the $label run timed out" >&2 ;;
  esac
  echo "test.sh: $label run: exit $rc, $(awk "BEGIN{printf \"%.1f\", $end - $start}") s wall time"
  return "$rc"
}

run plaintext 0 "$@"
rc=$?
if [ "${BATON_PY_SECURE:-1}" != 0 ]; then
  run "TLS + token (BATON_TEST_SECURE=1)" 1 "$@"
  rc2=$?
  [ "$rc" = 0 ] && rc=$rc2
fi
exit "$rc"
