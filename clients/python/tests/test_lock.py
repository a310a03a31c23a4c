"""Lock: asyncio.Lock semantics against a real server."""

import asyncio

import pytest

import baton
from helpers import eventually, idle


async def test_async_with_yields_fencing_token_and_releases(client, admin, name):
    n = name("lock")
    async with client.lock(n) as held:
        assert held.fence == held.token > 0
        assert held.outcome == "immediate"
        d = await admin.describe(n)
        assert [h.token for h in d.holders] == [held.token]
        assert d.holders[0].session_id == client.session_id
    assert await idle(admin, n)


async def test_tokens_increase_across_grants(client, name):
    lock = client.lock(name("lock"))
    tokens = []
    for _ in range(3):
        h = await lock.acquire()
        tokens.append(h.fence)
        await lock.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


async def test_zero_timeout_on_held_lock_raises_timeout_error(client, connect, name):
    n = name("lock")
    other = await connect()
    async with client.lock(n):
        with pytest.raises(TimeoutError) as e:
            await other.lock(n).acquire(timeout=0)
        assert isinstance(e.value, baton.DeadlineExceededError)
        with pytest.raises(TimeoutError):
            await other.lock(n).acquire(timeout=0.05)


async def test_waiters_are_granted_in_arrival_order(client, connect, name):
    n = name("lock")
    others = [await connect() for _ in range(3)]
    order: list[int] = []
    holder = client.lock(n)
    await holder.acquire()

    async def contender(i: int, c: baton.Client) -> None:
        async with c.lock(n) as held:
            assert held.outcome == "after_wait"
            order.append(i)

    tasks = []
    for i, c in enumerate(others):
        tasks.append(asyncio.create_task(contender(i, c)))
        await eventually(lambda: _waiters(client, n, i + 1), what=f"{i + 1} waiters")
    await holder.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def _waiters(client, n, count):
    d = await client.describe(n, missing_ok=True)
    return d is not None and d.waiters == count


async def test_one_lock_object_shared_by_tasks_excludes(client, name):
    lock = client.lock(name("lock"))
    inside = 0
    peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        for _ in range(5):
            async with lock:
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.002)
                inside -= 1

    await asyncio.gather(*(worker() for _ in range(4)))
    assert peak == 1


async def test_exception_in_block_still_releases(client, admin, name):
    n = name("lock")
    with pytest.raises(ZeroDivisionError):
        async with client.lock(n):
            1 / 0
    assert await idle(admin, n)


async def test_release_without_holding_is_runtime_error(client, name):
    with pytest.raises(RuntimeError):
        await client.lock(name("lock")).release()


async def test_lease_only_lock_expires_without_refresh(client, admin, name):
    n = name("lock")
    lock = client.lock(n, ttl=0.3, session=False)
    h = await lock.acquire()
    assert h.session_id == 0 and h.expires_in is not None
    await eventually(lambda: idle(admin, n), timeout=3, what="lease expiry")
    with pytest.raises(baton.FailedPreconditionError):
        await lock.release()


async def test_refresh_extends_lease(client, admin, name):
    n = name("lock")
    lock = client.lock(n, ttl=0.4)
    await lock.acquire()
    for _ in range(4):
        await asyncio.sleep(0.2)
        left = await lock.refresh(1.0)
        assert 0.5 < left <= 1.0
    assert not await idle(admin, n)
    await lock.release()


async def test_request_id_replays_the_grant(client, name):
    n = name("lock")
    a = client.lock(n)
    b = client.lock(n)
    h1 = await a.acquire(request_id="migrate-1")
    h2 = await b.acquire(request_id="migrate-1", timeout=0)
    assert h2.outcome == "replayed" and h2.token == h1.token
    await a.release()


async def test_closing_the_client_releases_its_locks(connect, admin, name):
    n = name("lock")
    c = await connect()
    await c.lock(n).acquire()
    await c.close()
    assert await idle(admin, n)
    async with admin.lock(n) as held:
        assert held.outcome == "immediate"


async def test_bad_name_is_value_error(client):
    with pytest.raises(ValueError) as e:
        await client.lock("not a name").acquire()
    assert isinstance(e.value, baton.InvalidArgumentError)


async def test_name_of_another_kind_is_failed_precondition(client, name):
    n = name("x")
    await client.event(n).set()
    with pytest.raises(baton.FailedPreconditionError):
        await client.lock(n).acquire(timeout=0)
    await client.event(n).clear()
