#!/usr/bin/env bash
# ctest deploy_install: installs the build tree into a temporary prefix
# (`cmake --install BUILD --prefix T`), checks what landed there, then
# configures, builds and runs deploy/install_consumer, a project outside the
# tree that does find_package(baton CONFIG REQUIRED) and links baton::client,
# against the installed batond (T/bin/batond on 127.0.0.1, port of the
# kernel's choice).
# Usage: install_test.sh BUILD_DIR CMAKE_GENERATOR CXX_COMPILER
set -euo pipefail
build="$(cd "${1:?usage: install_test.sh BUILD_DIR GENERATOR CXX}" && pwd)"
generator="${2:-Ninja}"
cxx="${3:-c++}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in bin/batond lib/libbaton_client.a lib/libbaton_proto.a include/baton/baton.h \
         include/baton/v1/lock.pb.h lib/cmake/baton/batonConfig.cmake \
         lib/cmake/baton/batonConfigVersion.cmake lib/cmake/baton/batonTargets.cmake \
         share/baton/proto/baton/v1/lock.proto share/doc/baton/LICENSE \
         share/doc/baton/deploy.md share/doc/baton/batond.service; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; cat "$tmp/install.log"; exit 1; }
done
# Nothing in the installed package may point back into the build or source tree.
if grep -rlE "$build|$(cd "$here/.." && pwd)/(clients|proto)" "$prefix/lib/cmake/baton"; then
  echo "FAIL: the installed CMake package names build or source paths"; exit 1
fi
echo "ok: cmake --install: batond, libbaton_client.a, libbaton_proto.a, headers, CMake package"

cmake -S "$here/install_consumer" -B "$tmp/consumer" -G "$generator" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
echo "ok: a project outside the tree builds with find_package(baton) + baton::client"

"$prefix/bin/batond" --listen=127.0.0.1:0 --data_dir="$tmp/data" >"$tmp/batond.out" 2>"$tmp/batond.err" &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^listening on ' "$tmp/batond.out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/batond.err"; exit 1; }
  sleep 0.1
done
addr="$(sed -n 's/^listening on //p' "$tmp/batond.out")"
[ -n "$addr" ] || { echo "FAIL: installed batond did not start"; cat "$tmp/batond.err"; exit 1; }
out="$("$tmp/consumer/consumer" "$addr")"
echo "$out" | grep -q '^fence [0-9]' || { echo "FAIL: consumer said: $out"; exit 1; }
kill -TERM "$pid"
wait "$pid"
pid=""
echo "ok: the consumer took a lock on the installed batond at $addr ($out)"
