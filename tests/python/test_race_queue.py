"""Queue races: Puts and Gets that end at random moments while items flow.

DESIGN §3 and queue.proto: a wait ends exactly once, and cancellation is
atomic. "A Put whose reply is lost (client gone) takes back those of its items
that are still queued"; a Get whose reply "cannot be delivered" returns its
items to the head of the queue: nothing is lost. An item in flight is owned
by its consumer's session until acknowledged; when the session ends it goes
back to the queue.

Producers and consumers run concurrently on several channels against one
bounded queue; many of their calls are cancelled by the client (call.cancel()
after a random few ms), given a tiny gRPC deadline, or a small request
`timeout`. Every item carries a unique payload id. Afterwards the consumers'
sessions are closed, the queue is drained and everything drained is
acknowledged, and the ledger is checked, by payload id:

  * an item whose Put returned OK was acknowledged by a consumer, or drained,
    exactly once (not lost, not duplicated);
  * an item of a Put the client cancelled, or whose gRPC deadline passed, is
    there at most once (its Put may have happened or been taken back);
  * an item of a Put the server itself refused (RESOURCE_EXHAUSTED for a zero
    timeout, DEADLINE_EXCEEDED from the request `timeout`) never appears;
  * no item is delivered again after a consumer acknowledged it, and every
    Ack of a delivery the consumer received succeeds (unless it raced the
    consumer's own session ending, in the session-loss test);
  * a delivery's item_id is the id its Put returned; item ids are unique;
  * at the end the queue is idle and reclaimed.

The schedules are random (seeded; the seed is printed and in every failure
message) but the assertions are invariants, true for every schedule.

Knobs (environment), as in test_race_cancel.py:
  BATON_RACE_ITERS    Put attempts per race test (default 10000)
  BATON_RACE_SECONDS  soft time budget per race test (default 6)
  BATON_RACE_SEED     seed for the schedules (default: random)
"""

import asyncio
import collections
import random
import time

import grpc
import pytest

from race_support import ITERS, SEED, Budget, Report, pick, rng_for
from baton_helpers import (
    is_idle_declared,
    queue_pb2,
    AFTER_WAIT,
    IMMEDIATE,
    SC,
    BatondProcess,
    Client,
    fmt_desc,
    q_ack,
    q_get,
    q_nack,
    q_options,
    q_put,
    session_pb2,
)

RPC_TIMEOUT = 10.0  # deadline for calls that are not part of the race
MAXSIZE = 8  # small, so that producers often wait for room
# A Put allowed to wait less than this may be answered like put_nowait
# (RESOURCE_EXHAUSTED) on a full queue; one allowed longer must wait instead.
TINY_WAIT = 0.01
# Every call repeats the declaration, so that a queue reclaimed while empty
# mid-race is declared the same way again by whichever call comes first.
OPTIONS = q_options(maxsize=MAXSIZE)


# Ways a racing Put/Get can end early (as in test_race_cancel.py).
#   cancel           call.cancel() after 0-5 ms (no timeout)
#   deadline         gRPC deadline of 0.5-6 ms
#   server_timeout   request `timeout` of 0 or 0-6 ms, generous gRPC deadline: the server decides
#   cancel+timeout   both a request timeout and a client cancel
#   patient          request timeout of `patient` s: normally granted
MODES = {"cancel": 30, "deadline": 25, "server_timeout": 20, "cancel+timeout": 10, "patient": 15}


def schedule(rng: random.Random, mode: str, patient: float):
    """-> (request timeout seconds or None, gRPC deadline seconds, cancel delay or None)"""
    if mode == "cancel":
        return None, RPC_TIMEOUT, rng.uniform(0, 0.005)
    if mode == "deadline":
        return None, rng.uniform(0.0005, 0.006), None
    if mode == "server_timeout":
        return rng.choice([0.0, rng.uniform(0, 0.006)]), RPC_TIMEOUT, None
    if mode == "cancel+timeout":
        return rng.uniform(0, 0.006), RPC_TIMEOUT, rng.uniform(0, 0.005)
    return patient, RPC_TIMEOUT, None


