"""The client's session: keep-alive, reconnect within the TTL, and loss."""

import asyncio

import pytest

import baton
from baton.session import KeepAliveSession
from baton.v1 import session_pb2
from helpers import eventually, idle


async def _holder_session(admin, n):
    d = await admin.describe(n, missing_ok=True)
    return d.holders[0].session_id if d and d.holders else None


async def test_session_outlives_its_ttl_while_connected(connect, admin, name):
    n = name("lock")
    c = await connect(session_ttl=1.0, label="short-ttl")
    await c.lock(n).acquire()
    await asyncio.sleep(2.5)
    assert await _holder_session(admin, n) == c.session_id
    d = await c.describe_session()
    assert d.label == "short-ttl" and d.open_streams == 1


async def test_broken_stream_is_reopened_with_the_same_session(connect, admin, name):
    n = name("lock")
    c = await connect(session_ttl=1.5)
    await c.lock(n).acquire()
    sid = c.session_id
    for i in range(3):
        assert c.session.break_stream()
        await eventually(
            lambda: _reattached(c, breaks=i + 1),
            what=lambda: f"stream re-opened after break {i + 1}: {c.session.stream_breaks} breaks, task {c.session._task}",
        )
    assert c.session.stream_breaks >= 3
    await asyncio.sleep(2.0)  # longer than the TTL: only the re-opened stream keeps it
    assert c.session_id == sid and not c.session_lost.is_set()
    assert await _holder_session(admin, n) == sid
    assert (await admin.describe_session(sid)).open_streams == 1


async def _reattached(c, breaks=0):
    return c.session.attached.is_set() and c.session.stream_breaks >= breaks


class _CutBeforeHeaders:
    """Stands in for a session's stub: each of the next `count` streams it
    opens is cancelled (as break_stream() does) while the session's first
    write() on it waits for the stream's headers to go out."""

    def __init__(self, stub, method, count):
        self._stub, self._method, self.left = stub, method, count

    def __getattr__(self, attr):
        real = getattr(self._stub, attr)
        if attr != self._method:
            return real

        def open_stream(*args, **kwargs):
            call = real(*args, **kwargs)
            if self.left > 0:
                self.left -= 1
                write = call.write

                async def write_then_cut(request):
                    pending = asyncio.ensure_future(write(request))
                    await asyncio.sleep(0)  # the write now waits for the headers
                    call.cancel()
                    return await pending

                call.write = write_then_cut
            return call

        return open_stream


async def test_stream_broken_before_its_headers_went_out_is_reopened(connect, admin, name):
    # grpc.aio never ends a write() that waits for the headers of a stream
    # cancelled meanwhile; the session used to wait on it for ever (and lose
    # the session after its TTL) instead of opening the next stream.
    n = name("lock")
    c = await connect(session_ttl=1.5)
    await c.lock(n).acquire()
    sid = c.session_id
    method = "KeepAliveStream" if isinstance(c.session, KeepAliveSession) else "Connect"
    cutter = _CutBeforeHeaders(c.session._stub, method, count=3)
    c.session._stub = cutter
    assert c.session.break_stream()
    await eventually(
        lambda: _reattached(c, breaks=4),
        what=lambda: f"stream re-opened: {c.session.stream_breaks} breaks, task {c.session._task}",
    )
    assert cutter.left == 0
    await asyncio.sleep(2.0)  # longer than the TTL: only the re-opened stream keeps it
    assert c.session_id == sid and not c.session_lost.is_set()
    assert await _holder_session(admin, n) == sid


async def test_dropped_connection_reconnects_within_ttl(connect, admin, name, proxy):
    n = name("lock")
    c = await connect(proxy.addr, session_ttl=2.0)
    lock = c.lock(n)
    held = await lock.acquire()
    for i in range(2):
        assert proxy.drop() > 0
        await eventually(lambda: _reattached(c, breaks=i + 1), what="reconnected")
    await asyncio.sleep(2.5)
    assert not c.session_lost.is_set()
    d = await admin.describe(n)
    assert [(h.session_id, h.token) for h in d.holders] == [(c.session_id, held.token)]
    # The client works as before.
    await lock.release()
    await c.event(name("ev")).set()


async def test_wait_pending_when_the_connection_drops_fails_unavailable(connect, name, proxy):
    c = await connect(proxy.addr, session_ttl=5.0)
    wait = asyncio.create_task(c.event(name("ev")).wait())
    await asyncio.sleep(0.2)
    proxy.drop()
    with pytest.raises(baton.UnavailableError):
        await asyncio.wait_for(wait, 10)
    await eventually(lambda: _reattached(c, breaks=1), what="reconnected")
    assert not await c.event(name("ev")).is_set()


