#!/usr/bin/env bash
# Builds baton-raftd and runs its tests: the wire and unit tests, then the
# cluster tests (real baton-raftd processes on 127.0.0.1 with fake batonds),
# then the commit-throughput benchmark. Needs Go >= 1.26 and the Go module
# proxy (or a warm module cache). About 1 minute on 2 cores.
#
#   RAFT_BENCH=0           skip the benchmark
#   RAFTD_RACE=1           also run the cluster tests against a -race build
#   RAFTD_FAILOVER_TRIALS  kill -9 trials in the failover test (default 10)
#   RAFTD_FAILOVER_FLAGS   extra baton-raftd flags for the failover test,
#                          e.g. "--tick-ms 50 --election-ticks 14"
#   RAFTD_KEEP_LOGS=1      print every node's log tail even when tests pass
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l .)
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/baton-raftd" ./cmd/baton-raftd

go test -count=1 ./wire ./internal/...
# -v: the failover test prints its p50/p99. -p 1: one package at a time (the
# cluster tests start 3-4 processes each).
go test -v -count=1 -p 1 -timeout 600s ./clustertest

if [[ "${RAFTD_RACE:-0}" != 0 ]]; then
  RAFTD_RACE=1 go test -race -count=1 -p 1 -short -timeout 600s ./clustertest
fi

if [[ "${RAFT_BENCH:-1}" != 0 ]]; then
  go test -count=1 -p 1 -run '^$' -bench 'Commits16InFlight' -benchtime 20000x -timeout 300s ./clustertest
fi
