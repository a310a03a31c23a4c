"""The shared client contract (clients/README.md): defaults, waits re-sent
across a broken session stream, request_id recovery of cancelled waits,
acknowledgements riding on the consumer's Gets."""

from __future__ import annotations

import asyncio
import collections
import random
import statistics

import pytest

import baton
from baton.session import Backoff, default_probe_interval
from baton.stream import StreamSession
from helpers import eventually, idle

# ---- defaults ------------------------------------------------------------


def test_defaults_are_the_shared_ones():
    assert baton.Client().__dict__["_session_ttl"] == 15.0
    assert default_probe_interval(15.0) == 5.0
    assert default_probe_interval(1.5) == 0.5
    assert default_probe_interval(0.2) == 0.1  # clamped to 100 ms
    assert default_probe_interval(3600) == 5.0  # clamped to 5 s


def test_backoff_grows_by_1_6_with_jitter_up_to_2_s():
    random.seed(7)
    b = Backoff()
    delays = [b.next() for _ in range(12)]
    base = 0.1
    for d in delays:
        assert min(base * 0.8, 2.0) - 1e-9 <= d <= min(base * 1.2, 2.0) + 1e-9, (d, base)
        base = min(base * 1.6, 2.0)
    assert max(delays) <= 2.0 and delays[-1] >= 1.6
    b.reset()
    assert 0.08 <= b.next() <= 0.12
    spread = [Backoff().next() for _ in range(200)]
    assert statistics.pstdev(spread) > 0.005  # jittered, not a constant


# ---- waits re-sent across a broken stream -----------------------------------


def _stream_only(transport: str) -> None:
    if transport != "stream":
        pytest.skip("re-sending waits is the session stream's (the unary transport has no stream to re-open)")


async def _waiters(admin, n, k):
    d = await admin.describe(n, missing_ok=True)
    return d is not None and d.waiters >= k


def _lose_next_answer(c: baton.Client, field: str, then=None) -> list[int]:
    """Makes the session stream of `c` drop the next answer carrying `field`
    (as if it were lost on the wire) and break the stream at that moment;
    `then()` runs right after the break. Returns a list that gets one entry
    when that happened."""
    session = c.session
    assert isinstance(session, StreamSession)
    dropped: list[int] = []
    answer = session._answer

    def lossy(resp):
        if not dropped:
            for r in resp.results:
                if r.code == 0 and r.HasField(field):
                    dropped.append(r.id)
                    keep = [x for x in resp.results if x.id != r.id]
                    del resp.results[:]
                    resp.results.extend(keep)
                    session.break_stream()
                    if then is not None:
                        then()
                    break
        answer(resp)

    session._answer = lossy
    return dropped


async def test_lock_grant_lost_with_the_stream_comes_back_replayed(connect, admin, name, transport):
    _stream_only(transport)
    n = name("lock")
    c = await connect()
    other = await connect()
    first = await other.lock(n).acquire()
    waiter = asyncio.create_task(c.lock(n).acquire(timeout=30))
    await eventually(lambda: _waiters(admin, n, 1), what="the waiter in line")
    dropped = _lose_next_answer(c, "acquire_lock")
    await other.lock(n)._release_token(first.token, first.session_id)
    held = await asyncio.wait_for(waiter, 10)
    assert dropped, "the grant's answer was not dropped"
    assert held.outcome == "replayed"
    assert c.session.resent >= 1 and c.session.stream_breaks >= 1
    d = await admin.describe(n)
    assert [(h.session_id, h.token) for h in d.holders] == [(c.session_id, held.token)]
    await c.lock(n)._release_token(held.token, held.session_id)
    assert await idle(admin, n)


