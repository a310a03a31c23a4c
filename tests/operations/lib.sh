# Shared by the operations tests: a temp directory removed at exit, batond
# started on 127.0.0.1 port 0 and stopped by its PID, grpcurl on PATH.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BATOND="${BATOND:-$root/build/service/batond}"
[ -x "$BATOND" ] || { echo "batond not found at $BATOND" >&2; exit 1; }
if ! command -v grpcurl >/dev/null 2>&1; then
  PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
fi
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# start_batond NAME ARGS...: starts batond with its output in $tmp/NAME.out
# and .err; sets PID and ADDR (and METRICS_PORT when it serves metrics).
start_batond() {
  local name=$1; shift
  "$BATOND" --listen 127.0.0.1:0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 1 200); do
    grep -q "^listening on " "$tmp/$name.out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  ADDR=$(sed -n 's/^listening on //p' "$tmp/$name.out")
  METRICS_PORT=$(sed -n 's|^metrics on http://127.0.0.1:\([0-9]*\)/metrics|\1|p' "$tmp/$name.out")
  [ -n "$ADDR" ] || { echo "batond $name did not start:"; cat "$tmp/$name.err"; return 1; }
}

# stop_batond PID: SIGTERM, and it must exit 0 within 10 s.
stop_batond() {
  local p=$1 rc=0
  kill -TERM "$p"
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || fail "batond $p exited $rc after SIGTERM"
}
