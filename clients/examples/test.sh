#!/usr/bin/env bash
# Runs every example of clients/examples against a live batond and checks it.
#
#   bash clients/examples/test.sh                  # all of them
#   bash clients/examples/test.sh chef pipeline    # some of them
#   BATOND=/path/to/batond bash clients/examples/test.sh
#
# Installs what the examples need, idempotently (quick when nothing changed):
#   - a venv (.venv) with the Python client, `pip install ../python`, redone
#     when the client's sources or the protos change;
#   - the Go consumer of the polyglot example and the `baton` tool (go build
#     into .bin/);
#   - the Node client (`npm ci` and build in ../node when needed) and the
#     polyglot Node service (`npm ci` in polyglot/node-service).
# Then, for each example, starts its own batond on 127.0.0.1 port 0 (with a
# temporary data directory of its own, removed after it stopped), runs the
# example's main.py (which starts the example's processes and exits non-zero
# unless its claim held), checks that it printed PASS and that the server is
# still up, and stops the server. Two negative controls check that the
# checks can fail (a chef with one cook is not concurrent; pool workers that
# skip the semaphore overfill the pool). Finally it runs rust/test.sh.
# Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
repo=$(cd ../.. && pwd)
export BATOND=${BATOND:-$repo/build/service/batond}

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ -x "$BATOND" ] || fail "no server binary at $BATOND (build it, or set BATOND)"
command -v python3 >/dev/null || fail "python3 not found"
command -v go >/dev/null || fail "go not found"
command -v node >/dev/null || fail "node not found"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || fail "Node.js 20 or newer is required"

