#!/usr/bin/env bash
# Generates the Go stubs for proto/baton/v1/*.proto into gen/batonv1 (or into
# the directory given as $1, which test.sh uses to check that the committed
# stubs are not stale). Needs protoc and the pinned protoc-gen-go and
# protoc-gen-go-grpc on PATH (test.sh installs them into .bin/).
#
# The protos say `option go_package = "github.com/baton/baton/gen/baton/v1"`;
# the M flags below map each file into this module instead, so the protos
# need no Go-specific change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_root="${BATON_PROTO_DIR:-$here/../../proto}"
out="${1:-$here}"
module=github.com/baton/baton/clients/go
pkg=$module/gen/batonv1

cd "$proto_root"
files=(baton/v1/*.proto)
mflags=()
for f in "${files[@]}"; do
  mflags+=("--go_opt=M$f=$pkg;batonv1" "--go-grpc_opt=M$f=$pkg;batonv1")
done
mkdir -p "$out/gen/batonv1"
protoc -I . \
  --go_out="$out" --go_opt=module=$module \
  --go-grpc_out="$out" --go-grpc_opt=module=$module \
  "${mflags[@]}" "${files[@]}"
