"""A 3-node Baton cluster on 127.0.0.1 (issue 9, first step): each batond
starts its baton-raftd, they elect one leader, only the leader serves
baton.v1 (health), a follower relays unary calls to the leader (and what it
cannot relay it refuses with UNAVAILABLE and a google.rpc.ErrorInfo naming
the leader), and what the leader acknowledged survives kill -9 of the leader: the next
leader has it, and the killed node rejoins as a follower and catches up.

Network namespaces, partitions, the porcupine check and the clients'
leader-following are later steps of issue 9; this file is the smoke test of
the replicated log under the real server, bounded in time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import shutil
import signal
import sys
import socket
import statistics
import time

import grpc
import grpc_tools
import pytest

from baton_helpers import (
    SC,
    BatondProcess,
    Client,
    admin_pb2,
    batond_path,
    health_pb2,
    lock_release,
    lock_req,
    q_get,
    q_item,
    q_put,
    sigkill,
    unique,
)

PROTO_DIR = pathlib.Path(__file__).resolve().parents[2] / "proto"
ELECTION_TIMEOUT = 20.0  # generous: a loaded CI machine, a sanitized batond


def raftd_near(batond) -> bool:
    """Whether batond will find a baton-raftd (as server_raft.cc looks)."""
    return (
        (batond.parent / "baton-raftd").exists()
        or (batond.parent.parent / "raft" / "baton-raftd").exists()
        or shutil.which("baton-raftd") is not None
    )


pytestmark = pytest.mark.skipif(
    not raftd_near(batond_path()), reason="no baton-raftd built (needs Go >= 1.26)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Three batond processes, each with a data directory under tmp_path and
    a baton-raftd it starts itself."""

    def __init__(self, tmp_path, size: int = 3):
        self.size = size
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.peers = ",".join(
            f"{i + 1}=127.0.0.1:{self.peer_ports[i]}@127.0.0.1:{self.client_ports[i]}"
            for i in range(size)
        )
        self.dirs = [tmp_path / f"node{i + 1}" for i in range(size)]
        self.nodes: list[BatondProcess | None] = [None] * size

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.client_ports[i]}"

    def start(self, i: int) -> None:
        node = BatondProcess(
            extra_args=[
                "--listen", self.address(i),
                "--node_id", str(i + 1),
                "--peers", self.peers,
                "--shards", "2",
                "--orphan_grace_ms", "5000",
            ],
            data_dir=self.dirs[i],
        )
        node.start()
        self.nodes[i] = node

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)

    def kill(self, i: int) -> str:
        node = self.nodes[i]
        assert node is not None
        self.nodes[i] = None
        return sigkill(node)

    def stop_all(self) -> None:
        for i, node in enumerate(self.nodes):
            if node is not None:
                sigkill(node)
                self.nodes[i] = None

    def stderr_tails(self) -> str:
        return "\n".join(
            f"--- node {i + 1}:\n{node.stderr_text(2000)}"
            for i, node in enumerate(self.nodes)
            if node is not None
        )

    async def serving(self, i: int) -> bool:
        client = Client(self.address(i), default_deadline=2.0)
        try:
            resp = await client.health.Check(health_pb2.HealthCheckRequest(service="baton.v1"))
            return resp.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            return False
        finally:
            await client.close()

    async def leader(self, timeout: float = ELECTION_TIMEOUT) -> int:
        """The one live node that serves baton.v1 (health), waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [i for i in range(self.size) if self.nodes[i] is not None]
            leaders = [i for i in live if await self.serving(i)]
            if len(leaders) == 1:
                return leaders[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no single leader within {timeout}s\n{self.stderr_tails()}")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()


def error_info(err: grpc.aio.AioRpcError, tmp_path):
    """The google.rpc.ErrorInfo in err's status details (None without one),
    decoded with messages compiled from the repository's proto/google/rpc."""
    from grpc_tools import protoc

    out = tmp_path / "rpcgen"
    if not out.exists():
        out.mkdir()
        include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        args = [
            "protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}",
            "google/rpc/status.proto", "google/rpc/error_details.proto",
        ]
        assert protoc.main(args) == 0
    status_pb2 = load_module(out / "google/rpc/status_pb2.py", "rpcgen_status_pb2")
    details_pb2 = load_module(out / "google/rpc/error_details_pb2.py", "rpcgen_error_details_pb2")
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw is None:
        return None
    status = status_pb2.Status.FromString(raw)
    assert status.code == err.code().value[0]
    for any_ in status.details:
        info = details_pb2.ErrorInfo()
        if any_.Unpack(info):
            return info
    return None


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_every_node_serves_unary_calls_and_a_refusal_names_the_leader(cluster, tmp_path):
    cluster.start_all()
    leader = await cluster.leader()
    follower = (leader + 1) % cluster.size
    name = unique("cluster/lock")
    via_leader = Client(cluster.address(leader))
    via_follower = Client(cluster.address(follower))
    try:
        held = await via_leader.locks.Acquire(lock_req(name, ttl=120, timeout=5))
        assert held.token > 0
        # A follower relays unary calls to the leader: reads see the leader's
        # state, writes are the leader's.
        seen = await via_follower.admin.Describe(admin_pb2.DescribeRequest(name=name))
        assert seen.last_token == held.token and len(seen.holders) == 1
        other = await via_follower.locks.Acquire(lock_req(name + "/2", ttl=120, timeout=5))
        assert other.token > 0
        # A wait relayed through a follower ends with its caller's deadline,
        # and leaves nothing waiting on the leader.
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await via_follower.locks.Acquire(lock_req(name, ttl=10, timeout=30), timeout=0.5)
        assert late.value.code() == SC.DEADLINE_EXCEEDED
        deadline = time.monotonic() + 10
        while (await via_leader.admin.Describe(admin_pb2.DescribeRequest(name=name))).waiters:
            assert time.monotonic() < deadline, "the relayed wait stayed in line"
            await asyncio.sleep(0.02)
        # ServerInfo describes the node asked: a follower answers it itself.
        info = await via_follower.admin.ServerInfo(admin_pb2.ServerInfoRequest())
        assert (info.role, info.config["node_id"]) == ("follower", str(follower + 1))
        # A call that was relayed once is not relayed again (the sender
        # thought this node led): refused UNAVAILABLE, with a
        # google.rpc.ErrorInfo naming the leader for clients to follow.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await via_follower.locks.Acquire(
                lock_req(name + "/3", ttl=10, timeout=1), metadata=(("baton-forwarded-by", "9"),)
            )
        assert refused.value.code() == SC.UNAVAILABLE
        assert cluster.address(leader) in refused.value.details()
        why = error_info(refused.value, tmp_path)
        assert why is not None, refused.value.trailing_metadata()
        assert (why.reason, why.domain) == ("NOT_LEADER", "baton.dev")
        assert why.metadata["leader"] == cluster.address(leader)
    finally:
        await via_leader.close()
        await via_follower.close()


