#!/usr/bin/env python3
"""ctest deploy_container_lint: the checks of deploy/container/Dockerfile that
need no image build (deploy/container/test.sh builds and runs it, opt-in).

  libraries  every shared library batond links (its DT_NEEDED entries, found
             with ldd, owned by a package per `dpkg -S`) belongs to a package
             that the runtime stage installs, so the image starts on any
             machine and not only where the build stage left the libraries;
  structure  a Debian build stage that runs scripts/setup.sh, builds batond
             and the CLI, and copies every folder the top-level CMakeLists.txt
             adds; a runtime stage that is non-root, with VOLUME
             /var/lib/baton, EXPOSE 7411, a HEALTHCHECK by `baton health`, and
             the ENTRYPOINT batond --listen=0.0.0.0:7411
             --data_dir=/var/lib/baton at the path the Helm chart runs.

Usage: lint_test.py BATOND
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOCKERFILE = os.path.join(HERE, "Dockerfile")
# Essential to every Debian image: never named in an install line.
ALWAYS_THERE = {"libc6"}


def stages(text):
    """[(from line, [instruction lines])], continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def needed_packages(batond):
    """{package: [sonames]} for batond's DT_NEEDED libraries."""
    readelf = subprocess.run(["readelf", "-d", batond], capture_output=True, text=True,
                             check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", readelf)
    ldd = subprocess.run(["ldd", batond], capture_output=True, text=True, check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    packages = {}
    for soname in needed:
        path = paths.get(soname)
        if not path:
            raise AssertionError("ldd does not resolve %s" % soname)
        owner = None
        for candidate in (path, os.path.realpath(path)):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        if not owner:
            raise AssertionError("%s (%s) belongs to no Debian package: the image cannot "
                                 "install it" % (soname, path))
        packages.setdefault(owner, []).append(soname)
    return packages


def main():
    batond = os.path.abspath(sys.argv[1])
    text = open(DOCKERFILE).read()
    st = stages(text)
    errors = []
    if len(st) != 2:
        errors.append("expected 2 stages (build, runtime), found %d" % len(st))
    build, runtime = st[0][1], st[-1][1]
    build_text, runtime_text = "\n".join(build), "\n".join(runtime)

    # Libraries.
    installs = [l for l in runtime if "apt-get install" in l]
    listed = set()
    for l in installs:
        after = l.split("apt-get install", 1)[1].split("&&")[0]
        listed |= {w for w in after.split() if not w.startswith("-")}
    packages = needed_packages(batond)
    for package, sonames in sorted(packages.items()):
        if package not in listed and package not in ALWAYS_THERE:
            errors.append("batond needs %s (package %s), which the runtime stage does not "
                          "install: add it to the apt-get install line" % (", ".join(sonames), package))
    unneeded = listed - set(packages)
    if not errors:
            print("ok: batond links %d libraries from %d packages, all installed by the runtime "
              "stage%s" % (sum(len(v) for v in packages.values()), len(packages), "" if not
                           unneeded else " (also installed: %s)" % " ".join(sorted(unneeded))))

    # Build stage.
    if "scripts/setup.sh" not in build_text:
        errors.append("the build stage does not run scripts/setup.sh")
    if "CMAKE_BUILD_TYPE=Release" not in build_text or "--target batond" not in build_text:
        errors.append("the build stage does not build batond in Release")
    if "./cmd/baton" not in build_text:
        errors.append("the build stage does not build the baton CLI")
    top = open(os.path.join(REPO, "CMakeLists.txt")).read()
    copied = set(re.findall(r"^COPY (?!--from)(.+)$", build_text, re.M))
    copied = {w for line in copied for w in line.split()[:-1]}
    for sub in re.findall(r"^\s*add_subdirectory\((\S+?)\)", top, re.M):
        if sub.startswith("clients/"):
            continue  # guarded by if(EXISTS ...) in CMakeLists.txt
        if sub not in copied and sub + "/CMakeLists.txt" not in copied:
            errors.append("CMakeLists.txt adds %s/, which the build stage does not COPY" % sub)

    # Runtime stage.
    user = re.search(r"^USER (\S+)", runtime_text, re.M)
    if not user or user.group(1).split(":")[0] in ("0", "root"):
        errors.append("the runtime stage must set a non-root USER")
    for need in ("VOLUME /var/lib/baton", "EXPOSE 7411"):
        if need not in runtime_text:
            errors.append("the runtime stage lacks %s" % need)
    health = re.search(r"^HEALTHCHECK .*CMD (.*)$", runtime_text, re.M)
    if not health or '"health"' not in health.group(1):
        errors.append("the runtime stage needs a HEALTHCHECK that runs `baton health`")
    entry = re.search(r"^ENTRYPOINT (.*)$", runtime_text, re.M)
    want = '["/usr/local/bin/batond", "--listen=0.0.0.0:7411", "--data_dir=/var/lib/baton"]'
    if not entry or entry.group(1).strip() != want:
        errors.append("ENTRYPOINT should be %s" % want)
    chart = open(os.path.join(REPO, "deploy/helm/baton/templates/statefulset.yaml")).read()
    if 'command: ["/usr/local/bin/batond"]' not in chart:
        errors.append("the Helm chart no longer runs /usr/local/bin/batond, the image's path")

    if errors:
        print("\n".join("FAIL: " + e for e in errors))
        return 1
    print("ok: Dockerfile: build stage (setup.sh, Release batond, CLI), runtime stage (non-root, "
          "volume, port, healthcheck, entrypoint)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
