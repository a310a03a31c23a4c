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
#   4. deploy/systemd/batond.service under systemd as PID 1 of a container made
#      from the image's binaries: active once batond says READY=1, sandboxed
#      (DynamicUser, no capabilities, seccomp), stop/start and kill -9 with
#      Restart=on-failure, the lock kept throughout.
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
step "stopped and removed"

# --- 4. the systemd unit under a real systemd ------------------------------------
# This machine's PID 1 is not systemd, so deploy/systemd/batond.service runs
# here under the systemd 252 of a Debian 12 container: the image's batond and
# CLI, the runtime stage's packages, systemd as the container's PID 1. The
# container is privileged because systemd sets up the unit's namespaces
# (ProtectSystem=, PrivateTmp=, ...), which needs CAP_SYS_ADMIN; it has no
# network but its own loopback.
sd="$work/systemd"
mkdir -p "$sd"
cp "$repo/deploy/systemd/batond.service" "$repo/deploy/systemd/batond.toml" "$sd/"
runtime_pkgs="$(python3 - "$repo/deploy/container/Dockerfile" <<'PY'
import re, sys
runtime = open(sys.argv[1]).read().split("\nFROM ")[-1].replace("\\\n", " ")
print(re.search(r"--no-install-recommends([^&]*)&&", runtime).group(1).strip())
PY
)"
cat >"$sd/Containerfile" <<CONTAINERFILE
FROM localhost/debian:12-slim
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends systemd systemd-sysv dbus $runtime_pkgs && rm -rf /var/lib/apt/lists/*
COPY --from=$image /usr/local/bin/batond /usr/local/bin/baton /usr/local/bin/
COPY batond.toml /etc/baton/batond.toml
COPY batond.service /etc/systemd/system/batond.service
RUN systemctl enable batond.service \
 && systemctl mask systemd-logind.service getty.target console-getty.service
ENTRYPOINT ["/lib/systemd/systemd"]
CONTAINERFILE
podman build --format docker --network host -t localhost/baton-systemd:test "$sd" \
  >"$work/systemd-build.log" 2>&1 || { tail -20 "$work/systemd-build.log"; exit 1; }
cid="$(podman run -d --privileged --systemd=always --network none localhost/baton-systemd:test)"
podman cp "$grpcurl" "$cid:/usr/local/bin/grpcurl"
in_sd() { podman exec "$cid" "$@"; }
unit() { in_sd systemctl show batond -p "$1" --value; }
wait_active() {  # wait_active RESTARTS: active (READY=1 seen) after RESTARTS restarts
  for _ in $(seq 1 150); do
    [ "$(unit ActiveState)" = active ] && [ "$(unit NRestarts)" = "$1" ] && return 0
    sleep 0.2
  done
  echo "FAIL: batond.service is $(unit ActiveState) (restarts: $(unit NRestarts))"
  in_sd journalctl -u batond --no-pager | tail -20
  return 1
}
sd_call() { in_sd grpcurl -plaintext -d "$2" 127.0.0.1:7411 "$1"; }
wait_active 0
step "systemd container ${cid:0:12}: batond.service active ($(unit StatusText))"

pid="$(unit MainPID)"
in_sd grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff):' "/proc/$pid/status" >"$work/status"
if awk '$1 == "Uid:" && $2 == 0 { exit 1 }' "$work/status" &&
   grep -qE '^NoNewPrivs:\s+1$' "$work/status" && grep -qE '^Seccomp:\s+2$' "$work/status" &&
   grep -qE '^CapEff:\s+0+$' "$work/status"; then
  :
else
  echo "FAIL: batond is not sandboxed as the unit says:"; cat "$work/status"; exit 1
fi
[ "$(in_sd readlink /var/lib/baton)" = private/baton ] ||
  { echo "FAIL: /var/lib/baton is not DynamicUser's private state directory"; exit 1; }
step "sandboxed: uid $(awk '$1 == "Uid:" { print $2 }' "$work/status") (DynamicUser), no capabilities, no_new_privs, seccomp; /var/lib/baton -> private/baton"
step "$(in_sd systemd-analyze security batond.service --no-pager | tail -1)"

sd_call grpc.health.v1.Health/Check '{}' | grep -q SERVING
token="$(sd_call baton.v1.Locks/Acquire '{"name": "systemd/lock", "ttl": "3600s"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
in_sd baton health --addr 127.0.0.1:7411 >/dev/null
in_sd systemctl stop batond
if [ "$(unit Result)" != success ] || [ "$(unit ExecMainStatus)" != 0 ]; then
  echo "FAIL: systemctl stop: result $(unit Result), status $(unit ExecMainStatus)"; exit 1
fi
step "SERVING, lock taken (token $token); systemctl stop: exit 0, result success"
in_sd systemctl start batond
wait_active 0
sd_call baton.v1.Admin/Describe '{"name": "systemd/lock"}' | grep -q "\"$token\"" ||
  { echo "FAIL: the lock did not survive systemctl stop/start"; exit 1; }
in_sd sh -c 'kill -9 "$(systemctl show -p MainPID --value batond)"'
wait_active 1
sd_call baton.v1.Admin/Describe '{"name": "systemd/lock"}' | grep -q "\"$token\"" ||
  { echo "FAIL: the lock did not survive kill -9 and the restart"; exit 1; }
step "systemctl start, then kill -9: Restart=on-failure started it again; the lock is still held"
podman stop -t 30 "$cid" >/dev/null
podman rm "$cid" >/dev/null
cid=""
step "all done"
