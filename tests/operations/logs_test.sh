#!/usr/bin/env bash
# batond's log as an operator reads it: with --log-format=json every line of
# stderr is one JSON object with ts, level and msg; start, configuration,
# serving, session open and expiry, lock grants and releases (at debug),
# lease expiry and the stop are each one line; at the default level (info)
# grants are not logged.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

start_batond json --data_dir "$tmp/data" --log-format json --log_level=debug
session=$(grpcurl -plaintext -d '{"ttl":"1s","label":"worker-7"}' "$ADDR" baton.v1.Sessions/Open \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
grpcurl -plaintext -d "{\"name\":\"logs/held\",\"session_id\":\"$session\"}" "$ADDR" baton.v1.Locks/Acquire >/dev/null
grpcurl -plaintext -d '{"name":"logs/leased","ttl":"1s"}' "$ADDR" baton.v1.Locks/Acquire >/dev/null
# The session (1 s TTL, never kept alive) and the lease expire.
for _ in $(seq 1 50); do
  grep -q '"lease expired"' "$tmp/json.err" && grep -q '"session expired"' "$tmp/json.err" && break
  sleep 0.1
done
stop_batond "$PID"

python3 - "$tmp/json.err" "$session" <<'PY' && pass "JSON log: every line an object, every event there" || fail "JSON log"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
session = int(sys.argv[2])
events = []
for n, line in enumerate(lines, 1):
    try:
        obj = json.loads(line)
    except ValueError as e:
        sys.exit(f"line {n} is not JSON: {line!r}: {e}")
    for key in ("ts", "level", "msg"):
        assert key in obj, f"line {n} has no {key}: {line}"
    assert obj["ts"].endswith("Z"), line
    events.append(obj)
def find(msg, **fields):
    for e in events:
        if e["msg"] == msg and all(e.get(k) == v for k, v in fields.items()):
            return e
    sys.exit(f"no '{msg}' line with {fields}; the log:\n" + "\n".join(lines))
find("batond starting")
conf = find("configuration")
assert conf["log_format"] == "json" and conf["durability"] == "local", conf
find("serving", durability="local")
find("session opened", session=session, label="worker-7", level="info")
find("granted", name="logs/held", session=session, kind="lock", level="debug")
find("session expired", session=session)
find("released", name="logs/held")
find("lease expired", name="logs/leased")
find("shutting down", signal="SIGTERM")
find("stopped")
PY

# At the default level, grants are not logged; session events are.
start_batond text --data_dir "$tmp/data2"
grpcurl -plaintext -d '{"name":"logs/quiet","ttl":"60s"}' "$ADDR" baton.v1.Locks/Acquire >/dev/null
grpcurl -plaintext -d '{"ttl":"60s"}' "$ADDR" baton.v1.Sessions/Open >/dev/null
stop_batond "$PID"
grep -q " debug granted" "$tmp/text.err" && fail "grant logged at info level" || pass "no debug lines at info"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info session opened session=[0-9]+ ttl=1m|^[0-9-]+T[0-9:.]+Z info session opened session=[0-9]+ ttl=60' "$tmp/text.err" \
  && pass "text log: timestamp, level, message, fields" || fail "text log: $(cat "$tmp/text.err")"

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "logs_test: all passed"
