# Shell helpers shared by bench/run.sh and bench/smoke.sh (sourced, not run).
# Callers set BENCH_TMP (a private temporary directory) and install
# `trap bench_stop_all EXIT`.

# PIDs of every server started through bench_start, stopped by bench_stop_all.
BENCH_PIDS=()
# Data directories made by bench_batond_args, removed by bench_stop_all once
# the servers have exited.
BENCH_DATA_DIRS=()

# bench_batond_args NAME FLAGS...
# The one place batond's flags are put together: sets the array
# BENCH_BATOND_ARGS to FLAGS (the caller's, e.g. "--durability=none" to
# compare with the durable default) plus, unless FLAGS name their own
# --data_dir or say --durability=none, "--data_dir DIR" with DIR a fresh
# directory $BENCH_TMP/NAME.data.XXXXXX (on disk, so that fsync costs what it
# costs), removed by bench_stop_all.
bench_batond_args() {
  local name=$1
  shift
  BENCH_BATOND_ARGS=("$@")
  local flag prev=
  for flag in "$@"; do
    case "${prev}:${flag}" in
      *:--data_dir | *:--data_dir=* | *:-data_dir | *:-data_dir=*) return 0 ;;
      *:--durability=none | *:-durability=none | --durability:none | -durability:none) return 0 ;;
    esac
    prev=${flag}
  done
  local dir
  dir=$(mktemp -d "${BENCH_TMP}/${name}.data.XXXXXX")
  BENCH_DATA_DIRS+=("${dir}")
  BENCH_BATOND_ARGS+=(--data_dir "${dir}")
}

# Prints a TCP port on 127.0.0.1 that nothing listens on right now, below the
# kernel's ephemeral range (which port-0 listeners and outgoing connections
# take from). A server started on it may still lose a race; bench_start then
# reports the failure, and bench_retry tries another port.
bench_free_port() {
  local port low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 12000)) || low=32768
  for _ in $(seq 200); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! bench_port_open "${port}"; then
      echo "${port}"
      return 0
    fi
  done
  echo "bench: no free port found" >&2
  return 1
}

# bench_retry START ARGS...: runs START ARGS (a function that picks its ports
# and starts a server) up to three times, until it succeeds.
bench_retry() {
  local try
  for try in 1 2 3; do
    "$@" && return 0
    ((try < 3)) && echo "bench: $1 $2 failed; trying again on other ports" >&2
  done
  return 1
}

# Succeeds while process PID runs (a zombie that is not reaped yet counts as
# gone, unlike with `kill -0`).
bench_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != "Z" ]]
}

# Succeeds if something accepts TCP connections on 127.0.0.1:PORT.
bench_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# bench_wait NAME PID TIMEOUT_S CHECK...
# Waits, at most TIMEOUT_S seconds, until the command CHECK succeeds while
# server NAME (process PID, output in $BENCH_TMP/NAME.log) runs. Returns
# non-zero (and shows the log) if the server exits or is not ready in time.
bench_wait() {
  local name=$1 pid=$2 timeout_s=$3
  shift 3
  local log="${BENCH_TMP}/${name}.log"
  local deadline=$((SECONDS + timeout_s))
  while ((SECONDS <= deadline)); do
    if "$@"; then
      return 0
    fi
    if ! bench_alive "${pid}"; then
      echo "bench: ${name} exited before it was ready:" >&2
      tail -n 20 "${log}" >&2
      return 1
    fi
    sleep 0.05  # Bounded wait for a server to start.
  done
  echo "bench: ${name} not ready after ${timeout_s} s:" >&2
  tail -n 20 "${log}" >&2
  return 1
}

# bench_start NAME READY_REGEX TIMEOUT_S COMMAND...
# Starts COMMAND in the background with its output in $BENCH_TMP/NAME.log and
# waits, at most TIMEOUT_S seconds, until that log matches READY_REGEX.
# Returns non-zero (and shows the log) if the server exits or is not ready.
bench_start() {
  local name=$1 ready=$2 timeout_s=$3
  shift 3
  local log="${BENCH_TMP}/${name}.log"
  # Created here, not by the background redirection, so that the first grep
  # finds it.
  : >"${log}"
  "$@" >"${log}" 2>&1 &
  local pid=$!
  BENCH_PIDS+=("${pid}")
  bench_wait "${name}" "${pid}" "${timeout_s}" grep -qE "${ready}" "${log}"
}

# bench_start_tcp NAME PORT TIMEOUT_S COMMAND...
# Like bench_start, for a server that prints nothing when it is ready
# (beanstalkd): waits until it accepts connections on 127.0.0.1:PORT.
bench_start_tcp() {
  local name=$1 port=$2 timeout_s=$3
  shift 3
  "$@" >"${BENCH_TMP}/${name}.log" 2>&1 &
  local pid=$!
  BENCH_PIDS+=("${pid}")
  bench_wait "${name}" "${pid}" "${timeout_s}" bench_port_open "${port}" || return 1
  # Someone else may hold the port (a lost race after bench_free_port).
  if ! bench_alive "${pid}"; then
    echo "bench: ${name} exited:" >&2
    tail -n 20 "${BENCH_TMP}/${name}.log" >&2
    return 1
  fi
}

# Stops every server bench_start started: SIGTERM, then SIGKILL after 5 s;
# then removes the data directories bench_batond_args made.
bench_stop_all() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 100); do
      bench_alive "${pid}" || break
      sleep 0.05  # Bounded wait for the server to exit.
    done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  BENCH_PIDS=()
  rm -rf "${BENCH_DATA_DIRS[@]}"
  BENCH_DATA_DIRS=()
}
