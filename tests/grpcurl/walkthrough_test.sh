#!/usr/bin/env bash
# Runs the operator's grpcurl walk-through (the README) against a fresh
# batond, so that the documentation stays true.
#
#   BATOND=/path/to/batond tests/grpcurl/walkthrough_test.sh
#
# The doc's format: every ```sh block is one step holding exactly one grpcurl
# command, run in order in this shell (so variables set by one step, such as
# SESSION=$(grpcurl ...), are seen by later steps), with $ADDR the server's
# address. Under a block, optional notes:
#   <!-- expect: SUBSTRING -->        the step succeeds and its output contains SUBSTRING
#   <!-- expect-error: SUBSTRING -->  the step fails (grpcurl exits non-zero) and its
#                                     output contains SUBSTRING
# A step without notes must succeed. A step that assigns VAR=$(...) must leave
# VAR non-empty.
#
# Besides the doc, this checks reflection: `grpcurl list` names Baton's
# services, health and reflection; `grpcurl describe` works for every listed
# service and the doc has a describe step for each. Finally batond must exit
# with code 0 within 10 s of SIGTERM.
#
# Needs grpcurl (on PATH or in $(go env GOPATH)/bin) and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BATOND="${BATOND:-$root/build/service/batond}"
DOC="${WALKTHROUGH_DOC:-$root/README.md}"

if ! command -v grpcurl >/dev/null 2>&1; then
  gobin="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
  PATH="$gobin:$PATH"
fi
command -v grpcurl >/dev/null 2>&1 || { echo "walkthrough_test: grpcurl not found; run scripts/setup.sh --test" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "walkthrough_test: python3 not found" >&2; exit 1; }
[ -x "$BATOND" ] || { echo "walkthrough_test: batond not found or not executable at $BATOND" >&2; exit 1; }
[ -f "$DOC" ] || { echo "walkthrough_test: $DOC not found" >&2; exit 1; }

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true  # gone before its data directory is removed
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=()
fail() { failures+=("$1"); echo "FAIL: $1" >&2; }