async def test_waits_go_on_across_dropped_connections(connect, admin, name, proxy, transport):
    _stream_only(transport)
    lock_name, sem_name, q_name, work = name("lock"), name("sem"), name("q"), name("work")
    c = await connect(proxy.addr, session_ttl=5.0)
    other = await connect()
    first = await other.lock(lock_name).acquire()
    sem_held = await other.semaphore(sem_name, 1).acquire()
    lock_wait = asyncio.create_task(c.lock(lock_name).acquire(timeout=30))
    sem_wait = asyncio.create_task(c.semaphore(sem_name, 1).acquire(timeout=30))
    get_wait = asyncio.create_task(c.queue(q_name).get(timeout=30))
    take_wait = asyncio.create_task(c.worker(work, ttl=5).take(timeout=30))
    await eventually(lambda: _waiters(admin, lock_name, 1), what="lock waiter")
    await eventually(lambda: _waiters(admin, sem_name, 1), what="semaphore waiter")
    for i in range(2):
        assert proxy.drop() > 0
        await eventually(lambda: _reattached(c, i + 1), what="re-opened")
    # The waits were re-sent on the new stream: granting now reaches them.
    await other.lock(lock_name)._release_token(first.token, first.session_id)
    await other.semaphore(sem_name, 1)._release_token(sem_held.token, sem_held.session_id, None)
    await other.queue(q_name).put("item")
    task = await other.create_task(work, "job")
    held = await asyncio.wait_for(lock_wait, 10)
    permit = await asyncio.wait_for(sem_wait, 10)
    item = await asyncio.wait_for(get_wait, 10)
    job = await asyncio.wait_for(take_wait, 10)
    assert held.session_id == c.session_id and permit.count == 1 and item.text == "item" and job.id == task.id
    assert c.session.resent >= 4
    await item.ack()
    await job.complete("done")
    assert await asyncio.wait_for(task, 10) == b"done"
    await c.lock(lock_name)._release_token(held.token, held.session_id)
    await c.semaphore(sem_name)._release_token(permit.token, permit.session_id, None)
    assert await idle(admin, lock_name) and await idle(admin, sem_name)
    info = await admin.queue(q_name).info()
    assert info is None or info.in_flight == 0


async def test_unary_waits_are_sent_again_across_dropped_connections(connect, admin, name, proxy, transport):
    """The unary transport's counterpart (a failover looks the same to a
    client: the connection drops): a wait that ends UNAVAILABLE is sent
    again with its request_id, back in line, and granted once."""
    if transport != "unary":
        pytest.skip("the stream's re-sending is tested above")
    lock_name, sem_name, q_name, work = name("lock"), name("sem"), name("q"), name("work")
    c = await connect(proxy.addr, session_ttl=5.0)
    other = await connect()
    first = await other.lock(lock_name).acquire()
    sem_held = await other.semaphore(sem_name, 1).acquire()
    lock_wait = asyncio.create_task(c.lock(lock_name).acquire(timeout=30))
    sem_wait = asyncio.create_task(c.semaphore(sem_name, 1).acquire(timeout=30))
    get_wait = asyncio.create_task(c.queue(q_name).get(timeout=30))
    take_wait = asyncio.create_task(c.worker(work, ttl=5).take(timeout=30))
    for _ in range(2):
        await eventually(lambda: _waiters(admin, lock_name, 1), what="lock waiter")
        await eventually(lambda: _waiters(admin, sem_name, 1), what="semaphore waiter")
        assert proxy.drop() > 0
    await eventually(lambda: _waiters(admin, lock_name, 1), what="lock waiter, again")
    await eventually(lambda: _waiters(admin, sem_name, 1), what="semaphore waiter, again")
    session = c.session_id
    await other.lock(lock_name)._release_token(first.token, first.session_id)
    await other.semaphore(sem_name, 1)._release_token(sem_held.token, sem_held.session_id, None)
    await other.queue(q_name).put("item")
    task = await other.create_task(work, "job")
    held = await asyncio.wait_for(lock_wait, 10)
    permit = await asyncio.wait_for(sem_wait, 10)
    item = await asyncio.wait_for(get_wait, 10)
    job = await asyncio.wait_for(take_wait, 10)
    assert held.session_id == session == c.session_id
    assert permit.count == 1 and item.text == "item" and job.id == task.id
    await item.ack()
    await job.complete("done")
    assert await asyncio.wait_for(task, 10) == b"done"
    await c.lock(lock_name)._release_token(held.token, held.session_id)
    await c.semaphore(sem_name)._release_token(permit.token, permit.session_id, None)
    assert await idle(admin, lock_name) and await idle(admin, sem_name)
    info = await admin.queue(q_name).info()
    assert info is None or info.in_flight == 0


async def _reattached(c, breaks):
    return c.session.attached.is_set() and c.session.stream_breaks >= breaks


