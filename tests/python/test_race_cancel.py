"""Cancellation races: waits that end at random moments while grants happen.

DESIGN §3: a wait ends exactly once (granted, DEADLINE_EXCEEDED, CANCELLED or
ABORTED), and cancellation is atomic: a grant racing a cancellation is either
delivered or rolled back, never leaked or doubled.

What the client can observe, and so what these tests check:
  * Safety, from the clients' point of view. A client holds a grant from the
    moment it receives it until it sends Release. Lock holdings never overlap,
    semaphore holdings never sum above the capacity, no token is received twice,
    lock tokens increase, and every Release of a received grant succeeds.
  * Nothing is leaked. A call that the client cancelled (or whose gRPC deadline
    passed) may have been granted with the reply lost on the wire: that is
    indistinguishable from a lost reply, and lock.proto's recovery is a retry
    with the same request_id. Every such call is followed by a retry with
    `timeout: 0`; REPLAYED means the grant stood (the client then holds it),
    anything else means it was rolled back. When everyone is done, the resource
    must be back to idle: no holders, no waiters (or reclaimed).
  * A DEADLINE_EXCEEDED decided by the server (request `timeout`, no client
    deadline or cancel) is final: its grant must never be replayed.

The schedules are random (seeded; the seed is in every failure message) but
the assertions are invariants, true for every schedule.

Knobs (environment):
  BATON_RACE_ITERS    attempts per race test (default 10000)
  BATON_RACE_SECONDS  soft time budget per race test (default 6)
  BATON_RACE_SEED     seed for the schedules (default: random)
"""

import asyncio
import bisect
import random
import time

import grpc
import pytest

from race_support import ITERS, SEED, Budget, Report, pick, rng_for
from baton_helpers import (
    AFTER_WAIT,
    EV_SET,
    IMMEDIATE,
    REPLAYED,
    SC,
    Client,
    event_pb2,
    event_wait,
    fmt_desc,
    is_idle,
    lock_release,
    lock_req,
    sem_release,
    sem_req,
    session_pb2,
)

RPC_TIMEOUT = 10.0  # deadline for calls that are not part of the race


# Ways a racing Acquire/Wait can end early.
#   cancel           call.cancel() after 0-5 ms (no timeout)
#   deadline         gRPC deadline of 0.5-6 ms
#   server_timeout   request `timeout` of 0-6 ms, generous gRPC deadline: the server decides
#   cancel+timeout   both a request timeout and a client cancel
#   patient          request timeout of 3 s: normally granted
MODES = {"cancel": 30, "deadline": 25, "server_timeout": 20, "cancel+timeout": 10, "patient": 15}


def schedule(rng: random.Random, mode: str):
    """-> (request timeout seconds or None, gRPC deadline seconds, cancel delay or None)"""
    if mode == "cancel":
        return None, RPC_TIMEOUT, rng.uniform(0, 0.005)
    if mode == "deadline":
        return None, rng.uniform(0.0005, 0.006), None
    if mode == "server_timeout":
        return rng.choice([0.0, rng.uniform(0, 0.006)]), RPC_TIMEOUT, None
    if mode == "cancel+timeout":
        return rng.uniform(0, 0.006), RPC_TIMEOUT, rng.uniform(0, 0.005)
    return 3.0, RPC_TIMEOUT, None


async def run_call(call, cancel_after):
    """Awaits a unary call, cancelling it after `cancel_after` s if given.
    -> (response or None, StatusCode)"""
    handle = None
    if cancel_after is not None:
        handle = asyncio.get_running_loop().call_later(cancel_after, call.cancel)
    try:
        return await call, SC.OK
    except asyncio.CancelledError:
        if cancel_after is None:
            raise
        return None, SC.CANCELLED
    except grpc.aio.AioRpcError as e:
        return None, e.code()
    finally:
        if handle is not None:
            handle.cancel()


def classify_end(report, what, code, mode, cancel_after, grpc_deadline) -> bool:
    """Checks how a non-OK racing call ended. Returns True when the server
    itself decided it (so the outcome is final and no grant may stand)."""
    if code == SC.CANCELLED:
        if cancel_after is None:
            report.violation(f"{what}: CANCELLED although the client never cancelled ({mode})")
        report.stats["cancelled"] += 1
        return False
    if code == SC.DEADLINE_EXCEEDED:
        report.stats["deadline_exceeded"] += 1
        # Server-decided when neither a client cancel nor a tight gRPC deadline could have caused it.
        return cancel_after is None and grpc_deadline >= RPC_TIMEOUT
    report.violation(f"{what}: ended with {code.name} ({mode}); expected OK, CANCELLED or DEADLINE_EXCEEDED")
    return True