async def run_call(call, cancel_after):
    """Awaits a unary call, cancelling it after `cancel_after` s if given.
    -> (response or None, StatusCode, details)"""
    handle = None
    if cancel_after is not None:
        handle = asyncio.get_running_loop().call_later(cancel_after, call.cancel)
    try:
        return await call, SC.OK, ""
    except asyncio.CancelledError:
        if cancel_after is None:
            raise
        return None, SC.CANCELLED, ""
    except grpc.aio.AioRpcError as e:
        return None, e.code(), e.details()
    finally:
        if handle is not None:
            handle.cancel()


def client_caused(code, cancel_after, grpc_deadline) -> bool:
    """True if the client may have caused this ending (so a grant may have
    happened with its reply lost)."""
    if code == SC.CANCELLED:
        return cancel_after is not None
    if code == SC.DEADLINE_EXCEEDED:
        return grpc_deadline < RPC_TIMEOUT
    return False


class Ledger:
    """What the clients know about every payload, checked at the end."""

    def __init__(self, report: Report):
        self.report = report
        self.confirmed = {}  # payload -> item id (Put returned OK)
        self.uncertain = {}  # payload -> how (Put cancelled or client deadline)
        self.refused = {}  # payload -> how (the server refused the Put)
        self.acked = collections.Counter()  # payload -> successful Acks by consumers
        self.drained = collections.Counter()  # payload -> got (and acked) while draining
        self.ids = {}  # item id -> payload
        self.delivered = collections.Counter()  # payload -> deliveries received
        self.counts_seen = collections.defaultdict(set)  # payload -> delivery_counts received
        self.acked_count = {}  # payload -> delivery_count of the delivery that was acked

    def ack(self, d):
        """Records a successful Ack of delivery `d`."""
        self.acked[d.text] += 1
        self.acked_count[d.text] = max(self.acked_count.get(d.text, 0), d.delivery_count)

    def put_ok(self, payloads, resp, how):
        r = self.report
        if len(resp.item_ids) != len(payloads):
            r.violation(f"Put of {len(payloads)} item(s) ({how}) returned {len(resp.item_ids)} id(s)")
        if resp.outcome not in (IMMEDIATE, AFTER_WAIT):
            r.violation(f"Put ({how}) answered outcome {resp.outcome}")
        if resp.size > MAXSIZE:
            r.violation(f"Put ({how}) reports size {resp.size} > maxsize {MAXSIZE}")
        for p, i in zip(payloads, resp.item_ids):
            if i in self.ids:
                r.violation(f"item id {i} returned for {p!r} was already returned for {self.ids[i]!r}")
            self.ids[i] = p
            self.confirmed[p] = i

    def delivery(self, who, d, *, draining=False):
        """Checks one received delivery."""
        r = self.report
        p = d.text
        self.delivered[p] += 1
        r.stats["max_delivery_count"] = max(r.stats["max_delivery_count"], d.delivery_count)
        if d.data != p.encode():
            r.violation(f"{who}: delivery of {p!r} has data {d.data!r}")
        if d.delivery_count < 1:
            r.violation(f"{who}: delivery of {p!r} with delivery_count {d.delivery_count}")
        if p in self.refused:
            r.violation(f"{who}: got {p!r}, whose Put the server refused ({self.refused[p]})")
        elif p not in self.confirmed and p not in self.uncertain:
            # A Put still on its way back to the producer cannot be: producers are done
            # before draining; during the race an OK reply may simply not be processed yet.
            if draining:
                r.violation(f"{who}: got {p!r}, which no Put ever sent")
        elif p in self.confirmed and self.confirmed[p] != d.item_id:
            r.violation(f"{who}: got {p!r} as item {d.item_id}; its Put returned id {self.confirmed[p]}")
        # A rolled-back delivery reaches nobody, so its number is reused by the
        # next one. Two clients seeing the same number would mean a rollback of
        # a reply that did arrive (gRPC's inherent grant/cancel race, notes §1.2);
        # counted, and harmless as long as no item is acknowledged twice
        # (verify() checks that).
        if d.delivery_count in self.counts_seen[p]:
            r.stats["same_delivery_count_seen_twice"] += 1
        self.counts_seen[p].add(d.delivery_count)
        # Coroutines record what they received in the order the event loop runs
        # them, not the order the server delivered: a delivery recorded after an
        # Ack is wrong only if the server made it after the acknowledged one.
        if self.drained[p] or d.delivery_count > self.acked_count.get(p, d.delivery_count):
            r.violation(f"{who}: got {p!r} (delivery_count {d.delivery_count}) after it was already "
                        f"acknowledged ({self.acked[p]} ack(s), {self.drained[p]} drained)")

    def verify(self):
        r = self.report
        seen = self.acked + self.drained
        lost = [p for p in self.confirmed if seen[p] == 0]
        dup = [p for p in self.confirmed if seen[p] > 1]
        dup_uncertain = [p for p in self.uncertain if seen[p] > 1]
        ghosts = [p for p in self.refused if seen[p]]
        unknown = [p for p in seen if p not in self.confirmed and p not in self.uncertain and p not in self.refused]
        if lost:
            r.violation(f"{len(lost)} item(s) whose Put succeeded were lost (never acked nor drained): "
                        f"{lost[:5]}")
        if dup:
            r.violation(f"{len(dup)} item(s) acknowledged/drained more than once: "
                        f"{[(p, self.acked[p], self.drained[p]) for p in dup[:5]]}")
        if dup_uncertain:
            r.violation(f"{len(dup_uncertain)} item(s) of cancelled Puts present more than once: "
                        f"{[(p, self.uncertain[p], self.acked[p], self.drained[p]) for p in dup_uncertain[:5]]}")
        if ghosts:
            r.violation(f"{len(ghosts)} item(s) of Puts the server refused were delivered: "
                        f"{[(p, self.refused[p]) for p in ghosts[:5]]}")
        if unknown:
            r.violation(f"{len(unknown)} unknown payload(s) delivered: {unknown[:5]}")
        r.stats["puts_ok_items"] = len(self.confirmed)
        r.stats["uncertain_items"] = len(self.uncertain)
        r.stats["uncertain_items_present"] = sum(1 for p in self.uncertain if seen[p])
        r.stats["refused_items"] = len(self.refused)
        r.stats["acked_by_consumers"] = sum(self.acked.values())
        r.stats["drained"] = sum(self.drained.values())
        r.stats["redeliveries"] = sum(self.delivered.values()) - len(self.delivered)


