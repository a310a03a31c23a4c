"""Network partitions of a 3-node Baton cluster (issue 9): each batond (and
the baton-raftd it starts) runs in a network namespace of its own, the nodes
joined by a bridge (netns.py), and faults are iptables rules in the nodes'
namespaces. The test process, in the root namespace, reaches every node
throughout: only node-to-node traffic (raft and the followers' relays to the
leader) is cut, except where random loss is applied to a node's interface.

Every test runs a workload and ends with a ledger check:
  - one writer per node puts uniquely numbered items into a queue through
    that node (a follower relays to the leader), retrying an item whose Put
    failed until it is acknowledged; after healing, the queue is read
    through the leader: every acknowledged item is there, and no item is
    there more often than it was sent (a duplicate needs an unacknowledged
    attempt);
  - where a test uses a lock: two lockers take turns on one lock (each
    acquisition with its own request_id, retried on other nodes); the
    fencing tokens of acknowledged grants strictly increase in the order
    the grants were acknowledged, the client-side holding intervals never
    overlap, and Admin/Describe right after a grant shows exactly that holder.

Tests:
  1. the leader is cut off from both followers: the majority elects a new
     leader, the old one steps down, acknowledges nothing alone and never
     answers a stale read; after healing it rejoins as a follower and
     catches up;
  2. one-way loss from the leader to one follower: writes go on;
  3. a link between the leader and a follower flapping every 200 ms;
  4. 15% random loss on every node's incoming traffic.
Delay cannot be emulated (no `tc netem` in this kernel, see netns.py).

Needs root, `ip`, `iptables` and a baton-raftd beside batond; skipped
otherwise. Bounded in time: about 30 s for the file on an idle 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import pytest

import netns
from baton_helpers import (
    SC,
    Client,
    _DefaultDeadline,
    admin_pb2,
    admin_pb2_grpc,
    batond_path,
    health_pb2,
    health_pb2_grpc,
    lock_pb2_grpc,
    lock_release,
    lock_req,
    q_get,
    q_put,
    queue_pb2_grpc,
    unique,
)

CLIENT_PORT = 7411  # each node has an address of its own: fixed ports are free
PEER_PORT = 7381
ELECTION_BUDGET = 20.0  # generous bound for an election on a loaded machine
PUT_TIMEOUT = 2.0  # client deadline of each Put
LOCK_TTL = 10.0  # lease of a grant: longer than any client-side holding interval
WRITER_PAUSE = 0.02  # between a writer's puts: modest load


def raftd_near(batond) -> bool:
    """Whether batond will find a baton-raftd (as server_raft.cc looks)."""
    return (
        (batond.parent / "baton-raftd").exists()
        or (batond.parent.parent / "raft" / "baton-raftd").exists()
        or shutil.which("baton-raftd") is not None
    )


pytestmark = [
    pytest.mark.skipif(not raftd_near(batond_path()), reason="no baton-raftd built (needs Go >= 1.26)"),
    pytest.mark.skipif(netns.available() is not None, reason=f"network namespaces: {netns.available()}"),
]


# --------------------------------------------------------------------------
# A cluster in network namespaces
# --------------------------------------------------------------------------


class NodeClient:
    """The stubs used here over one channel to a node, with a default
    deadline on every call (as baton_helpers.Client), and a channel that
    never goes through an HTTP proxy (grpc honours http_proxy for any
    address that is not localhost)."""

    def __init__(self, addr: str, default_deadline: float = 5.0):
        self.channel = grpc.aio.insecure_channel(
            addr, options=[("grpc.enable_http_proxy", 0)],
            interceptors=[_DefaultDeadline(default_deadline)],
        )
        self.locks = lock_pb2_grpc.LocksStub(self.channel)
        self.queues = queue_pb2_grpc.QueuesStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    describe = Client.describe

    async def close(self) -> None:
        await self.channel.close()


class NsNode:
    """One batond in node i's namespace, listening on that namespace's
    address (clients on CLIENT_PORT, raft peers on PEER_PORT)."""

    STARTUP_TIMEOUT = 15.0

    def __init__(self, net: netns.Net, i: int, peers: str, data_dir: pathlib.Path):
        self.net, self.i, self.peers, self.data_dir = net, i, peers, data_dir
        self.proc: subprocess.Popen | None = None
        self.out_path = data_dir.parent / f"node{i + 1}.stdout"
        self.err_path = data_dir.parent / f"node{i + 1}.stderr"

    def start(self) -> None:
        addr = f"{self.net.ip(self.i)}:{CLIENT_PORT}"
        args = [
            *self.net.exec_prefix(self.i), str(batond_path()),
            "--listen", addr,
            "--allow_plaintext",  # a private namespace network, not loopback
            "--data_dir", str(self.data_dir),
            "--node_id", str(self.i + 1),
            "--peers", self.peers,
            "--shards", "2",
            "--orphan_grace_ms", "5000",
        ]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + self.STARTUP_TIMEOUT
        while True:
            first = self.out_path.read_text(errors="replace").split("\n", 1)
            if len(first) == 2:  # a whole first line
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"node {self.i + 1} did not start (exit {self.proc.poll()}):\n{self.stderr_tail()}"
                )
            time.sleep(0.02)
        assert first[0].strip() == f"listening on {addr}", first[0]
        # `ip netns exec` execs: the pid is batond's, so stopping by pid works.
        assert os.readlink(f"/proc/{self.proc.pid}/exe") == str(batond_path().resolve())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stderr_tail(self, limit: int = 3000) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""


class NsCluster:
    def __init__(self, net: netns.Net, tmp_path: pathlib.Path):
        self.net = net
        self.size = net.n
        self.peers = ",".join(
            f"{i + 1}={net.ip(i)}:{PEER_PORT}@{net.ip(i)}:{CLIENT_PORT}" for i in range(self.size)
        )
        self.nodes = [NsNode(net, i, self.peers, tmp_path / f"node{i + 1}") for i in range(self.size)]
        self._clients: dict[int, NodeClient] = {}

    def address(self, i: int) -> str:
        return f"{self.net.ip(i)}:{CLIENT_PORT}"

    def client(self, i: int) -> NodeClient:
        if i not in self._clients:
            self._clients[i] = NodeClient(self.address(i))
        return self._clients[i]

    def start_all(self) -> None:
        for node in self.nodes:
            node.start()

    async def stop_all(self) -> None:
        for node in self.nodes:
            node.kill()
        for c in self._clients.values():
            await c.close()
        self._clients.clear()

    def stderr_tails(self) -> str:
        return "\n".join(f"--- node {n.i + 1}:\n{n.stderr_tail()}" for n in self.nodes) + (
            "\n--- rules:\n" + self.net.rules()
        )

    async def serving(self, i: int) -> bool:
        try:
            resp = await self.client(i).health.Check(
                health_pb2.HealthCheckRequest(service="baton.v1"), timeout=1.0
            )
            return resp.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            return False

    async def info(self, i: int, timeout: float = 1.0):
        """Admin/ServerInfo of node i (answered by it, whatever its role), or
        None if it did not answer."""
        try:
            return await self.client(i).admin.ServerInfo(admin_pb2.ServerInfoRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return None

    async def leader(self, among: list[int] | None = None, timeout: float = ELECTION_BUDGET) -> int:
        """The one node of `among` (default: all) that serves baton.v1."""
        among = list(range(self.size)) if among is None else among
        deadline = time.monotonic() + timeout
        while True:
            leaders = [i for i in among if await self.serving(i)]
            if len(leaders) == 1:
                return leaders[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no single leader among {among} within {timeout}s\n{self.stderr_tails()}")
            await asyncio.sleep(0.02)


@pytest.fixture
def net():
    n = netns.Net(3).create()
    yield n
    n.teardown()
    assert not n.leftovers(), n.leftovers()


@pytest.fixture
async def cluster(net, tmp_path):
    c = NsCluster(net, tmp_path)
    try:
        c.start_all()
        yield c
    finally:
        await c.stop_all()


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if `stop` is set meanwhile (not a
    synchronisation: the workload's pacing)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def poll(predicate, timeout: float, what: str, interval: float = 0.02):
    """Awaits `predicate()` until truthy; returns (value, seconds taken)."""
    start = time.monotonic()
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------
# The workload and its ledger
# --------------------------------------------------------------------------


@dataclass
class Grant:
    token: int
    locker: int
    node: int
    acked_at: float
    released_at: float | None = None  # when its first Release was sent


@dataclass
class Ledger:
    queue: str
    lock: str
    attempts: Counter = field(default_factory=Counter)  # item -> Puts sent
    acked: dict = field(default_factory=dict)  # item -> (node, sent_at, acked_at)
    errors: Counter = field(default_factory=Counter)  # Put failures by status
    grants: list = field(default_factory=list)
    lock_errors: Counter = field(default_factory=Counter)
    lock_violations: list = field(default_factory=list)

    def acks(self, since: float = 0.0, until: float = float("inf"), node: int | None = None,
             sent_since: float | None = None) -> int:
        return sum(
            1 for n, sent, acked in self.acked.values()
            if since <= acked < until and (node is None or n == node)
            and (sent_since is None or sent >= sent_since)
        )

    def by_node(self, since: float, until: float, n: int) -> str:
        return ", ".join(f"node {i + 1}: {self.acks(since, until, node=i)}" for i in range(n))

    def summary(self) -> str:
        errs = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        took = sorted(acked - sent for _, sent, acked in self.acked.values())
        lat = (f"; acknowledged Put latency median {took[len(took) // 2] * 1000:.0f} ms, "
               f"max {took[-1] * 1000:.0f} ms") if took else ""
        return (f"{len(self.acked)} of {len(self.attempts)} items acknowledged, "
                f"{sum(self.attempts.values())} Puts sent (failures: {errs}){lat}")


class Workload:
    """Writers (one per node) and, if asked, two lockers, until stop()."""

    def __init__(self, cluster: NsCluster, locks: bool = False):
        self.cluster = cluster
        self.ledger = Ledger(queue=unique("partition/queue"), lock=unique("partition/lock"))
        self._stop = asyncio.Event()
        self.tasks = [asyncio.ensure_future(self._writer(i)) for i in range(cluster.size)]
        if locks:
            self.tasks += [asyncio.ensure_future(self._locker(k)) for k in range(2)]

    async def stop(self) -> None:
        self._stop.set()
        done, pending = await asyncio.wait(self.tasks, timeout=15)
        assert not pending, "the workload did not stop"
        for t in done:
            t.result()  # a bug in the workload itself fails the test

    async def _writer(self, node: int) -> None:
        led, c, stop = self.ledger, self.cluster.client(node), self._stop
        seq = 0
        while not stop.is_set():
            item = f"n{node + 1}-{seq:05d}"
            seq += 1
            while not stop.is_set():
                sent = time.monotonic()
                led.attempts[item] += 1
                try:
                    await c.queues.Put(q_put(led.queue, [item]), timeout=PUT_TIMEOUT)
                except grpc.aio.AioRpcError as e:
                    led.errors[e.code().name] += 1
                    await pause(stop, 0.05)
                    continue
                led.acked[item] = (node, sent, time.monotonic())
                break
            await pause(stop, WRITER_PAUSE)

    async def _locker(self, who: int) -> None:
        led, stop, n = self.ledger, self._stop, self.cluster.size
        k = who
        while not stop.is_set():
            rid = unique("rid")
            grant = None
            while grant is None and not stop.is_set():
                node = k % n
                try:
                    r = await self.cluster.client(node).locks.Acquire(
                        lock_req(led.lock, ttl=LOCK_TTL, timeout=1.0, request_id=rid), timeout=2.0
                    )
                except grpc.aio.AioRpcError as e:
                    led.lock_errors["Acquire " + e.code().name] += 1
                    k += 1  # the same request_id, on the next node
                    await pause(stop, 0.02)
                    continue
                grant = Grant(r.token, who, node, time.monotonic())
            if grant is None:
                return  # stopped; an acquisition in doubt may be left holding
            led.grants.append(grant)
            c = self.cluster.client(grant.node)
            try:
                d = await c.describe(led.lock, timeout=2.0)
            except grpc.aio.AioRpcError as e:
                led.lock_errors["Describe " + e.code().name] += 1
            else:
                # The lease cannot have run out yet (LOCK_TTL > the 2 s
                # deadlines): the holder is this grant, alone.
                holders = [h.token for h in d.holders] if d is not None else None
                if holders != [grant.token]:
                    led.lock_violations.append(f"granted {grant.token}, Describe shows holders {holders}")
            await asyncio.sleep(0.03)
            grant.released_at = time.monotonic()
            while True:  # once at least, also when stopping; retried until stopped
                try:
                    await c.locks.Release(lock_release(led.lock, grant.token), timeout=2.0)
                    break
                except grpc.aio.AioRpcError as e:
                    if e.code() in (SC.FAILED_PRECONDITION, SC.NOT_FOUND):
                        break  # an earlier attempt released it (its reply was lost)
                    led.lock_errors["Release " + e.code().name] += 1
                    if stop.is_set():
                        break
                    k += 1
                    c = self.cluster.client(k % n)
                    await pause(stop, 0.02)


async def check_ledger(cluster: NsCluster, w: Workload, tag: str) -> None:
    """After healing and stopping the workload: the queue, read through the
    leader, holds every acknowledged item; the lock's grants were fenced."""
    led = w.ledger
    leader = await cluster.leader()
    c = cluster.client(leader)
    # Every node converges: its applied index reaches the leader's.
    head = (await cluster.info(leader, timeout=5)).applied_index

    async def converged():
        infos = [await cluster.info(i) for i in range(cluster.size)]
        return all(info is not None and info.applied_index >= head for info in infos)

    _, took = await poll(converged, 20, f"every node to apply up to index {head}")
    desc = await c.describe(led.queue, timeout=10)
    got: Counter = Counter()
    while True:
        asked = time.monotonic()
        try:
            r = await c.queues.Get(q_get(led.queue, ttl=300, max_items=1000, timeout=0), timeout=10)
        except grpc.aio.AioRpcError as e:
            # Zero timeout on an empty queue: DEADLINE_EXCEEDED at once.
            assert e.code() == SC.DEADLINE_EXCEEDED and time.monotonic() - asked < 5, e
            break
        got.update(d.text for d in r.items)
    missing = sorted(t for t in led.acked if got[t] == 0)
    unknown = sorted(t for t in got if t not in led.attempts)
    too_often = sorted(f"{t} x{k} (sent {led.attempts[t]})" for t, k in got.items() if k > led.attempts[t])
    dups = sum(k - 1 for k in got.values() if k > 1)
    unacked_there = sum(1 for t in got if t not in led.acked)
    print(f"[{tag}] ledger: {led.summary()}; the queue holds {sum(got.values())} "
          f"(Describe said {desc.queue.size if desc else 0}): {len(missing)} acknowledged missing, "
          f"{unacked_there} unacknowledged present, {dups} duplicates; every node at applied index "
          f">= {head} within {took:.2f}s")
    assert not missing, f"acknowledged items lost: {missing[:20]} ({len(missing)})\n{cluster.stderr_tails()}"
    assert not unknown, f"items nobody sent: {unknown[:20]}"
    assert not too_often, f"items there more often than sent: {too_often[:20]}"

    if w.tasks[cluster.size:]:  # lockers ran
        assert not led.lock_violations, led.lock_violations[:10]
        grants = sorted(led.grants, key=lambda g: g.acked_at)
        tokens = [g.token for g in grants]
        assert all(a < b for a, b in zip(tokens, tokens[1:])), f"fencing tokens not increasing: {tokens}"
        for a, b in zip(grants, grants[1:]):
            # a held from its acknowledgement until its release was sent;
            # b was acknowledged later, so after that release.
            assert a.released_at is not None and a.released_at <= b.acked_at, (
                f"two holders at once: {a} and {b}"
            )
        d = await c.describe(led.lock, timeout=10)
        holders = [h.token for h in d.holders] if d is not None else []
        assert len(holders) <= 1 and all(t >= max(tokens, default=0) for t in holders), holders
        errs = ", ".join(f"{k} {v}" for k, v in sorted(led.lock_errors.items())) or "none"
        print(f"[{tag}] lock: {len(tokens)} grants, tokens {tokens[0] if tokens else '-'}.."
              f"{tokens[-1] if tokens else '-'} strictly increasing, never two holders; failures: {errs}")
        assert tokens, "no lock grant at all"


