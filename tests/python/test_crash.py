"""Crash tests: batond with --data_dir is killed with SIGKILL at random moments
under mixed load and restarted on the same data directory; everything it
acknowledged must still be there (DESIGN §3 "Durability", §6; README).

The soak (test_crash_soak) runs producers and consumers of a queue, lock and
semaphore holders, futures, one-shot timers, tasks and sessions, each through
real gRPC clients, and keeps a ledger of what the server acknowledged (an OK
reply) and of what is in doubt (the call failed with UNAVAILABLE or CANCELLED
because the server was killed while it was on its way: either outcome is
allowed). It kills the server after a random 0-300 ms of load, restarts it
(with a shard count picked at random from 1, 2, 2, 3: a new count re-shards
the data directory first, and 40% of those re-shardings are themselves
killed 0-40 ms in, before the server listens),
checks the invariants below against Admin/Describe and the other read calls
while the load is paused, resolves what was in doubt where the API can tell
(retries with the same request_id, Describe, Await), and goes on. At the end
it drains everything and checks that nothing acknowledged was lost and nothing
happened twice.

  Queues     every acknowledged Put is delivered (0 lost); an item whose Ack
             was acknowledged (by Ack, or riding on the consumer's next Get,
             half the time) is never delivered again, nor acknowledged twice;
             after each restart the queue holds at least the acknowledged,
             unacknowledged items and at most what could be there; in-flight
             items keep their receipts: an Ack within the visibility lease works.
  Locks      after each restart the holder is exactly the one the ledger says
             (an in-doubt acquire or release may have happened or not);
             fencing tokens of a lock strictly increase over the whole run;
             never two acknowledged holders; a retry of an in-doubt Acquire with
             its request_id returns the surviving grant (REPLAYED, same token).
  Semaphores acknowledged holdings survive; holders never exceed the capacity,
             which survives too.
  Futures    an acknowledged SetResult is returned by Await after restarts; a
             second SetResult fails with FAILED_PRECONDITION.
  Timers     an acknowledged one-shot timer fires exactly once (zero times if
             its Cancel was acknowledged), across restarts.
  Tasks      every acknowledged Submit ends SUCCEEDED with its result, completed
             (acknowledged) at most once.
  Sessions   an acknowledged Open not closed (and within its TTL) survives a
             restart; an acknowledged Close stays closed.
  Waits      no waiter survives a restart: every wait pending at the crash ended.

The smaller tests check a graceful restart (SIGTERM), a torn last WAL record
(truncated with a note), a corrupt record in the middle (batond refuses to
start, naming file and offset), a second batond on the same data directory or
port, and retries with a request_id after a restart.

Knobs (environment):
  BATON_CRASH_KILLS    kills in the soak (default 200)
  BATON_CRASH_SECONDS  time budget of the soak's kill loop in seconds (default
                       150): the soak stops killing when it is spent, and fails
                       if fewer than 50 kills (or BATON_CRASH_KILLS, if lower)
                       happened by then
  BATON_CRASH_SNAPSHOT_ENTRIES  the soak's batond takes a snapshot every this
                       many log entries (default 300), with 30 KiB WAL segments
  BATON_CRASH_SEED     seed of the schedules (default: random; printed, and in
                       every failure message)
A long soak, e.g. an hour:
  BATON_CRASH_KILLS=100000 BATON_CRASH_SECONDS=3600 BATON_PYTEST_TIMEOUT=4000 \\
    bash tests/python/run.sh test_crash.py -k soak
The module is not part of the default `run.sh` run (pytest.ini ignores it when
collecting the directory); name it to run it, as the `crash` ctest entry does.
"""

import asyncio
import collections
import faulthandler
import os
import random
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from baton_helpers import (
    AFTER_WAIT,
    IMMEDIATE,
    KIND_LOCK,
    KIND_QUEUE,
    REPLAYED,
    SC,
    BatondProcess,
    Client,
    batond_path,
    dur,
    expect_status,
    fmt_desc,
    future_pb2,
    lock_release,
    lock_req,
    poll_until,
    q_ack,
    q_get,
    q_item,
    q_put,
    sem_release,
    sem_req,
    session_pb2,
    sigkill,
    task_pb2,
    timer_pb2,
    to_s,
    with_task_timer_stubs,
)