async def producer(i, c, name, rng, budget, ledger, report):
    who = f"producer{i}"
    n = 0
    while budget.take():
        n += 1
        k = rng.choice([1, 1, 1, 2, 3])
        payloads = [f"{SEED}:{who}:{n}:{j}" for j in range(k)]
        mode = pick(rng, MODES)
        req_timeout, grpc_deadline, cancel_after = schedule(rng, mode, 2.0)
        how = f"{who} put #{n} ({mode})"
        call = c.queues.Put(q_put(name, payloads, options=OPTIONS, timeout=req_timeout), timeout=grpc_deadline)
        resp, code, details = await run_call(call, cancel_after)
        report.stats[f"put_{code.name}"] += 1
        if code == SC.OK:
            ledger.put_ok(payloads, resp, how)
        elif client_caused(code, cancel_after, grpc_deadline):
            for p in payloads:
                ledger.uncertain[p] = f"{how}: {code.name}"
        elif code == SC.DEADLINE_EXCEEDED and req_timeout is not None:
            for p in payloads:
                ledger.refused[p] = f"{how}: {code.name}"
        elif code == SC.RESOURCE_EXHAUSTED and min(RPC_TIMEOUT if req_timeout is None else req_timeout, grpc_deadline) < TINY_WAIT:
            # put_nowait on a full queue. The server also answers so when the
            # wait it would allow (the request timeout, or the gRPC deadline less
            # its margin) has already run out when the Put reaches the queue.
            if req_timeout != 0:
                report.stats["put_RESOURCE_EXHAUSTED_nonzero_wait"] += 1
            for p in payloads:
                ledger.refused[p] = f"{how}: {code.name}"
        else:
            report.violation(f"{how}: ended with {code.name} ({details!r}); request timeout {req_timeout}, "
                             f"gRPC deadline {grpc_deadline:.4f}, cancel after {cancel_after}")
            for p in payloads:
                ledger.uncertain[p] = f"{how}: {code.name}"


