#!/usr/bin/env bash
# ctest deploy_container: builds deploy/container/Dockerfile with podman and
# runs the image, end to end. Opt-in (BATON_CONTAINER_TEST=1): a full image
# build installs the build dependencies and compiles batond from scratch, 5 to
# 9 minutes on 2 cores (times in docs/deploy.md); otherwise it exits 77, which
# ctest reports as skipped.
#
#   1. base images: no image registry is reachable here, so debian:12 is made
#      with debootstrap from the Debian mirror (minbase, bookworm) and
#      imported as localhost/debian:12; localhost/debian:12-slim is the same
#      tree without documentation, man pages and locales (what the official
#      -slim image drops). Reused when they already exist.
#   2. podman build --format docker (keeps the HEALTHCHECK) with those bases,
#      from a copy of the work tree's files that git knows or would add.
#   3. podman run, its port published on 127.0.0.1 only, the root filesystem
#      read-only and the data directory on a named volume; Health/Check SERVING and a lock taken with grpcurl;
#      the image's HEALTHCHECK run (`baton health` inside the container);
#      stopped by its container id (exit 0 after SIGTERM), started again, the
#      lock is still held (the volume kept the state); stopped and removed.
#
# This machine needs three adjustments, set in a containers.conf of the test's
# own (CONTAINERS_CONF), none of them in the image (docs/deploy.md says why):
#   runtime runc: crun refuses the hybrid cgroup layout here (cgroup2 at
#     /sys/fs/cgroup/unified with the hugetlb controller enabled);
#   default_ulimits at or below the current hard limits: the session has no
#     CAP_SYS_RESOURCE, so podman's rootful defaults (nofile 1048576, nproc
#     4194304) cannot be set;
#   builds use the host network (RUN steps reach the Debian mirror and the Go
#     module proxy without a bridge), and this machine's CA bundle is mounted
#     for the Go steps: HTTPS here goes through a proxy with its own CA.
set -euo pipefail
if [ "${BATON_CONTAINER_TEST:-0}" != 1 ]; then
  echo "skip: the container build takes long; run with BATON_CONTAINER_TEST=1"
  exit 77
fi
repo="$(cd "$(dirname "$0")/../.." && pwd)"
mirror="${BATON_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
image=localhost/baton:test
t0=$(date +%s)
step() { echo "== [$(($(date +%s) - t0)) s] $*"; }

missing=()
for t in podman buildah debootstrap runc; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
grpcurl="$(command -v grpcurl || echo "$(go env GOPATH 2>/dev/null || echo /root/go)/bin/grpcurl")"

work="$(mktemp -d /var/tmp/baton-container.XXXXXX)"
cid=""
volume="baton-test-$$"
cleanup() {
  if [ -n "$cid" ]; then podman rm -f "$cid" >/dev/null 2>&1 || true; fi
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] && nofile=1048576
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# --- 1. base images --------------------------------------------------------------
if podman image exists localhost/debian:12 && podman image exists localhost/debian:12-slim; then
  step "base images localhost/debian:12 and :12-slim exist"
else
  step "debootstrap bookworm (minbase) from $mirror"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
  security="${mirror%/debian}/debian-security"
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - localhost/debian:12 >/dev/null 2>&1
  # -slim: as the official image, dpkg leaves out documentation and locales.
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian,linda}/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - localhost/debian:12-slim >/dev/null 2>&1
  rm -rf "$rootfs"
  step "imported localhost/debian:12 and localhost/debian:12-slim"
fi

# --- 2. build ------------------------------------------------------------------------
# The build context: the work tree's files that git tracks or would add (no
# build directories, virtualenvs or node_modules).
ctx="$work/context"
mkdir -p "$ctx"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -c) | tar -x -C "$ctx"
step "podman build (context $(du -sh "$ctx" | cut -f1))"
build_start=$(date +%s)
ca_args=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  # This machine's CA bundle, with the CA of the proxy that re-signs HTTPS
  # here, for the Go module proxy steps (RUN steps only; not in the image).
  ca_args=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
    --build-arg SSL_CERT_FILE=/run/host-ca.crt)
fi
podman build --format docker --network host --layers "${ca_args[@]}" \
  --build-arg BASE=localhost/debian:12 --build-arg RUNTIME_BASE=localhost/debian:12-slim \
  -f "$ctx/deploy/container/Dockerfile" -t "$image" "$ctx" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log"; exit 1; }
build_s=$(($(date +%s) - build_start))
size="$(podman image inspect --format '{{.Size}}' "$image")"
step "built $image in ${build_s} s: $((size / 1000000)) MB"
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q '"health"' ||
  { echo "FAIL: the image has no HEALTHCHECK (built without --format docker?)"; exit 1; }

# --- 3. run -----------------------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"
podman volume create "$volume" >/dev/null
# --read-only: batond writes only its volume (the Helm chart sets
# readOnlyRootFilesystem too).
cid="$(podman run -d --read-only -p "$addr:7411" -v "$volume:/var/lib/baton" "$image")"
step "running container ${cid:0:12} (read-only root), port published on $addr only"

wait_serving() {
  for _ in $(seq 1 150); do
    if "$grpcurl" -plaintext -max-time 2 "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      return 0
    fi
    [ "$(podman inspect --format '{{.State.Running}}' "$cid")" = true ] ||
      { echo "FAIL: the container stopped"; podman logs "$cid" | tail -20; return 1; }
    sleep 0.2
  done
  echo "FAIL: $addr never answered SERVING"; podman logs "$cid" | tail -20; return 1
}
wait_serving
token="$("$grpcurl" -plaintext -d '{"name": "container/lock", "ttl": "3600s"}' "$addr" baton.v1.Locks/Acquire |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
step "Health/Check SERVING; Locks/Acquire container/lock: token $token"
# Podman schedules HEALTHCHECKs with systemd timers; without systemd (here)
# it logs that it cannot, and the check is run by hand instead.
if podman healthcheck run "$cid"; then
  step "HEALTHCHECK (baton health inside the container): healthy"
else
  echo "FAIL: the image's HEALTHCHECK failed:"
  podman exec "$cid" /usr/local/bin/baton health --addr 127.0.0.1:7411 || true
  exit 1
fi

podman stop -t 30 "$cid" >/dev/null
code="$(podman inspect --format '{{.State.ExitCode}}' "$cid")"
[ "$code" = 0 ] || { echo "FAIL: batond exited $code after SIGTERM"; podman logs "$cid" | tail; exit 1; }
step "stopped ${cid:0:12} (SIGTERM): exit 0"
podman start "$cid" >/dev/null
wait_serving
"$grpcurl" -plaintext -d '{"name": "container/lock"}' "$addr" baton.v1.Admin/Describe | grep -q "\"$token\"" ||
  { echo "FAIL: the lock did not survive the restart"; exit 1; }
step "started again: container/lock still held with token $token (state on the volume)"
podman stop -t 30 "$cid" >/dev/null
podman rm "$cid" >/dev/null
cid=""
step "stopped and removed; all done"
