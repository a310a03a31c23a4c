#!/usr/bin/env bash
# Builds the Rust example and runs the inventory scenario against a fresh
# batond: two Rust worker processes (one of which crashes mid-job), a Rust
# producer, then a lock probe with a gRPC deadline, checked with Admin/Describe
# and released through grpcurl. Exits non-zero on any failure.
#
#   BATOND=/path/to/batond bash clients/examples/rust/test.sh
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
BATOND=${BATOND:-$here/../../../build/service/batond}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# What it needs: cargo (preinstalled on CI) and protoc (apt's protobuf-compiler,
# installed by scripts/setup.sh; installed here if missing and we can).
command -v cargo >/dev/null || fail "cargo not found (install Rust: https://rustup.rs)"
if ! command -v protoc >/dev/null && [ -z "${PROTOC:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq protobuf-compiler >/dev/null
  else
    fail "protoc not found: apt-get install protobuf-compiler (or set PROTOC)"
  fi
fi
[ -x "$BATOND" ] || fail "no server binary at $BATOND (set BATOND)"

# The dev profile (without debug info): half the cold build time of release.
step "cargo build --locked"
build_start=$SECONDS
timeout 900 cargo build --locked --quiet
echo "built in $((SECONDS - build_start)) s"
bin=${CARGO_TARGET_DIR:-$here/target}/debug/baton-rust-example
deadline=$((SECONDS + 120))   # budget for the scenarios (they take a few seconds)

work=$(mktemp -d)
pids=()
server_pid=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
show() { for f in "$@"; do echo "=== $f"; cat "$work/$f" 2>/dev/null || true; done; }

# A command bounded by what is left of the budget.
bounded() { local left=$((deadline - SECONDS)); [ "$left" -gt 0 ] || fail "out of time"; timeout "$left" "$@"; }

step "start batond on a free port"
# With a data directory of its own (removed with $work once it has stopped).
mkdir "$work/batond-data"
"$BATOND" --listen 127.0.0.1:0 --data_dir "$work/batond-data" >"$work/batond.out" 2>"$work/batond.err" &
server_pid=$!
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$work/batond.out")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { show batond.err; fail "batond did not start"; }
echo "batond at $addr"
rs() { bounded "$bin" "$@" --addr "$addr"; }

# Waits until `describe --name $1` prints a line matching $2.
await_describe() {
  for _ in $(seq 100); do
    rs describe --name "$1" | grep -Eq "$2" && return 0
    sleep 0.1
  done
  rs describe --name "$1"
  fail "$1 never matched /$2/"
}

step "scenario 1: two workers, one crashes mid-job; a producer feeds them and checks the results"
store=$work/store
rs worker --name a --store "$store" >"$work/worker-a.out" 2>&1 & pids+=($!); worker_a=$!
rs worker --name b --store "$store" --crash-after-items 2 >"$work/worker-b.out" 2>&1 & pids+=($!); worker_b=$!
# Both block in Events/Wait on the catalog-ready event before anything is put.
await_describe inventory/catalog-ready "waiters=2"
[ ! -s "$store/ledger.txt" ] || fail "workers wrote before the catalog-ready event"

if ! rs producer --updates 40 --quotes 6 --workers a >"$work/producer.out" 2>&1; then
  show producer.out worker-a.out worker-b.out; fail "producer failed"
fi
cat "$work/producer.out"
grep -q "woke 2 waiting workers" "$work/producer.out" || fail "the event did not wake both workers"

set +e
wait "$worker_a"; status_a=$?
wait "$worker_b"; status_b=$?
set -e
show worker-a.out worker-b.out
[ "$status_a" = 0 ] || fail "worker a exited with $status_a"
[ "$status_b" = 3 ] || fail "worker b should have crashed (exit 3), exited with $status_b"
grep -q "worker a reported applied=" "$work/producer.out" || fail "no report from worker a"

rs audit --store "$store" --updates 40 --expect-redelivery true | tee "$work/audit.out"
last_store_token=$(sed -n 's/.*fencing tokens [0-9]*\.\.\([0-9]*\) .*/\1/p' "$work/audit.out")
[ -n "$last_store_token" ] || fail "no last token in the audit"

step "scenario 2: a lock wait cut short by a gRPC deadline leaves nothing behind"
rs hold-lock --name inventory/store --until inventory/probe-release >"$work/hold.out" 2>&1 & pids+=($!); holder=$!
for _ in $(seq 100); do grep -qs "^holding" "$work/hold.out" && break; sleep 0.1; done
held=$(sed -n 's/^holding inventory\/store token=\([0-9]*\).*/\1/p' "$work/hold.out")
[ -n "$held" ] || { show hold.out; fail "hold-lock did not get the lock"; }
[ "$held" -gt "$last_store_token" ] || fail "token $held is not above the store's last token $last_store_token"

rs try-lock --name inventory/store --deadline-ms 300 | tee "$work/try1.out"
grep -Eq "^not granted inventory/store: (DeadlineExceeded|Cancelled) after [0-9]+ ms" "$work/try1.out" \
  || fail "a held lock was granted, or the deadline did not end the wait"
elapsed=$(sed -n 's/.* after \([0-9]*\) ms/\1/p' "$work/try1.out")
[ "$elapsed" -ge 200 ] && [ "$elapsed" -lt 3000 ] || fail "the deadline ended the wait after $elapsed ms, expected ~300"
# The cancelled wait is gone from the server; the holder is untouched.
await_describe inventory/store "holders=1 holder_tokens=\[$held\] waiters=0"

# Another process (grpcurl, if present; else our own binary's Set) releases the holder.
grpcurl=${GRPCURL:-$(command -v grpcurl || echo "$HOME/go/bin/grpcurl")}
if [ -x "$grpcurl" ]; then
  bounded "$grpcurl" -plaintext -d '{"name": "inventory/probe-release"}' "$addr" baton.v1.Events/Set >/dev/null
else
  echo "(grpcurl not found; skipping the grpcurl part)"; kill "$holder"
fi
set +e; wait "$holder"; status_h=$?; set -e
if [ -x "$grpcurl" ]; then
  [ "$status_h" = 0 ] || { show hold.out; fail "hold-lock exited with $status_h"; }
  grep -q "^released inventory/store token=$held" "$work/hold.out" || { show hold.out; fail "holder did not release"; }
fi

rs try-lock --name inventory/store --deadline-ms 5000 | tee "$work/try2.out"
next=$(sed -n 's/^granted inventory\/store token=\([0-9]*\)/\1/p' "$work/try2.out")
[ -n "$next" ] || fail "the free lock was not granted"
[ "$next" -gt "$held" ] || fail "fencing token $next is not above $held"

step "nothing left held or waiting"
# What may remain: the reports (futures kept 10 min), the done quotes (kept for
# the server's retention), the probe's event, set, and the queue, drained but
# declared with options (a declaration lasts until Queues/Delete). Locks and
# the other events are back in their default state, hence reclaimed.
rs list --prefix inventory/ | tee "$work/list.out"
leftover=$(grep -Ev "^(inventory/summary/a Future|inventory/quotes Tasks|inventory/probe-release Event|inventory/stock-updates Queue) holders=0 waiters=0$" "$work/list.out" || true)
[ -z "$leftover" ] || fail "still live after the scenario: $leftover"

echo "PASS: rust example ($((SECONDS - build_start)) s including the build)"
