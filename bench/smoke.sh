#!/usr/bin/env bash
# Smoke test of baton-bench, run by ctest: starts a server on a free port on
# 127.0.0.1, runs baton-bench against it for a fraction of a second with two
# clients and fails unless every run reports a nonzero rate.
#
#   smoke.sh echo  BATON_BENCH BATON_ECHO   uncontended, against baton-echo
#   smoke.sh baton BATON_BENCH BATOND       uncontended and contended, unary
#                                           and over session streams (one per
#                                           client, one shared), the queue over
#                                           both kinds of session stream, and
#                                           the waits workload (memory per
#                                           parked wait, 1000 waits, stream and
#                                           unary), against batond; exit 77
#                                           (skipped) if BATOND is not built
#   smoke.sh redis BATON_BENCH redis-server          queue (2 producers + 2
#   smoke.sh beanstalkd BATON_BENCH beanstalkd       consumers), in memory and
#                                           fsynced as run.sh starts them
#                                           (redis: also the lock workloads,
#                                           in memory); exit 77 (skipped) if
#                                           the server is not installed
set -euo pipefail

readonly target=$1 bench=$2
source "$(dirname "$0")/lib.sh"

# SERVER may be a path or a command on PATH.
server=$(command -v "$3" || true)
if [[ -z "${server}" || ! -x "${server}" ]]; then
  echo "smoke: $3 is not built or installed; skipping"
  exit 77
fi
BENCH_TMP=$(mktemp -d)
trap 'bench_stop_all; rm -rf "${BENCH_TMP}"' EXIT

# run_bench ARGS...: one short run; fails unless it exits 0 with rate > 0.
run_bench() {
  local out
  out=$(timeout 60 "${bench}" --json --clients 2 --seconds 0.3 --warmup 0.1 "$@")
  echo "${out}"
  local rate
  rate=$(sed -nE 's/.*"rate":([0-9.]+).*/\1/p' <<<"${out}")
  if [[ -z "${rate}" ]] || ! awk -v r="${rate}" 'BEGIN { exit !(r > 0) }'; then
    echo "smoke: no nonzero rate reported by: $*" >&2
    return 1
  fi
}

# run_waits ARGS...: a small waits workload (1000 waits on 10 names); fails
# unless it exits 0 having seen every wait pending and answered.
run_waits() {
  local out
  out=$(timeout 60 "${bench}" --json --workload waits --waits 1000 --wait-names 10 "$@")
  echo "${out}"
  if ! grep -q '"answered":1000,"unexpected":0,"error":""' <<<"${out}"; then
    echo "smoke: waits not all pending and answered: $*" >&2
    return 1
  fi
}

port=$(bench_free_port)
case "${target}" in
  echo)
    bench_start echo "^listening on" 10 "${server}" --listen "127.0.0.1:${port}"
    run_bench --target echo --addr "127.0.0.1:${port}" --workload uncontended
    ;;
  baton)
    bench_batond_args batond
    bench_start batond "listening on" 10 "${server}" --listen "127.0.0.1:${port}" \
      "${BENCH_BATOND_ARGS[@]}"
    run_bench --target baton --addr "127.0.0.1:${port}" --workload uncontended
    run_bench --target baton --addr "127.0.0.1:${port}" --workload contended
    for mode in per-client shared; do
      for workload in uncontended contended queue; do
        run_bench --target baton --addr "127.0.0.1:${port}" --workload "${workload}" \
          --session-stream "${mode}"
      done
    done
    for mode in shared off; do
      run_waits --target baton --addr "127.0.0.1:${port}" --server-pid "${BENCH_PIDS[-1]}" \
        --session-stream "${mode}"
    done
    ;;
  redis)
    mkdir "${BENCH_TMP}/mem" "${BENCH_TMP}/aof"
    bench_start redis-mem "Ready to accept connections" 10 "${server}" --port "${port}" \
      --bind 127.0.0.1 --daemonize no --save '' --dir "${BENCH_TMP}/mem" --appendonly no
    run_bench --target redis --addr "127.0.0.1:${port}" --workload queue
    run_bench --target redis --addr "127.0.0.1:${port}" --workload uncontended
    run_bench --target redis --addr "127.0.0.1:${port}" --workload contended
    port=$(bench_free_port)
    bench_start redis-aof "Ready to accept connections" 10 "${server}" --port "${port}" \
      --bind 127.0.0.1 --daemonize no --save '' --dir "${BENCH_TMP}/aof" --appendonly yes \
      --appendfsync always
    run_bench --target redis --addr "127.0.0.1:${port}" --workload queue
    ;;
  beanstalkd)
    mkdir "${BENCH_TMP}/binlog"
    bench_start_tcp beanstalkd-mem "${port}" 10 "${server}" -l 127.0.0.1 -p "${port}"
    run_bench --target beanstalkd --addr "127.0.0.1:${port}" --workload queue
    port=$(bench_free_port)
    bench_start_tcp beanstalkd-fsync "${port}" 10 "${server}" -l 127.0.0.1 -p "${port}" \
      -b "${BENCH_TMP}/binlog" -f 0
    run_bench --target beanstalkd --addr "127.0.0.1:${port}" --workload queue
    ;;
  *)
    echo "usage: smoke.sh echo|baton|redis|beanstalkd BATON_BENCH SERVER" >&2
    exit 2
    ;;
esac
echo "smoke: ok"