# --- Start the server on a free loopback port -------------------------------
# With a data directory of its own (removed with $tmp), not ./baton-data.
mkdir "$tmp/data"
"$BATOND" --listen 127.0.0.1:0 --data_dir "$tmp/data" >"$tmp/batond.out" 2>"$tmp/batond.err" </dev/null &
pid=$!
for _ in $(seq 1 300); do
  [ -s "$tmp/batond.out" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
line="$(head -n 1 "$tmp/batond.out" || true)"
if [[ ! "$line" =~ ^listening\ on\ (127\.0\.0\.1:[0-9]+)$ ]]; then
  echo "walkthrough_test: batond did not report 'listening on 127.0.0.1:PORT' (got: '$line')" >&2
  tail -n 50 "$tmp/batond.err" >&2 || true
  exit 1
fi
ADDR="${BASH_REMATCH[1]}"
export ADDR
echo "batond listening on $ADDR"

# --- Extract the steps from the doc -----------------------------------------
mkdir "$tmp/steps"
python3 - "$DOC" "$tmp/steps" <<'PY'
import re, sys, pathlib
doc, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
lines = doc.read_text().splitlines()
note = re.compile(r"^<!--\s*(expect|expect-error):\s?(.*?)\s*-->\s*$")
i, n, problems = 0, 0, []
while i < len(lines):
    if lines[i].strip() != "```sh":
        i += 1
        continue
    start = i + 1
    j = start
    while j < len(lines) and lines[j].strip() != "```":
        j += 1
    if j == len(lines):
        problems.append(f"line {start}: unterminated sh block")
        break
    body = "\n".join(lines[start:j]) + "\n"
    k = j + 1
    notes = []
    while k < len(lines):
        m = note.match(lines[k].strip())
        if m:
            notes.append(f"{m.group(1)}\t{m.group(2)}")
        elif lines[k].strip():
            break
        k += 1
    count = len(re.findall(r"(?:^|[\s$(|;&])grpcurl\s", body))
    if count != 1:
        problems.append(f"line {start}: a step must hold exactly one grpcurl command, found {count}")
    n += 1
    (out / f"{n:03d}.sh").write_text(body)
    (out / f"{n:03d}.notes").write_text("".join(x + "\n" for x in notes))
    (out / f"{n:03d}.line").write_text(f"{start}\n")
    i = k
if n == 0:
    problems.append("no ```sh steps found")
for p in problems:
    print(f"{doc}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# --- Run every step in order, in this shell ---------------------------------
steps=("$tmp"/steps/*.sh)
echo "running ${#steps[@]} steps from $DOC"
for step in "${steps[@]}"; do
  base="${step%.sh}"
  where="$(basename "$DOC"):$(cat "$base.line")"
  out="$base.out"
  echo "--- $where"
  sed 's/^/    /' "$step"
  set +u
  if eval "$(cat "$step")" >"$out" 2>&1; then rc=0; else rc=$?; fi
  set -u
  sed 's/^/  | /' "$out"

  want_error=0
  while IFS=$'\t' read -r kind text; do
    [ "$kind" = "expect-error" ] && want_error=1
    if ! grep -qF -- "$text" "$out"; then
      fail "$where: output lacks '$text'"
    fi
  done <"$base.notes"
  if [ "$want_error" = 1 ] && [ "$rc" = 0 ]; then
    fail "$where: expected the command to fail, but it succeeded"
  elif [ "$want_error" = 0 ] && [ "$rc" != 0 ]; then
    fail "$where: command failed with exit code $rc"
  fi
  # VAR=$(...) steps must capture something.
  var="$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\$(.*/\1/p' "$step" | head -n 1)"
  if [ -n "$var" ] && [ -z "${!var:-}" ]; then
    fail "$where: \$$var is empty after the step"
  fi
done

# --- Reflection: list and describe every service ----------------------------
echo "--- reflection"
if ! grpcurl -plaintext "$ADDR" list >"$tmp/services" 2>&1; then
  fail "grpcurl list failed: $(cat "$tmp/services")"
fi
cat "$tmp/services"
for svc in baton.v1.Sessions baton.v1.Locks baton.v1.Semaphores baton.v1.Events baton.v1.Queues \
    baton.v1.Futures baton.v1.Barriers baton.v1.Conditions baton.v1.Timers baton.v1.Tasks baton.v1.Admin baton.v1.Stream \
    grpc.health.v1.Health; do
  grep -qxF "$svc" "$tmp/services" || fail "grpcurl list does not show $svc"
done
grep -qE '^grpc\.reflection\.v1(alpha)?\.ServerReflection$' "$tmp/services" || fail "grpcurl list does not show the reflection service"
while read -r svc; do
  [ -n "$svc" ] || continue
  if grpcurl -plaintext "$ADDR" describe "$svc" >"$tmp/describe" 2>&1 && grep -q "service" "$tmp/describe"; then
    ntypes=0
    # Describe each method's request and response types too.
    for typ in $(grep -E '^[[:space:]]*rpc ' "$tmp/describe" | grep -oE '\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+' | sed 's/^\.//' | sort -u); do
      grpcurl -plaintext "$ADDR" describe "$typ" >/dev/null 2>&1 || fail "grpcurl describe $typ (used by $svc) failed"
      ntypes=$((ntypes + 1))
    done
    echo "describe $svc: ok, and its $ntypes message types"
  else
    fail "grpcurl describe $svc failed: $(head -c 500 "$tmp/describe")"
  fi
  grep -qE "grpcurl .*describe $svc\$" "$DOC" || fail "the walk-through has no 'describe $svc' step"
done <"$tmp/services"

# --- Clean shutdown ---------------------------------------------------------
kill -TERM "$pid"
code=""
for _ in $(seq 1 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    if wait "$pid"; then code=0; else code=$?; fi
    break
  fi
  sleep 0.05
done
if [ -z "$code" ]; then
  fail "batond still running 10 s after SIGTERM"
elif [ "$code" != 0 ]; then
  fail "batond exited with code $code after SIGTERM"
fi
pid=""

if [ ${#failures[@]} -gt 0 ]; then
  echo "--- batond stderr (tail)" >&2
  tail -n 30 "$tmp/batond.err" >&2 || true
  echo "walkthrough_test: ${#failures[@]} failure(s):" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "walkthrough_test: all ${#steps[@]} steps and reflection checks passed"
