"""Cancellation against the real server: the asyncio task awaiting a Baton call
is cancelled (task.cancel(), asyncio.wait_for, asyncio.timeout, TaskGroup) at
random moments while grants happen. The call must end on the server, and
nothing may leak or get lost: no lock or permit left held, no queue item
lost or delivered twice, no waiter left behind.

Schedules are random (seeded: BATON_PY_RACE_SEED, printed on failure); the
assertions are invariants that hold for every schedule. Each race runs for
BATON_PY_RACE_SECONDS (default 2.5 s).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time

import pytest

import baton
from helpers import eventually, idle

SECONDS = float(os.environ.get("BATON_PY_RACE_SECONDS", "2.5"))
SEED = int(os.environ.get("BATON_PY_RACE_SEED", str(random.randrange(1 << 30))))


def rng(tag: str) -> random.Random:
    return random.Random(f"{SEED}/{tag}")


async def cancelled_somehow(r: random.Random, coro, *, patient: float = 2.0):
    """Awaits `coro` under a randomly chosen way of giving up early. Returns
    (ok, result): ok False when it was cancelled / timed out."""
    mode = r.choice(["wait_for", "timeout_cm", "cancel", "cancel", "patient"])
    if mode == "wait_for":
        try:
            return True, await asyncio.wait_for(coro, r.uniform(0, 0.004))
        except TimeoutError:
            return False, None
    if mode == "timeout_cm":
        try:
            async with asyncio.timeout(r.uniform(0, 0.004)):
                return True, await coro
        except TimeoutError:
            return False, None
    if mode == "cancel":
        task = asyncio.ensure_future(coro)
        await asyncio.sleep(r.uniform(0, 0.004))
        task.cancel()
        try:
            return True, await task
        except asyncio.CancelledError:
            return False, None
    return True, await asyncio.wait_for(coro, patient)


def stats(clients) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for c in clients:
        total.update(c._rpc.cancel_stats)
    return total


async def drain_cleanups(clients) -> None:
    for c in clients:
        await c._rpc.drain(10)


async def settled_idle(admin, n) -> None:
    """Asserts that resource `n` ends up with no holder and no waiter. A unary
    call the client cancelled is rolled back by the server when it notices
    the cancellation, and on a durable server that rollback is a logged change
    that lands some milliseconds after the client has moved on; so this polls
    for a few seconds. A real leak (a holder or waiter nobody will release)
    never clears, and fails here."""

    last = None

    async def check():
        nonlocal last
        last = await admin.describe(n, missing_ok=True)
        return last is None or (not last.holders and last.waiters == 0)

    deadline = time.monotonic() + 5
    while not await check():
        assert time.monotonic() < deadline, f"leaked: {last} (seed {SEED})"
        await asyncio.sleep(0.02)


async def test_cancelled_lock_acquires_never_leak_or_overlap(connect, admin, name):
    n = name("lock")
    clients = [await connect() for _ in range(4)]
    holder: list[object] = []
    counts = collections.Counter()
    deadline = time.monotonic() + SECONDS

    async def contender(i: int, c: baton.Client) -> None:
        r = rng(f"lock{i}")
        lock = c.lock(n)
        while time.monotonic() < deadline:
            ok, held = await cancelled_somehow(r, lock.acquire())
            if not ok:
                counts["cancelled"] += 1
                assert not lock.locked()
                continue
            counts["granted"] += 1
            assert not holder, f"two holders at once (seed {SEED})"
            holder.append(held)
            await asyncio.sleep(r.uniform(0, 0.002))
            holder.pop()
            await lock.release()

    await asyncio.gather(*(contender(i, c) for i, c in enumerate(clients * 2)))
    await drain_cleanups(clients)
    st = stats(clients)
    print(f"seed={SEED} {dict(counts)} {dict(st)}")
    assert counts["granted"] > 20 and counts["cancelled"] > 20
    # The lock is free: nobody holds it, nobody waits, and a fresh try-once
    # acquire from another session gets it at once.
    await settled_idle(admin, n)
    fresh = admin.lock(n)
    held = await fresh.acquire(timeout=0)
    assert held.outcome == "immediate"
    await fresh.release()


async def test_cancelled_semaphore_acquires_never_exceed_capacity_or_leak(connect, admin, name):
    n = name("sem")
    capacity = 3
    clients = [await connect() for _ in range(4)]
    in_use = [0]
    counts = collections.Counter()
    deadline = time.monotonic() + SECONDS

    async def contender(i: int, c: baton.Client) -> None:
        r = rng(f"sem{i}")
        sem = c.semaphore(n, capacity)
        while time.monotonic() < deadline:
            k = r.choice([1, 1, 2])
            ok, h = await cancelled_somehow(r, sem.acquire(k))
            if not ok:
                counts["cancelled"] += 1
                continue
            counts["granted"] += 1
            in_use[0] += k
            assert in_use[0] <= capacity, f"{in_use[0]} permits in use (seed {SEED})"
            await asyncio.sleep(r.uniform(0, 0.002))
            in_use[0] -= k
            await sem.release(h)

    await asyncio.gather(*(contender(i, c) for i, c in enumerate(clients * 2)))
    await drain_cleanups(clients)
    print(f"seed={SEED} {dict(counts)} {dict(stats(clients))}")
    assert counts["granted"] > 20 and counts["cancelled"] > 20
    await settled_idle(admin, n)
    h = await admin.semaphore(n, capacity).acquire(capacity, timeout=0)
    assert h.count == capacity


async def test_cancelled_gets_racing_puts_deliver_every_item_exactly_once(connect, admin, name, transport):
    n = name("queue")
    producers = [await connect() for _ in range(2)]
    consumers = [await connect() for _ in range(3)]
    put_ok: list[str] = []
    received: collections.Counter = collections.Counter()
    counts = collections.Counter()
    deadline = time.monotonic() + SECONDS
    stop = asyncio.Event()

    async def producer(i: int, c: baton.Client) -> None:
        r = rng(f"put{i}")
        q = c.queue(n, maxsize=50)
        k = 0
        while time.monotonic() < deadline:
            payload = f"p{i}-{k}"
            k += 1
            await q.put(payload)
            put_ok.append(payload)
            if r.random() < 0.3:
                await asyncio.sleep(r.uniform(0, 0.003))
        stop.set()

    async def consumer(i: int, c: baton.Client) -> None:
        r = rng(f"get{i}")
        q = c.queue(n, maxsize=50)
        while not (stop.is_set() and time.monotonic() > deadline + 0.5):
            if r.random() < 0.2:
                ok, items = await cancelled_somehow(r, q.get_many(r.randint(1, 4)), patient=0.2)
            else:
                ok, items = await cancelled_somehow(r, q.get_many(1), patient=0.2)
            if not ok:
                counts["cancelled"] += 1
                continue
            for it in items:
                received[it.text] += 1
                await it.ack()
            counts["got"] += len(items)

    async def patient_consumer(i, c):
        try:
            await consumer(i, c)
        except TimeoutError:
            pass

    tasks = [asyncio.create_task(producer(i, c)) for i, c in enumerate(producers)]
    tasks += [asyncio.create_task(patient_consumer(i, c)) for i, c in enumerate(consumers)]
    await asyncio.gather(*tasks)
    await drain_cleanups(consumers)
    # Nothing is stuck in flight while the consumers' sessions are alive.
    info = await admin.queue(n).info()
    in_flight = info.in_flight if info else 0
    if transport == "unary":
        # A unary Get cancelled while its reply crossed the cancel ends
        # CANCELLED here although the server delivered it: the items stay in
        # flight, owned by the session, until it ends (see _rpc.py). They are
        # not lost: closing the consumers' sessions returns them.
        for c in consumers:
            await c.close()
    # Whatever is left in the queue is drained by a fresh client.
    drained: list[str] = []
    q = admin.queue(n)
    while True:
        try:
            it = await q.get_nowait()
        except baton.QueueEmpty:
            break
        drained.append(it.text)
        await it.ack()
    for t in drained:
        received[t] += 1
    st = stats(consumers)
    print(f"seed={SEED} puts={len(put_ok)} drained={len(drained)} in_flight={in_flight} {dict(counts)} {dict(st)}")
    assert counts["cancelled"] > 20 and counts["got"] > 20
    if transport == "stream":
        assert in_flight == 0, f"{in_flight} item(s) stuck in flight (seed {SEED})"
    missing = [p for p in put_ok if received[p] == 0]
    twice = {p: k for p, k in received.items() if k > 1}
    unknown = set(received) - set(put_ok)
    assert not missing, f"lost {len(missing)} items: {missing[:5]} (seed {SEED})"
    assert not twice, f"delivered more than once: {list(twice.items())[:5]} (seed {SEED})"
    assert not unknown


async def test_cancelled_puts_on_a_full_queue_are_withdrawn(client, admin, name):
    n = name("queue")
    q = client.queue(n, maxsize=1)
    await q.put("first")
    for i in range(20):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(q.put(f"late-{i}"), 0.005 * (i % 4))
    await eventually(lambda: _no_waiting_putters(admin, n), what="putters gone")
    info = await q.info()
    assert info.size == 1 and info.waiting_putters == 0
    assert (await q.get_nowait()).text == "first"


async def _no_waiting_putters(admin, n):
    info = await admin.queue(n).info()
    return info is not None and info.waiting_putters == 0


async def test_wait_for_on_acquire_raises_timeout_and_leaves_no_waiter(client, connect, admin, name):
    n = name("lock")
    other = await connect()
    async with other.lock(n):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.lock(n).acquire(), 0.1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.lock(n).acquire()
        await eventually(lambda: _waiters_are(admin, n, 0), what="no waiters")
    assert await idle(admin, n)


async def _waiters_are(admin, n, k):
    d = await admin.describe(n, missing_ok=True)
    return d is None or d.waiters == k


async def test_task_cancel_of_a_parked_wait_cancels_it_on_the_server(client, admin, name):
    n = name("event")
    waits = [asyncio.create_task(client.event(n).wait()) for _ in range(5)]
    await eventually(lambda: _waiters_are_at_least(admin, n, 5), what="5 waiters")
    for w in waits:
        w.cancel()
    for w in waits:
        with pytest.raises(asyncio.CancelledError):
            await w
    await eventually(lambda: idle(admin, n), what="waiters gone")


async def _waiters_are_at_least(admin, n, k):
    d = await admin.describe(n, missing_ok=True)
    return d is not None and d.waiters >= k


async def test_taskgroup_failure_cancels_sibling_acquires(client, connect, admin, name):
    n = name("lock")
    other = await connect()
    await other.lock(n).acquire()

    async def fail_soon():
        await asyncio.sleep(0.1)
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup) as e:
        async with asyncio.TaskGroup() as tg:
            for _ in range(3):
                tg.create_task(client.lock(n).acquire())
            tg.create_task(fail_soon())
    assert e.value.subgroup(ValueError) is not None
    await eventually(lambda: _waiters_are(admin, n, 0), what="acquires cancelled on the server")
    d = await admin.describe(n)
    assert [h.session_id for h in d.holders] == [other.session_id]


async def test_cancelled_twice_during_cleanup_still_leaks_nothing(connect, admin, name):
    n = name("lock")
    clients = [await connect() for _ in range(2)]
    r = rng("twice")
    for _ in range(60):
        tasks = [asyncio.create_task(c.lock(n).acquire()) for c in clients]
        await asyncio.sleep(r.uniform(0, 0.003))
        for t in tasks:
            t.cancel()
        await asyncio.sleep(r.uniform(0, 0.001))
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for c, res in zip(clients, results):
            if isinstance(res, baton.LockHolding):
                await c.lock(n)._release_token(res.token, res.session_id)
    await drain_cleanups(clients)
    await settled_idle(admin, n)


async def test_cancelled_condition_waits_leave_the_lock_free(connect, admin, name, transport):
    lock_name = name("lock")
    clients = [await connect() for _ in range(3)]
    notifier = await connect()
    deadline = time.monotonic() + SECONDS / 2
    counts = collections.Counter()

    async def waiter(i: int, c: baton.Client) -> None:
        r = rng(f"cond{i}")
        while time.monotonic() < deadline:
            cond = c.condition("ready", lock=lock_name)
            async with cond:
                ok, notified = await cancelled_somehow(r, cond.wait(), patient=0.5)
                counts["notified" if ok and notified else "timed_out" if ok else "cancelled"] += 1
                # A cancelled wait leaves the lock released; otherwise it is held.
                assert cond.locked() == ok

    async def notify() -> None:
        cond = notifier.condition("ready", lock=lock_name)
        while time.monotonic() < deadline + 0.2:
            async with cond:
                await cond.notify_all()
            await asyncio.sleep(0.001)

    async def patient(i, c):
        try:
            await waiter(i, c)
        except TimeoutError:
            counts["patient_timeout"] += 1

    await asyncio.gather(notify(), *(patient(i, c) for i, c in enumerate(clients)))
    await drain_cleanups(clients)
    print(f"seed={SEED} {dict(counts)} {dict(stats(clients))}")
    assert counts["cancelled"] > 5 and counts["notified"] > 5
    if transport == "unary":
        # A unary re-acquire granted after the cancel's recovery looked may
        # stay held until the session ends (see condition.py).
        desc = await admin.describe(lock_name, missing_ok=True)
        print("held by a session after the race:", desc.holders if desc else None)
        for c in clients:
            await c.close()
    await settled_idle(admin, lock_name)


async def test_cancelled_takes_racing_submits_run_every_task_once(connect, admin, name):
    queue = name("work")
    submitter = await connect()
    workers = [await connect() for _ in range(2)]
    # A short lease and room for retries: with the unary transport, a Take
    # cancelled as its reply crossed the cancel leaves the task running
    # unseen until its lease runs out, which uses up one attempt; it is then
    # retried. Under a sanitized server on a loaded machine more Takes cross
    # (3 attempts ran out once: the task failed, was never seen, and the loop
    # below waited out its budget). The session stream has no such case.
    submitted = [await submitter.create_task(queue, f"job-{i}", max_attempts=20) for i in range(60)]
    seen: collections.Counter = collections.Counter()
    r = rng("take")

    async def work(c: baton.Client) -> None:
        w = c.worker(queue, ttl=1)
        while sum(seen.values()) < len(submitted):
            try:
                ok, job = await cancelled_somehow(r, w.take(), patient=0.3)
            except TimeoutError:
                continue  # nothing to take for a while: a lost attempt's lease is running out
            if not ok:
                continue
            seen[job.text] += 1
            await job.complete(job.text.upper())

    await asyncio.wait_for(asyncio.gather(*(work(c) for c in workers)), 30)
    results = await asyncio.wait_for(submitter.gather(*submitted), 10)
    print(f"seed={SEED} {dict(stats(workers))}")
    assert results == [f"JOB-{i}".encode() for i in range(60)]
    assert all(k == 1 for k in seen.values()), seen
