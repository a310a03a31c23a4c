"""Behaviour of every Baton service over real gRPC, one property per test.

Each test uses its own resource names, so tests share one server per module.
The expected behaviour is the contract written in proto/baton/v1/*.proto and
the semantics of docs DESIGN §3; the comments cite the rule being checked.
"""

import asyncio
import time

import grpc
import pytest

from baton_helpers import (
    wait_until_reclaimed,
    AFTER_WAIT,
    EV_CLEAR,
    EV_SET,
    IMMEDIATE,
    KIND_EVENT,
    KIND_LOCK,
    KIND_SEMAPHORE,
    REPLAYED,
    SC,
    BatondProcess,
    Client,
    admin_pb2,
    dur,
    event_pb2,
    event_wait,
    expect_status,
    health_pb2,
    is_idle,
    fmt_desc,
    lock_pb2,
    semaphore_pb2,
    lock_release,
    lock_req,
    poll_until,
    sem_release,
    sem_req,
    session_pb2,
    to_s,
    unique,
)

UNKNOWN_SESSION = 0x7FFF_FFFF_FFFF_FF01  # never handed out by a fresh server


async def waiters_of(client, name):
    d = await client.describe(name)
    return 0 if d is None else d.waiters


async def wait_for_waiters(client, name, n, timeout=5.0):
    async def check():
        return (await waiters_of(client, name)) == n

    await poll_until(check, timeout, what=f"{name} to have {n} waiter(s)")


async def wait_until_idle(client, name, capacity=None, timeout=5.0):
    async def check():
        d = await client.describe(name)
        return is_idle(d, capacity)

    try:
        await poll_until(check, timeout, what=f"{name} to be idle")
    except AssertionError:
        raise AssertionError(f"{name} not idle after {timeout}s: {fmt_desc(await client.describe(name))}")


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------


async def test_health_check_reports_serving(client):
    resp = await client.health.Check(health_pb2.HealthCheckRequest())
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------


async def test_session_open_describe_keepalive_close(client):
    opened = await client.sessions.Open(session_pb2.OpenSessionRequest(ttl=dur(30), label="billing-worker-7"))
    sid = opened.session_id
    assert sid != 0
    assert to_s(opened.ttl) == 30

    d = await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
    assert d.session_id == sid
    assert d.label == "billing-worker-7"
    assert to_s(d.ttl) == 30
    assert d.HasField("expires_in") and 25 < to_s(d.expires_in) <= 30
    assert d.open_streams == 0
    assert 0 <= to_s(d.age) < 10

    k = await client.sessions.KeepAlive(session_pb2.KeepAliveRequest(session_id=sid))
    assert k.session_id == sid
    assert k.state == session_pb2.SESSION_STATE_ALIVE
    assert 25 < to_s(k.expires_in) <= 30

    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
    await expect_status(client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid)), SC.NOT_FOUND)
    await expect_status(client.sessions.KeepAlive(session_pb2.KeepAliveRequest(session_id=sid)), SC.NOT_FOUND)
    await expect_status(client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid)), SC.NOT_FOUND)

    # Session ids are never reused.
    again = await client.open_session(30)
    assert again != sid
    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=again))


@pytest.mark.parametrize(
    "ttl,label",
    [
        (None, "no-ttl"),
        (0.0, "zero-ttl"),
        (0.5, "under-1s"),
        (-5.0, "negative"),
        (2 * 3600.0, "over-1h-maximum"),
        (30.0, "x" * 257),
    ],
    ids=["missing", "zero", "half-second", "negative", "two-hours", "label-257-bytes"],
)
async def test_session_open_rejects_bad_ttl_or_label(client, ttl, label):
    req = session_pb2.OpenSessionRequest(label=label)
    if ttl is not None:
        req.ttl.CopyFrom(dur(ttl))
    await expect_status(client.sessions.Open(req), SC.INVALID_ARGUMENT)


async def test_unknown_session_is_not_found(client):
    await expect_status(
        client.sessions.KeepAlive(session_pb2.KeepAliveRequest(session_id=UNKNOWN_SESSION)), SC.NOT_FOUND
    )
    await expect_status(
        client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=UNKNOWN_SESSION)), SC.NOT_FOUND
    )
    await expect_status(client.locks.Acquire(lock_req(unique("t/unknown-session"), UNKNOWN_SESSION)), SC.NOT_FOUND)
    await expect_status(
        client.semaphores.Acquire(sem_req(unique("t/unknown-session"), 2, 1, UNKNOWN_SESSION)), SC.NOT_FOUND
    )


async def test_session_close_releases_holdings_and_aborts_waits(client):
    s1 = await client.open_session(60, "doomed")
    s2 = await client.open_session(60, "survivor")
    held_lock, contended_lock = unique("t/close-held"), unique("t/close-contended")
    sem, ev = unique("t/close-sem"), unique("t/close-event")

    await client.locks.Acquire(lock_req(held_lock, s1))
    await client.semaphores.Acquire(sem_req(sem, 3, 2, s1))
    other = await client.locks.Acquire(lock_req(contended_lock, s2))

    lock_wait = asyncio.ensure_future(client.locks.Acquire(lock_req(contended_lock, s1, timeout=15)))
    event_wait_call = asyncio.ensure_future(client.events.Wait(event_wait(ev, timeout=15, sid=s1)))
    await wait_for_waiters(client, contended_lock, 1)
    await wait_for_waiters(client, ev, 1)

    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=s1))

    await expect_status(lock_wait, SC.ABORTED)
    await expect_status(event_wait_call, SC.ABORTED)
    await wait_until_idle(client, held_lock)
    await wait_until_idle(client, sem, capacity=3)
    await wait_until_idle(client, ev)
    d = await client.describe(contended_lock)
    assert d is not None and d.waiters == 0 and [h.session_id for h in d.holders] == [s2], fmt_desc(d)

    # The ended session can no longer be used.
    await expect_status(client.locks.Acquire(lock_req(held_lock, s1)), SC.NOT_FOUND)
    await client.locks.Release(lock_release(contended_lock, other.token, s2))
    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=s2))


