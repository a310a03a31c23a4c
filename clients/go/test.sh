#!/usr/bin/env bash
# Tests the Go client and the baton CLI against a real batond:
#   1. installs the pinned protoc-gen-go / protoc-gen-go-grpc into .bin/ if missing,
#   2. regenerates gen/batonv1 into a temporary directory and fails if the
#      committed stubs differ (run ./gen.sh with .bin on PATH to update them),
#   3. gofmt, go vet, go test ./... -p 1 (the library under -race); every test
#      package starts its own batond on 127.0.0.1 port 0 from $BATOND and stops it,
#   4. the library, the example and the CLI once more against batonds with TLS
#      and a bearer token (BATON_TEST_SECURE=1; BATON_GO_SECURE=0 skips it).
# BATOND defaults to build/service/batond of this repository. Needs Go >= 1.23
# (older toolchains >= 1.21 fetch one through the module proxy) and protoc.
set -euo pipefail
cd "$(dirname "$0")"
here="$PWD"

batond="${BATOND:-$here/../../build/service/batond}"
if [ ! -x "$batond" ]; then
  echo "test.sh: no batond at $batond: build it (scripts/test.sh) or set BATOND" >&2
  exit 1
fi
if ! command -v protoc >/dev/null 2>&1; then
  echo "test.sh: protoc not found: install protobuf-compiler (scripts/setup.sh does)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Run a copy, so that a rebuild of the server while the tests run does not
# pull the binary from under them.
cp "$batond" "$tmp/batond"
export BATOND="$tmp/batond"

# Pinned code generators (versions match go.mod's grpc and protobuf).
PROTOC_GEN_GO=v1.36.10
PROTOC_GEN_GO_GRPC=v1.5.1
export GOBIN="$here/.bin"
export PATH="$GOBIN:$PATH"
if [ "$("$GOBIN/protoc-gen-go" --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO" ]; then
  echo "test.sh: installing protoc-gen-go $PROTOC_GEN_GO"
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
fi
if [ "$("$GOBIN/protoc-gen-go-grpc" --version 2>/dev/null)" != "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC#v}" ]; then
  echo "test.sh: installing protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC"
  go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
fi

echo "test.sh: checking that gen/batonv1 is up to date with proto/"
./gen.sh "$tmp/gen"
# The header names protoc's version; a different protoc alone is not staleness.
if ! diff -r -I '^//[[:space:]]*protoc[[:space:]]' "$here/gen/batonv1" "$tmp/gen/gen/batonv1" >"$tmp/gen.diff"; then
  head -50 "$tmp/gen.diff" >&2
  echo "test.sh: gen/batonv1 is stale: run 'PATH=$GOBIN:\$PATH ./gen.sh' and commit the result" >&2
  exit 1
fi

echo "test.sh: gofmt, go vet"
unformatted="$(gofmt -l $(git ls-files -co --exclude-standard -- '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-ed: $unformatted" >&2
  exit 1
fi
go vet -p 1 ./...

# The library and the example run under the race detector (the client runs
# keep-alive and worker goroutines) when cgo is available; BATON_GO_RACE=0
# skips it. The CLI tests run the binary, so -race would not reach it.
race=()
if [ "${BATON_GO_RACE:-1}" != 0 ] && [ "$(go env CGO_ENABLED)" = 1 ] && command -v "$(go env CC)" >/dev/null 2>&1; then
  race=(-race)
fi
echo "test.sh: go test ${race[*]} (library, example), go test (CLI)"
start=$SECONDS
BATON_TEST_SECURE=0 go test "${race[@]}" -p 1 -count=1 -timeout 5m . ./examples/...
BATON_TEST_SECURE=0 go test -p 1 -count=1 -timeout 5m ./cmd/... ./internal/... ./gen/...
echo "test.sh: the plaintext run took $((SECONDS - start)) s"

# Once more against a batond with TLS and principals (BATON_TEST_SECURE=1,
# see internal/suiteserver): the server each test package shares gets a CA
# and a certificate for 127.0.0.1/localhost made in-process, and one
# principal, "suite", with a random token and admin on every name; every
# client of it dials with TLS and the token (the CLI through BATON_CA,
# BATON_SERVER_NAME, BATON_TOKEN). The tests of TLS and tokens themselves
# keep their own servers. BATON_GO_SECURE=0 skips this run.
if [ "${BATON_GO_SECURE:-1}" != 0 ]; then
  echo "test.sh: BATON_TEST_SECURE=1 go test ${race[*]} (library, example), go test (CLI): TLS + token"
  start=$SECONDS
  BATON_TEST_SECURE=1 go test "${race[@]}" -p 1 -count=1 -timeout 5m . ./examples/...
  BATON_TEST_SECURE=1 go test -p 1 -count=1 -timeout 5m ./cmd/...
  echo "test.sh: the TLS + token run took $((SECONDS - start)) s"
fi