async def settle(client: Client, name: str, capacity=None, timeout=5.0):
    """Polls Describe until the resource is idle; -> (idle?, last Describe)."""
    deadline = time.monotonic() + timeout
    while True:
        d = await client.describe(name)
        if is_idle(d, capacity):
            return True, d
        if time.monotonic() >= deadline:
            return False, d
        await asyncio.sleep(0.02)


async def close_sessions(client: Client, sids):
    for sid in sids:
        try:
            await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError:
            pass


@pytest.fixture
async def clients(batond):
    """A few channels, so racing calls travel on more than one connection."""
    cs = [Client(batond, default_deadline=None) for _ in range(4)]
    yield cs
    for c in cs:
        await c.close()


# ---------------------------------------------------------------------------
# Lock
# ---------------------------------------------------------------------------


class LockModel:
    """What the clients believe; checked at each grant and release."""

    def __init__(self, report: Report):
        self.report = report
        self.holders = {}  # token -> (client, how), for every grant a client believes it holds
        self.last_token = 0
        self.seen = set()

    def granted(self, who, token, how):
        r = self.report
        if self.holders:
            others = ", ".join(f"{w} holds token {t} ({h})" for t, (w, h) in self.holders.items())
            r.violation(f"overlap: {who} received token {token} ({how}) while {others}")
        if token in self.seen:
            r.violation(f"token {token} received twice (second time by {who}, {how})")
        elif token <= self.last_token:
            r.violation(f"token {token} received by {who} ({how}) after token {self.last_token}: not increasing")
        self.seen.add(token)
        self.last_token = max(self.last_token, token)
        self.holders[token] = (who, how)

    def releasing(self, who, token):
        self.holders.pop(token, None)