async def settle_queue(admin: Client, name, timeout=5.0):
    """Polls until the queue is at rest (nothing queued, in flight or waiting),
    then deletes it (a declared queue lasts until deleted); -> (settled?, last
    Describe)."""
    deadline = time.monotonic() + timeout
    while True:
        d = await admin.describe(name)
        if d is None:
            return True, None
        if is_idle_declared(d):
            await admin.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))
            return True, None
        if time.monotonic() >= deadline:
            return False, d
        await asyncio.sleep(0.02)


async def drain(admin: Client, name, ledger: Ledger, report: Report, timeout=5.0):
    """Gets and acknowledges everything left, until nothing is unfinished."""
    sid = await admin.open_session(60, "race-queue-drain")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                r = await admin.queues.Get(q_get(name, sid, max_items=1000, timeout=0.05, options=OPTIONS),
                                           timeout=RPC_TIMEOUT)
            except grpc.aio.AioRpcError as e:
                if e.code() != SC.DEADLINE_EXCEEDED:
                    report.violation(f"drain: Get ended with {e.code().name}: {e.details()}")
                    return
                d = await admin.describe(name)
                if d is None or (d.queue.unfinished == 0 and d.queue.in_flight == 0 and d.queue.size == 0
                                 and d.queue.delayed == 0):
                    return
                if time.monotonic() >= deadline:
                    report.violation(f"drain: items left that Get does not return after {timeout}s: {fmt_desc(d)}")
                    return
                continue
            for it in r.items:
                ledger.delivery("drain", it, draining=True)
                ledger.drained[it.text] += 1
            try:
                a = await admin.queues.Ack(q_ack(name, [it.receipt for it in r.items]), timeout=RPC_TIMEOUT)
                if a.acked != len(r.items):
                    report.violation(f"drain: Ack of {len(r.items)} acknowledged {a.acked}")
            except grpc.aio.AioRpcError as e:
                report.violation(f"drain: Ack failed: {e.code().name} {e.details()}")
    finally:
        try:
            await admin.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError:
            pass


async def close_session(c: Client, sid):
    try:
        await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid), timeout=RPC_TIMEOUT)
        return True
    except grpc.aio.AioRpcError:
        return False


@pytest.fixture
def own_batond():
    """A server per race test, so that damage one race does to a shard's state
    cannot surface as a failure of the next. Must shut down cleanly."""
    server = BatondProcess()
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield server.addr
    was_alive = server.alive()
    code = server.terminate()
    if not was_alive or code != 0:
        pytest.fail(f"batond {'died during the test' if not was_alive else 'did not shut down cleanly'} "
                    f"(exit code {code}); stderr tail:\n{server.stderr_text(4000)}", pytrace=False)


@pytest.fixture
async def clients(own_batond):
    """A few channels, so racing calls travel on more than one connection."""
    cs = [Client(own_batond, default_deadline=None) for _ in range(4)]
    yield cs
    for c in cs:
        await c.close()


