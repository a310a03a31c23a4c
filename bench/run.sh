#!/usr/bin/env bash
# Runs Baton's benchmark matrix side by side with its peers and prints
# Markdown tables of medians and ratios (see docs/benchmarks.md).
#
# Builds a Release build in build-release/ if needed, installs etcd, Redis
# and beanstalkd if they are missing and wanted, then starts on 127.0.0.1,
# each on a free port: batond durable (the default: its WAL fsynced before
# every reply) and batond --durability=none (the same four clients against
# each: unary calls, the Consume stream for queue consumers, a session stream
# per client, one session stream shared by all clients; the in-memory
# targets end in -mem), baton-echo (the bare gRPC ceiling),
# etcd with fsync and etcd with --unsafe-no-fsync (lock workloads); Redis
# without persistence and Redis with an fsynced AOF (lock and queue
# workloads), beanstalkd in memory and beanstalkd with an fsynced binlog
# (queue workload). A server is started only
# if some cell of the matrix runs on it. Every server it starts is stopped
# when it exits, however it exits.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS   measured window of each run, s                 [3]
#   BENCH_WARMUP    unmeasured warm-up before each window, s        [0.5]
#   BENCH_RUNS      runs per cell; the table shows their median    [3]
#   BENCH_TARGETS   which servers (and Baton clients)
#                   [baton baton-consume baton-stream baton-shared
#                    baton-mem baton-consume-mem baton-stream-mem baton-shared-mem
#                    echo etcd-fsync etcd-nofsync redis-mem redis-aof
#                    beanstalkd-mem beanstalkd-fsync]
#                   baton: unary calls; baton-consume: queue consumers read
#                   Queues/Consume; baton-stream: a session stream per client;
#                   baton-shared: all clients on one session stream; -mem:
#                   the same against batond --durability=none
#   BENCH_MATRIX    workload:clients cells (queue:P is P producers + P consumers;
#                   queue-batch:P the same with --batch BENCH_QUEUE_BATCH)
#                   [uncontended:1 uncontended:16 uncontended:64 contended:16 contended:64
#                    queue:1 queue:16 queue-batch:16]
#   BENCH_QUEUE_BACKLOG  queue: most items a producer has put that no
#                   consumer has got yet (baton-bench --backlog; 0: none) [1]
#   BENCH_QUEUE_BATCH  queue-batch: items per put and most per get
#                   (baton-bench --batch; the backlog is twice that)   [16]
#   BENCH_OUT       file to keep the raw JSON lines in        [a temporary file]
#   BATOND_FLAGS    extra flags for batond, e.g. "--shards 2"  []
#                   (batond keeps its state in a fresh temporary --data_dir
#                   unless these name their own or say --durability=none)
#   BUILD_DIR       where to build                             [build-release]
#   BATON_BENCH, BATON_ECHO, BATOND   use these binaries instead of building
#
# Quick run: BENCH_SECONDS=1 BENCH_RUNS=1 bench/run.sh
set -euo pipefail

readonly bench_dir=$(cd "$(dirname "$0")" && pwd)
readonly root=$(cd "${bench_dir}/.." && pwd)
source "${bench_dir}/lib.sh"

readonly seconds=${BENCH_SECONDS:-3}
readonly warmup=${BENCH_WARMUP:-0.5}
readonly runs=${BENCH_RUNS:-3}
readonly backlog=${BENCH_QUEUE_BACKLOG:-1}
readonly batch=${BENCH_QUEUE_BATCH:-16}
read -r -a targets <<<"${BENCH_TARGETS:-baton baton-consume baton-stream baton-shared baton-mem baton-consume-mem baton-stream-mem baton-shared-mem echo etcd-fsync etcd-nofsync redis-mem redis-aof beanstalkd-mem beanstalkd-fsync}"
read -r -a matrix <<<"${BENCH_MATRIX:-uncontended:1 uncontended:16 uncontended:64 contended:16 contended:64 queue:1 queue:16 queue-batch:16}"
read -r -a batond_flags <<<"${BATOND_FLAGS:-}"
readonly build_dir=${BUILD_DIR:-${root}/build-release}

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/baton-bench.XXXXXX")
client_pid=  # The baton-bench run in progress, if any.
trap '[[ -n "${client_pid}" ]] && kill "${client_pid}" 2>/dev/null; bench_stop_all; rm -rf "${BENCH_TMP}"' EXIT
trap 'exit 130' INT TERM
readonly out=${BENCH_OUT:-${BENCH_TMP}/results.jsonl}
: >"${out}"