async def test_session_expiry_releases_holdings(client):
    sid = await client.open_session(1.0, "short-lived")
    name = unique("t/session-expiry")
    await client.locks.Acquire(lock_req(name, sid))

    async def gone():
        try:
            await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
            return False
        except grpc.aio.AioRpcError as e:
            assert e.code() == SC.NOT_FOUND, e
            return True

    await poll_until(gone, timeout=5.0, interval=0.05, what="a 1 s session without keep-alives to expire")
    await wait_until_idle(client, name)


async def test_keepalive_stream_keeps_session_alive_and_ttl_restarts_when_it_closes(client):
    sid = await client.open_session(1.0, "streamed")
    name = unique("t/keepalive-stream")
    await client.locks.Acquire(lock_req(name, sid))

    stream = client.sessions.KeepAliveStream(timeout=30)
    await stream.write(session_pb2.KeepAliveRequest(session_id=sid))
    first = await stream.read()
    assert first.session_id == sid and first.state == session_pb2.SESSION_STATE_ALIVE, first

    # An unknown session is answered on the stream, which stays open.
    await stream.write(session_pb2.KeepAliveRequest(session_id=UNKNOWN_SESSION))
    unknown = await stream.read()
    assert unknown.session_id == UNKNOWN_SESSION and unknown.state == session_pb2.SESSION_STATE_NOT_FOUND, unknown

    async def held_open():
        d = await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
        return d.open_streams == 1 and not d.HasField("expires_in")

    await poll_until(held_open, what="Describe to show the session held open by one stream")

    # Time must pass here: twice the TTL, with no unary keep-alive.
    await asyncio.sleep(2.0)
    d = await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
    assert d.open_streams == 1
    lock = await client.describe(name)
    assert lock is not None and [h.session_id for h in lock.holders] == [sid], fmt_desc(lock)
    await stream.write(session_pb2.KeepAliveRequest(session_id=sid))
    again = await stream.read()
    assert again.state == session_pb2.SESSION_STATE_ALIVE

    # Half-close: the server ends the stream, and the TTL counts again from now.
    await stream.done_writing()
    tail = await asyncio.wait_for(stream.read(), 5)
    assert tail is grpc.aio.EOF, f"unexpected message after half-close: {tail}"
    assert await asyncio.wait_for(stream.code(), 5) == SC.OK
    closed_at = time.monotonic()

    async def counting():
        d = await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
        return d if d.open_streams == 0 else None

    d = await poll_until(counting, timeout=2.0, what="open_streams to drop to 0")
    assert d.HasField("expires_in") and 0 < to_s(d.expires_in) <= 1.0, d

    async def gone():
        try:
            await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
            return False
        except grpc.aio.AioRpcError as e:
            assert e.code() == SC.NOT_FOUND, e
            return True

    await poll_until(gone, timeout=5.0, interval=0.02, what="session to expire after its stream closed")
    lived = time.monotonic() - closed_at
    assert lived >= 0.8, f"session ended {lived:.3f}s after its stream closed; its TTL is 1 s"
    await wait_until_idle(client, name)


async def test_keepalive_stream_cancelled_also_restarts_ttl(client):
    sid = await client.open_session(1.0, "streamed-cancel")
    stream = client.sessions.KeepAliveStream(timeout=30)
    await stream.write(session_pb2.KeepAliveRequest(session_id=sid))
    assert (await stream.read()).state == session_pb2.SESSION_STATE_ALIVE
    await asyncio.sleep(1.5)
    await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))  # still alive
    stream.cancel()

    async def gone():
        try:
            await client.sessions.Describe(session_pb2.DescribeSessionRequest(session_id=sid))
            return False
        except grpc.aio.AioRpcError as e:
            return e.code() == SC.NOT_FOUND

    await poll_until(gone, timeout=5.0, interval=0.05, what="session to expire after its stream was cancelled")


# ---------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------


