#!/usr/bin/env bash
# What a pending blocking wait costs batond in memory, on the session stream
# and as a parked unary call (see docs/benchmarks.md, "Session stream").
#
# For each measurement it starts a fresh batond (release build) on a free
# port on 127.0.0.1, runs `baton-bench --workload waits` against it (which
# parks the waits, checks with Admin/Describe that all are pending, reads
# batond's VmRSS from /proc before and after, ends every wait and checks each
# was answered), stops batond, and finally prints a Markdown table:
#
#   stream event   MEMORY_WAITS wait_event operations on one session stream
#   stream lock    MEMORY_WAITS acquire_lock operations on one stream, on
#                  locks another session holds (ended by cancelling them)
#   unary event    MEMORY_UNARY_WAITS Events/Wait calls from async clients
#   unary lock     MEMORY_UNARY_WAITS Locks/Acquire calls (ended by cancel)
#
# Environment (defaults in brackets):
#   MEMORY_WAITS        waits on the stream                       [100000]
#   MEMORY_UNARY_WAITS  parked unary calls                        [10000]
#   MEMORY_NAMES        names the waits are spread over           [100]
#   MEMORY_CHANNELS     channels the unary calls are spread over  [1]
#   MEMORY_CASES        which of: stream-event stream-lock unary-event unary-lock
#                       [all four]
#   MEMORY_OUT          file to keep the raw JSON lines in        [a temporary file]
#   BATOND_FLAGS        extra flags for batond                    []
#                       (each batond keeps its state in a fresh temporary
#                       --data_dir unless these name their own or say
#                       --durability=none)
#   BUILD_DIR           where to build                            [build-release]
#   BATON_BENCH, BATOND use these binaries instead of building
#
# Bounded: each measurement is limited to 300 s (it takes a few seconds), and
# every batond started is stopped however the script exits.
set -euo pipefail

readonly bench_dir=$(cd "$(dirname "$0")" && pwd)
readonly root=$(cd "${bench_dir}/.." && pwd)
source "${bench_dir}/lib.sh"

readonly waits=${MEMORY_WAITS:-100000}
readonly unary_waits=${MEMORY_UNARY_WAITS:-10000}
readonly names=${MEMORY_NAMES:-100}
readonly channels=${MEMORY_CHANNELS:-1}
read -r -a cases <<<"${MEMORY_CASES:-stream-event stream-lock unary-event unary-lock}"
read -r -a batond_flags <<<"${BATOND_FLAGS:-}"
readonly build_dir=${BUILD_DIR:-${root}/build-release}

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/baton-memory.XXXXXX")
client_pid=
trap '[[ -n "${client_pid}" ]] && kill "${client_pid}" 2>/dev/null; bench_stop_all; rm -rf "${BENCH_TMP}"' EXIT
trap 'exit 130' INT TERM
readonly out=${MEMORY_OUT:-${BENCH_TMP}/memory.jsonl}
: >"${out}"

if [[ -z "${BATON_BENCH:-}" || -z "${BATOND:-}" ]]; then
  if [[ ! -f "${build_dir}/build.ninja" ]]; then
    cmake -S "${root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  cmake --build "${build_dir}" -j1 --target baton-bench batond >&2
fi
readonly bench=${BATON_BENCH:-${build_dir}/bench/baton-bench}
readonly batond=${BATOND:-${build_dir}/service/batond}

failed=0
for c in "${cases[@]}"; do
  case "${c}" in
    stream-event) args=(--session-stream shared --wait-kind event --waits "${waits}") ;;
    stream-lock) args=(--session-stream shared --wait-kind lock --waits "${waits}") ;;
    unary-event) args=(--wait-kind event --waits "${unary_waits}" --clients "${channels}") ;;
    unary-lock) args=(--wait-kind lock --waits "${unary_waits}" --clients "${channels}") ;;
    *)
      echo "memory: unknown case ${c}" >&2
      exit 2
      ;;
  esac
  port=$(bench_free_port)
  bench_batond_args "batond-${c}" "${batond_flags[@]}"
  bench_start "batond-${c}" "listening on" 30 "${batond}" --listen "127.0.0.1:${port}" \
    "${BENCH_BATOND_ARGS[@]}"
  pid=${BENCH_PIDS[-1]}
  echo "memory: ${c}: ${args[*]}" >&2
  timeout 300 "${bench}" --json --target baton --addr "127.0.0.1:${port}" --workload waits \
    --wait-names "${names}" --server-pid "${pid}" "${args[@]}" >"${BENCH_TMP}/line" &
  client_pid=$!
  if wait "${client_pid}"; then
    client_pid=
  else
    client_pid=
    failed=1
    echo "memory: ${c} failed" >&2
  fi
  cat "${BENCH_TMP}/line" >&2
  sed "s/^{/{\"case\":\"${c}\",/" "${BENCH_TMP}/line" >>"${out}"
  bench_stop_all
done

[[ -n "${MEMORY_OUT:-}" ]] && echo "memory: raw results in ${out}" >&2
python3 - "${out}" <<'EOF'
import json, sys
print("| case | waits | names | channels | VmRSS before | VmRSS pending | bytes per wait | answered |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    ok = r["answered"] == r["waits"] and r["unexpected"] == 0 and not r["error"]
    print(f"| {r['case']} | {r['waits']:,} | {r['names']} | {r['channels']} | "
          f"{r['rss_before_kb']:,} kB | {r['rss_pending_kb']:,} kB | "
          f"{r['bytes_per_wait']:,.0f} | {r['answered']:,}{'' if ok else ' (FAILED)'} |")
EOF
exit "${failed}"