all_examples=(chef fetch pool pipeline urgent undo monitor barrier taskgroup shield retry polyglot rust)
if [ $# -gt 0 ]; then examples=("$@"); else examples=("${all_examples[@]}"); fi
for ex in "${examples[@]}"; do
  [ -d "$here/$ex" ] || fail "no example named $ex (have: ${all_examples[*]})"
done
wants() { local e; for e in "${examples[@]}"; do [ "$e" = "$1" ] && return 0; done; return 1; }

# ---- installs ---------------------------------------------------------------
install_start=$SECONDS
# One install at a time (two runs of this script at once would build over each other).
exec 9>"$here/.install.lock"
flock 9

step "Python: .venv with the client from ../python"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || fail "python3 -m venv failed (Debian: apt-get install python3-venv; scripts/setup.sh --test does)"
fi
# Reinstall when the client's sources, its build files or the protos change.
py_stamp=$( (cd "$repo" && find clients/python/baton -name '*.py' -not -path '*/v1/*' -print0 \
  | sort -z | xargs -0 sha256sum; sha256sum clients/python/setup.py clients/python/pyproject.toml proto/baton/v1/*.proto) \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.baton-client-stamp 2>/dev/null || true)" != "$py_stamp" ]; then
  # Built from a copy, so that nothing is written into ../python (its build/,
  # generated stubs) while its own tests may be running; BATON_PROTO_DIR
  # tells its setup.py where the protos are.
  py_src=$(mktemp -d)
  (cd ../python && tar --exclude=./.venv --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=./tests -cf - .) | tar -xf - -C "$py_src"
  BATON_PROTO_DIR="$repo/proto" .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --upgrade "$py_src"
  rm -rf "$py_src"
  echo "$py_stamp" >.venv/.baton-client-stamp
fi
.venv/bin/python -c 'import baton' || fail "the Python client does not import"

if wants polyglot; then
  step "Go: the polyglot consumer and the baton tool (go build into .bin/)"
  mkdir -p .bin
  (cd polyglot/go-consumer && go build -p 1 -o "$here/.bin/polyglot-go-consumer" .)
  (cd ../go && go build -p 1 -o "$here/.bin/baton" ./cmd/baton)

  step "Node: the client in ../node, and the polyglot Node service"
  # The same stamp as ../node/test.sh: npm ci only when its lock file changed.
  node_stamp=../node/node_modules/.baton-lock-sha256
  want=$(sha256sum ../node/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$node_stamp" 2>/dev/null || true)" != "$want" ]; then
    (cd ../node && npm ci --no-audit --no-fund --ignore-scripts)
    echo "$want" >"$node_stamp"
  fi
  # Build the client (dist/ is not checked in) when missing or older than its sources.
  if [ ! -f ../node/dist/index.js ] || [ -n "$(find ../node/src ../../proto -newer ../node/dist/index.js \
      -not -path '../node/src/gen/*' -print -quit)" ]; then
    (cd ../node && npm run --silent build)
  fi
  svc_stamp=polyglot/node-service/node_modules/.baton-lock-sha256
  want=$(sha256sum polyglot/node-service/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$svc_stamp" 2>/dev/null || true)" != "$want" ]; then
    (cd polyglot/node-service && npm ci --no-audit --no-fund --ignore-scripts)
    echo "$want" >"$svc_stamp"
  fi
fi
flock -u 9
echo "installs took $((SECONDS - install_start)) s"

# ---- running ----------------------------------------------------------------
run_start=$SECONDS
work=$(mktemp -d)
# Run a copy, so that a rebuild of the server meanwhile does not pull it from under us.
cp "$BATOND" "$work/batond"
server_bin=$work/batond
server_pid=
server_data=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
  if [ -n "$server_data" ]; then
    rm -rf "$server_data"
    server_data=
  fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

# Starts a batond on a free port, with a fresh data directory (removed by
# stop_server); sets server_pid and addr.
servers=0
start_server() {
  # A new file per server: reading the previous one's address would be a race.
  servers=$((servers + 1))
  local out="$work/batond.$servers.out"
  : >"$out"
  server_data=$(mktemp -d "${TMPDIR:-/tmp}/baton-example-data.XXXXXX")
  "$server_bin" --listen 127.0.0.1:0 --data_dir "$server_data" >"$out" 2>"$work/batond.err" &
  server_pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$out")
    [ -n "$addr" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/batond.err" >&2
  fail "batond did not start"
}

passed=()
failed=()

# run_example NAME EXPECT [ARGS...]: runs NAME/main.py against a fresh server;
# EXPECT is "pass" (exit 0 with a PASS line) or "fail" (a negative control:
# exit 1 with a FAIL line that is not a crash).
run_example() {
  local name=$1 expect=$2 label=$1 status=0
  shift 2
  if [ $# -gt 0 ]; then label="$name $*"; fi
  step "$label (expect $expect)"
  start_server
  local t0=$SECONDS log="$work/$name.log"
  set +e
  timeout --kill-after=10 90 "$here/.venv/bin/python" -u "$here/$name/main.py" --addr "$addr" "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  local alive=yes
  kill -0 "$server_pid" 2>/dev/null || alive=no
  stop_server
  local ok=no
  if [ "$alive" = no ]; then
    echo "batond died during $label:"; cat "$work/batond.err"
  elif [ "$expect" = pass ]; then
    [ "$status" = 0 ] && grep -q "^PASS: $name" "$log" && ok=yes
  else
    [ "$status" = 1 ] && grep -q "^FAIL: $name: " "$log" && ! grep -q "unexpected error" "$log" && ok=yes
  fi
  if [ "$ok" = yes ]; then
    passed+=("$label")
    echo "ok: $label ($((SECONDS - t0)) s)"
  else
    failed+=("$label")
    echo "NOT OK: $label (status $status, $((SECONDS - t0)) s)"
  fi
}

for ex in "${examples[@]}"; do
  [ "$ex" = rust ] && continue
  run_example "$ex" pass
done
# Negative controls: the examples' checks can fail.
if [ $# -eq 0 ]; then
  run_example chef fail --cooks 1
  run_example pool fail --unguarded
fi
examples_time=$((SECONDS - run_start))

if wants rust; then
  step "rust (rust/test.sh)"
  t0=$SECONDS
  if bash rust/test.sh; then passed+=(rust); else failed+=(rust); fi
  echo "rust took $((SECONDS - t0)) s (including its cargo build)"
fi

echo
echo "examples: ${#passed[@]} passed, ${#failed[@]} failed; Python/Go/Node examples ran in ${examples_time} s"
[ ${#failed[@]} -eq 0 ] || fail "failed: ${failed[*]}"
echo "PASS: clients/examples"
