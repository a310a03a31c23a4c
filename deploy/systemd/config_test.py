#!/usr/bin/env python3
"""Keeps deploy/systemd/batond.toml, the example /etc/baton/batond.toml, true.

  1. Every flag `batond --help` lists is in the file, as a commented-out
     `# name = default` line, with the default --help prints; and the file
     has no key batond does not know.
  2. batond accepts the file with every line uncommented (`--config`), and
     serves: data_dir is mapped to a temporary directory and listen to
     127.0.0.1:0, as a test must not take a fixed port or the working dir.

Usage: config_test.py BATOND
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "batond.toml")
# Flags that make no sense inside the config file itself.
NOT_IN_FILE = {"config", "version", "help", "helpfull", "helpshort", "helppackage", "helpon",
               "helpmatch", "flagfile", "fromenv", "tryfromenv", "undefok"}


def help_flags(batond):
    """{flag: default as --help prints it} for the flags batond itself defines."""
    r = subprocess.run([batond, "--help"], capture_output=True, text=True, timeout=30)
    text = r.stdout + r.stderr
    flags = {}
    # "  --name (default X)" and abseil's "  --name (what it does); default: X;"
    for m in re.finditer(r"^\s+--(\w+) \(default (.*)\)$", text, re.M):
        flags[m.group(1)] = m.group(2)
    for m in re.finditer(r"^\s+--(\w+) \(.*?\);\s+default: (.*?);$", text, re.S | re.M):
        flags[m.group(1)] = m.group(2)
    if not flags:
        raise AssertionError("found no flags in `batond --help`:\n" + text)
    return {k: v for k, v in flags.items() if k not in NOT_IN_FILE}


def example_keys():
    keys = {}
    for line in open(EXAMPLE):
        m = re.match(r"^# (\w+) = (.*)$", line.rstrip("\n"))
        if m:
            keys[m.group(1)] = m.group(2)
    return keys


def grpcurl():
    path = shutil.which("grpcurl")
    if path:
        return path
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip()
    return os.path.join(gopath or "/root/go", "bin", "grpcurl")


def main():
    batond = os.path.abspath(sys.argv[1])
    flags = help_flags(batond)
    keys = example_keys()
    errors = []
    for name, default in sorted(flags.items()):
        if name not in keys:
            errors.append("missing: add '# %s = %s' (with what it does) to %s" % (name, default, EXAMPLE))
        elif keys[name] != default:
            errors.append("default of %s: the file says %s, batond --help says %s" %
                          (name, keys[name], default))
    for name in sorted(set(keys) - set(flags)):
        errors.append("'%s' in the file is not a flag of batond --help" % name)
    if errors:
        print("\n".join("FAIL: " + e for e in errors))
        return 1
    print("ok: batond.toml lists all %d flags of batond --help with their defaults" % len(flags))

    # systemd must not SIGKILL batond while it is still inside its shutdown grace.
    unit = open(os.path.join(HERE, "batond.service")).read()
    stop = re.search(r"^TimeoutStopSec=(\d+)s$", unit, re.M)
    grace_ms = int(flags["shutdown_grace_ms"])
    if not stop or int(stop.group(1)) * 1000 < grace_ms + 5000:
        print("FAIL: TimeoutStopSec (%s) must exceed --shutdown_grace_ms (%d ms) by 5 s or more"
              % (stop.group(1) if stop else "unset", grace_ms))
        return 1
    print("ok: TimeoutStopSec=%ss is above --shutdown_grace_ms=%d" % (stop.group(1), grace_ms))

    tmp = tempfile.mkdtemp(prefix="baton-config-")
    try:
        data = os.path.join(tmp, "data")
        lines = []
        for line in open(EXAMPLE):
            m = re.match(r"^# (\w+) = (.*)$", line.rstrip("\n"))
            if not m:
                lines.append(line.rstrip("\n"))
            elif m.group(1) == "data_dir":
                lines.append('data_dir = "%s"' % data)
            elif m.group(1) == "listen":
                lines.append('listen = "127.0.0.1:0"')
            else:
                lines.append("%s = %s" % (m.group(1), m.group(2)))
        config = os.path.join(tmp, "batond.toml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = subprocess.Popen([batond, "--config=%s" % config], cwd=tmp, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            m = re.match(r"listening on (\S+)", line)
            if not m:
                proc.wait(timeout=30)
                raise AssertionError("batond --config (every line uncommented) did not start: %r\n%s"
                                     % (line, proc.stderr.read()))
            r = subprocess.run([grpcurl(), "-plaintext", m.group(1), "grpc.health.v1.Health/Check"],
                               capture_output=True, text=True, timeout=30)
            assert "SERVING" in r.stdout, r.stdout + r.stderr
            assert os.path.isdir(data), "data_dir from the file was not used"
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            assert rc == 0, "batond exited %d after SIGTERM: %s" % (rc, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        print("ok: batond --config with every line of the example uncommented serves at %s"
              % m.group(1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
