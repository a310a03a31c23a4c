#!/usr/bin/env bash
# Tests of bench/: the smoke tests ctest runs (bench/smoke.sh) plus a small
# memory measurement (bench/memory.sh at 10,000 stream waits and 1,000
# parked unary calls), against the batond in $BATOND.
#
# Environment (defaults in brackets):
#   BATOND        the server under test          [/work/main/build/service/batond]
#   BATON_BENCH   baton-bench; built in BUILD_DIR (Release, -j1) if unset
#   BATON_ECHO    baton-echo; likewise
#   BUILD_DIR     [build-release]
#
# Redis and beanstalkd cases are skipped where the servers are not installed
# (scripts/setup.sh --bench installs them). Every server started is stopped by
# the scripts' EXIT traps; each step is bounded (smoke runs 60 s, memory 300 s
# per case). Exits non-zero on any failure.
set -euo pipefail

readonly bench_dir=$(cd "$(dirname "$0")" && pwd)
readonly root=$(cd "${bench_dir}/.." && pwd)
readonly build_dir=${BUILD_DIR:-${root}/build-release}
readonly batond=${BATOND:-/work/main/build/service/batond}

if [[ -z "${BATON_BENCH:-}" || -z "${BATON_ECHO:-}" ]]; then
  if [[ ! -f "${build_dir}/build.ninja" ]]; then
    cmake -S "${root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  cmake --build "${build_dir}" -j1 --target baton-bench baton-echo >&2
fi
readonly bench=${BATON_BENCH:-${build_dir}/bench/baton-bench}
readonly echo_server=${BATON_ECHO:-${build_dir}/bench/baton-echo}

if [[ ! -x "${batond}" ]]; then
  echo "test: no batond at ${batond} (set BATOND)" >&2
  exit 1
fi

passed=0
skipped=0
# step NAME COMMAND...: runs COMMAND; exit 77 counts as skipped.
step() {
  local name=$1
  shift
  local rc=0
  echo "=== ${name}"
  timeout 600 "$@" || rc=$?
  case "${rc}" in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *)
      echo "test: ${name} failed (exit ${rc})" >&2
      exit 1
      ;;
  esac
}

step "smoke echo" "${bench_dir}/smoke.sh" echo "${bench}" "${echo_server}"
step "smoke batond" "${bench_dir}/smoke.sh" baton "${bench}" "${batond}"
step "smoke redis" "${bench_dir}/smoke.sh" redis "${bench}" redis-server
step "smoke beanstalkd" "${bench_dir}/smoke.sh" beanstalkd "${bench}" beanstalkd
step "memory" env MEMORY_WAITS=10000 MEMORY_UNARY_WAITS=1000 MEMORY_NAMES=10 \
  BATON_BENCH="${bench}" BATOND="${batond}" "${bench_dir}/memory.sh"
echo "test: ${passed} passed, ${skipped} skipped"