async def test_sigterm_on_the_leader_hands_the_lead_over_before_it_stops(cluster):
    cluster.start_all()
    leader = await cluster.leader()
    name = unique("cluster/handover")
    c = Client(cluster.address(leader))
    try:
        held = await c.locks.Acquire(lock_req(name, ttl=300, timeout=5))
    finally:
        await c.close()
    node = cluster.nodes[leader]
    assert node is not None
    asked_at = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    # Another node serves: raft's leadership transfer (MsgTimeoutNow), not an
    # election after a timeout.
    deadline = asked_at + ELECTION_TIMEOUT
    successor = None
    while successor is None:
        assert time.monotonic() < deadline, cluster.stderr_tails()
        for i in range(cluster.size):
            if i != leader and cluster.nodes[i] is not None and await cluster.serving(i):
                successor = i
                break
        else:
            await asyncio.sleep(0.01)
    handover = time.monotonic() - asked_at
    assert node.proc.wait(30) == 0
    stopped = sigkill(node)
    cluster.nodes[leader] = None
    assert "handing over the lead before stopping" in stopped and "result=done" in stopped, stopped
    c = Client(cluster.address(successor))
    try:
        desc = await c.describe(name)
        assert desc is not None and [h.token for h in desc.holders] == [held.token], desc
    finally:
        await c.close()
    print(f"handover on SIGTERM: a new leader serving {handover:.3f}s after the signal")