async def _finish(admin, name, ledger, report, sids, t0, budget):
    report.stats["put_attempts"] = budget.used
    for sid in sids:
        await close_session(admin, sid)  # their unacknowledged items go back to the queue
    await drain(admin, name, ledger, report)
    reclaimed, d = await settle_queue(admin, name)
    if not reclaimed:
        report.violation(f"queue not idle/reclaimed after draining: {fmt_desc(d)}")
    # The server's books must balance too: the same name (so the same shard)
    # still takes a small item and gives it back.
    try:
        await admin.queues.Put(q_put(name, [f"{SEED}:after"], timeout=0), timeout=RPC_TIMEOUT)
        r = await admin.queues.Get(q_get(name, ttl=30, timeout=0), timeout=RPC_TIMEOUT)
        await admin.queues.Ack(q_ack(name, [i.receipt for i in r.items]), timeout=RPC_TIMEOUT)
        if [i.text for i in r.items] != [f"{SEED}:after"]:
            report.violation(f"after the race, a Put then Get on the empty queue returned {r}")
    except grpc.aio.AioRpcError as e:
        report.violation(f"after the race, the empty queue refused a 1-item Put/Get: {e.code().name} {e.details()}")
    ledger.verify()
    report.stats["seconds"] = round(time.monotonic() - t0, 1)
    report.check()


# ---------------------------------------------------------------------------
# Cancelled Puts and Gets
# ---------------------------------------------------------------------------


async def test_queue_put_get_cancellation_race(clients):
    rng = rng_for("queue")
    report = Report("queue")
    ledger = Ledger(report)
    name = f"race/queue/{SEED}-{rng.randrange(1 << 30)}"
    admin = clients[0]
    budget = Budget(ITERS)
    n_producers, n_consumers = 6, 6
    sids = [await clients[i % len(clients)].open_session(120, f"race-queue-consumer-{i}") for i in range(n_consumers)]
    producers_done = asyncio.Event()

    async def consumer(i):
        c = clients[(i + 1) % len(clients)]
        sid = sids[i]
        who = f"consumer{i}"
        n = 0
        while not producers_done.is_set():
            n += 1
            mode = pick(rng, MODES)
            req_timeout, grpc_deadline, cancel_after = schedule(rng, mode, 0.5)
            call = c.queues.Get(q_get(name, sid, max_items=rng.choice([1, 1, 2, 4]), timeout=req_timeout,
                                      options=OPTIONS), timeout=grpc_deadline)
            resp, code, details = await run_call(call, cancel_after)
            report.stats[f"get_{code.name}"] += 1
            if code != SC.OK:
                if code not in (SC.CANCELLED, SC.DEADLINE_EXCEEDED) or (
                    code == SC.CANCELLED and cancel_after is None
                ):
                    report.violation(f"{who} get #{n} ({mode}): ended with {code.name} ({details!r})")
                continue
            if not resp.items:
                report.violation(f"{who} get #{n} ({mode}): OK with no items")
                continue
            for d in resp.items:
                ledger.delivery(who, d)
            receipts = [d.receipt for d in resp.items]
            if rng.random() < 0.5:
                await asyncio.sleep(rng.uniform(0, 0.002))
            try:
                if rng.random() < 0.1:
                    nr = await c.queues.Nack(q_nack(name, receipts), timeout=RPC_TIMEOUT)
                    report.stats["items_nacked"] += len(receipts)
                    if nr.returned != len(receipts):
                        report.violation(f"{who}: Nack of {len(receipts)} received item(s) returned {nr.returned}")
                else:
                    ar = await c.queues.Ack(q_ack(name, receipts), timeout=RPC_TIMEOUT)
                    if ar.acked != len(receipts):
                        report.violation(f"{who}: Ack of {len(receipts)} received item(s) acknowledged {ar.acked}")
                    for d in resp.items:
                        ledger.ack(d)
            except grpc.aio.AioRpcError as e:
                report.violation(f"{who}: Ack/Nack of received items {[d.text for d in resp.items]} "
                                 f"(get #{n}, {mode}) failed: {e.code().name} {e.details()}")

    t0 = time.monotonic()
    cons = [asyncio.ensure_future(consumer(i)) for i in range(n_consumers)]
    await asyncio.gather(*(producer(i, clients[i % len(clients)], name, rng, budget, ledger, report)
                           for i in range(n_producers)))
    producers_done.set()
    await asyncio.gather(*cons)
    await _finish(admin, name, ledger, report, sids, t0, budget)


