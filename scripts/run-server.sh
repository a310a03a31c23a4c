#!/usr/bin/env bash
# Sets up, builds and starts batond on 127.0.0.1:7411 (flags are passed on,
# e.g. --listen 127.0.0.1:9000; see --help). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target batond
exec build/service/batond "$@"