# runs TARGET WORKLOAD: succeeds if TARGET has what WORKLOAD needs (echo has
# no lock to contend on; etcd no queue; beanstalkd no lock; the Consume
# stream is for queues only).
runs() {
  case "$1:$2" in
    baton:* | baton-stream:* | baton-shared:*) return 0 ;;
    baton-mem:* | baton-stream-mem:* | baton-shared-mem:*) return 0 ;;
    baton-consume:queue | baton-consume-mem:queue) return 0 ;;
    echo:uncontended) return 0 ;;
    etcd-*:uncontended | etcd-*:contended) return 0 ;;
    redis-*:*) return 0 ;;
    beanstalkd-*:queue) return 0 ;;
  esac
  return 1
}

# wants_baton: succeeds if some Baton client is wanted against the durable
# batond (they share it); wants_baton_mem: the same for the in-memory one.
wants_baton() {
  wants baton || wants baton-consume || wants baton-stream || wants baton-shared
}
wants_baton_mem() {
  wants baton-mem || wants baton-consume-mem || wants baton-stream-mem || wants baton-shared-mem
}

# wants TARGET: succeeds if TARGET is in BENCH_TARGETS and some cell of the
# matrix runs on it.
wants() {
  local t cell
  for t in "${targets[@]}"; do
    [[ "${t}" == "$1" ]] || continue
    for cell in "${matrix[@]}"; do runs "$1" "${cell%%:*}" && return 0; done
  done
  return 1
}

