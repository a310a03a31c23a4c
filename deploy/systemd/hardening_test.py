#!/usr/bin/env python3
"""Runs batond under the sandbox that deploy/systemd/batond.service asks for.

This machine (and CI) has no systemd as PID 1, so the unit cannot be started
here. What the unit's hardening would break can still be found: this test
applies the same kernel restrictions systemd would, then execs batond, and
checks that it serves, tells systemd READY=1 and STOPPING=1 on $NOTIFY_SOCKET,
and shuts down cleanly (exit 0) on SIGTERM:

  NoNewPrivileges=yes          prctl(PR_SET_NO_NEW_PRIVS)
  DynamicUser=yes              a non-root uid/gid ("nobody"), no capabilities
  SystemCallFilter=            a seccomp allow list: @system-service, expanded
                               with `systemd-analyze syscall-filter`, minus
                               @privileged and @resources; anything else EPERM
  MemoryDenyWriteExecute=yes   systemd's seccomp rules: mmap W+X, mprotect /
                               pkey_mprotect +X, shmat SHM_EXEC are EPERM
  RestrictAddressFamilies=     socket() for other than AF_UNIX/INET/INET6 fails
  UMask=0077, LimitNOFILE      as in the unit

The filesystem namespacing (ProtectSystem, PrivateTmp, ...) is not reproduced:
batond writes only its data directory and reads its config file.

Usage: hardening_test.py BATOND   (needs grpcurl on PATH or in $(go env GOPATH)/bin)
"""

import ctypes
import ctypes.util
import os
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "batond.service")


def unit_values(key):
    """Returns every value of KEY= in the unit's [Service] section, in order."""
    values = []
    for line in open(UNIT):
        m = re.match(r"^%s=(.*)$" % re.escape(key), line.strip())
        if m:
            values.append(m.group(1))
    return values


def expand_filter_set(name, sets):
    out = set()
    for entry in sets.get(name, []):
        out |= expand_filter_set(entry, sets) if entry.startswith("@") else {entry}
    return out


def syscall_sets():
    """Parses `systemd-analyze syscall-filter`: {"@group": [syscalls or @groups]}."""
    text = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True,
                          capture_output=True, text=True).stdout
    sets, current = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            current = line.strip()
            sets[current] = []
        elif current and line.startswith("    ") and not line.strip().startswith("#"):
            sets[current].append(line.strip())
    return sets


def allowed_syscalls():
    """The unit's SystemCallFilter= lines, combined as systemd does."""
    sets = syscall_sets()
    allowed = None
    for value in unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= expand_filter_set(item, sets) if item.startswith("@") else {item}
        if deny:
            allowed = (allowed or set()) - names
        else:
            allowed = (allowed or set()) | names
    return allowed


SCMP_ACT_ALLOW = 0x7FFF0000


