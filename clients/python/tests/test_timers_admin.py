"""Timers and the Admin view."""

import asyncio
import datetime
import time

import pytest

import baton
from baton.v1 import common_pb2


async def test_call_later_sets_an_event(client, name):
    ev = client.event(name("ev"))
    h = await client.call_later(0.2, ev.set, name=name("timer"))
    assert 0 < h.due_in <= 0.2
    assert not await ev.is_set()
    assert await ev.wait(timeout=5)
    info = await h.info()
    assert info.fired == 1 and info.action.startswith("set_event")
    assert not await h.cancel()  # a fired one-shot timer


async def test_call_at_sets_a_future(client, name):
    f = client.future(name("f"))
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.2)
    await client.call_at(when, f.set_result, "at time")
    assert await f.result(timeout=5) == b"at time"
    # A POSIX timestamp works too, and a clear_event action.
    ev = client.event(name("ev"))
    await ev.set()
    await client.call_at(time.time() + 0.1, ev.clear)
    for _ in range(100):
        if not await ev.is_set():
            break
        await asyncio.sleep(0.02)
    assert not await ev.is_set()


async def test_call_every_puts_items_until_cancelled(client, name):
    q = client.queue(name("q"))
    h = await client.call_every(0.1, q.put, "beat", priority=3)
    items = [await q.get(timeout=5) for _ in range(3)]
    assert [i.text for i in items] == ["beat"] * 3
    assert await h.cancel()
    assert h.fired >= 3


async def test_timer_submits_a_task(client, connect, name):
    wq = name("work")
    await client.call_later(0.05, client.create_task, wq, "from a timer")
    job = await (await connect()).worker(wq).take(timeout=5)
    assert job.text == "from a timer"
    await job.complete()


async def test_action_objects_and_replace(client, name):
    tname = name("timer")
    ev = name("ev")
    await client.call_later(60, baton.SetEvent(ev), name=tname)
    with pytest.raises(baton.FailedPreconditionError):
        await client.call_later(60, baton.SetEvent(ev), name=tname)
    h = await client.call_later(0.05, baton.SetEvent(ev), name=tname, replace=True)
    assert await client.event(ev).wait(timeout=5)
    assert h.name == tname


async def test_unsupported_callback_is_type_error(client):
    with pytest.raises(TypeError):
        await client.call_later(1, print, "hello")


async def test_ls_filters_by_prefix_and_kind(client, name):
    prefix = name("ls") + "/"
    async with client.lock(prefix + "lock"):
        await client.event(prefix + "ev").set()
        q = client.queue(prefix + "q")
        await q.put("x")
        names = [(r.name, r.kind) for r in await client.ls(prefix)]
        assert names == [(prefix + "ev", "event"), (prefix + "lock", "lock"), (prefix + "q", "queue")]
        locks = await client.ls(prefix, kind="lock")
        assert [(r.name, r.holders) for r in locks] == [(prefix + "lock", 1)]
    await client.event(prefix + "ev").clear()


async def test_ls_follows_pages(client, name):
    prefix = name("many") + "/"
    for i in range(12):
        await client.event(f"{prefix}{i:02d}").set()
    from baton import admin

    got = await admin.ls(client, prefix, page_size=5)
    assert [r.name for r in got] == [f"{prefix}{i:02d}" for i in range(12)]
    for i in range(12):
        await client.event(f"{prefix}{i:02d}").clear()


async def test_describe_shows_holders_and_waiters(client, connect, name):
    n = name("lock")
    other = await connect()
    lock = client.lock(n)
    held = await lock.acquire(request_id="migrate-1")
    t = asyncio.create_task(other.lock(n).acquire())
    await asyncio.sleep(0.1)
    d = await client.describe(n)
    assert d.kind == common_pb2.RESOURCE_KIND_LOCK
    assert [(h.token, h.session_id, h.request_id) for h in d.holders] == [
        (held.token, client.session_id, "migrate-1")
    ]
    assert d.waiters == 1 and d.last_token == held.token
    await lock.release()
    await t
    with pytest.raises(baton.NotFoundError):
        await client.describe(name("never-used"))
    assert await client.describe(name("never-used"), missing_ok=True) is None


async def test_bad_kind_is_value_error(client):
    with pytest.raises(ValueError):
        await client.ls(kind="mutex")
