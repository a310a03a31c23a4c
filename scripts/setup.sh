#!/usr/bin/env bash
# Installs everything Baton needs to build, run and test on Debian 12, and is
# fast when everything is already there. Safe to run again.
#   scripts/setup.sh            build + run dependencies (apt)
#   scripts/setup.sh --test     also test tools: grpcurl (Go), Python venv (PyPI)
#   scripts/setup.sh --bench    also benchmark peers: etcd, Redis, beanstalkd (apt)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

apt_pkgs=(build-essential cmake ninja-build pkg-config libgrpc++-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  clang-format libcivetweb-dev libtomlplusplus-dev libsystemd-dev libspdlog-dev libssl-dev)
[ "$want_test" = 1 ] && apt_pkgs+=(python3-venv golang-go prometheus openssl)
# deploy/ tests: systemd-analyze, Debian's python3 with PyYAML (the Helm test).
[ "$want_test" = 1 ] && apt_pkgs+=(systemd python3-yaml)
# Cluster partition tests (tests/python/test_partition.py): ip netns, iptables;
# the clock-skew test (tests/python/test_cluster.py): libfaketime.
[ "$want_test" = 1 ] && apt_pkgs+=(iproute2 iptables faketime)
[ "$want_bench" = 1 ] && apt_pkgs+=(etcd-server redis-server beanstalkd)

missing=()
for p in "${apt_pkgs[@]}"; do
  # golang-go is only needed when no Go toolchain is on PATH already.
  if [ "$p" = golang-go ] && command -v go >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if [ "$want_test" = 1 ]; then
  gobin="$(go env GOPATH)/bin"
  if ! command -v grpcurl >/dev/null 2>&1 && [ ! -x "$gobin/grpcurl" ]; then
    echo "setup: installing grpcurl"
    go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest
  fi
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import grpc, grpc_tools, pytest, pytest_asyncio' 2>/dev/null; then
    echo "setup: creating .venv with grpcio, grpcio-tools, pytest, pytest-asyncio"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r tests/python/requirements.txt
  fi
fi

# --- deploy/ tools: helm and buf, from the Go module proxy -----------------------
# Pinned; each is (re)installed only when missing or at another version, into
# $(go env GOPATH)/bin. A cold install compiles them: about 3.5 min for helm and
# 2.5 min for buf on 2 busy cores (docs/deploy.md); a warm check takes ms.
if [ "$want_test" = 1 ]; then
  helm_version=v3.21.4
  buf_version=v1.75.0
  gobin="$(go env GOPATH)/bin"
  # go_tool_is BINARY MODULE VERSION: BINARY was built from MODULE at VERSION
  # (its Go build info; `helm version` built by go install says only v3.21).
  go_tool_is() { go version -m "$1" 2>/dev/null | grep -qE "^\s+mod\s+$2\s+$3\s"; }
  if ! go_tool_is "$gobin/helm" helm.sh/helm/v3 "$helm_version"; then
    echo "setup: installing helm $helm_version"
    go install "helm.sh/helm/v3/cmd/helm@$helm_version"
  fi
  if ! go_tool_is "$gobin/buf" github.com/bufbuild/buf "$buf_version"; then
    echo "setup: installing buf $buf_version"
    go install "github.com/bufbuild/buf/cmd/buf@$buf_version"
  fi
fi
