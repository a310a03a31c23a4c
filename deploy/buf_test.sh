#!/usr/bin/env bash
# ctest deploy_buf: `buf lint` on proto/ (rules and exceptions in
# proto/buf.yaml), and `buf breaking` of proto/ against proto/ as it was at a
# baseline commit.
#
# The baseline is a fixed commit of main, not HEAD~N or a branch: CI runs on a
# full clone of main, where that commit always exists, and the check means
# the same thing on every machine. It is the commit that added
# Admin/ServerInfo and Admin/SaveSnapshot (the API as of 0.9.0 in the making).
# When a version is tagged, move BASELINE to the tag (e.g. v0.9.0): from then
# on the released API is what must not break.
# Outside a git checkout (a source tarball) the breaking check is skipped.
set -euo pipefail
BASELINE=105a69777e6a571110b6f93ce99faa93d20af16e

repo="$(cd "$(dirname "$0")/.." && pwd)"
buf="$(command -v buf || echo "$(go env GOPATH 2>/dev/null || echo /root/go)/bin/buf")"
[ -x "$buf" ] || { echo "buf not found: run scripts/setup.sh --test" >&2; exit 1; }

cd "$repo/proto"
"$buf" lint
echo "ok: buf lint proto/ ($("$buf" --version))"

if ! git -C "$repo" cat-file -e "$BASELINE^{commit}" 2>/dev/null; then
  echo "skip: buf breaking: baseline $BASELINE is not in this checkout (not a full clone of main?)"
  exit 77  # ctest: skipped
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git -C "$repo" archive "$BASELINE" proto | tar -x -C "$tmp"
"$buf" breaking . --against "$tmp/proto"
echo "ok: buf breaking proto/ against $BASELINE: no breaking change"