KILLS = int(os.environ.get("BATON_CRASH_KILLS", "200"))
BUDGET_S = float(os.environ.get("BATON_CRASH_SECONDS", "150"))
# The soak's batond snapshots every this many log entries and keeps tiny WAL
# segments, so kills also land while a snapshot is cut or written and while
# old segments are deleted, and restarts start from snapshots.
SNAPSHOT_ENTRIES = int(os.environ.get("BATON_CRASH_SNAPSHOT_ENTRIES", "300"))
SEED = int(os.environ.get("BATON_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
MIN_KILLS = min(50, KILLS)

RPC_DEADLINE = 10.0  # gRPC deadline of every call; a call that needs it is a hang
LEASE = 3.0  # visibility lease of a Get, lease of a Take
MARGIN = 0.3  # slack between our clock and the server's when reasoning about leases and due times
SESSION_TTL = 30.0  # worker sessions (kept alive after each restart)
POOL_SESSION_TTL = 20.0  # sessions of the session worker (not kept alive by us)
CHANNELS = 3
LOCKS = [f"crash/lock/{i}" for i in range(3)]
SEM = "crash/sem"
SEM_CAPACITY = 3
WORK_QUEUE = "crash/queue"
TIMER_QUEUE = "crash/timer-fired"
TASK_QUEUE = "crash/tasks"
IN_DOUBT = "in doubt"  # what call() returns for a call the kill cut off


def connect(addr: str) -> Client:
    return with_task_timer_stubs(Client(addr, default_deadline=RPC_DEADLINE))


def get_req(sid, request_id, max_items, *, timeout, name=WORK_QUEUE, ttl=LEASE):
    r = q_get(name, sid, ttl=ttl, timeout=timeout, max_items=max_items)
    r.request_id = request_id
    return r


class Down(Exception):
    """The server is down (killed, not restarted yet): the call was not sent."""


class Report:
    def __init__(self):
        self.violations: list[str] = []
        self.stats = collections.Counter()
        self.kill = 0

    def violation(self, msg: str) -> None:
        self.violations.append(f"[after kill {self.kill}] {msg}")

    def summary(self) -> str:
        return f"[crash soak] seed={SEED} stats={dict(sorted(self.stats.items()))}"


# ---------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------


class Server:
    """batond on one data directory, killed with SIGKILL and restarted."""

    def __init__(self, data_dir: Path, report: Report):
        self.data_dir = data_dir
        self.report = report
        self.proc: BatondProcess | None = None
        self.conns: list[Client] = []
        self.down = True
        self.up = asyncio.Event()
        self.kills = 0
        self.spawned_at = 0.0
        self.restart_s: list[float] = []
        self.stderr_tails = collections.deque(maxlen=3)  # of the last killed processes
        # Each restart picks a shard count: a new one re-shards the data
        # directory first, and some of those are killed while they do.
        self.rng = random.Random(f"{SEED}:server")
        self.shards: int | None = None
        self.reshards = 0
        self.reshard_kills = 0

    def kill_while_resharding(self, args: list[str]) -> None:
        """Starts batond and SIGKILLs it 0-40 ms later, before it listens:
        while it recovers with the old count, seals, or splits the snapshot."""
        p = subprocess.Popen([str(batond_path()), "--listen", "127.0.0.1:0", "--data_dir", str(self.data_dir), *args],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(self.rng.uniform(0, 0.04))
        p.kill()
        p.wait()
        self.reshard_kills += 1

    def start(self) -> None:
        shards = 2 if self.shards is None else self.rng.choice([1, 2, 2, 3])
        args = ["--snapshot_entries", str(SNAPSHOT_ENTRIES), "--wal_segment_mb", "0.03", "--shards", str(shards)]
        if self.shards is not None and shards != self.shards:
            self.reshards += 1
            if self.rng.random() < 0.4:
                self.kill_while_resharding(args)
        self.shards = shards
        t0 = time.monotonic()
        p = BatondProcess(args, data_dir=self.data_dir)
        try:
            p.start()
        except RuntimeError as e:
            raise AssertionError(f"seed={SEED}: batond did not restart after kill {self.kills}: {e}\n"
                                 f"{self.tails()}") from None
        self.restart_s.append(time.monotonic() - t0)
        self.spawned_at = t0
        self.proc = p
        self.conns = [connect(p.addr) for _ in range(CHANNELS)]
        self.down = False

    def resume(self) -> None:
        self.up.set()

    def kill(self) -> None:
        """SIGKILL now, in the middle of whatever calls are on their way."""
        self.down = True
        self.up.clear()
        self.kills += 1
        self.stderr_tails.append(sigkill(self.proc)[-3000:])

    async def close_conns(self) -> None:
        for c in self.conns:
            await c.close()
        self.conns = []

    def conn(self, i: int) -> Client:
        return self.conns[i % len(self.conns)]

    def tails(self) -> str:
        now = self.proc.stderr_text(3000) if self.proc is not None and self.proc.alive() else ""
        parts = [f"--- stderr of a killed batond ---\n{t}" for t in self.stderr_tails]
        parts.append(f"--- stderr of the running batond ---\n{now}")
        return "\n".join(parts)


# ---------------------------------------------------------------------------
# Workers: each runs steps while the server is up and parks while it is down
# ---------------------------------------------------------------------------


class Worker:
    index = 0

    def __init__(self, soak: "Soak", name: str, sid: int = 0):
        self.soak = soak
        self.server = soak.server
        self.report = soak.report
        self.name = name
        self.sid = sid
        self.rng = random.Random(f"{SEED}:{name}")
        self.parked = True
        self.n = 0
        Worker.index += 1
        self.channel = Worker.index

    def idle(self) -> bool:
        """Nothing held that the end of the run must finish."""
        return True

    async def step(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        try:
            while True:
                while self.server.down:
                    self.parked = True
                    await self.server.up.wait()
                self.parked = False
                if self.soak.finishing and self.idle():
                    return
                try:
                    await self.step()
                except Down:
                    pass
        finally:
            self.parked = True

    async def call(self, method, req, what: str, expect=()):
        """Sends one call on this worker's channel. -> (response, None), or
        (None, error) for an error whose code is in `expect`, or (None,
        IN_DOUBT) when the kill cut the call off. Anything else is a violation
        (and counts as in doubt). Raises Down, sending nothing, while the
        server is down. Runs without yielding up to the send, so that a caller
        may update its ledger right before."""
        if self.server.down:
            raise Down()
        kills = self.server.kills
        t0 = time.monotonic()
        try:
            return await method(self.server.conn(self.channel))(req, timeout=RPC_DEADLINE), None
        except grpc.aio.AioRpcError as e:
            code = e.code()
            hung = code == SC.DEADLINE_EXCEEDED and time.monotonic() - t0 >= RPC_DEADLINE - 1
            if code in expect and not hung:
                return None, e
            if code in (SC.UNAVAILABLE, SC.CANCELLED) and self.server.kills != kills:
                self.report.stats["calls_in_doubt"] += 1
                return None, IN_DOUBT
            self.report.violation(f"{self.name}: {what} failed with {code.name} ({e.details()!r})"
                                  f"{' after the whole gRPC deadline' if hung else ''}, no kill meanwhile")
            return None, IN_DOUBT


# --- locks ---


@dataclass
class Holding:
    who: str
    sid: int
    token: int
    count: int = 1
    state: str = "held"  # held | releasing (Release on its way) | doubt (Release cut off)


class LockLedger:
    def __init__(self, report: Report):
        self.report = report
        self.holder: dict[str, Holding] = {}
        self.max_token: dict[str, int] = collections.defaultdict(int)

    def granted(self, name, who, sid, token, outcome):
        r = self.report
        r.stats["lock_grants"] += 1
        if token <= self.max_token[name]:
            r.violation(f"{who}: lock {name} granted token {token} (outcome {outcome}), not above "
                        f"{self.max_token[name]}, a token acknowledged earlier")
        cur = self.holder.get(name)
        if cur is not None and cur.state == "held":
            r.violation(f"{who}: lock {name} granted with token {token} while {cur.who} holds it (token "
                        f"{cur.token}, acknowledged, no Release sent)")
        self.holder[name] = Holding(who, sid, token)
        self.max_token[name] = max(self.max_token[name], token)

    def set_state(self, name, token, state):
        cur = self.holder.get(name)
        if cur is not None and cur.token == token:
            if state is None:
                del self.holder[name]
            else:
                cur.state = state


class LockWorker(Worker):
    def __init__(self, soak, i, sid):
        super().__init__(soak, f"lock{i}", sid)
        self.ledger = soak.locks
        self.held = None  # (name, token), acknowledged
        self.pending_acquire = None  # (name, request_id) of an Acquire cut off
        self.pending_release = None  # (name, token) of a Release cut off

    def idle(self):
        return self.held is None

    async def step(self):
        if self.held is not None:
            await asyncio.sleep(self.rng.uniform(0, 0.05))
            if self.server.down:
                raise Down()
            name, token = self.held
            self.ledger.set_state(name, token, "releasing")
            _, err = await self.call(lambda c: c.locks.Release, lock_release(name, token, self.sid),
                                     f"Release of {name} token {token}")
            self.held = None
            if err is None:
                self.report.stats["lock_releases"] += 1
                self.ledger.set_state(name, token, None)
            else:
                self.pending_release = (name, token)
                self.ledger.set_state(name, token, "doubt")
            return
        name = self.rng.choice(LOCKS)
        self.n += 1
        rid = f"{self.name}-{self.n}"
        resp, err = await self.call(lambda c: c.locks.Acquire, lock_req(name, self.sid, timeout=0.2, request_id=rid),
                                    f"Acquire of {name} ({rid})", expect=(SC.DEADLINE_EXCEEDED,))
        if err is None:
            if resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                self.report.violation(f"{self.name}: Acquire of {name} ({rid}) answered outcome {resp.outcome}")
            self.ledger.granted(name, self.name, self.sid, resp.token, resp.outcome)
            self.held = (name, resp.token)
        elif err is IN_DOUBT:
            self.pending_acquire = (name, rid)


# --- semaphores ---


class SemLedger:
    def __init__(self, report: Report):
        self.report = report
        self.holdings: dict[int, Holding] = {}
        self.max_token = 0
        self.seen: set[int] = set()

    def granted(self, who, sid, token, count, available, floor):
        """`floor`: the newest token acknowledged before the Acquire was sent.
        Holdings overlap, so replies may come back out of token order."""
        r = self.report
        r.stats["sem_grants"] += 1
        if token <= floor or token in self.seen:
            r.violation(f"{who}: semaphore token {token} not above {floor}, a token acknowledged before the Acquire "
                        f"was sent, or handed out twice")
        self.seen.add(token)
        self.max_token = max(self.max_token, token)
        held = sum(h.count for h in self.holdings.values() if h.state == "held") + count
        if held > SEM_CAPACITY:
            r.violation(f"{who}: semaphore granted {count} permit(s) (token {token}) while acknowledged holdings "
                        f"not being released hold {held - count} of {SEM_CAPACITY}: "
                        f"{[(h.who, h.token, h.count) for h in self.holdings.values() if h.state == 'held']}")
        if not 0 <= available <= SEM_CAPACITY - count:
            r.violation(f"{who}: semaphore grant of {count} reports {available} available (capacity {SEM_CAPACITY})")
        self.holdings[token] = Holding(who, sid, token, count)

    def set_state(self, token, state):
        if token in self.holdings:
            if state is None:
                del self.holdings[token]
            else:
                self.holdings[token].state = state


class SemWorker(Worker):
    def __init__(self, soak, i, sid):
        super().__init__(soak, f"sem{i}", sid)
        self.ledger = soak.sems
        self.held = None  # (token, count)
        self.pending_acquire = None  # (request_id, count)
        self.pending_release = None  # token

    def idle(self):
        return self.held is None

    async def step(self):
        if self.held is not None:
            await asyncio.sleep(self.rng.uniform(0, 0.05))
            if self.server.down:
                raise Down()
            token, count = self.held
            self.ledger.set_state(token, "releasing")
            resp, err = await self.call(lambda c: c.semaphores.Release, sem_release(SEM, token, self.sid),
                                        f"semaphore Release of token {token}")
            self.held = None
            if err is None:
                self.report.stats["sem_releases"] += 1
                if resp.remaining != 0 or not 0 <= resp.available <= SEM_CAPACITY:
                    self.report.violation(f"{self.name}: Release of all {count} permit(s) of token {token}: "
                                          f"remaining {resp.remaining}, available {resp.available}")
                self.ledger.set_state(token, None)
            else:
                self.pending_release = token
                self.ledger.set_state(token, "doubt")
            return
        self.n += 1
        rid = f"{self.name}-{self.n}"
        count = self.rng.choice([1, 1, 2])
        floor = self.ledger.max_token
        resp, err = await self.call(
            lambda c: c.semaphores.Acquire,
            sem_req(SEM, SEM_CAPACITY, count, self.sid, timeout=0.2, request_id=rid),
            f"semaphore Acquire of {count} ({rid})",
            expect=(SC.DEADLINE_EXCEEDED,),
        )
        if err is None:
            if resp.count != count or resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                self.report.violation(f"{self.name}: semaphore Acquire of {count} ({rid}) answered {resp}")
            self.ledger.granted(self.name, self.sid, resp.token, count, resp.available, floor)
            self.held = (resp.token, count)
        elif err is IN_DOUBT:
            self.pending_acquire = (rid, count)


# --- queues ---


class QueueLedger:
    def __init__(self, report: Report):
        self.report = report
        self.confirmed: dict[str, int] = {}  # payload -> item id (Put acknowledged)
        self.put_doubt: set[str] = set()  # Put cut off
        self.acked: dict[str, int] = {}  # payload -> delivery_count of the acknowledged (or proven) Ack
        self.ack_doubt: set[str] = set()  # an Ack cut off whose effect could not be told
        self.ack_count = collections.Counter()
        self.drained = collections.Counter()
        self.ids: dict[int, str] = {}
        self.delivered = collections.Counter()
        self.history = collections.defaultdict(list)  # payload -> what happened to it, for failure messages

    def note(self, p, what):
        self.history[p].append(f"{what} (kill {self.report.kill}, t={time.monotonic():.3f})")

    def put_ok(self, who, payloads, resp):
        if len(resp.item_ids) != len(payloads):
            self.report.violation(f"{who}: Put of {len(payloads)} returned {len(resp.item_ids)} item id(s)")
        for p, i in zip(payloads, resp.item_ids):
            self.note(p, f"{who}: Put acknowledged, item id {i}")
            if i in self.ids:
                self.report.violation(f"{who}: item id {i} of {p!r} was already returned for {self.ids[i]!r}")
            self.ids[i] = p
            self.confirmed[p] = i

    def delivery(self, who, d):
        r = self.report
        p = d.text
        self.delivered[p] += 1
        self.note(p, f"{who}: delivered as item {d.item_id}, receipt {d.receipt}, delivery_count {d.delivery_count}")
        if d.data != p.encode() or d.delivery_count < 1:
            r.violation(f"{who}: bad delivery {d}")
        if p in self.confirmed and self.confirmed[p] != d.item_id:
            r.violation(f"{who}: got {p!r} as item {d.item_id}; its Put returned id {self.confirmed[p]}")
        if p in self.acked and d.delivery_count >= self.acked[p]:
            r.violation(f"{who}: got {p!r} (delivery_count {d.delivery_count}, receipt {d.receipt}) after its Ack "
                        f"(of delivery_count {self.acked[p]}) was acknowledged")
        if self.drained[p]:
            r.violation(f"{who}: got {p!r} again after it was drained and acknowledged")

    def ack_ok(self, who, d, how="acknowledged"):
        p = d.text
        self.note(p, f"{who}: Ack {how}, receipt {d.receipt}")
        self.ack_count[p] += 1
        self.ack_doubt.discard(p)
        self.report.stats[f"queue_acks_{how}"] += 1
        if self.ack_count[p] > 1:
            self.report.violation(f"{who}: {p!r} acknowledged a second time ({how}), receipt {d.receipt}")
        self.acked[p] = max(self.acked.get(p, 0), d.delivery_count)


@dataclass
class Held:
    d: object  # the Delivery
    sent: float  # when the Get that delivered it was sent: its lease ends after sent + LEASE


class ProducerWorker(Worker):
    def __init__(self, soak, i):
        super().__init__(soak, f"producer{i}")
        self.ledger = soak.queue

    async def step(self):
        self.n += 1
        k = self.rng.choice([1, 1, 2, 3])
        payloads = [f"p{self.name[-1]}-{self.n}-{j}" for j in range(k)]
        delay = self.rng.uniform(0.05, 0.5) if self.rng.random() < 0.2 else None
        items = [q_item(p, delay=delay) for p in payloads]
        resp, err = await self.call(lambda c: c.queues.Put, q_put(WORK_QUEUE, items), f"Put of {payloads}")
        if err is None:
            self.report.stats["queue_items_put"] += k
            self.ledger.put_ok(self.name, payloads, resp)
        else:
            self.ledger.put_doubt.update(payloads)
            for p in payloads:
                self.ledger.note(p, f"{self.name}: Put in doubt")
        await asyncio.sleep(self.rng.uniform(0, 0.01))


class ConsumerWorker(Worker):
    def __init__(self, soak, i, sid):
        super().__init__(soak, f"consumer{i}", sid)
        self.ledger = soak.queue
        self.held: list[Held] = []  # delivered, not acknowledged
        self.pending_get = None  # (request_id, max_items, sent) of a Get cut off
        self.pending_ack: list[Held] = []  # Acks cut off

    def idle(self):
        return not self.held

    async def ack(self):
        """Acks what it holds: in one call while every lease surely runs, else
        one by one (so a FAILED_PRECONDITION tells which lease ran out). What
        it has sent leaves `held` (Down leaves the rest there)."""
        now = time.monotonic()
        if all(now < h.sent + LEASE - MARGIN for h in self.held):
            items = self.held
            resp, err = await self.call(lambda c: c.queues.Ack, q_ack(WORK_QUEUE, [h.d.receipt for h in items]),
                                        f"Ack of {[h.d.text for h in items]} (leases running)")
            self.held = []
            if err is None:
                if resp.acked != len(items):
                    self.report.violation(f"{self.name}: Ack of {len(items)} in-flight item(s) acknowledged "
                                          f"{resp.acked}")
                for h in items:
                    self.ledger.ack_ok(self.name, h.d)
            else:
                self.pending_ack.extend(items)
                for h in items:
                    self.ledger.note(h.d.text, f"{self.name}: Ack in doubt, receipt {h.d.receipt}")
            return
        while self.held:
            h = self.held[0]
            resp, err = await self.call(lambda c: c.queues.Ack, q_ack(WORK_QUEUE, [h.d.receipt]),
                                        f"Ack of {h.d.text!r} (lease may have run out)",
                                        expect=(SC.FAILED_PRECONDITION,))
            self.held.pop(0)
            if err is None:
                self.ledger.ack_ok(self.name, h.d)
            elif err is IN_DOUBT:
                self.pending_ack.append(h)
                self.ledger.note(h.d.text, f"{self.name}: Ack in doubt, receipt {h.d.receipt}")
            else:
                self.report.stats["queue_acks_after_lease"] += 1  # the item went back to the queue
                self.ledger.note(h.d.text, f"{self.name}: Ack refused, lease over")

    async def step(self):
        riding: list[Held] = []
        if self.held:
            await asyncio.sleep(self.rng.uniform(0, 0.05))
            now = time.monotonic()
            # Half the time, while every lease surely runs, the acks ride on
            # the next Get (GetRequest.ack), as the clients' consumers send them.
            if self.rng.random() < 0.5 and all(now < h.sent + LEASE - MARGIN for h in self.held):
                riding, self.held = self.held, []
            else:
                await self.ack()
                return
        self.n += 1
        rid = f"{self.name}-{self.n}"
        k = self.rng.choice([1, 2, 4])
        sent = time.monotonic()
        req = get_req(self.sid, rid, k, timeout=0.3)
        req.ack.extend(h.d.receipt for h in riding)
        what = f"Get ({rid})" + (f" with the acks of {[h.d.text for h in riding]}" if riding else "")
        resp, err = await self.call(lambda c: c.queues.Get, req, what, expect=(SC.DEADLINE_EXCEEDED,))
        if err is None:
            if not resp.items or len(resp.items) > k or resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                self.report.violation(f"{self.name}: Get of up to {k} ({rid}) answered {len(resp.items)} item(s), "
                                      f"outcome {resp.outcome}")
            if resp.acked != len(riding) or resp.ack_failed:
                self.report.violation(f"{self.name}: {what} acknowledged {resp.acked} of {len(riding)} "
                                      f"(failed: {list(resp.ack_failed)}) while every lease ran")
            for h in riding:
                self.ledger.ack_ok(self.name, h.d, "riding_on_get")
            for d in resp.items:
                self.ledger.delivery(self.name, d)
            self.held = [Held(d, sent) for d in resp.items]
        elif err is IN_DOUBT:
            self.pending_get = (rid, k, sent)
            # Retried after the restart as plain Acks (check_queue): refused
            # within the lease means this Get applied them.
            self.pending_ack.extend(riding)
            for h in riding:
                self.ledger.note(h.d.text, f"{self.name}: Ack riding on Get {rid} in doubt, receipt {h.d.receipt}")
        else:
            # Timed out waiting for items: the acks were applied first, in the
            # same logged command (the queue was found: these came from it).
            for h in riding:
                self.ledger.ack_ok(self.name, h.d, "riding_on_get")


# --- futures ---


class FutureWorker(Worker):
    def __init__(self, soak):
        super().__init__(soak, "futures")
        self.values: dict[str, str] = {}  # acknowledged SetResult: name -> value
        self.doubt: dict[str, str] = {}  # SetResult cut off
        self.unverified: list[str] = []  # acknowledged, not yet checked after a restart

    async def step(self):
        await asyncio.sleep(self.rng.uniform(0.005, 0.02))
        if self.values and self.rng.random() < 0.1:
            # A done future cannot change (asyncio's InvalidStateError).
            name = self.rng.choice(list(self.values))
            _, err = await self.call(lambda c: c.futures.SetResult,
                                     future_pb2.SetResultRequest(name=name, text="again"),
                                     f"second SetResult of {name}", expect=(SC.FAILED_PRECONDITION,))
            if err is None:
                self.report.violation(f"{self.name}: a second SetResult of {name} succeeded")
            return
        self.n += 1
        name, value = f"crash/future/{self.n}", f"v{self.n}-{SEED}"
        _, err = await self.call(lambda c: c.futures.SetResult, future_pb2.SetResultRequest(name=name, text=value),
                                 f"SetResult of {name}")
        if err is None:
            self.report.stats["futures_set"] += 1
            self.values[name] = value
            self.unverified.append(name)
        else:
            self.doubt[name] = value


# --- timers ---


@dataclass
class TimerEntry:
    payload: str
    sent: float  # Schedule sent: it is not due before sent + after
    after: float
    state: str  # scheduled | doubt | cancelled | cancel_doubt | absent (a Schedule cut off that did not happen)


class TimerWorker(Worker):
    def __init__(self, soak):
        super().__init__(soak, "timers")
        self.timers: dict[str, TimerEntry] = {}

    async def step(self):
        await asyncio.sleep(self.rng.uniform(0.005, 0.02))
        now = time.monotonic()
        pending = [n for n, t in self.timers.items() if t.state == "scheduled" and now < t.sent + t.after + 0.5]
        if pending and self.rng.random() < 0.25:
            name = self.rng.choice(pending)
            t = self.timers[name]
            resp, err = await self.call(lambda c: c.timers.Cancel, timer_pb2.CancelTimerRequest(name=name),
                                        f"Cancel of timer {name}")
            if err is not None:
                t.state = "cancel_doubt"
            elif resp.cancelled:
                self.report.stats["timers_cancelled"] += 1
                t.state = "cancelled"
                if resp.fired:
                    self.report.violation(f"{self.name}: Cancel of one-shot timer {name} says cancelled after "
                                          f"{resp.fired} firing(s)")
            elif resp.fired != 1:
                self.report.violation(f"{self.name}: Cancel of acknowledged timer {name} found it neither pending "
                                      f"nor fired once: {resp}")
            return
        self.n += 1
        name, payload = f"crash/timer/{self.n}", f"t{self.n}"
        after = self.rng.uniform(0.2, 2.0)
        req = timer_pb2.ScheduleTimerRequest(
            name=name,
            after=dur(after),
            action=timer_pb2.TimerAction(put=timer_pb2.PutAction(queue=TIMER_QUEUE, item=q_item(payload))),
        )
        sent = time.monotonic()
        _, err = await self.call(lambda c: c.timers.Schedule, req, f"Schedule of timer {name}")
        self.timers[name] = TimerEntry(payload, sent, after, "scheduled" if err is None else "doubt")
        if err is None:
            self.report.stats["timers_scheduled"] += 1


# --- tasks ---


class TaskLedger:
    def __init__(self, report: Report):
        self.report = report
        self.submitted: dict[str, str] = {}  # task id -> text (Submit acknowledged)
        self.submit_doubt: set[str] = set()  # texts of Submits cut off
        self.ids_of_text: dict[str, str] = {}
        self.completed = collections.Counter()  # task id -> acknowledged (or proven) Completes

    def seen(self, who, task_id, text):
        prev = self.ids_of_text.setdefault(text, task_id)
        if prev != task_id:
            self.report.violation(f"{who}: task text {text!r} has two task ids: {prev} and {task_id}")

    def took(self, who, resp):
        self.seen(who, resp.task_id, resp.text)
        if self.completed[resp.task_id]:
            self.report.violation(f"{who}: took task {resp.task_id} ({resp.text!r}, attempt {resp.attempt}) after "
                                  f"it was completed")

    def complete_ok(self, who, task_id, how="acknowledged"):
        self.completed[task_id] += 1
        self.report.stats[f"tasks_completed_{how}"] += 1
        if self.completed[task_id] > 1:
            self.report.violation(f"{who}: task {task_id} completed a second time ({how})")


class SubmitWorker(Worker):
    def __init__(self, soak):
        super().__init__(soak, "submitter")
        self.ledger = soak.tasks

    async def step(self):
        await asyncio.sleep(self.rng.uniform(0.005, 0.02))
        self.n += 1
        text = f"k{self.n}"
        req = task_pb2.SubmitTaskRequest(queue=TASK_QUEUE, text=text, max_attempts=1000)
        resp, err = await self.call(lambda c: c.tasks.Submit, req, f"Submit of {text}")
        if err is None:
            self.report.stats["tasks_submitted"] += 1
            if resp.task_id in self.ledger.submitted:
                self.report.violation(f"{self.name}: Submit returned task id {resp.task_id} again")
            self.ledger.submitted[resp.task_id] = text
            self.ledger.seen(self.name, resp.task_id, text)
        else:
            self.ledger.submit_doubt.add(text)


@dataclass
class Running:
    task_id: str
    attempt: int
    text: str
    sent: float  # Take sent: its lease ends after sent + LEASE


class TaskWorker(Worker):
    def __init__(self, soak, i, sid):
        super().__init__(soak, f"taskworker{i}", sid)
        self.ledger = soak.tasks
        self.running: Running | None = None
        self.pending_take = None  # (request_id, sent)
        self.pending_complete: Running | None = None

    def idle(self):
        return self.running is None

    async def complete(self, run: Running, what="Complete"):
        """-> None (acknowledged), IN_DOUBT, or the FAILED_PRECONDITION error."""
        req = task_pb2.CompleteTaskRequest(task_id=run.task_id, attempt=run.attempt, text="r:" + run.text)
        resp, err = await self.call(lambda c: c.tasks.Complete, req,
                                    f"{what} of {run.task_id} attempt {run.attempt}", expect=(SC.FAILED_PRECONDITION,))
        if err is None:
            if resp.state != task_pb2.TASK_STATE_SUCCEEDED or resp.cancelled:
                self.report.violation(f"{self.name}: {what} of {run.task_id} answered {resp}")
            self.ledger.complete_ok(self.name, run.task_id)
        return err

    async def step(self):
        if self.running is not None:
            await asyncio.sleep(self.rng.uniform(0, 0.03))
            run = self.running
            err = await self.complete(run)
            self.running = None
            if err is IN_DOUBT:
                self.pending_complete = run
            elif err is not None:
                if time.monotonic() < run.sent + LEASE - MARGIN:
                    self.report.violation(f"{self.name}: Complete of running {run.task_id} attempt {run.attempt} "
                                          f"within its lease refused: {err.details()!r}")
                self.report.stats["tasks_complete_after_lease"] += 1
            return
        self.n += 1
        rid = f"{self.name}-{self.n}"
        sent = time.monotonic()
        req = task_pb2.TakeTaskRequest(queue=TASK_QUEUE, session_id=self.sid, ttl=dur(LEASE), timeout=dur(0.3),
                                       request_id=rid)
        resp, err = await self.call(lambda c: c.tasks.Take, req, f"Take ({rid})", expect=(SC.DEADLINE_EXCEEDED,))
        if err is None:
            self.ledger.took(self.name, resp)
            self.running = Running(resp.task_id, resp.attempt, resp.text, sent)
        elif err is IN_DOUBT:
            self.pending_take = (rid, sent)


# --- sessions ---


@dataclass
class PoolSession:
    alive_from: float  # a lower bound of the server's last refresh: it lives until at least this + TTL
    state: str = "open"  # open | closed | close_doubt | expired


class SessionWorker(Worker):
    """Opens, keeps alive and closes sessions of its own."""

    def __init__(self, soak):
        super().__init__(soak, "sessions")
        self.pool: dict[int, PoolSession] = {}

    def surely_alive(self, s: PoolSession, now: float) -> bool:
        return now < s.alive_from + POOL_SESSION_TTL - MARGIN

    async def step(self):
        await asyncio.sleep(self.rng.uniform(0.01, 0.05))
        open_ = [sid for sid, s in self.pool.items() if s.state == "open"]
        sent = time.monotonic()
        if len(open_) < 4 or (len(open_) < 10 and self.rng.random() < 0.3):
            self.n += 1
            req = session_pb2.OpenSessionRequest(ttl=dur(POOL_SESSION_TTL), label=f"crash-pool-{self.n}")
            resp, err = await self.call(lambda c: c.sessions.Open, req, "session Open")
            if err is None:
                self.report.stats["sessions_opened"] += 1
                if resp.session_id in self.pool or resp.session_id == 0:
                    self.report.violation(f"{self.name}: Open returned session id {resp.session_id} again")
                self.pool[resp.session_id] = PoolSession(sent)
            return
        sid = self.rng.choice(open_)
        s = self.pool[sid]
        if self.rng.random() < 0.5:
            _, err = await self.call(lambda c: c.sessions.KeepAlive, session_pb2.KeepAliveRequest(session_id=sid),
                                     f"KeepAlive of session {sid}", expect=(SC.NOT_FOUND,))
            if err is None:
                s.alive_from = sent
            elif err is not IN_DOUBT:
                if self.surely_alive(s, sent):
                    self.report.violation(f"{self.name}: KeepAlive of session {sid}, opened and not closed, within "
                                          f"its TTL: NOT_FOUND")
                s.state = "expired"
            return
        _, err = await self.call(lambda c: c.sessions.Close, session_pb2.CloseSessionRequest(session_id=sid),
                                 f"Close of session {sid}", expect=(SC.NOT_FOUND,))
        if err is None:
            self.report.stats["sessions_closed"] += 1
            s.state = "closed"
        elif err is IN_DOUBT:
            s.state = "close_doubt"
        else:
            if self.surely_alive(s, sent):
                self.report.violation(f"{self.name}: Close of session {sid}, opened and not closed, within its TTL: "
                                      f"NOT_FOUND")
            s.state = "expired"


# ---------------------------------------------------------------------------
# The soak
# ---------------------------------------------------------------------------


async def gather_chunked(coros, n=32):
    out = []
    coros = list(coros)
    for i in range(0, len(coros), n):
        out.extend(await asyncio.gather(*coros[i:i + n]))
    return out


async def rpc_code(awaitable):
    """-> (response, None) or (None, StatusCode)."""
    try:
        return await awaitable, None
    except grpc.aio.AioRpcError as e:
        return None, e.code()


class Soak:
    def __init__(self, data_dir: Path):
        self.report = Report()
        self.server = Server(data_dir, self.report)
        self.locks = LockLedger(self.report)
        self.sems = SemLedger(self.report)
        self.queue = QueueLedger(self.report)
        self.tasks = TaskLedger(self.report)
        self.finishing = False
        self.rng = random.Random(f"{SEED}:kills")
        self.check_rng = random.Random(f"{SEED}:checks")
        self.workers: list[Worker] = []

    def violation(self, msg):
        self.report.violation(msg)

    async def open_session(self, c, label, ttl=SESSION_TTL):
        r = await c.sessions.Open(session_pb2.OpenSessionRequest(ttl=dur(ttl), label=label))
        return r.session_id

    async def setup(self):
        self.server.start()
        c = self.server.conn(0)
        self.lockers = [LockWorker(self, i, await self.open_session(c, f"crash-lock{i}")) for i in range(3)]
        self.semers = [SemWorker(self, i, await self.open_session(c, f"crash-sem{i}")) for i in range(3)]
        self.producers = [ProducerWorker(self, i) for i in range(2)]
        self.consumers = [ConsumerWorker(self, i, await self.open_session(c, f"crash-consumer{i}")) for i in range(2)]
        self.futures = FutureWorker(self)
        self.timers = TimerWorker(self)
        self.submitter = SubmitWorker(self)
        self.taskers = [TaskWorker(self, i, await self.open_session(c, f"crash-tasks{i}")) for i in range(2)]
        self.pool = SessionWorker(self)
        self.workers = [*self.lockers, *self.semers, *self.producers, *self.consumers, self.futures, self.timers,
                        self.submitter, *self.taskers, self.pool]
        self.worker_sessions = {w.sid: w.name for w in self.workers if w.sid}

    def fail(self, what: str):
        shown = "\n  ".join(self.report.violations[:20])
        more = len(self.report.violations) - 20
        raise AssertionError(
            f"{self.report.summary()}\n{what}\ndata dir (kept by pytest): {self.server.data_dir}\n"
            f"{len(self.report.violations)} violation(s):\n  {shown}{f'  ... and {more} more' if more > 0 else ''}\n"
            f"{self.server.tails()}"
        )

    async def wait_parked(self, tasks, timeout=RPC_DEADLINE + 20):
        deadline = time.monotonic() + timeout
        while not all(w.parked for w in self.workers):
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()
            if time.monotonic() > deadline:
                busy = [w.name for w in self.workers if not w.parked]
                self.fail(f"workers {busy} still busy {timeout}s after the kill (a call that does not end?)")
            await asyncio.sleep(0.005)

    async def run(self):
        await self.setup()
        tasks = [asyncio.ensure_future(w.run()) for w in self.workers]
        try:
            t0 = time.monotonic()
            while self.server.kills < KILLS and time.monotonic() - t0 < BUDGET_S:
                self.server.resume()
                await asyncio.sleep(self.rng.uniform(0, 0.3))
                self.server.kill()
                self.report.kill = self.server.kills
                await self.wait_parked(tasks)
                await self.server.close_conns()
                self.server.start()
                await self.after_restart(self.server.conn(0))
                if self.report.violations:
                    await self.diagnose(self.server.conn(0))
                    self.fail(f"invariants violated around kill {self.server.kills}")
            loop_s = time.monotonic() - t0
            self.report.stats["kills"] = self.server.kills
            self.report.stats["reshards"] = self.server.reshards
            self.report.stats["kills_while_resharding"] = self.server.reshard_kills
            self.report.stats["kill_loop_s"] = round(loop_s, 1)
            # The end: no more kills. Workers finish what they hold, then everything is drained.
            self.finishing = True
            self.server.resume()
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), 60)
            except asyncio.TimeoutError:
                self.fail(f"workers {[w.name for w in self.workers if not w.idle()]} did not finish within 60s")
            await self.finish(self.server.conn(0))
            self.report.stats["total_s"] = round(time.monotonic() - t0, 1)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.server.conns:
                await self.server.close_conns()
            if self.server.proc is not None and self.server.proc.alive():
                code = self.server.proc.terminate()
                if code != 0 and not self.report.violations:
                    self.violation(f"batond did not shut down cleanly on SIGTERM (exit code {code})")
        rs = sorted(self.server.restart_s)
        wal = sum(f.stat().st_size for f in (self.server.data_dir / "wal").glob("wal-*.log"))
        self.report.stats["restart_ms_median"] = round(1000 * rs[len(rs) // 2])
        self.report.stats["restart_ms_max"] = round(1000 * rs[-1])
        self.report.stats["wal_bytes"] = wal
        self.report.stats["snapshots_kept"] = len(list((self.server.data_dir / "snap").glob("snap-*.snap")))
        print(self.report.summary())
        if self.report.violations:
            self.fail("invariants violated")
        if self.server.kills < MIN_KILLS:
            self.fail(f"only {self.server.kills} kills within BATON_CRASH_SECONDS={BUDGET_S}; at least {MIN_KILLS} "
                      f"needed (raise the budget on a slow machine or build)")

    async def diagnose(self, c):
        """After a violation (in-doubt Acks resolved by then): which acknowledged
        items the queue lacks, with their history."""
        L = self.queue
        expect = set(L.confirmed) - set(L.acked) - L.ack_doubt
        held = {h.d.text for w in self.consumers for h in w.held}
        sid = await self.open_session(c, "crash-diagnose", ttl=60)
        found = collections.Counter()
        deadline = time.monotonic() + LEASE + 2
        while time.monotonic() < deadline:
            r, code = await rpc_code(c.queues.Get(get_req(sid, "", 1000, timeout=0.2, ttl=60)))
            if code is None:
                found.update(it.text for it in r.items)
        missing = sorted(expect - set(found) - held)
        print(f"diagnosis: {len(expect)} item(s) expected in the queue, {sum(found.values())} found "
              f"({len(held)} held by consumers); missing: {missing[:10]}")
        for p in missing[:10]:
            self.violation(f"missing from the queue: {p!r}: " + "; ".join(L.history[p]))

    # --- after each restart: check, then resolve what was in doubt ---

    async def after_restart(self, c):
        await self.check_sessions(c)
        await self.check_locks(c)
        await self.check_semaphore(c)
        await self.check_queue(c)
        await self.check_tasks(c)
        await self.check_timers(c)
        await self.check_futures(c)
        await self.check_pool_sessions(c)

    async def check_sessions(self, c):
        """Worker sessions survive with a fresh TTL; keep them alive."""
        for sid, who in self.worker_sessions.items():
            since_spawn = time.monotonic() - self.server.spawned_at
            d, code = await rpc_code(c.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid)))
            if code is not None:
                self.violation(f"session {sid} of {who} (open, kept alive) after the restart: {code.name}")
                continue
            left = to_s(d.expires_in)
            if not SESSION_TTL - since_spawn - MARGIN <= left <= SESSION_TTL:
                self.violation(f"session {sid} of {who}: {left:.2f}s left {since_spawn:.2f}s after the restart; "
                               f"a restart gives a fresh TTL of {SESSION_TTL}s")
            _, code = await rpc_code(c.sessions.KeepAlive(session_pb2.KeepAliveRequest(session_id=sid)))
            if code is not None:
                self.violation(f"KeepAlive of session {sid} of {who} after the restart: {code.name}")

    async def check_locks(self, c):
        by_name = {w.name: w for w in self.lockers}
        for name in LOCKS:
            d = await c.describe(name)
            holders = list(d.holders) if d is not None else []
            doubt = {(w.sid, w.pending_acquire[1]): w for w in self.lockers
                     if w.pending_acquire is not None and w.pending_acquire[0] == name}
            # Only an Acquire in doubt (it has a request_id) may still stand in
            # line, as an orphan its retry takes over.
            if d is not None and (d.kind != KIND_LOCK or d.waiters > len(doubt) or len(holders) > 1):
                self.violation(f"lock {name} after the restart: {fmt_desc(d)}")
            got = holders[0] if holders else None
            exp = self.locks.holder.get(name)
            is_exp = got is not None and exp is not None and (got.session_id, got.token) == (exp.sid, exp.token)
            if exp is not None and exp.state == "held" and not is_exp:
                self.violation(f"lock {name}: {exp.who} acquired it (token {exp.token}, session {exp.sid}, "
                               f"acknowledged, not released), but after the restart Describe shows {fmt_desc(d)}")
            if got is not None and not is_exp:
                if (got.session_id, got.request_id) not in doubt:
                    self.violation(f"lock {name} after the restart is held as {fmt_desc(d)}, which neither the "
                                   f"ledger ({exp}) nor an Acquire in doubt ({list(doubt)}) explains")
                elif got.token <= self.locks.max_token[name]:
                    self.violation(f"lock {name}: the surviving grant of an Acquire in doubt has token {got.token}, "
                                   f"not above {self.locks.max_token[name]}, acknowledged before")
            if exp is not None and exp.state == "doubt":
                w = by_name[exp.who]
                if is_exp:  # the Release did not happen
                    exp.state = "held"
                    w.held = (name, exp.token)
                    self.report.stats["lock_release_in_doubt_not_done"] += 1
                else:
                    del self.locks.holder[name]
                    self.report.stats["lock_release_in_doubt_done"] += 1
                w.pending_release = None
            for (sid, rid), w in doubt.items():
                w.pending_acquire = None
                shown = got is not None and (got.session_id, got.request_id) == (sid, rid)
                resp, code = await rpc_code(c.locks.Acquire(lock_req(name, sid, timeout=0, request_id=rid)))
                if code is not None:
                    if code != SC.DEADLINE_EXCEEDED or shown:
                        self.violation(f"lock {name}: retry of {w.name}'s Acquire in doubt ({rid}) with its "
                                       f"request_id: {code.name}; Describe showed {fmt_desc(d)}")
                    continue
                if shown:
                    self.report.stats["lock_grants_replayed"] += 1
                    if resp.outcome != REPLAYED or resp.token != got.token:
                        self.violation(f"lock {name}: retry of {w.name}'s Acquire in doubt ({rid}), whose grant "
                                       f"survived (token {got.token}), answered token {resp.token} outcome "
                                       f"{resp.outcome}, not the same token REPLAYED")
                    self.locks.holder[name] = Holding(w.name, sid, resp.token)
                    self.locks.max_token[name] = max(self.locks.max_token[name], resp.token)
                else:
                    # REPLAYED is right only for a grant made since Describe:
                    # to this Acquire's orphaned wait, when the retry of
                    # another orphan ahead of it gave up its place.
                    if resp.outcome == REPLAYED and not (d is not None and d.waiters):
                        self.violation(f"lock {name}: retry of {w.name}'s Acquire in doubt ({rid}) was REPLAYED "
                                       f"(token {resp.token}), but Describe showed no such grant: {fmt_desc(d)}")
                    self.locks.granted(name, w.name, sid, resp.token, resp.outcome)
                w.held = (name, resp.token)

    async def check_semaphore(self, c):
        by_name = {w.name: w for w in self.semers}
        d = await c.describe(SEM)
        holders = {h.token: h for h in d.holders} if d is not None else {}
        doubt = {(w.sid, w.pending_acquire[0]): w for w in self.semers if w.pending_acquire is not None}
        if d is not None:
            used = sum(h.count for h in holders.values())
            if (d.waiters > len(doubt) or d.capacity != SEM_CAPACITY or used > SEM_CAPACITY
                    or d.available != SEM_CAPACITY - used):
                self.violation(f"semaphore after the restart: {fmt_desc(d)}")
        for token, h in list(self.sems.holdings.items()):
            g = holders.get(token)
            same = g is not None and (g.session_id, g.count) == (h.sid, h.count)
            if h.state == "held" and not same:
                self.violation(f"semaphore: {h.who} holds {h.count} permit(s) (token {token}, acknowledged, not "
                               f"released), but after the restart Describe shows {fmt_desc(d)}")
            elif h.state == "doubt":
                w = by_name[h.who]
                if same:
                    h.state = "held"
                    w.held = (token, h.count)
                else:
                    del self.sems.holdings[token]
                w.pending_release = None
        for token, g in holders.items():
            if token not in self.sems.holdings and (g.session_id, g.request_id) not in doubt:
                self.violation(f"semaphore after the restart has holding {fmt_desc(d)} (token {token}), which "
                               f"neither the ledger nor an Acquire in doubt explains")
        for (sid, rid), w in doubt.items():
            _, count = w.pending_acquire
            w.pending_acquire = None
            shown = [g for g in holders.values() if (g.session_id, g.request_id) == (sid, rid)]
            floor = self.sems.max_token
            resp, code = await rpc_code(c.semaphores.Acquire(sem_req(SEM, SEM_CAPACITY, count, sid, timeout=0,
                                                                     request_id=rid)))
            if code is not None:
                if code != SC.DEADLINE_EXCEEDED or shown:
                    self.violation(f"semaphore: retry of {w.name}'s Acquire in doubt ({rid}): {code.name}; "
                                   f"Describe showed {fmt_desc(d)}")
                continue
            if shown:
                self.report.stats["sem_grants_replayed"] += 1
                if resp.outcome != REPLAYED or resp.token != shown[0].token or resp.count != count:
                    self.violation(f"semaphore: retry of {w.name}'s Acquire in doubt ({rid}), whose grant survived "
                                   f"(token {shown[0].token}), answered {resp}")
                self.sems.holdings[resp.token] = Holding(w.name, sid, resp.token, count)
            else:
                # As for locks: an orphaned wait granted since Describe.
                if resp.outcome == REPLAYED and not (d is not None and d.waiters):
                    self.violation(f"semaphore: retry of {w.name}'s Acquire in doubt ({rid}) was REPLAYED, but "
                                   f"Describe showed no such holding: {fmt_desc(d)}")
                self.sems.granted(w.name, sid, resp.token, count, resp.available, floor)
            w.held = (resp.token, count)

    async def check_queue(self, c):
        L = self.queue
        d = await c.describe(WORK_QUEUE)
        q = d.queue if d is not None else None
        n = q.size + q.delayed + q.in_flight if q is not None else 0
        gets_in_doubt = sum(1 for w in self.consumers if w.pending_get is not None)
        if q is not None and (d.kind != KIND_QUEUE or d.waiters > gets_in_doubt
                              or q.waiting_getters > gets_in_doubt or q.waiting_putters
                              or q.dead_letters or q.unfinished != n):
            self.violation(f"queue after the restart: {fmt_desc(d)}")
        acked = set(L.acked)
        ack_doubt = L.ack_doubt | {h.d.text for w in self.consumers for h in w.pending_ack}
        lower = len(set(L.confirmed) - acked - ack_doubt)
        upper = len((set(L.confirmed) | L.put_doubt) - acked)
        if not lower <= n <= upper:
            self.violation(f"queue after the restart holds {n} item(s) (ready, delayed, in flight); the ledger says "
                           f"{lower} (acknowledged Puts, not acknowledged by an Ack nor in doubt) to {upper} (with "
                           f"Puts and Acks in doubt): {fmt_desc(d)}")
        now = time.monotonic()
        held = sum(1 for w in self.consumers for h in w.held if now < h.sent + LEASE - MARGIN)
        if held and (q is None or q.in_flight < held):
            self.violation(f"queue after the restart has {q.in_flight if q else 0} item(s) in flight; consumers "
                           f"hold {held} whose leases still run")
        for w in self.consumers:
            items, w.pending_ack = w.pending_ack, []
            for h in items:
                sure = time.monotonic() < h.sent + LEASE - MARGIN
                resp, code = await rpc_code(c.queues.Ack(q_ack(WORK_QUEUE, [h.d.receipt])))
                if code is None:
                    L.ack_ok(w.name, h.d, "on_retry")  # the Ack cut off had not happened
                elif code != SC.FAILED_PRECONDITION:
                    self.violation(f"{w.name}: retry of an Ack in doubt of {h.d.text!r}: {code.name}")
                elif sure:
                    # Within its lease only that Ack can have taken the item out of flight.
                    L.ack_ok(w.name, h.d, "proven")
                else:
                    L.ack_doubt.add(h.d.text)
                    L.note(h.d.text, f"{w.name}: Ack in doubt refused on retry, lease over: unknown")
            if w.pending_get is not None:
                rid, k, sent = w.pending_get
                w.pending_get = None
                t = time.monotonic()
                resp, code = await rpc_code(c.queues.Get(get_req(w.sid, rid, k, timeout=0)))
                if code is not None:
                    if code != SC.DEADLINE_EXCEEDED:
                        self.violation(f"{w.name}: retry of a Get in doubt ({rid}): {code.name}")
                    continue
                if resp.outcome == REPLAYED:
                    self.report.stats["queue_gets_replayed"] += 1
                for it in resp.items:
                    L.delivery(w.name, it)
                w.held.extend(Held(it, sent if resp.outcome == REPLAYED else t) for it in resp.items)

    async def check_tasks(self, c):
        T = self.tasks
        d = await c.describe(TASK_QUEUE)
        total = d.tasks.pending + d.tasks.running + d.tasks.done if d is not None else 0
        takes_in_doubt = sum(1 for w in self.taskers if w.pending_take is not None)
        if d is not None and d.waiters > takes_in_doubt:
            self.violation(f"work queue after the restart: {fmt_desc(d)}")
        if not len(T.submitted) <= total <= len(T.submitted) + len(T.submit_doubt):
            self.violation(f"work queue after the restart has {total} task(s); {len(T.submitted)} Submits were "
                           f"acknowledged, {len(T.submit_doubt)} in doubt: {fmt_desc(d)}")
        holders = {(h.request_id, h.session_id) for h in d.holders} if d is not None else set()
        now = time.monotonic()
        for w in self.taskers:
            run = w.running
            if run is not None and now < run.sent + LEASE - MARGIN and (run.task_id, w.sid) not in holders:
                self.violation(f"{w.name} runs {run.task_id} (Take acknowledged, lease running) but after the "
                               f"restart it is not running under session {w.sid}: {fmt_desc(d)}")
        for w in self.taskers:
            if w.pending_complete is not None:
                run, w.pending_complete = w.pending_complete, None
                sure = time.monotonic() < run.sent + LEASE - MARGIN
                req = task_pb2.CompleteTaskRequest(task_id=run.task_id, attempt=run.attempt, text="r:" + run.text)
                resp, code = await rpc_code(c.tasks.Complete(req))
                if code is None:
                    T.complete_ok(w.name, run.task_id, "on_retry")
                elif code != SC.FAILED_PRECONDITION:
                    self.violation(f"{w.name}: retry of a Complete in doubt of {run.task_id}: {code.name}")
                elif sure:
                    out, code = await rpc_code(c.tasks.Await(task_pb2.AwaitTaskRequest(task_id=run.task_id,
                                                                                          timeout=dur(0))))
                    if code is not None or out.state != task_pb2.TASK_STATE_SUCCEEDED or out.text != "r:" + run.text:
                        self.violation(f"{w.name}: Complete of {run.task_id} attempt {run.attempt} in doubt, lease "
                                       f"running, refused on retry, yet the task is {code or out}")
                    else:
                        T.complete_ok(w.name, run.task_id, "proven")
            if w.pending_take is not None:
                (rid, sent), w.pending_take = w.pending_take, None
                req = task_pb2.TakeTaskRequest(queue=TASK_QUEUE, session_id=w.sid, ttl=dur(LEASE), timeout=dur(0),
                                               request_id=rid)
                resp, code = await rpc_code(c.tasks.Take(req))
                if code is not None:
                    if code != SC.DEADLINE_EXCEEDED:
                        self.violation(f"{w.name}: retry of a Take in doubt ({rid}): {code.name}")
                    continue
                T.took(w.name, resp)
                w.running = Running(resp.task_id, resp.attempt, resp.text, sent)

    async def check_timers(self, c):
        now = time.monotonic()
        todo = [(name, t) for name, t in self.timers.timers.items()
                if t.state in ("doubt", "cancel_doubt") or (t.state == "scheduled" and now + 0.05 < t.sent + t.after)]
        descs = await gather_chunked(c.describe(name) for name, _ in todo)
        # Every Describe was answered by now: a timer not due until after this
        # moment must still have been pending when it was described. (Taking
        # `now` from before the Describes, sent in chunks, let a loaded
        # machine describe a timer just past its due time: a false violation.)
        answered = time.monotonic()
        for (name, t), d in zip(todo, descs):
            if t.state == "scheduled":
                if answered + 0.05 >= t.sent + t.after:
                    continue  # may have come due while the Describes were answered
                if d is None or d.timer.fired != 0 or not d.timer.HasField("due_in"):
                    self.violation(f"timer {name} (Schedule acknowledged; not due for another "
                                   f"{t.sent + t.after - answered:.2f}s at least) after the restart: {fmt_desc(d)}")
            elif t.state == "doubt":
                t.state = "absent" if d is None else "scheduled"
                self.report.stats[f"timer_schedule_in_doubt_{'done' if d is not None else 'not_done'}"] += 1
            else:  # a Cancel in doubt: a cancelled timer is gone, a fired or pending one is there
                t.state = "cancelled" if d is None else "scheduled"
                self.report.stats[f"timer_cancel_in_doubt_{'done' if d is None else 'not_done'}"] += 1

    async def check_futures(self, c):
        fw = self.futures
        doubt, fw.doubt = fw.doubt, {}
        for name, value in doubt.items():
            r, code = await rpc_code(c.futures.Await(future_pb2.AwaitFutureRequest(name=name, timeout=dur(0))))
            if code == SC.DEADLINE_EXCEEDED:
                continue  # the SetResult did not happen
            if code is not None or r.state != future_pb2.FUTURE_STATE_RESULT or r.text != value:
                self.violation(f"future {name} (SetResult {value!r} in doubt) after the restart: {code or r}")
                continue
            fw.values[name] = value
            fw.unverified.append(name)
        new = set(fw.unverified)
        older = [n for n in fw.values if n not in new]
        names = fw.unverified + self.check_rng.sample(older, min(10, len(older)))

        async def verify(name, second):
            r, code = await rpc_code(c.futures.Await(future_pb2.AwaitFutureRequest(name=name, timeout=dur(0))))
            if code is not None or r.state != future_pb2.FUTURE_STATE_RESULT or r.text != fw.values[name]:
                self.violation(f"future {name} (SetResult {fw.values[name]!r} acknowledged) after the restart: "
                               f"{code or r}")
            if second:
                _, code = await rpc_code(c.futures.SetResult(future_pb2.SetResultRequest(name=name, text="again")))
                if code != SC.FAILED_PRECONDITION:
                    self.violation(f"second SetResult of future {name} after the restart: {code or 'OK'}")

        await gather_chunked(verify(n, i < len(fw.unverified)) for i, n in enumerate(names))
        fw.unverified = []

    async def check_pool_sessions(self, c):
        pool = self.pool.pool
        closed = [sid for sid, s in pool.items() if s.state == "closed"][-20:]
        todo = [sid for sid, s in pool.items() if s.state in ("open", "close_doubt")] + closed
        now = time.monotonic()
        for sid in todo:
            s = pool[sid]
            d, code = await rpc_code(c.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid)))
            if code not in (None, SC.NOT_FOUND):
                self.violation(f"Describe of session {sid}: {code.name}")
                continue
            if s.state == "closed":
                if code is None:
                    self.violation(f"session {sid}, whose Close was acknowledged, is there after the restart: {d}")
            elif s.state == "close_doubt":
                s.state = "closed" if code is not None else "open"
                if code is None:
                    s.alive_from = max(s.alive_from, self.server.spawned_at)
            elif code is None:
                s.alive_from = max(s.alive_from, self.server.spawned_at)  # the restart gave it a fresh TTL
                if to_s(d.ttl) != POOL_SESSION_TTL:
                    self.violation(f"session {sid} after the restart has TTL {to_s(d.ttl)}, not {POOL_SESSION_TTL}")
            else:
                if self.pool.surely_alive(s, now):
                    self.violation(f"session {sid} (Open acknowledged, not closed, within its TTL) is NOT_FOUND "
                                   f"after the restart")
                s.state = "expired"

    # --- the end: finish, drain, check everything ---

    async def finish(self, c):
        await self.drain_queue(c)
        await self.drain_tasks(c)
        await self.drain_timers(c)
        await self.final_checks(c)

    async def drain_queue(self, c):
        L = self.queue
        sid = await self.open_session(c, "crash-drain", ttl=60)
        deadline = time.monotonic() + LEASE + 15
        while True:
            r, code = await rpc_code(c.queues.Get(get_req(sid, "", 500, timeout=0.2, ttl=60)))
            if code is not None:
                if code != SC.DEADLINE_EXCEEDED:
                    self.violation(f"drain: Get: {code.name}")
                    break
                d = await c.describe(WORK_QUEUE)
                if d is None or d.queue.size + d.queue.delayed + d.queue.in_flight == 0:
                    break
                if time.monotonic() > deadline:
                    self.violation(f"drain: items Get does not return (leases long over): {fmt_desc(d)}")
                    break
                continue
            for it in r.items:
                L.delivery("drain", it)
                L.drained[it.text] += 1
            a, code = await rpc_code(c.queues.Ack(q_ack(WORK_QUEUE, [it.receipt for it in r.items])))
            if code is not None or a.acked != len(r.items):
                self.violation(f"drain: Ack of {len(r.items)} item(s): {code or a}")
        await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
        done = set(L.acked) | L.ack_doubt | set(L.drained)
        lost = [p for p in L.confirmed if p not in done]
        twice = [p for p in set(L.ack_count) | set(L.drained) if L.ack_count[p] + L.drained[p] > 1]
        unknown = [p for p in L.delivered if p not in L.confirmed and p not in L.put_doubt]
        if lost:
            self.violation(f"{len(lost)} item(s) whose Put was acknowledged were never delivered: {lost[:10]}")
        if twice:
            self.violation(f"{len(twice)} item(s) acknowledged more than once: "
                           f"{[(p, L.ack_count[p], L.drained[p]) for p in twice[:10]]}")
        if unknown:
            self.violation(f"{len(unknown)} delivered payload(s) no Put sent: {unknown[:10]}")
        s = self.report.stats
        s["queue_puts_in_doubt"] = len(L.put_doubt)
        s["queue_puts_in_doubt_present"] = sum(1 for p in L.put_doubt if L.delivered[p])
        s["queue_acks_in_doubt_unresolved"] = len(L.ack_doubt)
        s["queue_drained"] = sum(L.drained.values())
        s["queue_redeliveries"] = sum(L.delivered.values()) - len(L.delivered)

    async def drain_tasks(self, c):
        T = self.tasks
        sid = await self.open_session(c, "crash-drain-tasks", ttl=60)
        deadline = time.monotonic() + LEASE + 15
        while True:
            req = task_pb2.TakeTaskRequest(queue=TASK_QUEUE, session_id=sid, ttl=dur(60), timeout=dur(0.2))
            r, code = await rpc_code(c.tasks.Take(req))
            if code is not None:
                if code != SC.DEADLINE_EXCEEDED:
                    self.violation(f"drain: Take: {code.name}")
                    break
                d = await c.describe(TASK_QUEUE)
                if d is None or d.tasks.pending + d.tasks.running == 0:
                    break
                if time.monotonic() > deadline:
                    self.violation(f"drain: tasks Take does not return (leases long over): {fmt_desc(d)}")
                    break
                continue
            T.took("drain", r)
            req = task_pb2.CompleteTaskRequest(task_id=r.task_id, attempt=r.attempt, text="r:" + r.text)
            resp, code = await rpc_code(c.tasks.Complete(req))
            if code is not None:
                self.violation(f"drain: Complete of {r.task_id}: {code.name}")
            else:
                T.complete_ok("drain", r.task_id, "drain")
        await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
        ids = list(T.submitted)
        outs = await gather_chunked(
            rpc_code(c.tasks.Await(task_pb2.AwaitTaskRequest(task_id=t, timeout=dur(0)))) for t in ids
        )
        bad = [(t, T.submitted[t], code.name if code else f"{task_pb2.TaskState.Name(o.state)} {o.text!r}")
               for t, (o, code) in zip(ids, outs)
               if code is not None or o.state != task_pb2.TASK_STATE_SUCCEEDED or o.text != "r:" + T.submitted[t]]
        if bad:
            self.violation(f"{len(bad)} task(s) whose Submit was acknowledged did not end SUCCEEDED with their "
                           f"result: {bad[:10]}")
        known = set(T.submitted.values()) | T.submit_doubt
        unknown = [t for t in T.ids_of_text if t not in known]
        if unknown:
            self.violation(f"tasks no Submit sent were taken: {unknown[:10]}")
        self.report.stats["tasks_submits_in_doubt"] = len(T.submit_doubt)

    async def drain_timers(self, c):
        timers = self.timers.timers
        due = [t.sent + t.after for t in timers.values() if t.state == "scheduled"]
        if due:
            await asyncio.sleep(max(0.0, max(due) + 1.0 - time.monotonic()))
        expected = sum(1 for t in timers.values() if t.state == "scheduled")
        fired = collections.Counter()
        sid = await self.open_session(c, "crash-drain-timers", ttl=60)
        for rnd in range(2):  # the second round, a second later, must find nothing new
            deadline = time.monotonic() + 10
            while True:
                r, code = await rpc_code(c.queues.Get(get_req(sid, "", 1000, timeout=0.2, ttl=60, name=TIMER_QUEUE)))
                if code is None:
                    fired.update(it.text for it in r.items)
                    await c.queues.Ack(q_ack(TIMER_QUEUE, [it.receipt for it in r.items]))
                    continue
                if code != SC.DEADLINE_EXCEEDED:
                    self.violation(f"drain of the timer queue: Get: {code.name}")
                    break
                if rnd == 1 or sum(fired.values()) >= expected or time.monotonic() > deadline:
                    break
            await asyncio.sleep(1.0 if rnd == 0 else 0)
        await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
        by_payload = {t.payload: (name, t) for name, t in timers.items()}
        for p, k in fired.items():
            if p not in by_payload:
                self.violation(f"timer queue holds {p!r}, which no timer puts")
        wrong = []
        for name, t in timers.items():
            k = fired[t.payload]
            if (t.state == "scheduled" and k != 1) or (t.state in ("cancelled", "absent") and k != 0) or k > 1:
                wrong.append((name, t.state, k))
        if wrong:
            self.violation(f"{len(wrong)} timer(s) fired a wrong number of times (name, state, firings): {wrong[:10]}")
        self.report.stats["timers_fired"] = sum(fired.values())

    async def final_checks(self, c):
        fw = self.futures
        names = list(fw.values)
        outs = await gather_chunked(
            rpc_code(c.futures.Await(future_pb2.AwaitFutureRequest(name=n, timeout=dur(0)))) for n in names
        )
        bad = [(n, code or o.text) for n, (o, code) in zip(names, outs) if code is not None or o.text != fw.values[n]]
        if bad:
            self.violation(f"{len(bad)} future(s) lost their acknowledged value: {bad[:10]}")
        for name in [*LOCKS, SEM]:
            d = await c.describe(name)
            if d is not None and d.holders:
                self.violation(f"{name} still held after every holder released it: {fmt_desc(d)}")
        if self.locks.holder or self.sems.holdings:
            self.violation(f"ledger still has holders: {self.locks.holder} {self.sems.holdings}")
        for sid, who in self.worker_sessions.items():
            _, code = await rpc_code(c.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid)))
            if code is not None:
                self.violation(f"Close of session {sid} of {who} at the end: {code.name}")