async def wait_acks(led: Ledger, n: int, since: float, timeout: float, what: str) -> float:
    _, took = await poll(lambda: led.acks(since=since) >= n, timeout, what)
    return took


async def serves_everywhere(cluster: NsCluster, healed_at: float, timeout: float = 20.0) -> float:
    """Each node serves a write and a read (a follower relays them), retried
    while it answers UNAVAILABLE or times out: a node that lost touch with
    the leader refuses ("no leader is known now") until raft reaches it
    again. Returns the seconds from `healed_at` until all did."""
    name = unique("partition/after")
    sent = 0
    deadline = time.monotonic() + timeout
    for i in range(cluster.size):
        for call in ("put", "read"):
            while True:
                try:
                    if call == "put":
                        sent += 1
                        await cluster.client(i).queues.Put(q_put(name, [f"x{i}"]), timeout=2.0)
                    else:
                        d = await cluster.client(i).describe(name, timeout=2.0)
                        # Linearizable: every write acknowledged so far, at most every one sent.
                        assert d is not None and i + 1 <= d.queue.size <= sent, (i, d)
                    break
                except grpc.aio.AioRpcError as e:
                    assert e.code() in (SC.UNAVAILABLE, SC.DEADLINE_EXCEEDED), e
                    assert time.monotonic() < deadline, (
                        f"node {i + 1} did not serve within {timeout}s: {e.details()}\n{cluster.stderr_tails()}"
                    )
                    await asyncio.sleep(0.05)
    return time.monotonic() - healed_at


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------