# install_if_missing COMMAND PACKAGE: apt-get installs PACKAGE unless COMMAND
# is on PATH.
install_if_missing() {
  command -v "$1" >/dev/null && return 0
  echo "bench: installing $2" >&2
  local sudo_cmd=()
  [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y "$2" >&2
}

# --- Build ------------------------------------------------------------------
if [[ -z "${BATON_BENCH:-}" || -z "${BATON_ECHO:-}" ]] || { { wants_baton || wants_baton_mem; } && [[ -z "${BATOND:-}" ]]; }; then
  if [[ ! -f "${build_dir}/build.ninja" ]]; then
    cmake -S "${root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  build_targets=(baton-bench baton-echo)
  { wants_baton || wants_baton_mem; } && build_targets+=(batond)
  cmake --build "${build_dir}" -j2 --target "${build_targets[@]}" >&2
fi
readonly bench=${BATON_BENCH:-${build_dir}/bench/baton-bench}
readonly echo_server=${BATON_ECHO:-${build_dir}/bench/baton-echo}
readonly batond=${BATOND:-${build_dir}/service/batond}

# --- Peers ------------------------------------------------------------------
if wants etcd-fsync || wants etcd-nofsync; then install_if_missing etcd etcd-server; fi
if wants redis-mem || wants redis-aof; then install_if_missing redis-server redis-server; fi
if wants beanstalkd-mem || wants beanstalkd-fsync; then install_if_missing beanstalkd beanstalkd; fi

# --- Servers ----------------------------------------------------------------
declare -A addr

# start_etcd NAME FLAGS...: a single-member etcd on 127.0.0.1 only, with a
# data directory of its own (on disk, so that fsync costs what it costs).
start_etcd() {
  local name=$1
  shift
  local client_port peer_port
  rm -rf "${BENCH_TMP}/${name}.data"  # a failed try's
  client_port=$(bench_free_port)
  peer_port=$(bench_free_port)
  while [[ "${peer_port}" == "${client_port}" ]]; do peer_port=$(bench_free_port); done
  bench_start "${name}" "ready to serve client requests" 30 \
    etcd --name "${name}" --data-dir "${BENCH_TMP}/${name}.data" \
    --listen-client-urls "http://127.0.0.1:${client_port}" \
    --advertise-client-urls "http://127.0.0.1:${client_port}" \
    --listen-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-cluster "${name}=http://127.0.0.1:${peer_port}" "$@" || return 1
  addr[${name}]=127.0.0.1:${client_port}
}

# start_redis NAME FLAGS...: redis-server on 127.0.0.1 only, without RDB
# snapshots, with a directory of its own (for the AOF) and no config file.
start_redis() {
  local name=$1
  shift
  local port
  port=$(bench_free_port)
  mkdir -p "${BENCH_TMP}/${name}.data"
  bench_start "${name}" "Ready to accept connections" 30 \
    redis-server --port "${port}" --bind 127.0.0.1 --daemonize no --save '' \
    --dir "${BENCH_TMP}/${name}.data" "$@" || return 1
  addr[${name}]=127.0.0.1:${port}
}

# start_beanstalkd NAME FLAGS...: beanstalkd on 127.0.0.1 only.
start_beanstalkd() {
  local name=$1
  shift
  local port
  port=$(bench_free_port)
  bench_start_tcp "${name}" "${port}" 30 beanstalkd -l 127.0.0.1 -p "${port}" "$@" || return 1
  addr[${name}]=127.0.0.1:${port}
}

start_batond() {
  port=$(bench_free_port)
  bench_batond_args batond "${batond_flags[@]}"
  bench_start batond "listening on" 30 "${batond}" --listen "127.0.0.1:${port}" \
    "${BENCH_BATOND_ARGS[@]}" || return 1
  # The same server for every Baton client.
  for t in baton baton-consume baton-stream baton-shared; do addr[${t}]=127.0.0.1:${port}; done
}
start_batond_mem() {
  port=$(bench_free_port)
  bench_batond_args batond-mem "${batond_flags[@]}" --durability=none
  bench_start batond-mem "listening on" 30 "${batond}" --listen "127.0.0.1:${port}" \
    "${BENCH_BATOND_ARGS[@]}" || return 1
  for t in baton-mem baton-consume-mem baton-stream-mem baton-shared-mem; do
    addr[${t}]=127.0.0.1:${port}
  done
}
start_echo() {
  port=$(bench_free_port)
  bench_start echo "^listening on" 30 "${echo_server}" --listen "127.0.0.1:${port}" || return 1
  addr[echo]=127.0.0.1:${port}
}
# A port found free can be taken before the server binds it (by a test
# running beside this one): each server gets three tries, each on a new port.
wants_baton && bench_retry start_batond
wants_baton_mem && bench_retry start_batond_mem
wants echo && bench_retry start_echo
wants etcd-fsync && bench_retry start_etcd etcd-fsync
wants etcd-nofsync && bench_retry start_etcd etcd-nofsync --unsafe-no-fsync
wants redis-mem && bench_retry start_redis redis-mem --appendonly no
wants redis-aof && bench_retry start_redis redis-aof --appendonly yes --appendfsync always
wants beanstalkd-mem && bench_retry start_beanstalkd beanstalkd-mem
if wants beanstalkd-fsync; then
  mkdir -p "${BENCH_TMP}/beanstalkd-fsync.binlog"
  # -f 0: fsync after every write to the binlog.
  bench_retry start_beanstalkd beanstalkd-fsync -b "${BENCH_TMP}/beanstalkd-fsync.binlog" -f 0
fi

# --- Matrix -----------------------------------------------------------------
# Runs are interleaved (run 1 of every cell and target, then run 2, ...) so
# that drift on a shared machine affects every target alike.
for ((run = 1; run <= runs; run++)); do
  for cell in "${matrix[@]}"; do
    cell_name=${cell%%:*}
    clients=${cell##*:}
    workload=${cell_name}
    queue_flags=(--backlog "${backlog}")
    if [[ ${cell_name} == queue-batch ]]; then
      workload=queue
      queue_flags=(--batch "${batch}" --backlog $((2 * batch)))
    fi
    for target in "${targets[@]}"; do
      runs "${target}" "${workload}" || continue
      kind=${target%%-*}
      extra=()
      case "${target}" in
        baton-consume | baton-consume-mem) extra=(--queue-stream) ;;
        baton-stream | baton-stream-mem) extra=(--session-stream per-client) ;;
        baton-shared | baton-shared-mem) extra=(--session-stream shared) ;;
      esac
      echo "bench: run ${run}/${runs}: ${target} ${workload} ${clients} clients" >&2
      tag="{\"label\":\"${target}\",\"run\":${run},\"cell\":\"${cell_name}\","
      # In the background with `wait`, so that a signal is handled at once.
      timeout $((${seconds%.*} + 90)) "${bench}" --json --target "${kind}" \
        --addr "${addr[${target}]}" --workload "${workload}" --clients "${clients}" \
        --seconds "${seconds}" --warmup "${warmup}" "${queue_flags[@]}" "${extra[@]}" \
        >"${BENCH_TMP}/line" &
      client_pid=$!
      if wait "${client_pid}"; then
        client_pid=
        line=$(<"${BENCH_TMP}/line")
        echo "${tag}${line#\{}" >>"${out}"
      else
        client_pid=
        echo "bench: ${target} ${workload} ${clients} clients failed" >&2
        echo "${tag}\"workload\":\"${workload}\",\"clients\":${clients},\"failed\":true}" >>"${out}"
      fi
    done
  done
done

[[ -n "${BENCH_OUT:-}" ]] && echo "bench: raw results in ${out}" >&2
python3 "${bench_dir}/report.py" --seconds "${seconds}" --runs "${runs}" "${out}"