# ---------------------------------------------------------------------------
# Consumers losing their sessions while they hold items or wait
# ---------------------------------------------------------------------------


async def test_queue_consumer_session_loss_race(clients):
    """Consumers' sessions end at random moments: while they wait in Get, while
    a Get reply is on its way, or while they acknowledge. Items of an ended
    session go back to the queue; an Ack that loses the race fails with
    FAILED_PRECONDITION and the item is delivered again; one that wins
    finishes the item for good. Acks are one receipt per call, so that each
    one's outcome is known."""
    rng = rng_for("queue-session")
    report = Report("queue-session")
    ledger = Ledger(report)
    name = f"race/queue-session/{SEED}-{rng.randrange(1 << 30)}"
    admin = clients[0]
    budget = Budget(ITERS)
    n_producers, n_consumers = 4, 6
    all_sids = []
    producers_done = asyncio.Event()

    async def consumer(i):
        c = clients[(i + 1) % len(clients)]
        who = f"consumer{i}"
        sid = await c.open_session(120, f"race-queue-session-{i}")
        all_sids.append(sid)
        n = 0
        while not producers_done.is_set():
            n += 1
            doomed = rng.random() < 0.25  # this round ends the session at a random moment
            closer = None
            if doomed:
                async def close_later(sid=sid, delay=rng.uniform(0, 0.006)):
                    await asyncio.sleep(delay)
                    return await close_session(c, sid)

                closer = asyncio.ensure_future(close_later())
            call = c.queues.Get(q_get(name, sid, max_items=rng.choice([1, 2, 3]), timeout=0.3, options=OPTIONS),
                                timeout=RPC_TIMEOUT)
            resp, code, details = await run_call(call, None)
            report.stats[f"get_{code.name}"] += 1
            if code == SC.OK:
                for d in resp.items:
                    ledger.delivery(who, d)
                for d in resp.items:
                    if rng.random() < 0.3:
                        await asyncio.sleep(rng.uniform(0, 0.002))
                    try:
                        ar = await c.queues.Ack(q_ack(name, [d.receipt]), timeout=RPC_TIMEOUT)
                        if ar.acked != 1:
                            report.violation(f"{who}: Ack of one receipt acknowledged {ar.acked}")
                        ledger.ack(d)
                    except grpc.aio.AioRpcError as e:
                        if doomed and e.code() in (SC.FAILED_PRECONDITION, SC.NOT_FOUND):
                            # Lost the race with its own session's end: the item went back.
                            report.stats[f"ack_lost_to_session_end_{e.code().name}"] += 1
                        else:
                            report.violation(f"{who}: Ack of {d.text!r} failed: {e.code().name} {e.details()} "
                                             f"(session {'closing' if doomed else 'alive'})")
            elif not (code == SC.DEADLINE_EXCEEDED or (doomed and code in (SC.ABORTED, SC.NOT_FOUND))):
                report.violation(f"{who} get #{n}: ended with {code.name} ({details!r}); "
                                 f"session {'closing' if doomed else 'alive'}")
            if closer is not None:
                await closer
                sid = await c.open_session(120, f"race-queue-session-{i}-{n}")
                all_sids.append(sid)

    t0 = time.monotonic()
    cons = [asyncio.ensure_future(consumer(i)) for i in range(n_consumers)]
    await asyncio.gather(*(producer(i, clients[i % len(clients)], name, rng, budget, ledger, report)
                           for i in range(n_producers)))
    producers_done.set()
    await asyncio.gather(*cons)
    await _finish(admin, name, ledger, report, all_sids, t0, budget)