async def test_a_leader_cut_off_from_the_majority_is_replaced_and_acknowledges_nothing_alone(cluster, net):
    old = await cluster.leader()
    majority = [i for i in range(cluster.size) if i != old]
    w = Workload(cluster, locks=True)
    led = w.ledger
    probe = unique("partition/probe")
    oc = cluster.client(old)
    reading = asyncio.Event()
    read_task = None
    try:
        await oc.queues.Put(q_put(probe, ["before"]))
        await wait_acks(led, 30, 0, 20, "the workload to get going")

        net.isolate(old)  # both ways, from both followers; the test still reaches it
        cut_at = time.monotonic()

        # Reads through the old leader, every 50 ms from the cut on.
        reads: list[tuple[float, float, object]] = []  # (started, ended, queue size or status)

        async def reader():
            while not reading.is_set():
                started = time.monotonic()
                try:
                    d = await oc.describe(probe, timeout=1.0)
                    reads.append((started, time.monotonic(), d.queue.size if d else 0))
                except grpc.aio.AioRpcError as e:
                    reads.append((started, time.monotonic(), e.code()))
                await pause(reading, 0.05)

        read_task = asyncio.ensure_future(reader())

        new = await cluster.leader(among=majority)
        elected = time.monotonic() - cut_at
        # At once (the old leader may still think it leads): something the
        # majority acknowledges after the cut...
        await cluster.client(new).queues.Put(q_put(probe, ["after"]), timeout=5)
        marked = time.monotonic()
        claimed = await cluster.info(old)
        claimed = claimed.role if claimed is not None else "?"
        # ...is either seen through the old leader, or the read is refused:
        # never the size from before.
        try:
            d = await oc.describe(probe, timeout=3.0)
            late = d.queue.size if d else 0
        except grpc.aio.AioRpcError as e:
            late = e.code()
        assert late in (SC.UNAVAILABLE, SC.DEADLINE_EXCEEDED, 2), f"stale read through the old leader: {late}"

        async def stepped_down():
            info = await cluster.info(old)
            return info is not None and info.role != "leader"

        await poll(stepped_down, 8, "the old leader to stop saying it leads")
        stepdown = time.monotonic() - cut_at
        # The majority goes on acknowledging; the cut lasts 1 s at least after the marker.
        await wait_acks(led, 20, marked, 20, "the majority to acknowledge writes")
        await pause(reading, max(0.0, marked + 1.0 - time.monotonic()))
        reading.set()
        await read_task
        read_task = None

        net.heal()
        heal_at = time.monotonic()
        alone = led.acks(until=heal_at, node=old, sent_since=cut_at)
        assert alone == 0, f"{alone} Puts sent to the cut-off leader were acknowledged while it was cut off"
        stale = [r for r in reads if r[0] > marked and not isinstance(r[2], SC) and r[2] != 2]
        assert not stale, f"stale reads through the old leader: {stale}"
        ok_reads = [r for r in reads if not isinstance(r[2], SC)]
        assert all(r[2] in (1, 2) for r in ok_reads), ok_reads
        refused = Counter(r[2].name for r in reads if isinstance(r[2], SC))

        # Healed: the old leader follows (relays the writes sent to it again),
        # does not take the lead back, and catches up with the log.
        head = (await cluster.info(new)).applied_index
        await wait_acks(led, 5, heal_at, 20, "writes after healing")
        await poll(lambda: led.acks(since=heal_at, node=old) > 0, ELECTION_BUDGET,
                   "a write through the old leader after healing")
        rejoined = time.monotonic() - heal_at

        async def caught_up():
            info = await cluster.info(old)
            return info is not None and info.applied_index >= head and info

        await poll(caught_up, 20, "the old leader to catch up")
        catchup = time.monotonic() - heal_at
        await w.stop()
        leader = await cluster.leader()
        assert leader != old and (await cluster.info(old)).role == "follower"
        during = led.acks(since=cut_at, until=heal_at)
        print(f"[cut leader] node {old + 1} cut off: node {new + 1} serving as leader {elected:.2f}s after "
              f"the cut; old leader stepped down after {stepdown:.2f}s (said {claimed!r} when the majority "
              f"had acknowledged a write; a read through it then: {getattr(late, 'name', late)}); {during} Puts acknowledged during the {heal_at - cut_at:.2f}s "
              f"cut ({led.acks(since=cut_at, until=heal_at, node=old)} through the old leader); reads through "
              f"the old leader: {len(ok_reads)} answered (none stale), refused {dict(refused)}; after healing "
              f"it relayed a write in {rejoined:.2f}s and reached applied index {head} in {catchup:.2f}s; "
              f"leader after: node {leader + 1}")
        await check_ledger(cluster, w, "cut leader")
    finally:
        reading.set()
        if read_task is not None:
            await read_task
        if not all(t.done() for t in w.tasks):
            await w.stop()