async def test_crash_soak(tmp_path):
    """SIGKILL under mixed load, restart, check; BATON_CRASH_KILLS times or
    for BATON_CRASH_SECONDS (see the module docstring)."""
    # pytest.ini's 120 s hang dump would fire in the middle of a healthy soak.
    faulthandler.dump_traceback_later(BUDGET_S + 300, exit=False)
    print(f"crash soak: seed={SEED} kills={KILLS} budget={BUDGET_S}s (BATON_CRASH_SEED={SEED} to replay)")
    await Soak(tmp_path / "data").run()


# ---------------------------------------------------------------------------
# Deterministic restarts
# ---------------------------------------------------------------------------


class Restartable:
    """batond on one data directory, stopped (SIGTERM or SIGKILL) and started again."""

    def __init__(self, data_dir: Path, extra_args=None):
        self.data_dir = data_dir
        self.extra_args = extra_args or []
        self.proc: BatondProcess | None = None
        self.c: Client | None = None

    async def start(self) -> Client:
        self.proc = BatondProcess(self.extra_args, data_dir=self.data_dir)
        try:
            self.proc.start()
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        self.c = connect(self.proc.addr)
        return self.c

    async def kill9(self) -> str:
        await self.c.close()
        return sigkill(self.proc)

    async def sigterm(self) -> str:
        code = await asyncio.to_thread(self.proc.terminate)  # the loop keeps serving calls meanwhile
        await self.c.close()
        assert code == 0, f"batond did not exit cleanly on SIGTERM: exit code {code}\n{self.proc.stderr_text(4000)}"
        return self.proc.stderr_text()

    async def stop(self) -> None:
        if self.c is not None:
            await self.c.close()
        if self.proc is not None and self.proc.alive():
            self.proc.terminate()


