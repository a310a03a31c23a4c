#!/usr/bin/env bash
# batond's command line as an operator meets it: --version and --help exit 0,
# --help lists every flag once, dashes and underscores are one flag, a TOML
# config file and BATON_* variables set flags (command line > environment >
# file, as Admin/ServerInfo reports them), a bad flag, value, key or
# argument exits 2 naming it; and --restore starts a new data directory
# from a snapshot file.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

v=$("$BATOND" --version) && [[ "$v" =~ ^batond\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ [0-9a-f]{7,}|^batond\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ unknown ]] \
  && pass "--version: $v" || fail "--version printed '$v'"
help=$("$BATOND" --help) && pass "--help exits 0" || fail "--help exited non-zero"
flags=$(grep -o '^  --[a-z_]* (default' <<<"$help" | sed 's/ (default//' | sort)
[ "$(uniq -d <<<"$flags")" = "" ] || fail "--help lists a flag twice: $(uniq -d <<<"$flags")"
for f in listen durability data_dir shards max_sessions config restore metrics_listen log_level log_format; do
  grep -q "^  --$f " <<<"$help" || fail "--help does not list --$f"
done
grep -q "flags from" <<<"$help" && fail "--help names the build's source paths"
[ "$("$BATOND" -h | head -1)" = "$(head -1 <<<"$help")" ] || fail "-h differs from --help"

# docs/operations.md documents every flag with its default and variable.
for f in $(sed 's/^  --//' <<<"$flags"); do
  default=$(grep -A0 "^  --$f " <<<"$help" | sed 's/.*(default \(.*\))$/\1/')
  row=$(grep -F "| \`--$f\` |" "$root/docs/operations.md" || true)
  [ -n "$row" ] || { fail "docs/operations.md does not document --$f"; continue; }
  grep -qF "\`$default\`" <<<"$row" || fail "docs/operations.md: --$f's default is not $default"
  grep -qF "BATON_${f^^}" <<<"$row" || fail "docs/operations.md: --$f's variable is not BATON_${f^^}"
done

expect_exit2() {  # expect_exit2 WHAT MESSAGE-SUBSTRING ARGS...
  local what=$1 msg=$2; shift 2
  local rc=0
  "$BATOND" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" </dev/null || rc=$?
  if [ "$rc" = 2 ] && grep -q -- "$msg" "$tmp/bad.err"; then
    pass "$what: exit 2, $(head -1 "$tmp/bad.err")"
  else
    fail "$what: exit $rc, stderr: $(cat "$tmp/bad.err")"
  fi
}
expect_exit2 "unknown flag" "unknown flag --no_such_flag" --no-such-flag=1
expect_exit2 "value out of range (dash spelling)" "max_sessions must be at least 1" --max-sessions=0
expect_exit2 "bad value" "durability must be local or none" --durability=sometimes
expect_exit2 "positional argument" "unexpected argument" stray
printf 'max_sessions = 5\nno_such_key = 1\n' >"$tmp/bad.toml"
expect_exit2 "unknown config key" "unknown key 'no_such_key'" --config "$tmp/bad.toml"
printf 'max_sessions = [1, 2]\n' >"$tmp/array.toml"
expect_exit2 "config value of the wrong type" "must be a string, number or boolean" --config="$tmp/array.toml"
printf 'max_sessions = \n' >"$tmp/broken.toml"
expect_exit2 "config file that does not parse" "line 1" --config "$tmp/broken.toml"
BATON_LOG_FORMAT=yaml expect_exit2 "bad environment value" "log_format must be text or json"

# Precedence: the file sets three flags, the environment overrides two, the
# command line one.
cat >"$tmp/batond.toml" <<TOML
# every key is a flag name; dashes work too
max-sessions = 111
max_waiters = 222
max_resources = 333
data_dir = "$tmp/data"
durability = "local"
TOML
BATON_MAX_WAITERS=2222 BATON_MAX_RESOURCES=3333 start_batond layered \
  --config "$tmp/batond.toml" --max-resources 33333
info=$(grpcurl -plaintext "$ADDR" baton.v1.Admin/ServerInfo)
get() { python3 -c 'import json,sys; print(json.load(sys.stdin)["config"][sys.argv[1]])' "$1" <<<"$info"; }
[ "$(get max_sessions)" = 111 ] && pass "config file sets max_sessions" || fail "max_sessions is $(get max_sessions), want 111 (file)"
[ "$(get max_waiters)" = 2222 ] && pass "environment overrides the file" || fail "max_waiters is $(get max_waiters), want 2222 (env)"
[ "$(get max_resources)" = 33333 ] && pass "command line overrides both" || fail "max_resources is $(get max_resources), want 33333 (flag)"
python3 - "$info" <<'PY' || fail "ServerInfo: $info"
import json, sys
i = json.loads(sys.argv[1])
assert i["role"] == "standalone" and i["durability"] == "local", i
assert i["version"] and i["commit"] and i["build"], i
assert i["data_dir"].endswith("/data"), i
PY
grep -q "starting" "$tmp/layered.err" || fail "no start line in the log"

# A snapshot file, saved through the API the way `baton snapshot save` does
# (here: the newest one in the data directory, the same format), restores
# into a new directory and the state is there.
grpcurl -plaintext -d '{"name":"ops/restored"}' "$ADDR" baton.v1.Events/Set >/dev/null
grpcurl -plaintext -d '{"name":"ops/q","items":[{"text":"kept"}]}' "$ADDR" baton.v1.Queues/Put >/dev/null
grpcurl -plaintext "$ADDR" baton.v1.Admin/SaveSnapshot >"$tmp/chunks.json"
python3 - "$tmp/chunks.json" "$tmp/backup.snap" <<'PY'
import base64, json, sys
text = open(sys.argv[1]).read()
dec, pos, out = json.JSONDecoder(), 0, b""
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    out += base64.b64decode(obj.get("data", ""))
open(sys.argv[2], "wb").write(out)
PY
stop_batond "$PID"
start_batond restored --data_dir "$tmp/restored" --restore "$tmp/backup.snap" --shards 3
d=$(grpcurl -plaintext -d '{"name":"ops/restored"}' "$ADDR" baton.v1.Admin/Describe)
grep -q EVENT_STATE_SET <<<"$d" && pass "--restore: the event is set" || fail "--restore: $d"
g=$(grpcurl -plaintext -d '{"name":"ops/q","ttl":"60s"}' "$ADDR" baton.v1.Queues/Get)
grep -q '"kept"' <<<"$g" && pass "--restore: the queue item is there" || fail "--restore: Get said $g"
stop_batond "$PID"
expect_exit2 "--restore in memory" "restore must be used with --durability=local" --durability=none --restore "$tmp/backup.snap"
rc=0
"$BATOND" --listen 127.0.0.1:0 --data_dir "$tmp/restored" --restore "$tmp/backup.snap" >/dev/null 2>"$tmp/again.err" </dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "holds state already" "$tmp/again.err" \
  && pass "--restore into a directory with state: refused" || fail "--restore again: exit $rc: $(cat "$tmp/again.err")"

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "config_test: all passed"