async def test_wait_deadline_is_kept_across_a_break(connect, admin, name, transport):
    _stream_only(transport)
    n = name("lock")
    c = await connect()
    other = await connect()
    await other.lock(n).acquire()
    loop = asyncio.get_running_loop()
    start = loop.time()
    waiter = asyncio.create_task(c.lock(n).acquire(timeout=2.0))
    await eventually(lambda: _waiters(admin, n, 1), what="the waiter in line")
    await asyncio.sleep(max(0.0, start + 1.0 - loop.time()))
    assert c.session.break_stream()
    with pytest.raises(baton.DeadlineExceededError):
        await asyncio.wait_for(waiter, 10)
    took = loop.time() - start
    # What was left of the deadline (about 1 s), not a fresh 2 s from the
    # re-send (which would end after 3 s).
    assert 1.9 <= took < 2.8, took
    assert c.session.resent >= 1
    await eventually(lambda: _waiters_none(admin, n), what="no waiter left")


async def _waiters_none(admin, n):
    d = await admin.describe(n, missing_ok=True)
    return d is None or d.waiters == 0


# ---- request_id recovery of cancelled waits ------------------------------------


async def test_cancel_while_the_stream_is_broken_recovers_the_grant(connect, admin, name, transport):
    _stream_only(transport)
    n = name("lock")
    c = await connect()
    other = await connect()
    first = await other.lock(n).acquire()
    waiter = asyncio.create_task(c.lock(n).acquire())
    await eventually(lambda: _waiters(admin, n, 1), what="the waiter in line")
    # The grant's answer is lost with the stream, and the caller gives up
    # before the stream is back: the re-send asks with a zero timeout and
    # releases what comes back (GRANT_OUTCOME_REPLAYED).
    dropped = _lose_next_answer(c, "acquire_lock", then=waiter.cancel)
    await other.lock(n)._release_token(first.token, first.session_id)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 10)
    await c._rpc.drain(10)
    assert dropped
    assert c._rpc.cancel_stats["recovered_on_resend"] == 1, dict(c._rpc.cancel_stats)
    await eventually(lambda: idle(admin, n), what="the lock released by the recovery")
    fresh = await admin.lock(n).acquire(timeout=0)
    assert fresh.outcome == "immediate"


async def test_cancels_crossing_grants_never_leak(connect, admin, name, transport):
    """~200 cancels thrown at grants on their way (and, on the stream, breaks
    of the stream among them): every grant that crossed a cancel is given
    back, through the answer or through a retry with the same request_id."""
    n_lock, n_sem, n_q = name("lock"), name("sem"), name("q")
    c = await connect()
    other = await connect()
    r = random.Random(f"{name('seed')}")
    outcomes = collections.Counter()
    lock, sem, q = c.lock(n_lock), c.semaphore(n_sem, 1), c.queue(n_q)
    for i in range(200):
        kind = i % 3
        if kind == 0:
            held = await other.lock(n_lock).acquire()
            task = asyncio.create_task(lock.acquire())
            await asyncio.sleep(r.uniform(0, 0.002))
            release = asyncio.create_task(other.lock(n_lock)._release_token(held.token, held.session_id))
        elif kind == 1:
            permit = await other.semaphore(n_sem, 1).acquire()
            task = asyncio.create_task(sem.acquire())
            await asyncio.sleep(r.uniform(0, 0.002))
            release = asyncio.create_task(other.semaphore(n_sem, 1)._release_token(permit.token, permit.session_id, None))
        else:
            task = asyncio.create_task(q.get_many(2))
            await asyncio.sleep(r.uniform(0, 0.002))
            release = asyncio.create_task(other.queue(n_q).put(f"x{i}"))
        await asyncio.sleep(r.uniform(0, 0.003))
        broke = transport == "stream" and r.random() < 0.25
        if broke:
            breaks = c.session.stream_breaks
            c.session.break_stream()
        task.cancel()
        await release
        try:
            got = await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
            got = None
        if broke:
            outcomes["broken"] += 1
            # Back on a stream before giving anything back: a Release sent on
            # the broken one would end UNAVAILABLE (outcome unknown).
            await eventually(lambda: _reattached(c, breaks + 1), what="re-opened")
        if got is None:
            continue
        outcomes["granted"] += 1
        # Granted before the cancel took: ours to give back.
        if kind == 0:
            await lock.release()
        elif kind == 1:
            await sem.release(got)
        else:
            for it in got:
                await it.ack()
    await c._rpc.drain(10)
    print(f"{dict(outcomes)} {dict(c._rpc.cancel_stats)}")
    # The race was run: cancels took, and cleanups (a grant's answer that
    # won, a recovery by request_id, a wait cancelled on the server) ran.
    assert outcomes["cancelled"] >= 10, outcomes
    assert sum(c._rpc.cancel_stats.values()) >= 10, c._rpc.cancel_stats
    await eventually(lambda: idle(admin, n_lock), timeout=10, what="lock free")
    await eventually(lambda: idle(admin, n_sem), timeout=10, what="semaphore free")
    assert (await admin.lock(n_lock).acquire(timeout=0)).outcome == "immediate"
    assert (await admin.semaphore(n_sem).acquire(timeout=0)).count == 1
    # Every item put is back in the queue or acknowledged: none in flight.
    await eventually(lambda: _nothing_in_flight(admin, n_q), timeout=10, what="no item in flight")