def raftd_pid(node: BatondProcess) -> int:
    """The pid of the baton-raftd that batond `node` started (its child)."""
    pid = node.proc.pid
    children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def test_a_deposed_leader_fails_its_pending_waits_and_a_retry_keeps_their_place(cluster):
    cluster.start_all()
    leader = await cluster.leader()
    name = unique("cluster/deposed")
    c = Client(cluster.address(leader))
    waiter = Client(cluster.address(leader))
    raftd = None
    try:
        held = await c.locks.Acquire(lock_req(name, ttl=300, timeout=5))
        rid = unique("rid")
        blocked = asyncio.ensure_future(
            waiter.locks.Acquire(lock_req(name, ttl=300, timeout=60, request_id=rid), timeout=90)
        )
        deadline = time.monotonic() + 10
        while (await c.describe(name)).waiters != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        # Pause the leader's raft node: the others elect a new leader; when it
        # runs again it learns it was deposed.
        node = cluster.nodes[leader]
        raftd = raftd_pid(node)
        os.kill(raftd, signal.SIGSTOP)
        deadline = time.monotonic() + ELECTION_TIMEOUT
        successor = None
        while successor is None:
            assert time.monotonic() < deadline, cluster.stderr_tails()
            for i in range(cluster.size):
                if i != leader and await cluster.serving(i):
                    successor = i
            await asyncio.sleep(0.02)
        os.kill(raftd, signal.SIGCONT)
        resumed_at = time.monotonic()
        raftd = None
        # The old leader's pending wait ends at once, naming the new leader.
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await asyncio.wait_for(blocked, ELECTION_TIMEOUT)
        ended_after = time.monotonic() - resumed_at
        assert lost.value.code() == SC.UNAVAILABLE, lost.value
        assert cluster.address(successor) in lost.value.details()
        assert not await cluster.serving(leader)
        # Its retry (same request_id) on the new leader takes its place back:
        # the wait was kept as an orphan, and is granted once the lock is free.
        s = Client(cluster.address(successor))
        try:
            retry = asyncio.ensure_future(
                s.locks.Acquire(lock_req(name, ttl=300, timeout=30, request_id=rid))
            )
            await asyncio.sleep(0.2)
            assert not retry.done()
            await s.locks.Release(lock_release(name, held.token))
            granted = await asyncio.wait_for(retry, 20)
            assert granted.token > held.token
        finally:
            await s.close()
        print(f"a deposed leader's pending wait ended {ended_after:.3f}s after its raft node resumed")
    finally:
        if raftd is not None:
            os.kill(raftd, signal.SIGCONT)
        await c.close()
        await waiter.close()


