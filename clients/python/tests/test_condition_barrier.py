"""Condition and Barrier against a real server."""

import asyncio

import pytest

import baton
from helpers import eventually, idle


async def test_condition_wait_notify(client, connect, admin, name):
    lock = name("lock")
    other = await connect()
    items: list[str] = []  # the state the condition guards (shared here for the test)

    async def consumer() -> str:
        async with other.condition("non-empty", lock=lock) as cond:
            await cond.wait_for(lambda: items)
            assert cond.locked()
            return items.pop()

    t = asyncio.create_task(consumer())
    await eventually(lambda: _cond_waiters(admin, lock, 1), what="condition waiter")
    async with client.condition("non-empty", lock=lock) as cond:
        items.append("order-1")
        assert await cond.notify() == 1
    assert await asyncio.wait_for(t, 5) == "order-1"
    assert await idle(admin, lock)


async def _cond_waiters(admin, lock, k):
    d = await admin.describe(lock, missing_ok=True)
    return d is not None and sum(c.waiters for c in d.conditions) == k


async def test_condition_wait_gives_new_fencing_token(client, name):
    async with client.condition("c", lock=name("lock")) as cond:
        before = cond.lock.fence
        assert await cond.wait(timeout=0.05) is False  # timed out, lock held again
        assert cond.locked() and cond.lock.fence > before


async def test_condition_notify_all_wakes_everyone(client, connect, admin, name):
    lock = name("lock")
    others = [await connect() for _ in range(3)]

    async def waiter(c):
        async with c.condition("go", lock=lock) as cond:
            return await cond.wait(timeout=10)

    tasks = [asyncio.create_task(waiter(c)) for c in others]
    await eventually(lambda: _cond_waiters(admin, lock, 3), what="3 condition waiters")
    async with client.condition("go", lock=lock) as cond:
        assert await cond.notify_all() == 3
    assert await asyncio.gather(*tasks) == [True, True, True]


async def test_condition_wait_for_with_timeout_returns_false_value(client, name):
    async with client.condition("c", lock=name("lock")) as cond:
        assert await cond.wait_for(lambda: 0, timeout=0.1) == 0
        assert cond.locked()


async def test_async_predicate(client, name):
    calls = 0

    async def pred():
        nonlocal calls
        calls += 1
        return calls >= 2

    async with client.condition("c", lock=name("lock")) as cond:
        assert await cond.wait_for(pred, timeout=5) is True


async def test_notify_without_lock_is_runtime_error(client, name):
    with pytest.raises(RuntimeError):
        await client.condition("c", lock=name("lock")).notify()


async def test_condition_on_a_lock_object(client, name):
    lock = client.lock(name("lock"))
    cond = client.condition("c", lock=lock)
    async with cond:
        assert lock.locked()
    assert not lock.locked()


async def test_barrier_releases_parties_together(connect, admin, name):
    n = name("barrier")
    clients = [await connect() for _ in range(3)]
    indexes = await asyncio.gather(*(c.barrier(n, 3).wait(timeout=10) for c in clients))
    assert sorted(indexes) == [0, 1, 2]
    # A second cycle.
    indexes = await asyncio.gather(*(c.barrier(n, 3).wait(timeout=10) for c in clients))
    assert sorted(indexes) == [0, 1, 2]
    b = clients[0].barrier(n, 3)
    assert (await b.state()).broken is False


async def test_barrier_timeout_breaks_it_until_reset(client, connect, name):
    n = name("barrier")
    other = await connect()
    b = client.barrier(n, 2)
    with pytest.raises(TimeoutError):
        await b.wait(timeout=0.05)
    st = await b.state()
    assert st.broken and st.parties == 2
    with pytest.raises(asyncio.BrokenBarrierError) as e:
        await other.barrier(n).wait(timeout=1)
    assert isinstance(e.value, baton.BrokenBarrierError)
    await b.reset()
    results = await asyncio.gather(b.wait(timeout=5), other.barrier(n, 2).wait(timeout=5))
    assert sorted(results) == [0, 1]


async def test_barrier_abort_ends_waiters(client, connect, admin, name):
    n = name("barrier")
    other = await connect()
    waiting = asyncio.create_task(other.barrier(n, 3).wait())
    await eventually(lambda: _arrived(admin, n, 1), what="one arrived")
    assert await client.barrier(n).abort() == 1
    with pytest.raises(baton.BrokenBarrierError):
        await waiting
    await client.barrier(n).reset()


async def _arrived(admin, n, k):
    d = await admin.describe(n, missing_ok=True)
    return d is not None and d.barrier.arrived == k


async def test_barrier_cancelled_waiter_breaks_it(client, admin, name):
    n = name("barrier")
    t = asyncio.create_task(client.barrier(n, 2).wait())
    await eventually(lambda: _arrived(admin, n, 1), what="one arrived")
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    await eventually(lambda: _broken(admin, n), what="broken")
    await client.barrier(n).reset()


async def _broken(admin, n):
    d = await admin.describe(n, missing_ok=True)
    return d is not None and d.barrier.broken


async def test_barrier_parties_mismatch(client, name):
    n = name("barrier")
    t = asyncio.create_task(client.barrier(n, 2).wait())
    await asyncio.sleep(0.05)
    with pytest.raises(baton.FailedPreconditionError):
        await client.barrier(n, 5).wait(timeout=0)
    t.cancel()
    with pytest.raises((asyncio.CancelledError, baton.BrokenBarrierError)):
        await t
    await client.barrier(n).reset()