def SCMP_ACT_ERRNO(e):
    return 0x00050000 | (e & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_MASKED_EQ = 4, 5, 7


LIBSECCOMP = ctypes.util.find_library("seccomp")  # runs ldconfig: not in the child


def sandbox(allowed, families):
    """Called in the child between fork and exec: applies the restrictions."""
    lib = ctypes.CDLL(LIBSECCOMP, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    libc = ctypes.CDLL(None, use_errno=True)

    def rule(ctx, action, name, *cmps):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a syscall on this architecture
        arr = (ArgCmp * max(1, len(cmps)))(*cmps)
        if lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr) != 0:
            raise OSError("seccomp_rule_add %s" % name)

    os.umask(0o077)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)  # drops every capability too
    PR_SET_NO_NEW_PRIVS = 38
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError("PR_SET_NO_NEW_PRIVS")

    # MemoryDenyWriteExecute=yes, as systemd's seccomp_memory_deny_write_execute.
    PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    wx = PROT_WRITE | PROT_EXEC
    rule(ctx, SCMP_ACT_ERRNO(1), "mmap", ArgCmp(2, SCMP_CMP_MASKED_EQ, wx, wx))
    rule(ctx, SCMP_ACT_ERRNO(1), "mprotect", ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
    rule(ctx, SCMP_ACT_ERRNO(1), "pkey_mprotect",
         ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
    rule(ctx, SCMP_ACT_ERRNO(1), "shmat", ArgCmp(2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load (memory deny write execute)")

    # RestrictAddressFamilies=: every family below 64 that is not allowed, and
    # everything from 64 up, fails with EAFNOSUPPORT.
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    for af in range(0, 64):
        if af not in families:
            rule(ctx, SCMP_ACT_ERRNO(97), "socket", ArgCmp(0, SCMP_CMP_EQ, af, 0))
    rule(ctx, SCMP_ACT_ERRNO(97), "socket", ArgCmp(0, SCMP_CMP_GE, 64, 0))
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load (address families)")

    # SystemCallFilter= (SystemCallErrorNumber=EPERM), loaded last: it does not
    # allow seccomp() itself.
    ctx = lib.seccomp_init(SCMP_ACT_ERRNO(1))
    for name in sorted(allowed):
        rule(ctx, SCMP_ACT_ALLOW, name)
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load (syscall filter)")


def grpcurl():
    path = shutil.which("grpcurl")
    if path:
        return path
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip()
    return os.path.join(gopath or "/root/go", "bin", "grpcurl")


def main():
    batond = os.path.abspath(sys.argv[1])
    families = {socket.AF_UNIX, socket.AF_INET, socket.AF_INET6}
    assert unit_values("RestrictAddressFamilies") == ["AF_INET AF_INET6 AF_UNIX"]
    assert unit_values("MemoryDenyWriteExecute") == ["yes"]
    assert unit_values("NoNewPrivileges") == ["yes"]
    allowed = allowed_syscalls()
    assert allowed and "execve" in allowed and "reboot" not in allowed

    tmp = tempfile.mkdtemp(prefix="baton-hardening-")
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    os.mkdir(data, 0o700)
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o777)
    notify.settimeout(60)

    # The unit's command line, with the example config, a private data
    # directory and a loopback port of the kernel's choice.
    # With the metrics endpoint on, so that its HTTP server runs sandboxed too.
    argv = [batond, "--config=%s" % os.path.join(HERE, "batond.toml"),
            "--data_dir=%s" % data, "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"]
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify_path}
    # Unbuffered bytes: readline() takes no more than one line, so select()
    # sees what is left.
    proc = subprocess.Popen(argv, env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0, preexec_fn=lambda: sandbox(allowed, families))
    ok = False
    try:
        line = proc.stdout.readline().decode()
        m = re.match(r"listening on (\S+)", line)
        if not m:
            raise AssertionError("batond did not start under the sandbox: %r\n%s" %
                                 (line, proc.stderr.read().decode() if proc.poll() is not None else ""))
        addr = m.group(1)
        messages = []
        while not any("READY=1" in x for x in messages):
            messages.append(notify.recv(4096).decode())
        print("ok: serving on %s, notified %r" % (addr, messages))
        # "metrics on http://HOST:PORT/metrics" follows "listening on" at start.
        ready, _, _ = select.select([proc.stdout], [], [], 5)
        metrics = re.match(r"metrics on (\S+)", proc.stdout.readline().decode()) if ready else None
        if not metrics:
            raise AssertionError("batond printed no 'metrics on URL' line")
        with urllib.request.urlopen(metrics.group(1), timeout=10) as r:
            assert r.status == 200 and b"# TYPE" in r.read(), "no Prometheus text at " + metrics.group(1)
        print("ok: metrics served at %s" % metrics.group(1))

        def call(method, body="{}"):
            r = subprocess.run([grpcurl(), "-plaintext", "-d", body, addr, method],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise AssertionError("%s: %s%s" % (method, r.stdout, r.stderr))
            return r.stdout

        assert "SERVING" in call("grpc.health.v1.Health/Check")
        # A durable change: the write-ahead log is written and fdatasync'ed.
        assert "token" in call("baton.v1.Locks/Acquire", '{"name": "hardening/lock", "ttl": "30s"}')
        print("ok: Health/Check SERVING, Locks/Acquire granted (log written and synced)")

        proc.send_signal(signal.SIGTERM)
        messages = []
        while not any("STOPPING=1" in x for x in messages):
            messages.append(notify.recv(4096).decode())
        rc = proc.wait(timeout=60)
        err = proc.stderr.read().decode()
        if rc != 0:
            raise AssertionError("batond exited %d after SIGTERM:\n%s" % (rc, err))
        if "not permitted" in err.lower():
            raise AssertionError("batond saw EPERM:\n%s" % err)
        print("ok: STOPPING=1 on SIGTERM, exit 0")
        ok = True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