# A real client (the Python package, in its own process) on a follower: its
# session stream is relayed to the leader. Prints what it got, line by line.
STREAM_CLIENT = r"""
import asyncio, sys
import baton

async def main(addr, name):
    async with baton.Client(addr) as client:
        x = client.lock(name + "/x")
        held = await x.acquire(timeout=10)
        print("held", held.token, client.session_id, flush=True)
        print("waiting", flush=True)
        y = client.lock(name + "/y")
        got = await y.acquire(timeout=60)
        print("granted", got.token, client.session_id, flush=True)
        await x.release()  # raises if the lock was not held any more
        await y.release()
        print("released", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("target", ["follower", "every-node"])
async def test_a_client_keeps_its_session_and_wait_through_a_failover(cluster, target):
    """`follower`: the client's one address is a follower, which relays its
    stream; the leader is killed. `every-node`: the client is given every
    node (a gRPC ipv4: target, the leader first, so it connects there); the
    node it is connected to is killed, and it moves to the next, which
    relays it to the new leader."""
    cluster.start_all()
    leader = await cluster.leader()
    follower = (leader + 1) % cluster.size
    if target == "follower":
        address = cluster.address(follower)
    else:
        order = [leader] + [i for i in range(cluster.size) if i != leader]
        address = "ipv4:" + ",".join(cluster.address(i) for i in order)
    name = unique("cluster/stream")
    c = Client(cluster.address(leader))
    try:
        y = await c.locks.Acquire(lock_req(name + "/y", ttl=300, timeout=5))
    finally:
        await c.close()
    env = dict(os.environ, PYTHONPATH=str(PROTO_DIR.parent / "clients" / "python"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STREAM_CLIENT, address, name,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )

    async def line() -> list[str]:
        text = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not text:
            err = await proc.stderr.read()
            raise AssertionError(f"the client ended early:\n{err.decode()}\n{cluster.stderr_tails()}")
        return text.decode().split()

    try:
        held = await line()
        assert held[0] == "held", held
        assert await line() == ["waiting"]

        async def waiters_on(i: int) -> int:
            c = Client(cluster.address(i))
            try:
                d = await c.describe(name + "/y")
                return d.waiters if d is not None else 0
            finally:
                await c.close()

        deadline = time.monotonic() + 20
        while await waiters_on(leader) != 1:
            assert time.monotonic() < deadline, "the relayed wait never reached the leader"
            await asyncio.sleep(0.02)
        cluster.kill(leader)
        new_leader = await cluster.leader()
        # The client re-opens its stream on the follower (relayed to the new
        # leader) with the same session and sends its wait again with its
        # request_id: it is in line again (its orphan claimed, or queued anew).
        deadline = time.monotonic() + 20
        while await waiters_on(new_leader) != 1:
            assert time.monotonic() < deadline, "the wait was not re-sent after the failover"
            await asyncio.sleep(0.02)
        c = Client(cluster.address(new_leader))
        try:
            await c.locks.Release(lock_release(name + "/y", y.token))
        finally:
            await c.close()
        granted = await line()
        assert granted[0] == "granted" and int(granted[1]) > y.token, granted
        assert granted[2] == held[2], "the session changed: " + " ".join(granted)
        assert await line() == ["released"]
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_what_the_leader_acknowledged_survives_its_kill_9(cluster):
    cluster.start_all()
    failovers = []
    queue = unique("cluster/queue")
    lock = unique("cluster/lock")
    tokens = []
    for round_ in range(3):
        leader = await cluster.leader()
        client = Client(cluster.address(leader))
        try:
            await client.queues.Put(q_put(queue, [q_item(f"r{round_}-{k}") for k in range(20)]))
            held = await client.locks.Acquire(lock_req(f"{lock}/{round_}", ttl=300, timeout=5))
            tokens.append(held.token)
        finally:
            await client.close()
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader = await cluster.leader()
        failovers.append(time.monotonic() - killed_at)
        # Everything acknowledged before the kill is there.
        c = Client(cluster.address(new_leader))
        try:
            desc = await c.describe(queue)
            assert desc is not None and desc.queue.size == 20 * (round_ + 1), desc
            for r in range(round_ + 1):
                d = await c.describe(f"{lock}/{r}")
                assert d is not None and len(d.holders) == 1, d
                assert d.holders[0].token == tokens[r]
            # And the new leader serves: a grant with a larger fence.
            again = await c.locks.Acquire(lock_req(unique("cluster/after"), ttl=10, timeout=5))
            assert again.token > max(tokens)
        finally:
            await c.close()
        # The killed node comes back on its data directory, as a follower.
        cluster.start(leader)
    # Every item is there once, in order.
    leader = await cluster.leader()
    c = Client(cluster.address(leader))
    try:
        got = await c.queues.Get(q_get(queue, ttl=30, max_items=100, timeout=1))
        texts = [it.text for it in got.items]
        assert texts == [f"r{r}-{k}" for r in range(3) for k in range(20)]
    finally:
        await c.close()
    print(
        "failover (kill -9 of the leader to a new leader serving): "
        + ", ".join(f"{f:.2f}s" for f in failovers)
        + f"; median {statistics.median(failovers):.2f}s"
    )
