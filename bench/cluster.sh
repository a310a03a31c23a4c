#!/usr/bin/env bash
# The cluster benchmark (issue 9): a 3-node Baton cluster beside a 3-node etcd
# cluster, set up the same way, and a single durable batond for the ratio,
# driven by the same baton-bench clients in one run; prints a Markdown table
# of medians (bench/report.py's cluster table).
#
# Network: every server runs in a network namespace this script makes (one
# per node, each node namespace holding one batond and one etcd member, a
# bridge in a hub namespace joining them, and one namespace for the clients),
# on addresses of a private /24 that exists only inside those namespaces;
# everything is deleted when the script ends, however it ends. Every server
# is durable: batond fsyncs its raft log before acknowledging (baton-raftd's
# WAL), etcd fsyncs its WAL. The clients talk to each cluster's leader (the
# leader serves; a follower would add a relay hop in both systems).
#
# Needs root (ip netns), and etcd (installed from Debian if missing).
#
# Environment (defaults in brackets):
#   BENCH_SECONDS   measured window of each run, s                   [3]
#   BENCH_WARMUP    unmeasured warm-up before each window, s          [0.5]
#   BENCH_RUNS      runs per cell; the table shows their median      [3]
#   BENCH_MATRIX    workload:clients cells      [uncontended:16 contended:16]
#   BENCH_OUT       file to keep the raw JSON lines in          [a temporary file]
#   BUILD_DIR       where to build                               [build-release]
#   BATON_BENCH, BATOND   use these binaries instead of building (batond
#                   finds baton-raftd beside itself or in ../raft)
#
# Quick run: BENCH_SECONDS=1 BENCH_RUNS=1 sudo bench/cluster.sh
set -euo pipefail

readonly bench_dir=$(cd "$(dirname "$0")" && pwd)
readonly root=$(cd "${bench_dir}/.." && pwd)
source "${bench_dir}/lib.sh"

readonly seconds=${BENCH_SECONDS:-3}
readonly warmup=${BENCH_WARMUP:-0.5}
readonly runs=${BENCH_RUNS:-3}
read -r -a matrix <<<"${BENCH_MATRIX:-uncontended:16 contended:16}"
readonly build_dir=${BUILD_DIR:-${root}/build-release}

if [[ "$(id -u)" != 0 ]]; then
  echo "bench/cluster.sh: needs root (it makes network namespaces)" >&2
  exit 2