async def test_lock_cancellation_race(clients):
    rng = rng_for("lock")
    report = Report("lock")
    name = f"race/lock/{SEED}-{rng.randrange(1 << 30)}"
    model = LockModel(report)
    budget = Budget(ITERS)
    admin = clients[0]
    n_clients = 16
    sids = [await clients[i % len(clients)].open_session(120, f"race-lock-{i}") for i in range(n_clients)]
    outcomes = {}  # request_id -> how it went, to explain a leftover holder

    async def hold_and_release(who, c, sid, token, how):
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(0, 0.001))
        model.releasing(who, token)
        try:
            await c.locks.Release(lock_release(name, token, sid), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as e:
            report.violation(f"{who}: Release of token {token}, received by {how}, failed: "
                             f"{e.code().name} {e.details()}")

    async def one_client(i):
        c = clients[i % len(clients)]
        sid = sids[i]
        who = f"client{i}"
        n = 0
        while budget.take():
            n += 1
            rid = f"{who}-{n}"
            mode = pick(rng, MODES)
            req_timeout, grpc_deadline, cancel_after = schedule(rng, mode)
            outcomes[rid] = (mode, "pending")
            call = c.locks.Acquire(lock_req(name, sid, timeout=req_timeout, request_id=rid), timeout=grpc_deadline)
            resp, code = await run_call(call, cancel_after)
            if code == SC.OK:
                if resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                    report.violation(f"{rid}: fresh request_id answered with outcome {resp.outcome}")
                model.granted(who, resp.token, f"{rid} {mode}")
                report.stats[f"granted_direct_{mode}"] += 1
                outcomes[rid] = (mode, "granted")
                await hold_and_release(who, c, sid, resp.token, f"{rid} {mode}")
                continue
            final = classify_end(report, rid, code, mode, cancel_after, grpc_deadline)
            # Recover a grant whose reply may have been lost (lock.proto: retry with the same request_id).
            try:
                rec = await c.locks.Acquire(lock_req(name, sid, timeout=0, request_id=rid), timeout=RPC_TIMEOUT)
            except grpc.aio.AioRpcError as e:
                outcomes[rid] = (mode, f"{code.name}, recovery {e.code().name}")
                if e.code() != SC.DEADLINE_EXCEEDED:
                    report.violation(f"{rid}: recovery Acquire(timeout 0) ended with {e.code().name}: {e.details()}")
                continue
            outcomes[rid] = (mode, f"{code.name}, recovery outcome {rec.outcome}")
            if rec.outcome == REPLAYED:
                if final:
                    report.violation(
                        f"{rid}: server answered {code.name} ({mode}) yet kept the grant (replayed token {rec.token})"
                    )
                how = f"{rid} {mode}, {code.name}, then REPLAYED"
                report.stats["granted_replayed"] += 1
            else:
                if rec.outcome != IMMEDIATE:
                    report.violation(f"{rid}: zero-timeout recovery answered outcome {rec.outcome}")
                how = f"{rid} {mode}, {code.name}, then retry granted"
                report.stats["granted_retry"] += 1
            model.granted(who, rec.token, how)
            await hold_and_release(who, c, sid, rec.token, how)

    t0 = time.monotonic()
    await asyncio.gather(*(one_client(i) for i in range(n_clients)))
    report.stats["attempts"] = budget.used
    report.stats["seconds"] = round(time.monotonic() - t0, 1)

    idle, d = await settle(admin, name)
    if not idle:
        owners = {h.request_id: outcomes.get(h.request_id) for h in d.holders}
        report.violation(f"after every client released: {fmt_desc(d)}; what the holders' requests saw: {owners}")
    await close_sessions(admin, sids)
    if model.seen and not idle:
        idle2, d2 = await settle(admin, name)
        if not idle2:
            report.violation(f"even after closing every session: {fmt_desc(d2)}")
    if not model.seen:
        report.violation("no grant at all was received")
    report.check()


# ---------------------------------------------------------------------------
# Semaphore
# ---------------------------------------------------------------------------


class SemModel:
    def __init__(self, report: Report, capacity: int):
        self.report = report
        self.capacity = capacity
        self.holdings = {}  # token -> [client, permits, how]
        self.max_held = 0
        self.seen = set()

    def held(self):
        return sum(h[1] for h in self.holdings.values())

    def granted(self, who, token, count, how):
        r = self.report
        if token in self.seen:
            r.violation(f"semaphore token {token} received twice (second time by {who}, {how})")
        self.seen.add(token)
        self.holdings[token] = [who, count, how]
        held = self.held()
        self.max_held = max(self.max_held, held)
        if held > self.capacity:
            others = "; ".join(f"{w} {n} by {h}" for t, (w, n, h) in self.holdings.items() if t != token)
            r.violation(f"{who} received {count} permit(s) (token {token}, {how}): clients now hold "
                        f"{held} > capacity {self.capacity}; the others: {others}")

    def releasing(self, token, count):
        h = self.holdings[token]
        h[1] -= count
        assert h[1] >= 0
        if h[1] == 0:
            del self.holdings[token]


async def test_semaphore_cancellation_race(clients):
    rng = rng_for("semaphore")
    report = Report("semaphore")
    capacity = 3
    name = f"race/sem/{SEED}-{rng.randrange(1 << 30)}"
    model = SemModel(report, capacity)
    budget = Budget(ITERS)
    admin = clients[0]
    n_clients = 12
    sids = [await clients[i % len(clients)].open_session(120, f"race-sem-{i}") for i in range(n_clients)]

    def check_available(what, available):
        if not 0 <= available <= capacity:
            report.violation(f"{what}: available={available} outside 0..{capacity}")

    async def hold_and_release(who, c, sid, token, count, how):
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(0, 0.001))
        left = count  # permits of this holding the model still counts as held
        try:
            if count > 1 and rng.random() < 0.3:
                model.releasing(token, 1)
                left -= 1
                part = await c.semaphores.Release(sem_release(name, token, sid, count=1), timeout=RPC_TIMEOUT)
                check_available(f"{who} partial release", part.available)
                if part.remaining != count - 1:
                    report.violation(f"{who}: partial release of 1 from {count} left remaining={part.remaining}")
            model.releasing(token, left)
            left = 0
            rest = await c.semaphores.Release(sem_release(name, token, sid), timeout=RPC_TIMEOUT)
            check_available(f"{who} release", rest.available)
            if rest.remaining != 0:
                report.violation(f"{who}: full release left remaining={rest.remaining}")
        except grpc.aio.AioRpcError as e:
            if left:
                model.releasing(token, left)
            report.violation(f"{who}: Release of token {token}, received by {how}, failed: "
                             f"{e.code().name} {e.details()}")

    async def one_client(i):
        c = clients[i % len(clients)]
        sid = sids[i]
        who = f"client{i}"
        n = 0
        while budget.take():
            n += 1
            rid = f"{who}-{n}"
            count = rng.choice([1, 1, 2, 3])
            mode = pick(rng, MODES)
            req_timeout, grpc_deadline, cancel_after = schedule(rng, mode)
            call = c.semaphores.Acquire(
                sem_req(name, capacity, count, sid, timeout=req_timeout, request_id=rid), timeout=grpc_deadline
            )
            resp, code = await run_call(call, cancel_after)
            if code == SC.OK:
                if resp.count != count or resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                    report.violation(f"{rid}: asked {count}, got count={resp.count} outcome={resp.outcome}")
                check_available(rid, resp.available)
                how = f"{rid} {mode}"
                report.stats[f"granted_direct_{mode}"] += 1
                model.granted(who, resp.token, resp.count, how)
                await hold_and_release(who, c, sid, resp.token, resp.count, how)
                continue
            final = classify_end(report, rid, code, mode, cancel_after, grpc_deadline)
            try:
                rec = await c.semaphores.Acquire(
                    sem_req(name, capacity, count, sid, timeout=0, request_id=rid), timeout=RPC_TIMEOUT
                )
            except grpc.aio.AioRpcError as e:
                if e.code() != SC.DEADLINE_EXCEEDED:
                    report.violation(f"{rid}: recovery Acquire(timeout 0) ended with {e.code().name}: {e.details()}")
                continue
            if rec.outcome == REPLAYED and final:
                report.violation(f"{rid}: server answered {code.name} ({mode}) yet kept the grant (token {rec.token})")
            if rec.outcome not in (REPLAYED, IMMEDIATE):
                report.violation(f"{rid}: zero-timeout recovery answered outcome {rec.outcome}")
            how = f"{rid} {mode}, {code.name}, then " + ("REPLAYED" if rec.outcome == REPLAYED else "retry granted")
            report.stats["granted_replayed" if rec.outcome == REPLAYED else "granted_retry"] += 1
            model.granted(who, rec.token, rec.count, how)
            await hold_and_release(who, c, sid, rec.token, rec.count, how)

    t0 = time.monotonic()
    await asyncio.gather(*(one_client(i) for i in range(n_clients)))
    report.stats["attempts"] = budget.used
    report.stats["max_permits_held"] = model.max_held
    report.stats["seconds"] = round(time.monotonic() - t0, 1)

    idle, d = await settle(admin, name, capacity)
    if not idle:
        report.violation(f"after every client released: {fmt_desc(d)}")
    await close_sessions(admin, sids)
    if not model.seen:
        report.violation("no grant at all was received")
    report.check()