async def test_one_way_loss_from_the_leader_to_a_follower_keeps_writes_going(cluster, net):
    leader = await cluster.leader()
    follower = (leader + 1) % cluster.size
    w = Workload(cluster, locks=True)
    led = w.ledger
    try:
        await wait_acks(led, 30, 0, 20, "the workload to get going")
        net.cut(leader, follower, one_way=True)  # dropped where they arrive: at the follower
        cut_at = time.monotonic()
        await asyncio.sleep(3.0)  # the fault's duration, not a synchronisation
        net.heal()
        healed = time.monotonic()
        # Writes went on all along: acknowledgements in every second of it.
        per_second = [led.acks(cut_at + k, cut_at + k + 1) for k in range(3)]
        assert all(per_second), (
            f"writes stalled under one-way loss: acknowledged per second {per_second}\n{cluster.stderr_tails()}"
        )
        await wait_acks(led, 10, healed, 20, "writes after healing")
        await w.stop()
        recovered = await serves_everywhere(cluster, healed)
        leader_after = await cluster.leader()
        print(f"[one-way] packets from node {leader + 1} (leader) to node {follower + 1} dropped for "
              f"{healed - cut_at:.2f}s: Puts acknowledged per second {per_second} (through "
              f"{led.by_node(cut_at, healed, cluster.size)}); every node served again {recovered:.2f}s "
              f"after the heal; leader after: node {leader_after + 1}")
        await check_ledger(cluster, w, "one-way")
    finally:
        if not all(t.done() for t in w.tasks):
            await w.stop()