fi

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/baton-cluster-bench.XXXXXX")
readonly tag=bc$$
namespaces=()
client_pid=
cleanup() {
  [[ -n "${client_pid}" ]] && kill "${client_pid}" 2>/dev/null
  bench_stop_all
  local ns
  for ns in "${namespaces[@]}"; do ip netns del "${ns}" 2>/dev/null || true; done
  rm -rf "${BENCH_TMP}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
readonly out=${BENCH_OUT:-${BENCH_TMP}/results.jsonl}
: >"${out}"

# --- Build and peers --------------------------------------------------------
if [[ -z "${BATON_BENCH:-}" || -z "${BATOND:-}" ]]; then
  if [[ ! -f "${build_dir}/build.ninja" ]]; then
    cmake -S "${root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  cmake --build "${build_dir}" -j2 --target baton-bench batond baton-raftd >&2
fi
readonly bench=${BATON_BENCH:-${build_dir}/bench/baton-bench}
readonly batond=${BATOND:-${build_dir}/service/batond}
if ! command -v etcd >/dev/null; then
  echo "bench: installing etcd-server" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >&2
fi

# --- Network ----------------------------------------------------------------
# A /24 that no route of this machine's root namespace uses (the namespaces
# have no route out, so only a clash of names matters, not of addresses;
# this keeps addresses recognisable in logs).
net=
for _ in $(seq 50); do
  candidate=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
  if ! ip route | grep -q "^${candidate}\."; then
    net=${candidate}
    break
  fi
done
[[ -n "${net}" ]] || { echo "bench: no free private /24 found" >&2; exit 1; }

hub=${tag}-hub
ip netns add "${hub}"
namespaces+=("${hub}")
ip -n "${hub}" link set lo up
ip -n "${hub}" link add br0 type bridge
ip -n "${hub}" link set br0 up

# add_ns NAME HOST: a namespace on the bridge with address $net.HOST.
add_ns() {
  local ns=${tag}-$1 host=$2
  ip netns add "${ns}"
  namespaces+=("${ns}")
  ip -n "${ns}" link set lo up
  ip link add "${tag}$1a" type veth peer name "${tag}$1b"
  ip link set "${tag}$1a" netns "${ns}"
  ip link set "${tag}$1b" netns "${hub}"
  ip -n "${ns}" link set "${tag}$1a" name eth0
  ip -n "${ns}" addr add "${net}.${host}/24" dev eth0
  ip -n "${ns}" link set eth0 up
  ip -n "${hub}" link set "${tag}$1b" master br0
  ip -n "${hub}" link set "${tag}$1b" up
}
for i in 1 2 3; do add_ns "n${i}" "$((10 + i))"; done
add_ns single 20
add_ns client 30

inside() {
  local ns=${tag}-$1
  shift
  ip netns exec "${ns}" "$@"
}

# --- Servers ----------------------------------------------------------------
# start_bg NAME NS COMMAND...: COMMAND in namespace NS in the background,
# its output in $BENCH_TMP/NAME.log, its PID kept for bench_stop_all. `ip
# netns exec` is the background job itself and execs COMMAND, so the PID is
# the server's (a shell function in between would leave the server out).
declare -A pid_of
start_bg() {
  local name=$1 ns=${tag}-$2
  shift 2
  : >"${BENCH_TMP}/${name}.log"
  ip netns exec "${ns}" "$@" >"${BENCH_TMP}/${name}.log" 2>&1 &
  pid_of[${name}]=$!
  BENCH_PIDS+=("$!")
}
peers=1=${net}.11:7380@${net}.11:7411,2=${net}.12:7380@${net}.12:7411,3=${net}.13:7380@${net}.13:7411
etcd_cluster=e1=http://${net}.11:2380,e2=http://${net}.12:2380,e3=http://${net}.13:2380
for i in 1 2 3; do
  ip=${net}.$((10 + i))
  bench_batond_args "batond-${i}"
  start_bg "batond-${i}" "n${i}" "${batond}" --node_id "${i}" --peers "${peers}" \
    --listen "${ip}:7411" --allow_plaintext "${BENCH_BATOND_ARGS[@]}"
  mkdir -p "${BENCH_TMP}/etcd-${i}.data"
  start_bg "etcd-${i}" "n${i}" etcd --name "e${i}" --data-dir "${BENCH_TMP}/etcd-${i}.data" \
    --listen-client-urls "http://${ip}:2379" --advertise-client-urls "http://${ip}:2379" \
    --listen-peer-urls "http://${ip}:2380" --initial-advertise-peer-urls "http://${ip}:2380" \
    --initial-cluster "${etcd_cluster}" --initial-cluster-state new
done
bench_batond_args batond-single
start_bg batond-single single "${batond}" --listen "${net}.20:7411" --allow_plaintext "${BENCH_BATOND_ARGS[@]}"
for name in batond-1 batond-2 batond-3 batond-single; do
  bench_wait "${name}" "${pid_of[${name}]}" 60 grep -qE "listening on" "${BENCH_TMP}/${name}.log"
done
for name in etcd-1 etcd-2 etcd-3; do
  bench_wait "${name}" "${pid_of[${name}]}" 60 grep -qE "ready to serve client requests" \
    "${BENCH_TMP}/${name}.log"
done

# The leaders: batond logs "leading the cluster" when it starts to lead;
# etcd's maintenance status names the leader (JSON over its HTTP gateway).
baton_leader=
etcd_leader=
for _ in $(seq 300); do
  for i in 1 2 3; do
    if grep -q "leading the cluster" "${BENCH_TMP}/batond-${i}.log"; then
      baton_leader=${net}.$((10 + i)):7411
    fi
    status=$(inside client curl -s -m 1 -X POST -d '{}' \
      "http://${net}.$((10 + i)):2379/v3/maintenance/status" || true)
    member=$(sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p' <<<"${status}")
    leader=$(sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p' <<<"${status}")
    if [[ -n "${member}" && "${member}" == "${leader}" ]]; then etcd_leader=${net}.$((10 + i)):2379; fi
  done
  [[ -n "${baton_leader}" && -n "${etcd_leader}" ]] && break
  sleep 0.1  # Bounded wait for both elections.
done
if [[ -z "${baton_leader}" || -z "${etcd_leader}" ]]; then
  echo "bench: no leader (baton '${baton_leader}', etcd '${etcd_leader}')" >&2
  exit 1
fi
echo "bench: baton leader ${baton_leader}, etcd leader ${etcd_leader}, single node ${net}.20:7411" >&2

declare -A addr=(
  [baton-cluster]=${baton_leader} [baton-stream-cluster]=${baton_leader}
  [baton-single]=${net}.20:7411 [baton-stream-single]=${net}.20:7411
  [etcd-cluster]=${etcd_leader}
)
targets=(baton-cluster baton-stream-cluster baton-single baton-stream-single etcd-cluster)

# --- Matrix -----------------------------------------------------------------
# Interleaved runs, as in run.sh: drift on a shared machine hits every target.
for ((run = 1; run <= runs; run++)); do
  for cell in "${matrix[@]}"; do
    workload=${cell%%:*}
    clients=${cell##*:}
    for target in "${targets[@]}"; do
      kind=baton
      extra=()
      case "${target}" in
        etcd-*) kind=etcd ;;
        baton-stream-*) extra=(--session-stream per-client) ;;
      esac
      echo "bench: run ${run}/${runs}: ${target} ${workload} ${clients} clients" >&2
      line_tag="{\"label\":\"${target}\",\"run\":${run},\"cell\":\"${workload}\","
      timeout $((${seconds%.*} + 90)) ip netns exec "${tag}-client" "${bench}" --json \
        --target "${kind}" --addr "${addr[${target}]}" --workload "${workload}" \
        --clients "${clients}" --seconds "${seconds}" --warmup "${warmup}" "${extra[@]}" \
        >"${BENCH_TMP}/line" &
      client_pid=$!
      if wait "${client_pid}"; then
        client_pid=
        line=$(<"${BENCH_TMP}/line")
        echo "${line_tag}${line#\{}" >>"${out}"
      else
        client_pid=
        echo "bench: ${target} ${workload} ${clients} clients failed" >&2
        echo "${line_tag}\"workload\":\"${workload}\",\"clients\":${clients},\"failed\":true}" >>"${out}"
      fi
    done
  done
done

python3 "${bench_dir}/report.py" --cluster --seconds "${seconds}" --runs "${runs}" "${out}"
