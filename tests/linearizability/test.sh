#!/usr/bin/env bash
# The linearizability check of a 3-node cluster (see README.md).
#
#   tests/linearizability/test.sh                 # ~20 s of load, about a minute in all
#   BATON_LIN_SECONDS=300 tests/linearizability/test.sh   # a soak
#   BATOND=/path/to/batond tests/linearizability/test.sh  # another build
#
# Extra arguments go to `go test` (e.g. -run TestLockModel).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# BATOND: default build/service/batond of this repository; a relative path
# is taken from the directory this script was started in.
batond="${BATOND:-$root/build/service/batond}"
case "$batond" in
  /*) ;;
  *) batond="$PWD/$batond" ;;
esac
export BATOND="$batond"

seconds="${BATON_LIN_SECONDS:-20}"
# go test's own timeout: the run, room for startup, the checks and a
# loaded machine (the test bounds each of its phases itself, and dumps the
# goroutines of a phase that overruns).
timeout="$(awk -v s="$seconds" 'BEGIN { printf "%ds", s + 300 }')"

cd "$here"
go mod download
nice -n "${BATON_LIN_NICE:-10}" go test -count=1 -timeout "$timeout" -v . "$@"
