#!/usr/bin/env bash
# Runs the whole suite (scripts/test.sh, what CI runs) several times in a row
# while stress-ng keeps every core busy, and stops at the first failure: the
# check that the suite is green on a loaded machine, not only on an idle one.
# Not part of CI (three runs take over an hour on 2 cores).
#
#   bash scripts/test-under-load.sh            # 3 runs, stress-ng --cpu <cores>
#   RUNS=1 STRESS_WORKERS=4 bash scripts/test-under-load.sh
#
# stress-ng (Debian's package, installed if missing) runs at the same
# priority as the tests, bounded by --timeout (RUNS x 90 minutes), and is
# stopped by its PID when the script ends, however it ends. Each run's output
# goes to $LOG_DIR/run-N.log (default: a new folder under /tmp); a summary
# line per run (status and wall time) is printed and kept in summary.txt.
# Core dumps are on (ulimit -c unlimited, with the kernel's core_pattern): a
# test that crashes leaves a core file, which a failed run lists for gdb.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
workers=${STRESS_WORKERS:-$(nproc)}
log_dir=${LOG_DIR:-$(mktemp -d /tmp/baton-under-load.XXXXXX)}
mkdir -p "$log_dir"

if ! command -v stress-ng >/dev/null; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q stress-ng >/dev/null
fi

ulimit -c unlimited 2>/dev/null || echo "core dumps stay off (ulimit -c refused)"
marker="$log_dir/started"
touch "$marker"

stress-ng --cpu "$workers" --timeout "$((runs * 90))m" --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null || true' EXIT
echo "stress-ng --cpu $workers running (pid $stress_pid); logs in $log_dir"

for ((i = 1; i <= runs; i++)); do
  start=$(date +%s)
  if bash scripts/test.sh >"$log_dir/run-$i.log" 2>&1; then status=passed; else status=FAILED; fi
  line="run $i of $runs: $status in $(($(date +%s) - start)) s ($(git rev-parse --short HEAD))"
  echo "$line" | tee -a "$log_dir/summary.txt"
  if [ "$status" = FAILED ]; then
    grep -E "\*\*\*Failed|Failed  |tests failed" "$log_dir/run-$i.log" | tail -20 >&2 || true
    find build build-asan clients -type f \( -name core -o -name 'core.[0-9]*' \) -newer "$marker" 2>/dev/null |
      sed 's/^/core file: /' | tee -a "$log_dir/summary.txt" >&2 || true
    exit 1
  fi
done
echo "all $runs runs passed under load"