async def test_lock_acquire_release_basics(client):
    sid = await client.open_session()
    name = unique("t/lock-basic")
    r = await client.locks.Acquire(lock_req(name, sid))
    assert r.outcome == IMMEDIATE and r.token > 0
    assert not r.HasField("expires_in"), "a session-owned lock has no lease"
    # Zero timeout while held: try once, don't wait.
    other = await client.open_session()
    t0 = time.monotonic()
    await expect_status(client.locks.Acquire(lock_req(name, other, timeout=0)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 < 1.0
    rel = await client.locks.Release(lock_release(name, r.token, sid))
    assert rel.handed_off is False
    # Zero timeout on a free lock is granted.
    r2 = await client.locks.Acquire(lock_req(name, other, timeout=0))
    assert r2.outcome == IMMEDIATE and r2.token > r.token
    await client.locks.Release(lock_release(name, r2.token, other))


async def test_lock_waiters_are_granted_in_fifo_order(client):
    name = unique("t/lock-fifo")
    holder = await client.open_session()
    first = await client.locks.Acquire(lock_req(name, holder))
    n = 6
    sessions = [await client.open_session() for _ in range(n)]
    order, tokens = [], []

    async def waiter(i, call):
        r = await call
        order.append(i)
        tokens.append(r.token)
        assert r.outcome == AFTER_WAIT
        await client.locks.Release(lock_release(name, r.token, sessions[i]))

    tasks = []
    for i in range(n):
        # Enqueue one at a time so the arrival order is known.
        tasks.append(asyncio.ensure_future(waiter(i, client.locks.Acquire(lock_req(name, sessions[i], timeout=15)))))
        await wait_for_waiters(client, name, i + 1)

    rel = await client.locks.Release(lock_release(name, first.token, holder))
    assert rel.handed_off is True
    await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert order == list(range(n)), f"grant order {order}, arrival order {list(range(n))}"
    assert tokens == sorted(tokens) and len(set(tokens)) == n and tokens[0] > first.token
    await wait_until_idle(client, name)


async def test_fencing_tokens_strictly_increase_per_lock(client):
    sid = await client.open_session()
    name = unique("t/fence")
    tokens = []
    for _ in range(10):
        r = await client.locks.Acquire(lock_req(name, sid))
        d = await client.describe(name)
        assert d.last_token == r.token, fmt_desc(d)
        await client.locks.Release(lock_release(name, r.token, sid))
        tokens.append(r.token)
    assert all(x < y for x, y in zip(tokens, tokens[1:])), f"tokens not strictly increasing: {tokens}"


async def test_fencing_tokens_increase_across_the_server(client):
    # lock.proto: "strictly greater than every token this lock (indeed this server)
    # has handed out before". Eight names, so that they land on different shards.
    sid = await client.open_session()
    prefix = unique("t/fence-server")
    grants = []
    for i in range(16):
        name = f"{prefix}/{i % 8}"
        r = await client.locks.Acquire(lock_req(name, sid))
        await client.locks.Release(lock_release(name, r.token, sid))
        grants.append((name, r.token))
    bad = [(a, b) for a, b in zip(grants, grants[1:]) if not a[1] < b[1]]
    assert not bad, f"a later grant on another lock got a token not greater than an earlier one: {bad[:3]}"


async def test_fencing_token_survives_reclaim_of_idle_lock(client):
    sid = await client.open_session()
    name = unique("t/fence-reclaim")
    r1 = await client.locks.Acquire(lock_req(name, sid))
    await client.locks.Release(lock_release(name, r1.token, sid))
    await wait_until_reclaimed(client, name)
    r2 = await client.locks.Acquire(lock_req(name, sid))
    assert r2.token > r1.token, "a re-created lock must not hand out a token it handed out before"
    await client.locks.Release(lock_release(name, r2.token, sid))


async def test_fencing_tokens_increase_across_restarts():
    tokens = []
    for _ in range(2):
        server = BatondProcess()
        c = Client(server.start())
        try:
            sid = await c.open_session()
            r = await c.locks.Acquire(lock_req("t/fence-restart", sid))
            tokens.append(r.token)
        finally:
            await c.close()
            code = server.terminate()
        assert code == 0, f"exit code {code} after SIGTERM"
    assert tokens[0] < tokens[1], f"token after a restart {tokens[1]} is not above {tokens[0]}"


async def test_acquire_with_request_id_is_replayed_with_same_token(client):
    sid = await client.open_session()
    name = unique("t/idempotent")
    r1 = await client.locks.Acquire(lock_req(name, sid, request_id="job-42"))
    assert r1.outcome == IMMEDIATE
    r2 = await client.locks.Acquire(lock_req(name, sid, request_id="job-42", timeout=0))
    assert r2.outcome == REPLAYED and r2.token == r1.token, r2
    # The same key from another owner is a different request: it waits (here: fails at once).
    other = await client.open_session()
    await expect_status(
        client.locks.Acquire(lock_req(name, other, request_id="job-42", timeout=0)), SC.DEADLINE_EXCEEDED
    )
    d = await client.describe(name)
    assert len(d.holders) == 1 and d.holders[0].request_id == "job-42" and d.holders[0].token == r1.token
    await client.locks.Release(lock_release(name, r1.token, sid))
    # Once released, the key starts a fresh acquisition.
    r3 = await client.locks.Acquire(lock_req(name, sid, request_id="job-42"))
    assert r3.outcome == IMMEDIATE and r3.token > r1.token, r3
    await client.locks.Release(lock_release(name, r3.token, sid))

    sem = unique("t/idempotent-sem")
    s1 = await client.semaphores.Acquire(sem_req(sem, 4, 3, sid, request_id="batch-7"))
    s2 = await client.semaphores.Acquire(sem_req(sem, 4, 3, sid, request_id="batch-7"))
    assert s2.outcome == REPLAYED and s2.token == s1.token and s2.count == 3, s2
    d = await client.describe(sem)
    assert d.available == 1 and len(d.holders) == 1, fmt_desc(d)
    await client.semaphores.Release(sem_release(sem, s1.token, sid))


async def test_lease_expiry_releases_lock(client):
    name = unique("t/lease")
    t0 = time.monotonic()
    lease = await client.locks.Acquire(lock_req(name, ttl=0.2))
    assert lease.outcome == IMMEDIATE
    assert lease.HasField("expires_in") and 0 < to_s(lease.expires_in) <= 0.2
    d = await client.describe(name)
    assert d.holders[0].session_id == 0 and d.holders[0].HasField("expires_in"), fmt_desc(d)

    sid = await client.open_session()
    r = await client.locks.Acquire(lock_req(name, sid, timeout=5))
    waited = time.monotonic() - t0
    assert r.outcome == AFTER_WAIT and r.token > lease.token
    assert waited >= 0.19, f"granted {waited:.3f}s after a 200 ms lease was taken"
    # The expired lease no longer holds anything.
    await expect_status(client.locks.Release(lock_release(name, lease.token, 0)), SC.FAILED_PRECONDITION)
    await client.locks.Release(lock_release(name, r.token, sid))


async def test_lock_refresh_extends_lease(client):
    name = unique("t/refresh")
    lease = await client.locks.Acquire(lock_req(name, ttl=0.3))
    rf = await client.locks.Refresh(lock_pb2.RefreshLockRequest(name=name, token=lease.token, ttl=dur(10)))
    assert 9 < to_s(rf.expires_in) <= 10
    await asyncio.sleep(0.5)  # past the original 300 ms lease
    other = await client.open_session()
    await expect_status(client.locks.Acquire(lock_req(name, other, timeout=0)), SC.DEADLINE_EXCEEDED)
    await expect_status(
        client.locks.Refresh(lock_pb2.RefreshLockRequest(name=name, token=lease.token + 1000, ttl=dur(10))),
        SC.FAILED_PRECONDITION,
    )
    await expect_status(
        client.locks.Refresh(lock_pb2.RefreshLockRequest(name=name, token=lease.token)), SC.INVALID_ARGUMENT
    )
    await expect_status(
        client.locks.Refresh(lock_pb2.RefreshLockRequest(name=name, token=lease.token, ttl=dur(-1))),
        SC.INVALID_ARGUMENT,
    )
    await client.locks.Release(lock_release(name, lease.token, 0))


async def test_lock_release_errors(client):
    sid = await client.open_session()
    other = await client.open_session()
    name = unique("t/release-errors")
    # Release of a lock nobody holds (never used).
    await expect_status(client.locks.Release(lock_release(name, 1, sid)), SC.FAILED_PRECONDITION)
    r = await client.locks.Acquire(lock_req(name, sid))
    await expect_status(client.locks.Release(lock_release(name, r.token + 1, sid)), SC.FAILED_PRECONDITION)
    await expect_status(client.locks.Release(lock_release(name, r.token, other)), SC.FAILED_PRECONDITION)
    await expect_status(client.locks.Release(lock_release(name, r.token, 0)), SC.FAILED_PRECONDITION)
    d = await client.describe(name)
    assert d is not None and [h.token for h in d.holders] == [r.token], "a rejected release changed the holder"
    await client.locks.Release(lock_release(name, r.token, sid))
    # Releasing twice.
    await expect_status(client.locks.Release(lock_release(name, r.token, sid)), SC.FAILED_PRECONDITION)


async def test_cancelled_acquire_leaves_no_waiter(client):
    sid, other = await client.open_session(), await client.open_session()
    name = unique("t/cancel")
    r = await client.locks.Acquire(lock_req(name, sid))
    call = client.locks.Acquire(lock_req(name, other))
    await wait_for_waiters(client, name, 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_for_waiters(client, name, 0)
    rel = await client.locks.Release(lock_release(name, r.token, sid))
    assert rel.handed_off is False
    await wait_until_reclaimed(client, name)


async def test_timeouts_and_deadlines(client):
    sid, other = await client.open_session(), await client.open_session()
    name = unique("t/timeouts")
    r = await client.locks.Acquire(lock_req(name, sid))

    t0 = time.monotonic()
    await expect_status(client.locks.Acquire(lock_req(name, other, timeout=0.2)), SC.DEADLINE_EXCEEDED)
    took = time.monotonic() - t0
    assert 0.19 <= took < 3, f"timeout=200ms ended after {took:.3f}s"

    # The earlier of `timeout` and the gRPC deadline wins.
    t0 = time.monotonic()
    await expect_status(client.locks.Acquire(lock_req(name, other, timeout=10), timeout=0.2), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 < 3
    t0 = time.monotonic()
    await expect_status(client.locks.Acquire(lock_req(name, other, timeout=0.2), timeout=10), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 < 3

    await wait_for_waiters(client, name, 0)
    await client.locks.Release(lock_release(name, r.token, sid))


# ---------------------------------------------------------------------------
# Semaphores
# ---------------------------------------------------------------------------


async def test_semaphore_weighted_acquire_and_partial_release(client):
    sid = await client.open_session()
    name = unique("t/sem")
    a = await client.semaphores.Acquire(sem_req(name, 5, 2, sid))
    assert a.outcome == IMMEDIATE and a.count == 2 and a.available == 3
    b = await client.semaphores.Acquire(sem_req(name, 0, None, sid))  # capacity 0: as declared; count unset: 1
    assert b.count == 1 and b.available == 2 and b.token > a.token
    d = await client.describe(name)
    assert d.kind == KIND_SEMAPHORE and d.capacity == 5 and d.available == 2, fmt_desc(d)
    assert sorted((h.token, h.count, h.session_id) for h in d.holders) == [(a.token, 2, sid), (b.token, 1, sid)]

    part = await client.semaphores.Release(sem_release(name, a.token, sid, count=1))
    assert part.remaining == 1 and part.available == 3
    await expect_status(client.semaphores.Release(sem_release(name, a.token, sid, count=2)), SC.FAILED_PRECONDITION)
    await expect_status(client.semaphores.Release(sem_release(name, a.token, sid, count=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.semaphores.Release(sem_release(name, a.token, sid, count=-1)), SC.INVALID_ARGUMENT)
    other = await client.open_session()
    await expect_status(client.semaphores.Release(sem_release(name, a.token, other)), SC.FAILED_PRECONDITION)
    rest = await client.semaphores.Release(sem_release(name, a.token, sid))
    assert rest.remaining == 0 and rest.available == 4
    await expect_status(client.semaphores.Release(sem_release(name, a.token, sid)), SC.FAILED_PRECONDITION)
    await client.semaphores.Release(sem_release(name, b.token, sid))
    await wait_until_reclaimed(client, name)


async def test_semaphore_does_not_let_small_requests_barge_past_a_big_one(client):
    name = unique("t/sem-nobarging")
    s_a, s_b, s_c = [await client.open_session() for _ in range(3)]
    a = await client.semaphores.Acquire(sem_req(name, 3, 2, s_a))
    assert a.available == 1
    big = asyncio.ensure_future(client.semaphores.Acquire(sem_req(name, 3, 3, s_b, timeout=15)))
    await wait_for_waiters(client, name, 1)
    # One permit is free, but the big request is first in line.
    await expect_status(client.semaphores.Acquire(sem_req(name, 3, 1, s_c, timeout=0)), SC.DEADLINE_EXCEEDED)
    await expect_status(client.semaphores.Acquire(sem_req(name, 3, 1, s_c, timeout=0.1)), SC.DEADLINE_EXCEEDED)
    small = asyncio.ensure_future(client.semaphores.Acquire(sem_req(name, 3, 1, s_c, timeout=15)))
    await wait_for_waiters(client, name, 2)
    assert not big.done() and not small.done()

    await client.semaphores.Release(sem_release(name, a.token, s_a))
    b = await asyncio.wait_for(big, 5)
    assert b.count == 3 and b.outcome == AFTER_WAIT and b.available == 0
    await asyncio.sleep(0.05)
    assert not small.done(), "the small request was granted while the big one holds every permit"
    await client.semaphores.Release(sem_release(name, b.token, s_b))
    c = await asyncio.wait_for(small, 5)
    assert c.count == 1 and c.outcome == AFTER_WAIT
    await client.semaphores.Release(sem_release(name, c.token, s_c))
    await wait_until_idle(client, name, capacity=3)


async def test_semaphore_capacity_and_count_validation(client):
    sid = await client.open_session()
    name = unique("t/sem-capacity")
    # Capacity is required when the semaphore does not exist yet.
    await expect_status(client.semaphores.Acquire(sem_req(name, 0, 1, sid)), SC.INVALID_ARGUMENT)
    await expect_status(client.semaphores.Acquire(sem_req(name, -3, 1, sid)), SC.INVALID_ARGUMENT)
    held = await client.semaphores.Acquire(sem_req(name, 3, 1, sid))
    await expect_status(client.semaphores.Acquire(sem_req(name, 5, 1, sid)), SC.FAILED_PRECONDITION)
    await expect_status(client.semaphores.Acquire(sem_req(name, 2, 1, sid)), SC.FAILED_PRECONDITION)
    for bad in (0, -1, 4, 2**62):
        await expect_status(client.semaphores.Acquire(sem_req(name, 3, bad, sid, timeout=0)), SC.INVALID_ARGUMENT)
    ok = await client.semaphores.Acquire(sem_req(name, 0, 2, sid, timeout=0))
    assert ok.available == 0
    d = await client.describe(name)
    assert d.capacity == 3 and d.available == 0 and d.waiters == 0, fmt_desc(d)
    await client.semaphores.Release(sem_release(name, ok.token, sid))
    await client.semaphores.Release(sem_release(name, held.token, sid))
    await wait_until_reclaimed(client, name)
    # Once reclaimed, the name can be declared again with another capacity.
    again = await client.semaphores.Acquire(sem_req(name, 7, 7, sid))
    assert again.available == 0
    await client.semaphores.Release(sem_release(name, again.token, sid))


async def test_semaphore_lease_expiry_returns_permits(client):
    name = unique("t/sem-lease")
    lease = await client.semaphores.Acquire(sem_req(name, 2, 2, ttl=0.2))
    assert lease.HasField("expires_in")
    sid = await client.open_session()
    r = await client.semaphores.Acquire(sem_req(name, 2, 2, sid, timeout=5))
    assert r.outcome == AFTER_WAIT
    await client.semaphores.Release(sem_release(name, r.token, sid))
    await wait_until_idle(client, name, capacity=2)


async def test_semaphore_refresh_extends_lease(client):
    name = unique("t/sem-refresh")
    lease = await client.semaphores.Acquire(sem_req(name, 2, 2, ttl=0.3))
    rf = await client.semaphores.Refresh(
        semaphore_pb2.RefreshSemaphoreRequest(name=name, token=lease.token, ttl=dur(10)))
    assert 9 < to_s(rf.expires_in) <= 10
    await asyncio.sleep(0.5)  # past the original 300 ms lease
    sid = await client.open_session()
    await expect_status(client.semaphores.Acquire(sem_req(name, 0, 1, sid, timeout=0)), SC.DEADLINE_EXCEEDED)
    await expect_status(
        client.semaphores.Refresh(
            semaphore_pb2.RefreshSemaphoreRequest(name=name, token=lease.token + 1000, ttl=dur(10))),
        SC.FAILED_PRECONDITION,
    )
    await client.semaphores.Release(sem_release(name, lease.token))
    await wait_until_reclaimed(client, name)


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


async def test_event_set_clear_wait(client):
    name = unique("t/event")
    await expect_status(client.events.Wait(event_wait(name, timeout=0)), SC.DEADLINE_EXCEEDED)
    waiter = asyncio.ensure_future(client.events.Wait(event_wait(name, timeout=10)))
    await wait_for_waiters(client, name, 1)
    d = await client.describe(name)
    assert d.kind == KIND_EVENT and d.event_state == EV_CLEAR, fmt_desc(d)

    s = await client.events.Set(event_pb2.SetEventRequest(name=name))
    assert s.previous == EV_CLEAR and s.woken == 1
    w = await asyncio.wait_for(waiter, 5)
    assert w.state == EV_SET and w.outcome == AFTER_WAIT

    s2 = await client.events.Set(event_pb2.SetEventRequest(name=name))
    assert s2.previous == EV_SET and s2.woken == 0
    w2 = await client.events.Wait(event_wait(name, timeout=0))
    assert w2.state == EV_SET and w2.outcome == IMMEDIATE
    d = await client.describe(name)
    assert d.event_state == EV_SET and d.waiters == 0

    c = await client.events.Clear(event_pb2.ClearEventRequest(name=name))
    assert c.previous == EV_SET
    c2 = await client.events.Clear(event_pb2.ClearEventRequest(name=name))
    assert c2.previous == EV_CLEAR
    t0 = time.monotonic()
    await expect_status(client.events.Wait(event_wait(name, timeout=0.1)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 >= 0.09
    # Clear with no waiters or watchers is the default state: reclaimed.
    await wait_until_reclaimed(client, name)


async def test_event_set_wakes_every_waiter(client):
    name = unique("t/event-many")
    waiters = [asyncio.ensure_future(client.events.Wait(event_wait(name, timeout=10))) for _ in range(5)]
    await wait_for_waiters(client, name, 5)
    s = await client.events.Set(event_pb2.SetEventRequest(name=name))
    assert s.woken == 5
    for w in await asyncio.wait_for(asyncio.gather(*waiters), 5):
        assert w.state == EV_SET
    await client.events.Clear(event_pb2.ClearEventRequest(name=name))


async def test_event_wait_aborted_when_session_ends(client):
    sid = await client.open_session()
    name = unique("t/event-session")
    waiter = asyncio.ensure_future(client.events.Wait(event_wait(name, timeout=10, sid=sid)))
    await wait_for_waiters(client, name, 1)
    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
    await expect_status(waiter, SC.ABORTED)
    await wait_until_idle(client, name)


async def test_event_watch_sends_current_state_then_changes(client):
    fresh_name = unique("t/watch-fresh")
    fresh = client.events.Watch(event_pb2.WatchEventRequest(name=fresh_name), timeout=15)
    m = await fresh.read()
    assert m.state == EV_CLEAR and m.sequence == 1, m
    fresh.cancel()

    name = unique("t/watch")
    await client.events.Set(event_pb2.SetEventRequest(name=name))
    watch = client.events.Watch(event_pb2.WatchEventRequest(name=name), timeout=15)
    m1 = await watch.read()
    assert (m1.state, m1.sequence) == (EV_SET, 1), m1

    async def one_watcher():
        d = await client.describe(name)
        return d is not None and d.watchers == 1

    await poll_until(one_watcher, what="Describe to count one watcher")

    await client.events.Clear(event_pb2.ClearEventRequest(name=name))
    m2 = await watch.read()
    assert (m2.state, m2.sequence) == (EV_CLEAR, 2), m2
    await client.events.Set(event_pb2.SetEventRequest(name=name))
    m3 = await watch.read()
    assert (m3.state, m3.sequence) == (EV_SET, 3), m3
    # An idempotent Set is not a change.
    await client.events.Set(event_pb2.SetEventRequest(name=name))
    await client.events.Clear(event_pb2.ClearEventRequest(name=name))
    m4 = await watch.read()
    assert (m4.state, m4.sequence) == (EV_CLEAR, 4), m4
    # While watched, a clear event is not reclaimed.
    d = await client.describe(name)
    assert d is not None and d.watchers == 1 and d.event_state == EV_CLEAR
    watch.cancel()
    await wait_until_reclaimed(client, name)


async def test_event_watch_cancelled_by_client_leaves_no_watcher(client):
    name = unique("t/watch-cancel")
    watch = client.events.Watch(event_pb2.WatchEventRequest(name=name), timeout=15)
    assert (await watch.read()).state == EV_CLEAR
    d = await client.describe(name)
    assert d is not None and d.watchers == 1, fmt_desc(d)
    watch.cancel()
    # A clear event without waiters or watchers is reclaimed.
    await wait_until_reclaimed(client, name)


async def test_event_watch_ended_by_deadline_leaves_no_watcher(client):
    name = unique("t/watch-deadline")
    watch = client.events.Watch(event_pb2.WatchEventRequest(name=name), timeout=0.3)
    assert (await watch.read()).state == EV_CLEAR
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await watch.read()
    assert e.value.code() == SC.DEADLINE_EXCEEDED
    await wait_until_reclaimed(client, name)


async def test_event_wait_cancel_leaves_no_waiter(client):
    name = unique("t/event-cancel")
    call = client.events.Wait(event_wait(name))
    await wait_for_waiters(client, name, 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_until_reclaimed(client, name)


# ---------------------------------------------------------------------------
# Admin
# ---------------------------------------------------------------------------


async def test_admin_list_filters_by_kind_and_prefix_and_pages(client):
    sid, other = await client.open_session(), await client.open_session()
    p = unique("t/list") + "/"
    names = {k: p + k for k in ("a", "b", "c", "d", "e")}
    await client.locks.Acquire(lock_req(names["a"], sid))
    await client.semaphores.Acquire(sem_req(names["b"], 4, 1, sid))
    await client.events.Set(event_pb2.SetEventRequest(name=names["c"]))
    await client.locks.Acquire(lock_req(names["d"], sid))
    await client.locks.Acquire(lock_req(names["e"], sid))
    waiter = asyncio.ensure_future(client.locks.Acquire(lock_req(names["e"], other, timeout=15)))
    await wait_for_waiters(client, names["e"], 1)
    outside = unique("t/list-outside")
    await client.locks.Acquire(lock_req(outside, sid))

    full = await client.admin.List(admin_pb2.ListRequest(prefix=p))
    assert [r.name for r in full.resources] == sorted(names.values())
    assert full.next_page_token == ""
    by = {r.name: r for r in full.resources}
    assert by[names["a"]].kind == KIND_LOCK and by[names["a"]].holders == 1 and by[names["a"]].waiters == 0
    assert by[names["b"]].kind == KIND_SEMAPHORE and by[names["b"]].holders == 1
    assert by[names["c"]].kind == KIND_EVENT
    assert by[names["e"]].holders == 1 and by[names["e"]].waiters == 1

    locks = await client.admin.List(admin_pb2.ListRequest(prefix=p, kind=KIND_LOCK))
    assert [r.name for r in locks.resources] == [names["a"], names["d"], names["e"]]
    sems = await client.admin.List(admin_pb2.ListRequest(prefix=p, kind=KIND_SEMAPHORE))
    assert [r.name for r in sems.resources] == [names["b"]]

    everything = await client.admin.List(admin_pb2.ListRequest(page_size=1000))
    listed = [r.name for r in everything.resources]
    assert listed == sorted(listed), "List is not in name order"

    # Paging, two at a time.
    pages, token = [], ""
    for _ in range(10):
        page = await client.admin.List(admin_pb2.ListRequest(prefix=p, page_size=2, page_token=token))
        assert len(page.resources) <= 2
        pages.append([r.name for r in page.resources])
        token = page.next_page_token
        if not token:
            break
    flat = [n for page in pages for n in page]
    assert flat == sorted(names.values()), f"pages {pages}"
    assert pages[:3] == [[names["a"], names["b"]], [names["c"], names["d"]], [names["e"]]], pages

    await expect_status(client.admin.List(admin_pb2.ListRequest(page_size=1001)), SC.INVALID_ARGUMENT)
    await expect_status(client.admin.List(admin_pb2.ListRequest(page_token="bad token")), SC.INVALID_ARGUMENT)

    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))
    r = await asyncio.wait_for(waiter, 5)
    await client.locks.Release(lock_release(names["e"], r.token, other))
    await client.events.Clear(event_pb2.ClearEventRequest(name=names["c"]))
    for n in list(names.values()) + [outside]:
        await wait_until_reclaimed(client, n)
    empty = await client.admin.List(admin_pb2.ListRequest(prefix=p))
    assert list(empty.resources) == [] and empty.next_page_token == ""


async def test_admin_list_default_page_size_is_100(client):
    p = unique("t/list-default") + "/"
    names = [f"{p}{i:03d}" for i in range(105)]
    await asyncio.gather(*(client.events.Set(event_pb2.SetEventRequest(name=n)) for n in names))
    try:
        first = await client.admin.List(admin_pb2.ListRequest(prefix=p))
        assert [r.name for r in first.resources] == names[:100]
        assert first.next_page_token
        second = await client.admin.List(admin_pb2.ListRequest(prefix=p, page_token=first.next_page_token))
        assert [r.name for r in second.resources] == names[100:]
        assert second.next_page_token == ""
    finally:
        await asyncio.gather(*(client.events.Clear(event_pb2.ClearEventRequest(name=n)) for n in names))


async def test_admin_describe_shows_holders_waiters_and_ages(client):
    sid, other = await client.open_session(), await client.open_session()
    name = unique("t/describe")
    r = await client.locks.Acquire(lock_req(name, sid, request_id="describe-me"))
    waiter = asyncio.ensure_future(client.locks.Acquire(lock_req(name, other, timeout=15)))
    await wait_for_waiters(client, name, 1)
    await asyncio.sleep(0.1)  # let held_for and oldest_wait grow measurably

    d = await client.describe(name)
    assert d.name == name and d.kind == KIND_LOCK
    assert len(d.holders) == 1, fmt_desc(d)
    h = d.holders[0]
    assert (h.token, h.session_id, h.count, h.request_id) == (r.token, sid, 1, "describe-me"), fmt_desc(d)
    assert to_s(h.held_for) >= 0.09, fmt_desc(d)
    assert not h.HasField("expires_in"), "a session-only holding has no lease"
    assert d.waiters == 1 and to_s(d.oldest_wait) >= 0.09, fmt_desc(d)
    assert d.last_token == r.token

    await client.locks.Release(lock_release(name, r.token, sid))
    w = await asyncio.wait_for(waiter, 5)
    d = await client.describe(name)
    assert [h.session_id for h in d.holders] == [other] and d.waiters == 0, fmt_desc(d)
    assert not d.HasField("oldest_wait"), "oldest_wait is unset without waiters"
    assert d.last_token == w.token
    await client.locks.Release(lock_release(name, w.token, other))

    lease = await client.locks.Acquire(lock_req(name, ttl=30))
    d = await client.describe(name)
    h = d.holders[0]
    assert h.session_id == 0 and h.HasField("expires_in") and 25 < to_s(h.expires_in) <= 30, fmt_desc(d)
    await client.locks.Release(lock_release(name, lease.token, 0))

    ev = unique("t/describe-event")
    await client.events.Set(event_pb2.SetEventRequest(name=ev))
    d = await client.describe(ev)
    assert d.kind == KIND_EVENT and d.event_state == EV_SET and d.watchers == 0 and d.waiters == 0
    await client.events.Clear(event_pb2.ClearEventRequest(name=ev))


async def test_admin_describe_unknown_is_not_found(client):
    await expect_status(
        client.admin.Describe(admin_pb2.DescribeRequest(name=unique("t/never-used"))), SC.NOT_FOUND
    )


async def test_idle_resources_are_reclaimed(client):
    sid, other = await client.open_session(), await client.open_session()
    lock = unique("t/reclaim-lock")
    r = await client.locks.Acquire(lock_req(lock, sid))
    assert await client.describe(lock) is not None
    await client.locks.Release(lock_release(lock, r.token, sid))
    await wait_until_reclaimed(client, lock)

    # A lock whose only waiter timed out is reclaimed on release too.
    r = await client.locks.Acquire(lock_req(lock, sid))
    await expect_status(client.locks.Acquire(lock_req(lock, other, timeout=0.05)), SC.DEADLINE_EXCEEDED)
    await client.locks.Release(lock_release(lock, r.token, sid))
    await wait_until_reclaimed(client, lock)

    sem = unique("t/reclaim-sem")
    s = await client.semaphores.Acquire(sem_req(sem, 2, 1, sid))
    await client.semaphores.Release(sem_release(sem, s.token, sid))
    await wait_until_reclaimed(client, sem)

    ev = unique("t/reclaim-event")
    await client.events.Set(event_pb2.SetEventRequest(name=ev))
    assert await client.describe(ev) is not None, "a set event is not in its default state"
    await client.events.Clear(event_pb2.ClearEventRequest(name=ev))
    await wait_until_reclaimed(client, ev)

    # Failed requests do not leave resources behind.
    failed = unique("t/reclaim-failed")
    await expect_status(client.semaphores.Acquire(sem_req(failed, 0, 1, sid)), SC.INVALID_ARGUMENT)
    await expect_status(client.locks.Release(lock_release(failed, 1, sid)), SC.FAILED_PRECONDITION)
    await expect_status(client.events.Wait(event_wait(failed, timeout=0)), SC.DEADLINE_EXCEEDED)
    await wait_until_reclaimed(client, failed)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

BAD_NAMES = {
    "empty": "",
    "257-bytes": "a" * 257,
    "300-bytes": "n" * 300,
    "space": "has space",
    "leading-space": " lead",
    "control-char": "ctl\x01char",
    "newline": "new\nline",
    "tab": "tab\tname",
    "del": "del\x7f",
    "non-ascii": "caf\u00e9",
}


@pytest.mark.parametrize("bad", list(BAD_NAMES.values()), ids=list(BAD_NAMES.keys()))
async def test_bad_names_are_invalid_argument(client, bad):
    sid = await client.open_session()
    calls = {
        "Locks/Acquire": client.locks.Acquire(lock_req(bad, sid, timeout=0)),
        "Locks/Release": client.locks.Release(lock_release(bad, 1, sid)),
        "Semaphores/Acquire": client.semaphores.Acquire(sem_req(bad, 2, 1, sid, timeout=0)),
        "Events/Set": client.events.Set(event_pb2.SetEventRequest(name=bad)),
        "Events/Clear": client.events.Clear(event_pb2.ClearEventRequest(name=bad)),
        "Events/Wait": client.events.Wait(event_wait(bad, timeout=0)),
        "Admin/Describe": client.admin.Describe(admin_pb2.DescribeRequest(name=bad)),
    }
    wrong = []
    for rpc, call in calls.items():
        try:
            await call
            wrong.append(f"{rpc}: OK")
        except grpc.aio.AioRpcError as e:
            if e.code() != SC.INVALID_ARGUMENT or not e.details():
                wrong.append(f"{rpc}: {e.code().name} {e.details()!r}")
    watch = client.events.Watch(event_pb2.WatchEventRequest(name=bad))
    try:
        m = await watch.read()
        wrong.append(f"Events/Watch: sent {m}")
        watch.cancel()
    except grpc.aio.AioRpcError as e:
        if e.code() != SC.INVALID_ARGUMENT:
            wrong.append(f"Events/Watch: {e.code().name} {e.details()!r}")
    assert not wrong, f"name {bad!r} should be INVALID_ARGUMENT everywhere: {wrong}"


async def test_longest_valid_name_is_accepted(client):
    sid = await client.open_session()
    name = "x/" + "~" * 254  # 256 bytes of printable ASCII
    assert len(name.encode()) == 256
    r = await client.locks.Acquire(lock_req(name, sid))
    await client.locks.Release(lock_release(name, r.token, sid))
    punct = "a!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~z"
    r = await client.locks.Acquire(lock_req(punct, sid))
    await client.locks.Release(lock_release(punct, r.token, sid))


def _bad_duration(seconds, nanos):
    from google.protobuf import duration_pb2

    d = duration_pb2.Duration()
    d.seconds, d.nanos = seconds, nanos
    return d


@pytest.mark.parametrize(
    "ttl,timeout",
    [
        (dur(0), None),
        (dur(-1), None),
        (dur(0.0004), None),  # under 1 ms
        (dur(30 * 86400), None),  # over the 24 h default maximum
        (_bad_duration(1, 2_000_000_000), None),  # nanos out of range
        (_bad_duration(1, -5), None),  # mixed signs
        (dur(10), dur(-1)),
        (dur(10), _bad_duration(0, -1_000)),
    ],
    ids=["ttl-zero", "ttl-negative", "ttl-under-1ms", "ttl-30-days", "ttl-bad-nanos", "ttl-mixed-signs",
         "timeout-negative", "timeout-negative-nanos"],
)
async def test_bad_ttl_or_timeout_is_invalid_argument(client, ttl, timeout):
    lock, sem = unique("t/bad-duration-lock"), unique("t/bad-duration-sem")
    await expect_status(client.locks.Acquire(lock_req(lock, ttl=ttl, timeout=timeout)), SC.INVALID_ARGUMENT)
    await expect_status(client.semaphores.Acquire(sem_req(sem, 2, 1, ttl=ttl, timeout=timeout)), SC.INVALID_ARGUMENT)
    await wait_until_reclaimed(client, lock)
    await wait_until_reclaimed(client, sem)


async def test_owner_is_required(client):
    lock, sem = unique("t/no-owner-lock"), unique("t/no-owner-sem")
    await expect_status(client.locks.Acquire(lock_req(lock, timeout=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.semaphores.Acquire(sem_req(sem, 2, 1, timeout=0)), SC.INVALID_ARGUMENT)


async def test_request_id_over_128_bytes_is_invalid_argument(client):
    sid = await client.open_session()
    name = unique("t/long-request-id")
    await expect_status(client.locks.Acquire(lock_req(name, sid, request_id="r" * 129)), SC.INVALID_ARGUMENT)
    r = await client.locks.Acquire(lock_req(name, sid, request_id="r" * 128))
    await client.locks.Release(lock_release(name, r.token, sid))


async def test_kind_mismatch_is_failed_precondition(client):
    sid = await client.open_session()
    lock, ev, sem = unique("t/kind-lock"), unique("t/kind-event"), unique("t/kind-sem")
    lr = await client.locks.Acquire(lock_req(lock, sid))
    await client.events.Set(event_pb2.SetEventRequest(name=ev))
    sr = await client.semaphores.Acquire(sem_req(sem, 2, 1, sid))

    await expect_status(client.semaphores.Acquire(sem_req(lock, 2, 1, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await expect_status(client.events.Set(event_pb2.SetEventRequest(name=lock)), SC.FAILED_PRECONDITION)
    await expect_status(client.events.Clear(event_pb2.ClearEventRequest(name=lock)), SC.FAILED_PRECONDITION)
    await expect_status(client.events.Wait(event_wait(lock, timeout=0)), SC.FAILED_PRECONDITION)
    await expect_status(client.locks.Acquire(lock_req(ev, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await expect_status(client.locks.Acquire(lock_req(sem, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await expect_status(client.semaphores.Acquire(sem_req(ev, 2, 1, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await expect_status(client.locks.Release(lock_release(sem, sr.token, sid)), SC.FAILED_PRECONDITION)
    await expect_status(client.semaphores.Release(sem_release(lock, lr.token, sid)), SC.FAILED_PRECONDITION)
    watch = client.events.Watch(event_pb2.WatchEventRequest(name=lock), timeout=5)
    try:
        m = await watch.read()
        raise AssertionError(f"Watch of a lock sent {m}")
    except grpc.aio.AioRpcError as e:
        assert e.code() == SC.FAILED_PRECONDITION, e

    # None of the rejected calls changed anything.
    d = await client.describe(lock)
    assert d.kind == KIND_LOCK and [h.token for h in d.holders] == [lr.token] and d.waiters == 0
    # Once reclaimed, the name is free to be any kind.
    await client.locks.Release(lock_release(lock, lr.token, sid))
    await wait_until_reclaimed(client, lock)
    await client.events.Set(event_pb2.SetEventRequest(name=lock))
    await client.events.Clear(event_pb2.ClearEventRequest(name=lock))
    await client.events.Clear(event_pb2.ClearEventRequest(name=ev))
    await client.semaphores.Release(sem_release(sem, sr.token, sid))


async def test_message_over_4_mib_is_resource_exhausted(client):
    huge = "a" * (5 * 1024 * 1024)
    await expect_status(client.locks.Acquire(lock_req(huge, ttl=10), timeout=20), SC.RESOURCE_EXHAUSTED,
                        need_message=False)
    # And the server is still fine.
    resp = await client.health.Check(health_pb2.HealthCheckRequest())
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_admin_list_page_size_limit(client):
    await client.admin.List(admin_pb2.ListRequest(page_size=1000))
    await expect_status(client.admin.List(admin_pb2.ListRequest(page_size=5000)), SC.INVALID_ARGUMENT)


# ---------------------------------------------------------------------------
# Shutdown (own server)
# ---------------------------------------------------------------------------


async def test_shutdown_ends_waits_with_unavailable_and_exits_cleanly():
    server = BatondProcess()
    addr = server.start()
    c = Client(addr)
    try:
        holder, waiter_sid = await c.open_session(), await c.open_session()
        name, ev = unique("t/shutdown"), unique("t/shutdown-event")
        await c.locks.Acquire(lock_req(name, holder))
        lock_wait = asyncio.ensure_future(c.locks.Acquire(lock_req(name, waiter_sid)))
        ev_wait = asyncio.ensure_future(c.events.Wait(event_wait(ev)))
        watch = c.events.Watch(event_pb2.WatchEventRequest(name=ev))
        assert (await watch.read()).state == EV_CLEAR
        await wait_for_waiters(c, name, 1)
        await wait_for_waiters(c, ev, 1)

        loop = asyncio.get_running_loop()
        exit_code = loop.run_in_executor(None, server.terminate)
        codes, details = {}, {}
        for label, fut in (("Locks/Acquire", lock_wait), ("Events/Wait", ev_wait), ("Events/Watch", watch.read())):
            try:
                r = await asyncio.wait_for(fut, 15)
                codes[label] = f"OK {r}"
            except grpc.aio.AioRpcError as e:
                codes[label] = e.code().name
                details[label] = e.details()
        code = await exit_code
        assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{server.stderr_text(3000)}"
        assert all(v == "UNAVAILABLE" for v in codes.values()), f"pending calls at shutdown ended with {codes} ({details})"
    finally:
        await c.close()
        server.kill()
