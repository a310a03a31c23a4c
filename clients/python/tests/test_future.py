"""Future against a real server."""

import asyncio

import pytest

import baton


async def test_await_returns_result_set_elsewhere(client, connect, name):
    n = name("f")
    other = await connect()
    waiting = asyncio.create_task(other.future(n, codec=baton.TEXT).result())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert await client.future(n).set_result("42 rows") == 1
    assert await waiting == "42 rows"
    assert await other.future(n) == b"42 rows"  # RAW codec: bytes
    assert await client.future(n).done()


async def test_set_twice_is_invalid_state(client, name):
    f = client.future(name("f"))
    await f.set_result("once")
    with pytest.raises(asyncio.InvalidStateError) as e:
        await f.set_result("twice")
    assert isinstance(e.value, baton.InvalidStateError)
    assert not await f.cancel()


async def test_exception_is_raised_to_awaiters(client, name):
    f = client.future(name("f"))
    await f.set_exception(ValueError("no data"), code=422)
    with pytest.raises(baton.RemoteError) as e:
        await f
    assert e.value.error_code == 422 and "no data" in e.value.message
    exc = await f.exception()
    assert isinstance(exc, baton.RemoteError)


async def test_cancel_pending_future(client, connect, name):
    n = name("f")
    other = await connect()
    waiting = asyncio.create_task(other.future(n).result())
    await asyncio.sleep(0.05)
    assert await client.future(n).cancel()
    with pytest.raises(baton.RemoteCancelledError):
        await waiting
    assert await client.future(n).cancelled()


async def test_pending_future_with_timeout(client, name):
    f = client.future(name("f"))
    assert not await f.done()
    with pytest.raises(TimeoutError):
        await f.result(timeout=0.05)


async def test_json_future(client, name):
    f = client.future(name("f"), codec=baton.JSON)
    await f.set_result({"total": 42})
    o = await f.outcome()
    assert o.state == "result" and o.value == {"total": 42}