@pytest.fixture
async def server(tmp_path):
    s = Restartable(tmp_path / "data")
    yield s
    await s.stop()


def wal_segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "wal").glob("wal-*.log"))


def wal_records(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, payload length, index) of every record of a segment (storage/wal_format.h)."""
    out, off = [], 0
    while off + 16 <= len(data):
        _crc, length, index = struct.unpack_from("<IIQ", data, off)
        out.append((off, length, index))
        off += 16 + length
    assert off == len(data), f"a segment that ends inside a record at offset {off} of {len(data)}"
    return out


def run_batond(*args, timeout=10) -> subprocess.CompletedProcess:
    """Runs batond to its end (it is expected to refuse to start)."""
    try:
        return subprocess.run([str(batond_path()), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"batond {args} neither served nor exited within {timeout}s (killed); stdout: "
                             f"{e.stdout!r}, stderr: {e.stderr!r}") from None


DET = "det"  # names of the deterministic tests


@dataclass
class State:
    """What a server acknowledged, to find again after a restart."""

    sid: int = 0
    lock_token: int = 0
    sem_token: int = 0
    receipt: int = 0  # of item "a", in flight
    item_ids: dict = field(default_factory=dict)
    task_id: str = ""
    task_attempt: int = 0


async def make_state(c: Client) -> State:
    st = State()
    st.sid = await c.open_session(60, "crash-det")
    st.lock_token = (await c.locks.Acquire(lock_req(f"{DET}/lock", st.sid, request_id="det-lock"))).token
    st.sem_token = (await c.semaphores.Acquire(sem_req(f"{DET}/sem", 2, 1, st.sid, request_id="det-sem"))).token
    r = await c.queues.Put(q_put(f"{DET}/queue", ["a", "b", "c", q_item("later", delay=300)]))
    st.item_ids = dict(zip(["a", "b", "c", "later"], r.item_ids))
    got = await c.queues.Get(get_req(st.sid, "det-get", 1, timeout=0, name=f"{DET}/queue", ttl=60))
    assert [d.text for d in got.items] == ["a"]
    st.receipt = got.items[0].receipt
    await c.futures.SetResult(future_pb2.SetResultRequest(name=f"{DET}/future", text="42"))
    await c.tasks.Submit(task_pb2.SubmitTaskRequest(queue=f"{DET}/tasks", text="job"))
    t = await c.tasks.Take(task_pb2.TakeTaskRequest(queue=f"{DET}/tasks", session_id=st.sid, ttl=dur(60),
                                                    timeout=dur(0), request_id="det-take"))
    st.task_id, st.task_attempt = t.task_id, t.attempt
    return st


async def check_state(c: Client, st: State, since_restart: float = 0.0):
    """Everything make_state did is there, then consumes some of it (acks "a"
    and gets "b" and "c", so call it once per State)."""
    d = await c.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=st.sid))
    assert d.label == "crash-det" and to_s(d.expires_in) > 55, d
    d = await c.describe(f"{DET}/lock")
    assert d is not None and [(h.session_id, h.token) for h in d.holders] == [(st.sid, st.lock_token)], fmt_desc(d)
    d = await c.describe(f"{DET}/sem")
    assert d is not None and d.capacity == 2 and [(h.session_id, h.token) for h in d.holders] == [
        (st.sid, st.sem_token)
    ], fmt_desc(d)
    d = await c.describe(f"{DET}/queue")
    assert d is not None and (d.queue.size, d.queue.delayed, d.queue.in_flight) == (2, 1, 1), fmt_desc(d)
    r = await c.queues.Ack(q_ack(f"{DET}/queue", [st.receipt]))
    assert r.acked == 1
    got = await c.queues.Get(get_req(st.sid, "", 5, timeout=0, name=f"{DET}/queue", ttl=60))
    assert [(i.text, i.item_id) for i in got.items] == [("b", st.item_ids["b"]), ("c", st.item_ids["c"])]
    await c.queues.Ack(q_ack(f"{DET}/queue", [i.receipt for i in got.items]))
    f = await c.futures.Await(future_pb2.AwaitFutureRequest(name=f"{DET}/future", timeout=dur(0)))
    assert (f.state, f.text) == (future_pb2.FUTURE_STATE_RESULT, "42")
    await expect_status(c.futures.SetResult(future_pb2.SetResultRequest(name=f"{DET}/future", text="43")),
                        SC.FAILED_PRECONDITION)
    d = await c.describe(f"{DET}/tasks")
    assert d is not None and d.tasks.running == 1 and [(h.request_id, h.session_id) for h in d.holders] == [
        (st.task_id, st.sid)
    ], fmt_desc(d)


async def test_sigterm_restart_keeps_everything(server):
    """A graceful restart (SIGTERM) keeps a held lock with its token, queue items
    ready, delayed and in flight, a future's value, a session, and a pending
    timer, which then fires exactly once after the restart."""
    c = await server.start()
    st = await make_state(c)
    timer = timer_pb2.ScheduleTimerRequest(
        name=f"{DET}/timer", after=dur(2.0),
        action=timer_pb2.TimerAction(put=timer_pb2.PutAction(queue=f"{DET}/fired", item=q_item("ding"))),
    )
    await c.timers.Schedule(timer)
    d = await c.describe(f"{DET}/timer")
    assert d.timer.fired == 0 and d.timer.HasField("due_in"), fmt_desc(d)
    waiting = asyncio.ensure_future(c.queues.Get(q_get(f"{DET}/empty", st.sid, timeout=30)))
    d = await poll_until(lambda: c.describe(f"{DET}/empty"), what="a waiting Get")
    assert d.queue.waiting_getters == 1, fmt_desc(d)
    stopped = time.monotonic()
    await server.sigterm()
    await expect_status(waiting, SC.UNAVAILABLE)  # a wait pending at the shutdown ends, and says so
    c = await server.start()
    assert await c.describe(f"{DET}/empty") is None  # nobody waits any more: reclaimed
    await check_state(c, st)
    # The timer was pending at the shutdown; it fires once, after the restart.
    got = await c.queues.Get(q_get(f"{DET}/fired", ttl=30, timeout=10))
    assert [i.text for i in got.items] == ["ding"]
    assert time.monotonic() - stopped < 10
    await c.queues.Ack(q_ack(f"{DET}/fired", [i.receipt for i in got.items]))
    await asyncio.sleep(0.5)
    await expect_status(c.queues.Get(q_get(f"{DET}/fired", ttl=30, timeout=0)), SC.DEADLINE_EXCEEDED)
    d = await c.describe(f"{DET}/timer")
    assert d.timer.fired == 1 and not d.timer.HasField("due_in"), fmt_desc(d)
    # Released, the lock's next token is higher still.
    await c.locks.Release(lock_release(f"{DET}/lock", st.lock_token, st.sid))
    r = await c.locks.Acquire(lock_req(f"{DET}/lock", st.sid))
    assert r.token > st.lock_token
    # A second graceful restart: the fired timer does not fire again.
    await server.sigterm()
    c = await server.start()
    await asyncio.sleep(0.3)
    await expect_status(c.queues.Get(q_get(f"{DET}/fired", ttl=30, timeout=0)), SC.DEADLINE_EXCEEDED)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x5a\xa5\x01",  # a short header
        struct.pack("<IIQ", 0x1234567, 100, 99) + b"partial",  # a header whose payload runs past the end
        bytes(40),  # zeros (preallocated, never written)
    ],
    ids=["short-header", "short-payload", "zeros"],
)
async def test_torn_last_record_is_truncated(server, garbage):
    """Garbage after the last record of the newest segment is what a crash in
    the middle of an append leaves: the server truncates it, says so on
    stderr, and every acknowledged change is there."""
    c = await server.start()
    st = await make_state(c)
    await server.kill9()
    seg = wal_segments(server.data_dir)[-1]
    size = seg.stat().st_size
    wal_records(seg.read_bytes())  # intact up to here
    with open(seg, "ab") as f:
        f.write(garbage)
    c = await server.start()
    err = server.proc.stderr_text()
    notes = [line for line in err.splitlines() if "truncat" in line]
    assert notes and seg.name in notes[0] and f"offset {size}" in notes[0], err
    await check_state(c, st)
    # The log goes on from there and survives another crash.
    await c.futures.SetResult(future_pb2.SetResultRequest(name=f"{DET}/after", text="later"))
    await server.kill9()
    c = await server.start()
    assert "truncat" not in server.proc.stderr_text()
    f = await c.futures.Await(future_pb2.AwaitFutureRequest(name=f"{DET}/after", timeout=dur(0)))
    assert f.text == "later"
    d = await c.describe(f"{DET}/lock")
    assert [(h.session_id, h.token) for h in d.holders] == [(st.sid, st.lock_token)], fmt_desc(d)


@pytest.mark.parametrize("segment", ["only", "older"])
async def test_corrupt_record_in_the_middle_stops_the_server(tmp_path, segment):
    """A damaged record that intact records follow (or in an older segment) is
    not a torn append: batond refuses to start, naming the file and offset,
    and leaves the log as it was."""
    data = tmp_path / "data"
    server = Restartable(data, ["--wal_segment_mb", "1"])
    c = await server.start()
    try:
        sid = await c.open_session(60, "crash-det")
        if segment == "older":
            for i in range(8):  # 8 x 300 KB: the log spans several 1 MiB segments
                await c.queues.Put(q_put(f"{DET}/big", [q_item(data=bytes([i]) * 300_000)]))
        for i in range(40):
            await c.locks.Acquire(lock_req(f"{DET}/lock/{i}", sid))
        await server.kill9()
    finally:
        await server.stop()
    segs = wal_segments(data)
    assert len(segs) >= (2 if segment == "older" else 1), segs
    seg = segs[0]
    raw = bytearray(seg.read_bytes())
    recs = wal_records(bytes(raw))
    off, length, index = max(recs[len(recs) // 4: -1 if len(segs) == 1 else None], key=lambda r: r[1])
    assert length > 0
    raw[off + 16 + length // 2] ^= 0x40
    seg.write_bytes(bytes(raw))
    before = {p.name: p.read_bytes() for p in wal_segments(data)}
    r = run_batond("--listen", "127.0.0.1:0", "--data_dir", str(data), "--wal_segment_mb", "1")
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert r.returncode != 0, f"batond started on a corrupt log (record {index} at offset {off} of {seg}):\n{err}"
    assert "listening on" not in out, out
    assert seg.name in err and f"offset {off}" in err, f"no message naming {seg.name} and offset {off}:\n{err}"
    assert {p.name: p.read_bytes() for p in wal_segments(data)} == before, "the failed start changed the log"


async def test_second_batond_on_same_data_dir_or_port_fails(server, tmp_path):
    c = await server.start()
    pid = server.proc.proc.pid
    addr = server.proc.addr
    r = run_batond("--listen", "127.0.0.1:0", "--data_dir", str(server.data_dir))
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0 and b"listening on" not in r.stdout, err
    assert "LOCK" in err and str(pid) in err, f"no message naming the LOCK file and its holder {pid}:\n{err}"
    other = tmp_path / "other"
    r = run_batond("--listen", addr, "--data_dir", str(other))
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0 and b"listening on" not in r.stdout, err
    assert addr in err, f"no message naming {addr}:\n{err}"
    # The first server is unharmed.
    await c.queues.Put(q_put(f"{DET}/still", ["x"]))
    got = await c.queues.Get(q_get(f"{DET}/still", ttl=30, timeout=0))
    assert [i.text for i in got.items] == ["x"]
    assert (server.data_dir / "LOCK").read_text().strip() == str(pid)


async def test_retry_with_request_id_after_restart_returns_the_grant(server):
    """request_id makes Acquire, Get and Take safe to retry across a crash: the
    grant survived, and a retry with the same session and request_id returns
    it (REPLAYED, same token / receipts / task attempt) instead of a new one."""
    c = await server.start()
    st = await make_state(c)
    got = await c.queues.Get(get_req(st.sid, "det-get-2", 1, timeout=0, name=f"{DET}/queue", ttl=60))
    await server.kill9()
    c = await server.start()
    r = await c.locks.Acquire(lock_req(f"{DET}/lock", st.sid, timeout=0, request_id="det-lock"))
    assert (r.token, r.outcome) == (st.lock_token, REPLAYED), r
    # Another request_id, or another owner, gets nothing: the lock is held.
    await expect_status(c.locks.Acquire(lock_req(f"{DET}/lock", st.sid, timeout=0, request_id="other")),
                        SC.DEADLINE_EXCEEDED)
    await expect_status(c.locks.Acquire(lock_req(f"{DET}/lock", ttl=10, timeout=0, request_id="det-lock")),
                        SC.DEADLINE_EXCEEDED)
    r = await c.semaphores.Acquire(sem_req(f"{DET}/sem", 2, 1, st.sid, timeout=0, request_id="det-sem"))
    assert (r.token, r.outcome) == (st.sem_token, REPLAYED), r
    again = await c.queues.Get(get_req(st.sid, "det-get-2", 1, timeout=0, name=f"{DET}/queue", ttl=60))
    assert again.outcome == REPLAYED, again
    assert [(i.receipt, i.item_id, i.text, i.delivery_count) for i in again.items] == [
        (i.receipt, i.item_id, i.text, i.delivery_count) for i in got.items
    ]
    t = await c.tasks.Take(task_pb2.TakeTaskRequest(queue=f"{DET}/tasks", session_id=st.sid, ttl=dur(60),
                                                    timeout=dur(0), request_id="det-take"))
    assert (t.task_id, t.attempt) == (st.task_id, st.task_attempt), t
    # The grants are the ones the server holds, and work as such.
    await c.locks.Release(lock_release(f"{DET}/lock", st.lock_token, st.sid))
    await c.queues.Ack(q_ack(f"{DET}/queue", [i.receipt for i in again.items]))
    done = await c.tasks.Complete(task_pb2.CompleteTaskRequest(task_id=t.task_id, attempt=t.attempt, text="ok"))
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED


async def test_waits_pending_at_a_kill9_keep_their_places_for_their_retries(server):
    """A wait pending at kill -9 (lock, semaphore, Get, Take) is lost to its
    client; its retry with the same session and request_id takes its place in line
    back, ahead of whoever came after the restart, whatever order the retries
    arrive in (batond --orphan_grace_ms, default 10 s)."""
    c = await server.start()
    sid = await c.open_session(60, "fifo")
    lock, sem, queue, work = (f"{DET}/fifo-{k}" for k in ("lock", "sem", "queue", "work"))
    held = await c.locks.Acquire(lock_req(lock, sid, request_id="hold"))
    permit = await c.semaphores.Acquire(sem_req(sem, 1, 1, sid, request_id="hold"))

    def waits(rid: str, timeout: float = 30):
        """The four waits of one client, keyed by kind."""
        return {
            "lock": c.locks.Acquire(lock_req(lock, sid, timeout=timeout, request_id=rid)),
            "sem": c.semaphores.Acquire(sem_req(sem, 1, 1, sid, timeout=timeout, request_id=rid)),
            "get": c.queues.Get(get_req(sid, rid, 1, timeout=timeout, name=queue, ttl=60)),
            "take": c.tasks.Take(task_pb2.TakeTaskRequest(queue=work, session_id=sid, ttl=dur(60),
                                                          timeout=dur(timeout), request_id=rid)),
        }

    async def in_line(n: int):
        for name in (lock, sem, queue, work):
            await poll_until(lambda: waiting(name, n), what=f"{n} waiting on {name}")

    async def waiting(name, n):
        d = await c.describe(name)
        return d is not None and d.waiters == n

    first = {k: asyncio.ensure_future(f) for k, f in waits("first").items()}
    await in_line(1)
    second = {k: asyncio.ensure_future(f) for k, f in waits("second").items()}
    await in_line(2)
    # Kill first, then close the client: closing first would cancel the waits
    # on a server still alive to hear it.
    sigkill(server.proc)
    await server.c.close()
    ended = await asyncio.gather(*first.values(), *second.values(), return_exceptions=True)
    assert all(isinstance(e, (grpc.aio.AioRpcError, asyncio.CancelledError)) for e in ended), ended

    c = await server.start()
    await in_line(2)  # the orphans, waiting for their retries
    newcomer = {k: asyncio.ensure_future(f) for k, f in waits("newcomer").items()}
    await in_line(3)
    second = {k: asyncio.ensure_future(f) for k, f in waits("second").items()}
    first = {k: asyncio.ensure_future(f) for k, f in waits("first").items()}
    await asyncio.sleep(0.2)  # let the retries take their places over

    async def served_in_order(kind, serve_one):
        for who in (first, second, newcomer):
            await serve_one()
            got = await asyncio.wait_for(who[kind], 10)
            others = [w[kind] for w in (first, second, newcomer) if w is not who and not w[kind].done()]
            await asyncio.sleep(0.05)
            assert not any(o.done() for o in others), f"{kind}: served out of order"
            yield got

    tokens = [held.token]
    async for r in served_in_order("lock", lambda: c.locks.Release(lock_release(lock, tokens[-1], sid))):
        assert r.token > tokens[-1]
        tokens.append(r.token)
    tokens = [permit.token]
    async for r in served_in_order("sem", lambda: c.semaphores.Release(sem_release(sem, tokens[-1], sid))):
        tokens.append(r.token)
    n = iter(range(3))
    async for r in served_in_order("get", lambda: c.queues.Put(q_put(queue, [f"item {next(n)}"]))):
        assert len(r.items) == 1
    async for r in served_in_order("take", lambda: c.tasks.Submit(task_pb2.SubmitTaskRequest(queue=work, text="job"))):
        assert r.attempt == 1