async def test_a_flapping_link_between_the_leader_and_a_follower(cluster, net):
    leader = await cluster.leader()
    follower = (leader + 1) % cluster.size
    w = Workload(cluster, locks=True)
    led = w.ledger
    try:
        await wait_acks(led, 30, 0, 20, "the workload to get going")
        start = time.monotonic()
        toggles = 0
        while time.monotonic() - start < 4.0:
            if toggles % 2 == 0:
                await asyncio.to_thread(net.cut, leader, follower)
            else:
                await asyncio.to_thread(net.uncut, leader, follower)
            toggles += 1
            await asyncio.sleep(0.2)  # the flapping period, not a synchronisation
        net.heal()
        healed = time.monotonic()
        during = led.acks(since=start, until=healed)
        await wait_acks(led, 10, healed, 20, "writes after healing")
        await w.stop()
        # The cluster serves at the end: through every node, a write and a read.
        recovered = await serves_everywhere(cluster, healed)
        leader_after = await cluster.leader()
        print(f"[flapping] link node {leader + 1}-node {follower + 1} toggled {toggles} times in "
              f"{healed - start:.2f}s: {during} Puts acknowledged meanwhile (through "
              f"{led.by_node(start, healed, cluster.size)}); every node served again {recovered:.2f}s "
              f"after the heal; leader after: node {leader_after + 1}")
        await check_ledger(cluster, w, "flapping")
    finally:
        if not all(t.done() for t in w.tasks):
            await w.stop()


async def test_random_loss_on_every_node(cluster, net):
    leader = await cluster.leader()
    w = Workload(cluster, locks=True)
    led = w.ledger
    try:
        await wait_acks(led, 30, 0, 20, "the workload to get going")
        net.loss(0.15)
        start = time.monotonic()
        sent_before = sum(led.attempts.values())
        await asyncio.sleep(3.0)  # the fault's duration, not a synchronisation
        net.heal()
        healed = time.monotonic()
        during = led.acks(since=start, until=healed)
        sent = sum(led.attempts.values()) - sent_before
        await wait_acks(led, 10, healed, 20, "writes after healing")
        await w.stop()
        recovered = await serves_everywhere(cluster, healed)
        leader_after = await cluster.leader()
        print(f"[random loss] 15% of incoming packets dropped on every node for {healed - start:.2f}s: "
              f"{during} Puts acknowledged of about {sent} sent meanwhile (through "
              f"{led.by_node(start, healed, cluster.size)}); every node served again {recovered:.2f}s "
              f"after the heal; leader: node {leader + 1} before, node {leader_after + 1} after")
        await check_ledger(cluster, w, "random loss")
    finally:
        if not all(t.done() for t in w.tasks):
            await w.stop()