async def _nothing_in_flight(admin, n):
    info = await admin.queue(n).info()
    return info is None or info.in_flight == 0


# ---- acknowledgements riding on the consumer's Gets --------------------------------


async def test_consumer_acks_ride_on_its_gets(connect, admin, name, transport):
    n = name("q")
    c = await connect()
    producer = await connect()
    total = 60
    await producer.queue(n).put_many([f"m{i}" for i in range(total)])
    got: list[str] = []
    async with c.queue(n).consume(prefetch=8) as stream:
        async for item in stream:
            got.append(item.text)
            await item.ack()
            if len(got) == total:
                break
        consumer = stream
    assert got == [f"m{i}" for i in range(total)]
    # Nothing left in flight: every ack reached the server.
    await eventually(lambda: _nothing_in_flight(admin, n), what="nothing in flight")
    info = await admin.queue(n).info()
    assert info is None or (info.in_flight == 0 and info.size == 0 and info.unfinished == 0)
    if transport == "stream":
        assert consumer.acked == total and consumer.ack_failed == []
        # The acks of all but the last batch rode on the next Get (handing
        # out a buffered item does not yield, so no 10 ms flush came first);
        # the rest went out as one Ack at close.
        assert consumer.acks_on_get >= total - 8, (consumer.acks_on_get, consumer.acks_flushed)
        assert consumer.acks_on_get + consumer.acks_flushed == total
    await producer.queue(n).join(timeout=5)


async def test_consumer_close_flushes_acks_and_nacks_the_rest(connect, admin, name, transport):
    n = name("q")
    c = await connect()
    q = c.queue(n)
    await q.put_many(["a", "b", "c", "d", "e"])
    stream = q.consume(prefetch=5)
    first = await stream.__anext__()
    second = await stream.__anext__()
    await eventually(lambda: _buffered(stream, 3), what="3 received and not handed out")
    await first.ack()
    await stream.close()
    # Acked: gone; handed out and not acked: ours; the three others: back.
    info = await q.info()
    assert info.in_flight == 1 and info.size == 3 and info.total_acked == 1
    await second.ack()
    await eventually(lambda: _nothing_in_flight(admin, n), what="nothing in flight")


async def _buffered(stream, k):
    return stream.buffered >= k


async def test_consumer_ack_with_no_get_following_is_flushed_after_10_ms(connect, admin, name, transport):
    if transport != "stream":
        pytest.skip("acks ride on Gets on the session stream; the unary consumer acks each item")
    n = name("q")
    c = await connect()
    q = c.queue(n)
    await q.put_many(["a", "b", "c"])
    async with q.consume(prefetch=3) as stream:
        first = await stream.__anext__()
        await first.ack()  # no Get follows: two items are still buffered
        assert stream.acks_flushed == 0
        await eventually(lambda: _acked(stream, 1), timeout=5, what="the lone ack flushed")
        assert stream.acks_flushed == 1 and stream.acks_on_get == 0
        info = await admin.queue(n).info()
        assert info.total_acked == 1 and info.in_flight == 2
        for _ in range(2):
            await (await stream.__anext__()).ack()
    await eventually(lambda: _nothing_in_flight(admin, n), what="nothing in flight")
    assert stream.acked == 3


async def _acked(stream, k):
    return stream.acked >= k
