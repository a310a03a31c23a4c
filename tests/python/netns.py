"""Network namespaces for partition tests (test_partition.py).

`Net(n)` builds, for one test, n "node" namespaces joined by a bridge that
lives in a "hub" namespace of its own, plus one veth pair from the root
namespace (where the test process runs) to that bridge, so that the test
reaches every node:

    root ns: <sfx>r 10.A.B.1/24 ─┐
                                 hub ns: bridge ─┬─ <sfx>e1  node ns 1: 10.A.B.11/24
                                                 ├─ <sfx>e2  node ns 2: 10.A.B.12/24
                                                 └─ <sfx>e3  node ns 3: 10.A.B.13/24

Names are "bt" + a random suffix (unique per run; interface names stay under
16 characters). The /24 is drawn at random from 10.200.0.0-10.254.255.0 and
checked against the root namespace's routes and addresses, so it collides
with nothing this machine uses.

Faults are iptables rules (nf_tables backend) in the node namespaces, all in
INPUT, that is where the packet arrives: a packet "lost on the way" from a to
b is dropped by b's kernel before any socket sees it, and a's kernel sent it
successfully. (A DROP in the sender's OUTPUT chain is not the same thing: the
sender's TCP then gets a local error for each segment, which it treats as
local congestion -- it does not back off its retransmission timer as it does
for a packet lost in the network.) Rules match the peer's address, so cutting
node a from node b never cuts the test process off from either, unless a
test asks for it (`isolate`). Random loss uses `-m statistic --mode random`
on the node's interface, so it hits the test's own traffic to that node too.

What cannot be emulated here: delay, jitter, reordering, duplication and
bandwidth limits. They need `tc netem` (sch_netem), which this kernel does
not have; iptables can only drop (or reject) packets.

Needs root, `ip` (iproute2) and `iptables`; `available()` says whether they
are there. `teardown()` removes every namespace and interface `create()` made,
also after a partial `create()`, and kills (by pid) any process still inside
one of the namespaces: only processes the test started live there.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time

CMD_TIMEOUT = 15.0


def available() -> str | None:
    """None if namespaces can be made here; else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` on PATH"
    return None


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> exit {p.returncode}: {p.stderr.strip()}")
    return p


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the root namespace routes or has an address in."""
    nets = []
    out = run("ip", "-4", "-o", "route", "show", "table", "all").stdout
    out += run("ip", "-4", "-o", "addr", "show").stdout
    for word in out.split():
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    return [n for n in nets if n.prefixlen > 0]  # "default" is not a word that parses; 0/0 skipped


def pick_subnet(rng: random.Random | None = None) -> ipaddress.IPv4Network:
    rng = rng or random.Random()
    used = _used_networks()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randint(200, 254)}.{rng.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.2xx.y.0/24 found")


class Net:
    """Node namespaces 1..n on one bridge, reachable from the root namespace.
    Nodes are numbered from 0 in the API (node i has namespace ns(i), address
    ip(i))."""

    def __init__(self, n: int = 3):
        self.n = n
        self.sfx = secrets.token_hex(3)  # 6 hex digits: "bt" + 6 + 2 = 10 chars at most
        self.hub = f"bt{self.sfx}h"
        self.nodes = [f"bt{self.sfx}n{i + 1}" for i in range(n)]
        self.root_if = f"bt{self.sfx}r"
        self.node_if = [f"bt{self.sfx}e{i + 1}" for i in range(n)]
        self.subnet: ipaddress.IPv4Network | None = None
        self._made_ns: list[str] = []
        self._made_root_if = False
        self._cuts: set[tuple[int, int]] = set()  # (from, to) pairs dropped

    # ---------------------------------------------------------------- set-up

    def create(self) -> "Net":
        try:
            self._create()
        except BaseException:
            self.teardown()
            raise
        return self

    def _create(self) -> None:
        self.subnet = pick_subnet()
        hosts = list(self.subnet.hosts())
        self.host_ip = str(hosts[0])  # .1: the test process, in the root namespace
        self.ips = [str(hosts[10 + i]) for i in range(self.n)]  # .11, .12, ...
        plen = self.subnet.prefixlen

        run("ip", "netns", "add", self.hub)
        self._made_ns.append(self.hub)
        run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i, ns in enumerate(self.nodes):
            run("ip", "netns", "add", ns)
            self._made_ns.append(ns)
            # One end in the hub (on the bridge), the other in the node: made
            # there directly, so no name is ever visible in the root namespace.
            run("ip", "link", "add", f"bt{self.sfx}p{i + 1}", "netns", self.hub, "type", "veth",
                "peer", "name", self.node_if[i], "netns", ns)
            run("ip", "-n", self.hub, "link", "set", f"bt{self.sfx}p{i + 1}", "master", "br0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{self.ips[i]}/{plen}", "dev", self.node_if[i])
            run("ip", "-n", ns, "link", "set", self.node_if[i], "up")
        run("ip", "link", "add", self.root_if, "type", "veth", "peer", "name", f"bt{self.sfx}q",
            "netns", self.hub)
        self._made_root_if = True
        run("ip", "-n", self.hub, "link", "set", f"bt{self.sfx}q", "master", "br0", "up")
        run("ip", "addr", "add", f"{self.host_ip}/{plen}", "dev", self.root_if)
        run("ip", "link", "set", self.root_if, "up")
        self.wait_reachable()

    def wait_reachable(self, timeout: float = 10.0) -> None:
        """Waits until the root namespace reaches every node: a TCP connect
        to a port nobody listens on is refused (RST) once the links are up
        and the addresses resolved (ping is not always installed)."""
        deadline = time.monotonic() + timeout
        pending = set(range(self.n))
        while pending:
            for i in sorted(pending):
                with socket.socket() as s:
                    s.settimeout(0.5)
                    try:
                        s.connect((self.ips[i], 9))  # discard: nothing listens there
                    except ConnectionRefusedError:
                        pending.discard(i)
                    except OSError:
                        pass
                    else:
                        pending.discard(i)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"nodes {sorted(pending)} not reachable from the root namespace")
            if pending:
                time.sleep(0.05)

    # ------------------------------------------------------------- processes

    def ns(self, i: int) -> str:
        return self.nodes[i]

    def ip(self, i: int) -> str:
        return self.ips[i]

    def exec_prefix(self, i: int) -> list[str]:
        """Prefix of a command to run in node i's namespace. `ip netns exec`
        execs the command (no fork), so a Popen's pid is the command's."""
        return ["ip", "netns", "exec", self.nodes[i]]

    def pids(self, ns: str) -> list[int]:
        out = run("ip", "netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    # ---------------------------------------------------------------- faults

    def _ipt(self, i: int, *rule: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(*self.exec_prefix(i), "iptables", "-w", "5", *rule, check=check)

    def _drop_rule(self, a: int, b: int) -> list[str]:
        """The rule, in b's namespace, that drops what a sends to b."""
        return ["INPUT", "-s", self.ips[a], "-j", "DROP"]

    def cut(self, a: int, b: int, one_way: bool = False) -> None:
        """Drops every packet from node a to node b, and from b to a unless
        `one_way`. The test process still reaches both."""
        pairs = [(a, b)] if one_way else [(a, b), (b, a)]
        for src, dst in pairs:
            if (src, dst) not in self._cuts:
                self._ipt(dst, "-A", *self._drop_rule(src, dst))
                self._cuts.add((src, dst))

    def uncut(self, a: int, b: int, one_way: bool = False) -> None:
        """Undoes cut(a, b, one_way)."""
        pairs = [(a, b)] if one_way else [(a, b), (b, a)]
        for src, dst in pairs:
            if (src, dst) in self._cuts:
                self._ipt(dst, "-D", *self._drop_rule(src, dst))
                self._cuts.discard((src, dst))

    def isolate(self, i: int) -> None:
        """Cuts node i from every other node (both ways)."""
        for j in range(self.n):
            if j != i:
                self.cut(i, j)

    def loss(self, p: float, nodes: list[int] | None = None) -> None:
        """Drops each packet arriving at the given nodes (default: all) with
        probability p, independently (from peers and from the test alike)."""
        for i in range(self.n) if nodes is None else nodes:
            self._ipt(i, "-A", "INPUT", "-i", self.node_if[i], "-m", "statistic", "--mode", "random",
                      "--probability", f"{p:.4f}", "-j", "DROP")

    def heal(self) -> None:
        """Removes every fault: flushes the INPUT chain of each node."""
        for i in range(self.n):
            if self.nodes[i] in self._made_ns:
                self._ipt(i, "-F", "INPUT")
        self._cuts.clear()

    def rules(self) -> str:
        """Each node's INPUT rules, for a failure message."""
        return "\n".join(
            f"{self.nodes[i]}: " + self._ipt(i, "-S", "INPUT", check=False).stdout.replace("\n", "; ")
            for i in range(self.n)
        )

    # -------------------------------------------------------------- teardown

    def teardown(self) -> None:
        """Removes everything create() made (whatever got made). Processes
        still in a namespace of ours are killed by pid first: a namespace
        stays alive, and its interfaces with it, while a process is in it."""
        errors = []
        for ns in list(self._made_ns):
            deadline = time.monotonic() + 10
            while pids := self.pids(ns):
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline:
                    errors.append(f"processes {pids} still in {ns}")
                    break
                time.sleep(0.05)
        if self._made_root_if:
            p = run("ip", "link", "del", self.root_if, check=False)
            if p.returncode != 0 and "Cannot find device" not in p.stderr:
                errors.append(p.stderr.strip())
            self._made_root_if = False
        for ns in reversed(self._made_ns):
            p = run("ip", "netns", "del", ns, check=False)
            if p.returncode != 0:
                errors.append(p.stderr.strip())
            self._made_ns.remove(ns)
        self._cuts.clear()
        if errors:
            raise RuntimeError("netns teardown: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """Namespaces or root interfaces of this Net still present (for a
        test of the teardown)."""
        names = run("ip", "netns", "list").stdout + run("ip", "-o", "link").stdout
        return sorted({w.rstrip(":").split("@")[0] for w in names.split() if w.startswith(f"bt{self.sfx}")})