async def test_session_closed_elsewhere_is_lost_and_replaced(connect, admin, name):
    n = name("lock")
    reported: list[baton.SessionLostError] = []
    c = await connect(session_ttl=30, probe_interval=0.2, on_session_lost=reported.append)
    seen: list[baton.SessionLostError] = []
    c.on_session_lost(seen.append)
    old_sid = c.session_id
    held = await c.lock(n).acquire()
    sem = await c.semaphore(name("sem"), 2).acquire()
    assert not held.lost.is_set() and held.lost_reason is None
    ev = name("ev")
    parked = asyncio.create_task(c.event(ev).wait())
    next_loss = asyncio.create_task(c.wait_session_lost())
    await eventually(lambda: _has_waiter(admin, ev), what="the parked wait")
    await admin.stubs.sessions.Close(session_pb2.CloseSessionRequest(session_id=old_sid))
    # The holdings fire their lost signal, with the reason.
    await asyncio.wait_for(held.lost.wait(), 5)
    await asyncio.wait_for(sem.lost.wait(), 5)
    assert isinstance(held.lost_reason, baton.SessionLostError)
    assert isinstance(await asyncio.wait_for(next_loss, 5), baton.SessionLostError)
    assert c.session_lost.is_set() and c.sessions_lost == 1
    assert len(seen) == 1 and len(reported) == 1 and isinstance(seen[0], baton.SessionLostError)
    # The pending operation ends with the session-lost error.
    with pytest.raises(baton.SessionLostError):
        await asyncio.wait_for(parked, 5)
    # A new session serves the operations that follow.
    again = await asyncio.wait_for(c.lock(n).acquire(timeout=5), 10)
    assert c.session_id != old_sid and again.session_id == c.session_id
    assert await _holder_session(admin, n) == c.session_id
    assert (await admin.describe_session(c.session_id)).open_streams == 1
    with pytest.raises(baton.NotFoundError):
        await admin.describe_session(old_sid)
    late: list[baton.SessionLostError] = []
    c.on_session_lost(late.append)  # registered after the fact: only for later losses
    assert late == [] and len(seen) == 1


async def _has_waiter(admin, n):
    d = await admin.describe(n, missing_ok=True)
    return d is not None and d.waiters >= 1


async def test_async_session_lost_callback_runs(connect, admin):
    c = await connect(probe_interval=0.2)
    called = asyncio.Event()

    async def on_lost(err: baton.SessionLostError) -> None:
        called.set()

    c.on_session_lost(on_lost)
    await admin.stubs.sessions.Close(session_pb2.CloseSessionRequest(session_id=c.session_id))
    await asyncio.wait_for(called.wait(), 5)


async def test_blackout_longer_than_ttl_loses_the_session(connect, admin, name, proxy):
    n = name("lock")
    c = await connect(proxy.addr, session_ttl=1.0, probe_interval=0.2)
    held = await c.lock(n).acquire()
    old_sid = c.session_id
    proxy.blackout(True)
    await eventually(lambda: idle(admin, n), timeout=5, what="the session to expire")
    await asyncio.wait_for(held.lost.wait(), 10)
    assert isinstance(held.lost_reason, baton.SessionLostError)
    proxy.blackout(False)
    await asyncio.wait_for(c.session_lost.wait(), 10)
    # Back in contact: a new session for what follows.
    assert not await c.event(name("ev")).is_set()
    assert c.session_id != old_sid
    again = await c.lock(n).acquire(timeout=5)
    assert again.session_id == c.session_id and not again.lost.is_set()


async def test_close_ends_the_session_and_is_idempotent(connect, admin, name):
    c = await connect()
    sid = c.session_id
    await c.semaphore(name("sem"), 2).acquire()
    await c.close()
    await c.close()
    with pytest.raises(baton.NotFoundError):
        await admin.describe_session(sid)
    with pytest.raises(baton.ClientClosedError):
        await c.lock(name("lock")).acquire()


async def test_async_with_client(addr, transport, client_kwargs, name):
    async with baton.Client(addr, transport=transport, **client_kwargs) as c:
        async with c.lock(name("lock")) as held:
            assert held.fence > 0
    with pytest.raises(baton.ClientClosedError):
        await c.event(name("ev")).set()


async def test_connecting_to_nothing_raises_unavailable(transport):
    with pytest.raises(baton.UnavailableError):
        await asyncio.wait_for(baton.connect("127.0.0.1:1", transport=transport), 10)


async def test_keep_alive_once_reports_time_left(client):
    left = await client.session.keep_alive_once()
    # While a stream holds the session, the server reports no expiry.
    assert left >= 0


async def test_connect_returns_once_a_stream_holds_the_session(connect, admin):
    # On the unary transport connect() used to return right after
    # Sessions/Open, before the keep-alive stream was attached: the session
    # then lived on its bare TTL, which the caller's first calls (and, on a
    # loaded machine, the attach itself) ate into; a break in that window let
    # a short-TTL session expire (test_broken_stream_is_reopened_with_the_same_session[unary]).
    for _ in range(5):
        c = await connect(session_ttl=1.0)
        assert c.session.attached.is_set()
        d = await admin.describe_session(c.session_id)
        assert d.open_streams == 1 and not d.HasField("expires_in"), d
        await c.close()