# ---------------------------------------------------------------------------
# Deadline race: the waiter's deadline falls right when the holder releases.
# ---------------------------------------------------------------------------


async def test_deadline_races_grant(clients):
    rng = rng_for("deadline")
    report = Report("deadline")
    budget = Budget(max(ITERS // 2, 1))
    lanes = 8
    admin = clients[0]
    all_sids = []

    async def lane(i):
        c = clients[i % len(clients)]
        is_sem = i % 2 == 1
        name = f"race/deadline/{SEED}-{i}-{rng.randrange(1 << 30)}"
        holder = await c.open_session(120, f"deadline-holder-{i}")
        waiter = await c.open_session(120, f"deadline-waiter-{i}")
        all_sids.extend([holder, waiter])
        cap = 2
        n = 0

        def acquire(sid, count, req_kw, call_kw):
            if is_sem:
                return c.semaphores.Acquire(sem_req(name, cap, count, sid, **req_kw), **call_kw)
            return c.locks.Acquire(lock_req(name, sid, **req_kw), **call_kw)

        async def release(sid, token):
            if is_sem:
                await c.semaphores.Release(sem_release(name, token, sid), timeout=RPC_TIMEOUT)
            else:
                await c.locks.Release(lock_release(name, token, sid), timeout=RPC_TIMEOUT)

        while budget.take():
            n += 1
            rid = f"lane{i}-{n}"
            # 1. The holder takes everything. If a rolled-back grant leaked, this times out.
            try:
                h = await acquire(holder, cap, dict(timeout=3.0), dict(timeout=RPC_TIMEOUT))
            except grpc.aio.AioRpcError as e:
                d = await admin.describe(name)
                report.violation(f"{rid}: holder could not re-acquire ({e.code().name}): {fmt_desc(d)}")
                return
            # 2. The waiter queues with a short deadline; 3. the holder releases close to it.
            d_ms = rng.uniform(2, 8)
            server_side = rng.random() < 0.4
            if server_side:
                call = acquire(waiter, 1, dict(timeout=d_ms / 1000, request_id=rid), dict(timeout=RPC_TIMEOUT))
            else:
                call = acquire(waiter, 1, dict(request_id=rid), dict(timeout=d_ms / 1000))
            release_sent = False

            async def wait_for_grant():
                resp, code = await run_call(call, None)
                if code == SC.OK and not release_sent:
                    report.violation(f"{rid}: waiter granted before the holder sent its Release")
                return resp, code

            waiter_task = asyncio.ensure_future(wait_for_grant())
            await asyncio.sleep(max(0.0, (d_ms + rng.uniform(-3, 1.5)) / 1000))
            release_sent = True
            await release(holder, h.token)
            resp, code = await waiter_task
            mode = "server-timeout" if server_side else "grpc-deadline"
            report.stats[f"{mode}_{code.name}"] += 1
            if code == SC.OK:
                await release(waiter, resp.token)
                continue
            if code != SC.DEADLINE_EXCEEDED:
                report.violation(f"{rid}: waiter ended with {code.name} ({mode})")
                continue
            try:
                rec = await acquire(waiter, 1, dict(timeout=0, request_id=rid), dict(timeout=RPC_TIMEOUT))
            except grpc.aio.AioRpcError as e:
                if e.code() != SC.DEADLINE_EXCEEDED:
                    report.violation(f"{rid}: recovery ended with {e.code().name}")
                continue
            if rec.outcome == REPLAYED:
                report.stats["recovered_replayed"] += 1
                if server_side:
                    report.violation(f"{rid}: server said DEADLINE_EXCEEDED yet kept the grant (token {rec.token})")
            try:
                await release(waiter, rec.token)
            except grpc.aio.AioRpcError as e:
                report.violation(f"{rid}: release of recovered grant failed: {e.code().name} {e.details()}")
        idle, d = await settle(admin, name, cap if is_sem else None)
        if not idle:
            report.violation(f"lane {i} ({name}) not idle at the end: {fmt_desc(d)}")

    t0 = time.monotonic()
    await asyncio.gather(*(lane(i) for i in range(lanes)))
    report.stats["rounds"] = budget.used
    report.stats["seconds"] = round(time.monotonic() - t0, 1)
    await close_sessions(admin, all_sids)
    report.check()


# ---------------------------------------------------------------------------
# Cancel strictly before the release: the grant can never be delivered.
# ---------------------------------------------------------------------------


async def test_grant_to_cancelled_waiter_passes_to_next_waiter(clients):
    """The waiter at the head of the line is cancelled and, right after (on the
    same connection, so the cancellation reaches the server first), the holder
    releases. Whether the server granted the lock to the cancelled call before
    noticing the cancellation or not, that grant can never be delivered: the
    lock must pass to the next waiter, and a retry of the cancelled request
    must not find its grant (DESIGN §3: "a lock granted to a call whose client
    has gone is released to the next waiter")."""
    rng = rng_for("cancel-then-release")
    report = Report("cancel-then-release")
    budget = Budget(max(ITERS // 20, 4))
    admin = clients[0]
    lanes = 4
    sids = []

    async def lane(i):
        c = clients[i % len(clients)]
        is_sem = i % 2 == 1
        name = f"race/cancel-first/{SEED}-{i}-{rng.randrange(1 << 30)}"
        holder, victim, next_sid = [await c.open_session(120, f"cancel-first-{i}-{k}") for k in range(3)]
        sids.extend([holder, victim, next_sid])

        def acquire(sid, **kw):
            if is_sem:
                return c.semaphores.Acquire(sem_req(name, 1, 1, sid, **kw), timeout=RPC_TIMEOUT)
            return c.locks.Acquire(lock_req(name, sid, **kw), timeout=RPC_TIMEOUT)

        def release(sid, token):
            if is_sem:
                return c.semaphores.Release(sem_release(name, token, sid), timeout=RPC_TIMEOUT)
            return c.locks.Release(lock_release(name, token, sid), timeout=RPC_TIMEOUT)

        n = 0
        while budget.take():
            n += 1
            rid = f"cf{i}-{n}"
            h = await acquire(holder, timeout=3)
            doomed = acquire(victim, request_id=rid)
            d = None
            deadline = time.monotonic() + 5
            while (d := await c.describe(name)) is None or d.waiters < 1:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.002)
            victim_holds = None  # token of a grant the victim got back through a retry

            async def next_in_line():
                resp, code = await run_call(acquire(next_sid, timeout=3), None)
                if code == SC.OK and victim_holds is not None:
                    report.violation(f"{rid}: next waiter received token {resp.token} while the cancelled request's "
                                     f"retry holds token {victim_holds}")
                return resp, code

            patient = asyncio.ensure_future(next_in_line())
            deadline = time.monotonic() + 5
            while (d := await c.describe(name)) is None or d.waiters < 2:
                if time.monotonic() > deadline:
                    report.violation(f"{rid}: waiters never queued: {fmt_desc(d)}")
                    return
                await asyncio.sleep(0.002)
            cancel_first = rng.random() < 0.5
            report.stats["cancel_first" if cancel_first else "release_first"] += 1
            if cancel_first:
                doomed.cancel()
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.uniform(0, 0.002))
                await release(holder, h.token)
            else:
                # The grant is on its way when the cancel happens: it may or may not be delivered.
                releasing = asyncio.ensure_future(release(holder, h.token))
                await asyncio.sleep(rng.uniform(0, 0.0015))
                doomed.cancel()
                await releasing
            resp, code = await run_call(doomed, 0)
            report.stats[f"cancelled_call_{code.name}"] += 1
            if code == SC.OK:
                # The response was already on its way when we cancelled: not this test's case.
                report.stats["granted_before_cancel"] += 1
                victim_holds = resp.token
                await asyncio.sleep(rng.uniform(0, 0.002))
                victim_holds = None
                try:
                    await release(victim, resp.token)
                except grpc.aio.AioRpcError as e:
                    report.violation(f"{rid}: the call was granted (token {resp.token}) before our cancel took "
                                     f"effect, but its Release failed: {e.code().name} {e.details()}")
            if code != SC.OK and (not cancel_first or rng.random() < 0.5):
                # Retry at once, while the server may still be rolling the grant back. Whatever it
                # answers must stand: a REPLAYED grant is delivered, so it can't be rolled back later.
                try:
                    rec = await acquire(victim, request_id=rid, timeout=0)
                    victim_holds = rec.token
                    report.stats[f"early_retry_outcome_{rec.outcome}"] += 1
                    await asyncio.sleep(rng.uniform(0, 0.002))
                    victim_holds = None
                    try:
                        await release(victim, rec.token)
                    except grpc.aio.AioRpcError as e:
                        report.violation(f"{rid}: cancelled, then the immediate retry got token {rec.token} "
                                         f"(outcome {rec.outcome}), whose Release failed: {e.code().name} "
                                         f"{e.details()}")
                except grpc.aio.AioRpcError as e:
                    report.stats[f"early_retry_{e.code().name}"] += 1
                    if e.code() != SC.DEADLINE_EXCEEDED:
                        report.violation(f"{rid}: immediate retry ended with {e.code().name}")
            got, code2 = await patient
            if code2 != SC.OK:
                report.violation(f"{rid}: next waiter not granted ({code2.name}) after the head waiter was "
                                 f"cancelled ({'before' if cancel_first else 'after'} the release) and its retry "
                                 f"found no grant; {fmt_desc(await c.describe(name))}")
                return
            if code != SC.OK:
                try:
                    rec = await acquire(victim, request_id=rid, timeout=0)
                    report.violation(f"{rid}: the cancelled request's grant is still there: retry got "
                                     f"outcome {rec.outcome} token {rec.token} while token {got.token} is held")
                    await release(victim, rec.token)
                except grpc.aio.AioRpcError as e:
                    if e.code() != SC.DEADLINE_EXCEEDED:
                        report.violation(f"{rid}: retry of the cancelled request ended with {e.code().name}")
            await release(next_sid, got.token)
        idle, d = await settle(admin, name, 1 if is_sem else None)
        if not idle:
            report.violation(f"lane {i} ({name}) not idle at the end: {fmt_desc(d)}")

    t0 = time.monotonic()
    await asyncio.gather(*(lane(i) for i in range(lanes)))
    report.stats["rounds"] = budget.used
    report.stats["seconds"] = round(time.monotonic() - t0, 1)
    await close_sessions(admin, sids)
    report.check()


# ---------------------------------------------------------------------------
# Session loss while waiting
# ---------------------------------------------------------------------------


async def test_session_close_aborts_waiters(clients):
    """Deterministic part: waiters known to be queued all end ABORTED."""
    report = Report("session-close")
    c = clients[0]
    holder = await c.open_session(120, "abort-holder")
    locks = [f"race/abort/{SEED}-{i}" for i in range(3)]
    sem = f"race/abort-sem/{SEED}"
    held = [await c.locks.Acquire(lock_req(n, holder), timeout=RPC_TIMEOUT) for n in locks]
    sem_held = await c.semaphores.Acquire(sem_req(sem, 2, 2, holder), timeout=RPC_TIMEOUT)
    rounds = max(3, min(20, ITERS // 75))
    for r in range(rounds):
        victim = await c.open_session(60, f"victim-{r}")
        calls = [c.locks.Acquire(lock_req(n, victim), timeout=RPC_TIMEOUT) for n in locks]
        calls.append(c.semaphores.Acquire(sem_req(sem, 2, 1, victim), timeout=RPC_TIMEOUT))
        tasks = [asyncio.ensure_future(run_call(call, None)) for call in calls]
        for n in locks + [sem]:
            deadline = time.monotonic() + 5
            while (d := await c.describe(n)) is None or d.waiters != 1:
                assert time.monotonic() < deadline, f"waiter never queued on {n}: {fmt_desc(d)}"
                await asyncio.sleep(0.005)
        await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=victim), timeout=RPC_TIMEOUT)
        for n, (resp, code) in zip(locks + [sem], await asyncio.gather(*tasks)):
            report.stats[code.name] += 1
            if code != SC.ABORTED:
                report.violation(f"round {r}: waiter on {n} whose session closed ended with {code.name}")
        for n in locks + [sem]:
            d = await c.describe(n)
            if d is None or d.waiters != 0 or {h.session_id for h in d.holders} != {holder}:
                report.violation(f"round {r}: after the close, {n}: {fmt_desc(d)}")
    for n, h in zip(locks, held):
        await c.locks.Release(lock_release(n, h.token, holder), timeout=RPC_TIMEOUT)
    await c.semaphores.Release(sem_release(sem, sem_held.token, holder), timeout=RPC_TIMEOUT)
    for n in locks + [sem]:
        idle, d = await settle(c, n, 2 if n == sem else None)
        if not idle:
            report.violation(f"{n} not idle at the end: {fmt_desc(d)}")
    await close_sessions(c, [holder])
    report.check()


async def test_session_close_races_grant(clients):
    """Racy part: the holder releases and the waiter's session closes at
    random moments; the waiter is granted, ABORTED, or (if the close won the
    race to the server) NOT_FOUND; whatever happens, nothing stays held by
    the closed session and no waiter is left."""
    rng = rng_for("session-race")
    report = Report("session-race")
    budget = Budget(max(ITERS // 3, 1))
    admin = clients[0]
    lanes = 6
    holders = []

    async def lane(i):
        c = clients[i % len(clients)]
        is_sem = i % 3 == 2
        name = f"race/session/{SEED}-{i}-{rng.randrange(1 << 30)}"
        holder = await c.open_session(120, f"sess-race-holder-{i}")
        holders.append(holder)
        n = 0
        while budget.take():
            n += 1
            try:
                if is_sem:
                    h = await c.semaphores.Acquire(sem_req(name, 2, 2, holder, timeout=3), timeout=RPC_TIMEOUT)
                else:
                    h = await c.locks.Acquire(lock_req(name, holder, timeout=3), timeout=RPC_TIMEOUT)
            except grpc.aio.AioRpcError as e:
                report.violation(f"lane {i} round {n}: holder could not re-acquire ({e.code().name}): "
                                 f"{fmt_desc(await admin.describe(name))}")
                return
            victim = await c.open_session(60, f"victim-{i}-{n}")
            if is_sem:
                call = c.semaphores.Acquire(sem_req(name, 2, rng.choice([1, 2]), victim), timeout=RPC_TIMEOUT)
            else:
                call = c.locks.Acquire(lock_req(name, victim), timeout=RPC_TIMEOUT)
            task = asyncio.ensure_future(run_call(call, None))

            async def release_later():
                await asyncio.sleep(rng.uniform(0, 0.004))
                if is_sem:
                    await c.semaphores.Release(sem_release(name, h.token, holder), timeout=RPC_TIMEOUT)
                else:
                    await c.locks.Release(lock_release(name, h.token, holder), timeout=RPC_TIMEOUT)

            async def close_later():
                await asyncio.sleep(rng.uniform(0, 0.004))
                await c.sessions.Close(session_pb2.CloseSessionRequest(session_id=victim), timeout=RPC_TIMEOUT)

            await asyncio.gather(release_later(), close_later())
            resp, code = await task
            report.stats[code.name] += 1
            if code not in (SC.OK, SC.ABORTED, SC.NOT_FOUND):
                report.violation(f"lane {i} round {n}: waiter ended with {code.name}")
            # Nothing may stay held by, or queued for, the closed session.
            deadline = time.monotonic() + 5
            while True:
                d = await c.describe(name)
                bad = d is not None and (d.waiters or any(x.session_id == victim for x in d.holders))
                if not bad:
                    break
                if time.monotonic() > deadline:
                    report.violation(f"lane {i} round {n}: closed session still present: {fmt_desc(d)}")
                    break
                await asyncio.sleep(0.01)
        idle, d = await settle(admin, name, 2 if is_sem else None)
        if not idle:
            report.violation(f"lane {i} ({name}) not idle at the end: {fmt_desc(d)}")

    t0 = time.monotonic()
    await asyncio.gather(*(lane(i) for i in range(lanes)))
    report.stats["rounds"] = budget.used
    report.stats["seconds"] = round(time.monotonic() - t0, 1)
    await close_sessions(admin, holders)
    report.check()


# ---------------------------------------------------------------------------
# Event
# ---------------------------------------------------------------------------


async def test_event_wait_cancellation_race(clients):
    rng = rng_for("event")
    report = Report("event")
    name = f"race/event/{SEED}-{rng.randrange(1 << 30)}"
    budget = Budget(ITERS)
    admin = clients[0]
    stop = asyncio.Event()
    clear_windows = []  # (clear acknowledged, next Set sent): the event was clear throughout
    waits = []  # (start, end, ok)

    async def toggler():
        c = clients[1 % len(clients)]
        while not stop.is_set():
            await c.events.Set(event_pb2.SetEventRequest(name=name), timeout=RPC_TIMEOUT)
            await asyncio.sleep(rng.uniform(0, 0.003))
            await c.events.Clear(event_pb2.ClearEventRequest(name=name), timeout=RPC_TIMEOUT)
            cleared = time.monotonic()
            await asyncio.sleep(rng.uniform(0, 0.006))
            clear_windows.append((cleared, time.monotonic()))
        await c.events.Set(event_pb2.SetEventRequest(name=name), timeout=RPC_TIMEOUT)

    async def waiter(i):
        c = clients[i % len(clients)]
        while budget.take():
            mode = pick(rng, MODES)
            req_timeout, grpc_deadline, cancel_after = schedule(rng, mode)
            start = time.monotonic()
            call = c.events.Wait(event_wait(name, timeout=req_timeout), timeout=grpc_deadline)
            resp, code = await run_call(call, cancel_after)
            end = time.monotonic()
            if code == SC.OK:
                report.stats["woken"] += 1
                if resp.state != EV_SET or resp.outcome not in (IMMEDIATE, AFTER_WAIT):
                    report.violation(f"waiter{i}: Wait returned state={resp.state} outcome={resp.outcome}")
                waits.append((start, end))
            else:
                classify_end(report, f"waiter{i}", code, mode, cancel_after, grpc_deadline)

    watch_seen = []

    async def watcher():
        c = clients[2 % len(clients)]
        call = c.events.Watch(event_pb2.WatchEventRequest(name=name), timeout=60)
        try:
            async for m in call:
                watch_seen.append((m.sequence, m.state))
        except asyncio.CancelledError:
            call.cancel()
            raise
        except grpc.aio.AioRpcError as e:
            report.violation(f"Watch ended with {e.code().name}: {e.details()}")

    t0 = time.monotonic()
    watch_task = asyncio.ensure_future(watcher())
    tog = asyncio.ensure_future(toggler())
    await asyncio.gather(*(waiter(i) for i in range(12)))
    stop.set()
    await tog
    # The last state is SET: the watcher must end up seeing it as its latest message.
    deadline = time.monotonic() + 5
    while not (watch_seen and watch_seen[-1][1] == EV_SET):
        if time.monotonic() > deadline or watch_task.done():
            report.violation(f"watcher's latest state is not the final SET: last messages {watch_seen[-3:]}")
            break
        await asyncio.sleep(0.01)
    watch_task.cancel()
    try:
        await watch_task
    except asyncio.CancelledError:
        pass
    seqs = [s for s, _ in watch_seen]
    if seqs and seqs != list(range(1, len(seqs) + 1)):
        bad = next(k for k, (a, b) in enumerate(zip(seqs, range(1, len(seqs) + 1))) if a != b)
        report.violation(f"watch sequence numbers not 1,2,3...: around index {bad}: {seqs[max(0, bad - 3):bad + 3]}")
    report.stats["watch_messages"] = len(watch_seen)
    report.stats["attempts"] = budget.used

    # A Wait that started after a Clear was acknowledged and ended before the next
    # Set was sent must not have succeeded.
    starts = [w[0] for w in clear_windows]
    for start, end in waits:
        k = bisect.bisect_right(starts, start) - 1
        if k >= 0 and end <= clear_windows[k][1]:
            c0, c1 = clear_windows[k]
            report.violation(f"Wait succeeded while the event was clear throughout "
                             f"({start - t0:.4f}..{end - t0:.4f} within {c0 - t0:.4f}..{c1 - t0:.4f})")

    await admin.events.Clear(event_pb2.ClearEventRequest(name=name), timeout=RPC_TIMEOUT)
    deadline = time.monotonic() + 5
    while True:
        d = await admin.describe(name)
        if d is None or (d.waiters == 0 and d.watchers == 0):
            break
        if time.monotonic() > deadline:
            report.violation(f"{d.waiters} waiter(s) and {d.watchers} watcher(s) left behind after every "
                             f"Wait ended and the Watch was cancelled: {fmt_desc(d)}")
            break
        await asyncio.sleep(0.02)
    report.stats["seconds"] = round(time.monotonic() - t0, 1)
    report.check()
