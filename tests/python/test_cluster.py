"""A 3-node Baton cluster on 127.0.0.1 (issue 9, first step): each batond
starts its baton-raftd, they elect one leader, only the leader serves
baton.v1 (health), a follower refuses with UNAVAILABLE naming the leader,
and what the leader acknowledged survives kill -9 of the leader: the next
leader has it, and the killed node rejoins as a follower and catches up.

Network namespaces, partitions, the porcupine check and the clients'
leader-following are later steps of issue 9; this file is the smoke test of
the replicated log under the real server, bounded in time.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import time

import grpc
import pytest

from baton_helpers import (
    SC,
    BatondProcess,
    Client,
    admin_pb2,
    batond_path,
    health_pb2,
    lock_req,
    q_get,
    q_item,
    q_put,
    sigkill,
    unique,
)

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


async def test_one_leader_serves_and_a_follower_names_it(cluster):
    cluster.start_all()
    leader = await cluster.leader()
    name = unique("cluster/lock")
    client = Client(cluster.address(leader))
    try:
        held = await client.locks.Acquire(lock_req(name, ttl=120, timeout=5))
        assert held.token > 0
    finally:
        await client.close()
    follower = (leader + 1) % cluster.size
    client = Client(cluster.address(follower))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.locks.Acquire(lock_req(name + "/2", ttl=10, timeout=1))
        assert refused.value.code() == SC.UNAVAILABLE
        assert cluster.address(leader) in refused.value.details()
        # Reads too: a follower's state may lag, so it does not answer them.
        with pytest.raises(grpc.aio.AioRpcError) as read:
            await client.admin.Describe(admin_pb2.DescribeRequest(name=name))
        assert read.value.code() == SC.UNAVAILABLE
    finally:
        await client.close()


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
