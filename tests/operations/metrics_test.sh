#!/usr/bin/env bash
# The metrics endpoint as an operator uses it: batond serves /metrics (and
# /healthz) on its own listener, `promtool check metrics` accepts the page, the families the
# operator's guide lists are there and move with what clients do, and a real
# Prometheus (Debian's) scrapes batond and answers a PromQL query from it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null && command -v prometheus >/dev/null \
  || { echo "metrics_test: prometheus not installed; run scripts/setup.sh --test" >&2; exit 1; }

start_batond m --data_dir "$tmp/data" --metrics_listen 127.0.0.1:0
[ -n "$METRICS_PORT" ] || { fail "no 'metrics on' line"; exit 1; }
URL="http://127.0.0.1:$METRICS_PORT/metrics"

grpcurl -plaintext -d '{"name":"m/e"}' "$ADDR" baton.v1.Events/Set >/dev/null
for i in 1 2 3; do
  grpcurl -plaintext -d "{\"name\":\"m/q\",\"items\":[{\"text\":\"$i\"}]}" "$ADDR" baton.v1.Queues/Put >/dev/null
done
grpcurl -plaintext -d '{"name":"m/q","ttl":"60s"}' "$ADDR" baton.v1.Queues/Get >/dev/null
grpcurl -plaintext -d '{"name":"m/lock","ttl":"60s"}' "$ADDR" baton.v1.Locks/Acquire >/dev/null
grpcurl -plaintext -d '{"name":"m/lock","timeout":"0s","ttl":"1s"}' "$ADDR" baton.v1.Locks/Acquire >/dev/null 2>&1 || true
grpcurl -plaintext -d '{"ttl":"60s"}' "$ADDR" baton.v1.Sessions/Open >/dev/null

curl -sf "$URL" >"$tmp/page.txt" || fail "GET /metrics failed"
if promtool check metrics <"$tmp/page.txt" >"$tmp/promtool.txt" 2>&1; then
  pass "promtool check metrics: clean ($(wc -l <"$tmp/page.txt") lines)"
else
  fail "promtool check metrics: $(cat "$tmp/promtool.txt")"
fi
expect_line() {  # expect_line REGEX WHAT
  grep -Eq "$1" "$tmp/page.txt" && pass "$2" || fail "$2: no line matching $1"
}
expect_line '^baton_rpc_calls_total\{method="Events/Set",transport="unary",code="OK"\} 1$' "calls by method and code"
expect_line '^baton_rpc_calls_total\{method="Queues/Put",transport="unary",code="OK"\} 3$' "three puts"
expect_line '^baton_rpc_calls_total\{method="Locks/Acquire",transport="unary",code="DEADLINE_EXCEEDED"\} 1$' "a failed try counted by its code"
expect_line '^baton_rpc_duration_seconds_count\{method="Queues/Put"\} 3$' "latency histogram by method"
expect_line '^baton_sessions 1$' "open sessions"
expect_line '^baton_resources\{kind="queue"\} 1$' "resources by kind"
expect_line '^baton_holders\{kind="lock"\} 1$' "holders by kind"
expect_line '^baton_queue_items\{state="ready"\} 2$' "ready queue items"
expect_line '^baton_queue_items\{state="in_flight"\} 1$' "in-flight queue items"
expect_line '^baton_log_fsync_duration_seconds_count [1-9]' "fsync latency histogram"
expect_line '^baton_log_batch_entries_bucket\{le="\+Inf"\} [1-9]' "batch size histogram"
expect_line '^baton_log_applied_index [1-9]' "applied index"
expect_line '^baton_snapshot_index ' "snapshot index"
expect_line '^baton_build_info\{version="[0-9.]+",commit="' "build info"
expect_line '^process_resident_memory_bytes [1-9]' "process memory"
health=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$METRICS_PORT/healthz")
[ "$health" = $'serving\n 200' ] && pass "GET /healthz: 200 serving (for probes that speak no TLS)" \
  || fail "GET /healthz: $health"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/other")
[ "$code" = 404 ] && pass "other paths are 404" || fail "GET /other: $code"

# A real Prometheus scrapes it every second; a PromQL query answers.
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: baton
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 </dev/null &
prom_pid=$!
pids+=("$prom_pid")
answer=""
for _ in $(seq 1 60); do
  answer=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query" \
    --data-urlencode 'query=sum(baton_queue_items{job="baton",state=~"ready|in_flight"})' 2>/dev/null || true)
  grep -q '"value":\[[0-9.]*,"3"\]' <<<"$answer" && break
  sleep 0.5
done
grep -q '"value":\[[0-9.]*,"3"\]' <<<"$answer" \
  && pass "Prometheus scraped batond: sum(baton_queue_items) = 3" \
  || { fail "PromQL answer: $answer"; tail -5 "$tmp/prometheus.log"; }
up=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=up{job="baton"}' || true)
grep -q '"value":\[[0-9.]*,"1"\]' <<<"$up" && pass "up{job=baton} = 1" || fail "up: $up"
kill -TERM "$prom_pid"; wait "$prom_pid" 2>/dev/null || true
stop_batond "$PID"

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "metrics_test: all passed"
