#!/usr/bin/env bash
# Checks deploy/systemd/batond.service with systemd's own tools:
#   - `systemd-analyze verify` prints nothing about the unit (no unknown key,
#     no bad value, ExecStart is executable) and exits 0;
#   - `systemd-analyze security --offline` rates its exposure at most 2.0.
# verify needs ExecStart's binary to exist, so a copy of the unit points at
# the batond under test (argument 1) instead of /usr/local/bin/batond.
# Usage: verify_test.sh BATOND
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
batond="$(realpath "${1:?usage: verify_test.sh BATOND}")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

grep -q '^ExecStart=/usr/local/bin/batond ' "$here/batond.service" || {
  echo "FAIL: ExecStart no longer starts with /usr/local/bin/batond; update this test" >&2; exit 1; }
sed "s#^ExecStart=/usr/local/bin/batond #ExecStart=$batond #" "$here/batond.service" \
  > "$tmp/batond.service"

# verify reports a unit's problems on stderr and still exits 0 for most of
# them ("Unknown key ... ignoring"), so any output fails the test.
rc=0
out="$(cd "$tmp" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify ./batond.service 2>&1)" || rc=$?
if [ "$rc" != 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify batond.service (rc=$rc):" >&2
  echo "$out" >&2
  exit 1
fi
echo "ok: systemd-analyze verify batond.service: no warnings"

sec="$(cd "$tmp" && systemd-analyze security --offline=yes --no-pager ./batond.service 2>&1)"
level="$(echo "$sec" | sed -n 's/.*Overall exposure level for batond.service: \([0-9.]*\).*/\1/p')"
if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
  echo "$sec" >&2
  echo "FAIL: exposure level '$level' above 2.0" >&2
  exit 1
fi
echo "ok: systemd-analyze security: exposure $level"
