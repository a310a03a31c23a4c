"""Semaphore and Event against a real server."""

import asyncio

import pytest

import baton
from helpers import eventually, idle


async def test_semaphore_limits_concurrency(connect, admin, name):
    n = name("sem")
    clients = [await connect() for _ in range(3)]
    inside = 0
    peak = 0

    async def worker(c: baton.Client) -> None:
        nonlocal inside, peak
        sem = c.semaphore(n, 2)
        for _ in range(4):
            async with sem as h:
                assert h.count == 1
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.005)
                inside -= 1

    await asyncio.gather(*(worker(c) for c in clients))
    assert peak == 2
    assert await idle(admin, n)


async def test_weighted_acquire_and_partial_release(client, admin, name):
    n = name("sem")
    sem = client.semaphore(n, 5)
    h = await sem.acquire(3)
    assert (h.count, h.available) == (3, 2)
    assert await sem.available() == 2
    assert await sem.release(h, count=1) == 2
    assert await sem.available() == 3
    with pytest.raises(TimeoutError):
        await client.semaphore(n).acquire(4, timeout=0)
    assert await sem.release() == 0
    assert await idle(admin, n)


async def test_capacity_mismatch_and_bad_count(client, name):
    n = name("sem")
    sem = client.semaphore(n, 2)
    await sem.acquire()
    with pytest.raises(baton.FailedPreconditionError):
        await client.semaphore(n, 3).acquire(timeout=0)
    with pytest.raises(baton.InvalidArgumentError):
        await client.semaphore(n).acquire(5)
    await sem.release()


async def test_big_request_at_head_is_not_starved(client, connect, name):
    n = name("sem")
    other = await connect()
    sem = client.semaphore(n, 3)
    small = await sem.acquire(1)
    big = asyncio.create_task(other.semaphore(n).acquire(3))
    await eventually(lambda: _waiters(client, n, 1), what="big waiter")
    with pytest.raises(TimeoutError):  # FIFO, no barging past the big one
        await client.semaphore(n).acquire(1, timeout=0.05)
    await sem.release(small)
    h = await asyncio.wait_for(big, 5)
    assert h.count == 3 and h.outcome == "after_wait"


async def _waiters(c, n, k):
    d = await c.describe(n, missing_ok=True)
    return d is not None and d.waiters == k


async def test_semaphore_lease_refresh(client, name):
    sem = client.semaphore(name("sem"), 1, ttl=0.5)
    h = await sem.acquire()
    assert h.expires_in is not None
    left = await sem.refresh(h, 2.0)
    assert 1.5 < left <= 2.0
    await sem.release(h)


async def test_semaphore_release_without_holding(client, name):
    with pytest.raises(RuntimeError):
        await client.semaphore(name("sem"), 1).release()


async def test_semaphore_delete(client, name):
    n = name("sem")
    sem = client.semaphore(n, 2)
    h = await sem.acquire()
    with pytest.raises(baton.FailedPreconditionError):
        await sem.delete()
    await sem.release(h)
    assert await sem.delete() is True
    with pytest.raises(baton.NotFoundError):
        await client.describe(n)
    assert await sem.delete() is False
    again = client.semaphore(n, 3)
    h = await again.acquire(3)
    assert (h.count, h.available) == (3, 0)
    await again.release(h)
    assert await again.delete() is True


async def test_event_wait_set_clear(client, connect, name):
    n = name("ev")
    other = await connect()
    ev = client.event(n)
    assert not await ev.is_set()
    waiters = [asyncio.create_task(other.event(n).wait()) for _ in range(3)]
    await eventually(lambda: _waiters(client, n, 3), what="3 waiters")
    assert await ev.set() == 3
    assert all(await asyncio.gather(*waiters))
    assert await ev.is_set()
    assert await other.event(n).wait(timeout=0)
    await ev.clear()
    assert not await ev.is_set()
    with pytest.raises(TimeoutError):
        await ev.wait(timeout=0.05)


async def test_event_watch_streams_changes(client, connect, name):
    n = name("ev")
    other = await connect()
    seen: list[bool] = []
    got_two = asyncio.Event()

    async def watch() -> None:
        async for state in other.event(n).watch():
            seen.append(state)
            if len(seen) >= 3:
                got_two.set()
                return

    t = asyncio.create_task(watch())
    await eventually(lambda: _watchers(client, n), what="watcher")
    await client.event(n).set()
    await asyncio.sleep(0.05)
    await client.event(n).clear()
    await asyncio.wait_for(got_two.wait(), 5)
    await t
    assert seen == [False, True, False]


async def _watchers(c, n):
    d = await c.describe(n, missing_ok=True)
    return d is not None and d.watchers == 1
