"""Behaviour of baton.v1.Futures, Barriers and Conditions over real gRPC.

The contract is proto/baton/v1/{future,barrier,condition}.proto and the
matching Describe fields in admin.proto; the comments cite the rule being
checked. Each test uses its own names, so tests share one server per module.
Blocking calls carry a `timeout`; state is polled through Admin/Describe with a
deadline rather than slept for.
"""

import asyncio
import time

import pytest

from baton_helpers import (
    AFTER_WAIT,
    IMMEDIATE,
    KIND_BARRIER,
    KIND_FUTURE,
    KIND_LOCK,
    SC,
    barrier_pb2,
    condition_pb2,
    expect_status,
    fmt_desc,
    future_pb2,
    lock_release,
    lock_req,
    poll_until,
    session_pb2,
    to_s,
    unique,
    _set_durations,
)

F_PENDING = future_pb2.FUTURE_STATE_PENDING
F_RESULT = future_pb2.FUTURE_STATE_RESULT
F_EXCEPTION = future_pb2.FUTURE_STATE_EXCEPTION
F_CANCELLED = future_pb2.FUTURE_STATE_CANCELLED
NOTIFIED = condition_pb2.CONDITION_OUTCOME_NOTIFIED
TIMED_OUT = condition_pb2.CONDITION_OUTCOME_TIMED_OUT


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


async def wait_desc(client, name, pred, what, timeout=5.0):
    """Polls Describe until pred(desc) holds (desc may be None); returns desc."""
    box = []

    async def check():
        d = await client.describe(name)
        box[:] = [d]
        return pred(d)

    try:
        await poll_until(check, timeout, what=what)
    except AssertionError:
        raise AssertionError(f"{name}: {what} not reached in {timeout}s: {fmt_desc(box[0] if box else None)}")
    return box[0]


async def wait_until_reclaimed(client, name, timeout=5.0):
    await wait_desc(client, name, lambda d: d is None, "reclaimed", timeout)


async def close_session(client, sid):
    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))


def f_await(name, *, timeout=None, sid=0):
    return _set_durations(future_pb2.AwaitFutureRequest(name=name, session_id=sid), timeout=timeout)


def f_set(name, *, text=None, value=None, retention=None):
    r = future_pb2.SetResultRequest(name=name)
    if text is not None:
        r.text = text
    if value is not None:
        r.value = value
    return _set_durations(r, retention=retention)


def b_wait(name, parties=0, *, timeout=None, sid=0):
    return _set_durations(barrier_pb2.BarrierWaitRequest(name=name, parties=parties, session_id=sid),
                          timeout=timeout)


def c_wait(lock, token, sid=0, *, condition="", ttl=None, timeout=None):
    return _set_durations(
        condition_pb2.ConditionWaitRequest(lock=lock, condition=condition, token=token, session_id=sid),
        ttl=ttl, timeout=timeout,
    )


def c_notify(lock, token, sid=0, *, condition="", n=0):
    return condition_pb2.NotifyRequest(lock=lock, condition=condition, token=token, session_id=sid, n=n)


def cond_info(d, condition=""):
    """The ConditionInfo for `condition` in a lock's Describe, or None."""
    if d is None:
        return None
    for c in d.conditions:
        if c.condition == condition:
            return c
    return None


def cond_counts(d, condition=""):
    """(waiters, reacquiring) of a condition; (0, 0) if not listed."""
    c = cond_info(d, condition)
    return (0, 0) if c is None else (c.waiters, c.reacquiring)


def holders(d):
    return [] if d is None else [(h.token, h.session_id) for h in d.holders]


# ===========================================================================
# Futures
# ===========================================================================


async def test_future_set_result_wakes_every_awaiter(client):
    name = unique("f/result")
    awaiters = []
    for i in range(3):
        awaiters.append(asyncio.ensure_future(client.futures.Await(f_await(name, timeout=10))))
        await wait_desc(client, name, lambda d, n=i + 1: d is not None and d.waiters == n, f"{i + 1} awaiter(s)")
    d = await client.describe(name)
    assert d.kind == KIND_FUTURE and d.future_state == F_PENDING, fmt_desc(d)

    r = await client.futures.SetResult(f_set(name, text="42"))
    assert r.woken == 3, r
    for a in awaiters:
        got = await asyncio.wait_for(a, 10)
        assert (got.state, got.value, got.text, got.outcome) == (F_RESULT, b"42", "42", AFTER_WAIT), got

    # A late awaiter, even with a zero timeout, gets the same outcome at once.
    late = await client.futures.Await(f_await(name, timeout=0))
    assert (late.state, late.value, late.text, late.outcome) == (F_RESULT, b"42", "42", IMMEDIATE), late
    d = await client.describe(name)
    assert d is not None and d.future_state == F_RESULT and d.waiters == 0, fmt_desc(d)
    assert d.HasField("retained_for") and to_s(d.retained_for) > 0, fmt_desc(d)


async def test_future_binary_value_round_trips(client):
    name = unique("f/binary")
    value = bytes(range(256))
    await client.futures.SetResult(f_set(name, value=value))
    got = await client.futures.Await(f_await(name, timeout=0))
    assert got.state == F_RESULT and got.value == value


async def test_future_done_cannot_change_again(client):
    name = unique("f/twice")
    await client.futures.SetResult(f_set(name, value=b"\x00first"))
    await expect_status(client.futures.SetResult(f_set(name, text="second")), SC.FAILED_PRECONDITION)
    await expect_status(
        client.futures.SetException(future_pb2.SetExceptionRequest(name=name, code=2, message="late")),
        SC.FAILED_PRECONDITION,
    )
    c = await client.futures.Cancel(future_pb2.CancelFutureRequest(name=name))
    assert c.cancelled is False and c.state == F_RESULT, c
    got = await client.futures.Await(f_await(name, timeout=0))
    assert got.state == F_RESULT and got.value == b"\x00first", got


async def test_future_exception_is_delivered_as_data(client):
    name = unique("f/exception")
    a = asyncio.ensure_future(client.futures.Await(f_await(name, timeout=10)))
    await wait_desc(client, name, lambda d: d is not None and d.waiters == 1, "an awaiter")
    r = await client.futures.SetException(future_pb2.SetExceptionRequest(name=name, code=503, message="upstream down"))
    assert r.woken == 1
    got = await asyncio.wait_for(a, 10)
    assert (got.state, got.error_code, got.error_message) == (F_EXCEPTION, 503, "upstream down"), got
    again = await client.futures.Await(f_await(name, timeout=0))
    assert (again.state, again.error_code, again.error_message) == (F_EXCEPTION, 503, "upstream down"), again
    d = await client.describe(name)
    assert d.future_state == F_EXCEPTION, fmt_desc(d)


async def test_future_cancel(client):
    name = unique("f/cancel")
    a = asyncio.ensure_future(client.futures.Await(f_await(name, timeout=10)))
    await wait_desc(client, name, lambda d: d is not None and d.waiters == 1, "an awaiter")
    c = await client.futures.Cancel(future_pb2.CancelFutureRequest(name=name))
    assert c.cancelled is True and c.state == F_CANCELLED, c
    got = await asyncio.wait_for(a, 10)
    assert got.state == F_CANCELLED, got
    c2 = await client.futures.Cancel(future_pb2.CancelFutureRequest(name=name))
    assert c2.cancelled is False and c2.state == F_CANCELLED, c2
    await expect_status(client.futures.SetResult(f_set(name, text="too late")), SC.FAILED_PRECONDITION)
    d = await client.describe(name)
    assert d.future_state == F_CANCELLED, fmt_desc(d)


async def test_future_await_pending_with_zero_or_short_timeout(client):
    name = unique("f/pending")
    t0 = time.monotonic()
    await expect_status(client.futures.Await(f_await(name, timeout=0)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 < 1.0
    # Pending with nobody awaiting is the default state: nothing is kept.
    await wait_until_reclaimed(client, name)
    t0 = time.monotonic()
    await expect_status(client.futures.Await(f_await(name, timeout=0.2)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 >= 0.15
    await wait_until_reclaimed(client, name)

    # A cancelled Await leaves no awaiter behind.
    call = client.futures.Await(f_await(name, timeout=10))
    task = asyncio.ensure_future(call)
    await wait_desc(client, name, lambda d: d is not None and d.waiters == 1, "an awaiter")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_reclaimed(client, name)


async def test_future_retention_then_reclaim(client):
    name = unique("f/retention")
    await client.futures.SetResult(f_set(name, text="v1", retention=0.5))
    d = await client.describe(name)
    assert d is not None and d.future_state == F_RESULT, fmt_desc(d)
    assert d.HasField("retained_for") and 0 < to_s(d.retained_for) <= 0.5, fmt_desc(d)
    await wait_until_reclaimed(client, name)
    # Forgotten: the name is a fresh, pending future again.
    await expect_status(client.futures.Await(f_await(name, timeout=0)), SC.DEADLINE_EXCEEDED)
    r = await client.futures.SetResult(f_set(name, text="v2", retention=0.5))
    assert r.woken == 0
    got = await client.futures.Await(f_await(name, timeout=0))
    assert got.text == "v2"


async def test_future_await_aborted_when_session_ends(client):
    name = unique("f/session")
    sid = await client.open_session(60, "future-awaiter")
    a = asyncio.ensure_future(client.futures.Await(f_await(name, timeout=10, sid=sid)))
    await wait_desc(client, name, lambda d: d is not None and d.waiters == 1, "an awaiter")
    await close_session(client, sid)
    await expect_status(a, SC.ABORTED)
    await wait_until_reclaimed(client, name)


# ===========================================================================
# Barriers
# ===========================================================================


def barrier_state(d):
    return None if d is None else (d.barrier.parties, d.barrier.arrived, d.barrier.broken)


async def arrive(client, name, parties, n_before, **kw):
    """Starts a Wait and polls until it has arrived (n_before + 1 waiting)."""
    task = asyncio.ensure_future(client.barriers.Wait(b_wait(name, parties, timeout=10, **kw)))
    await wait_desc(client, name, lambda d: d is not None and d.barrier.arrived == n_before + 1,
                    f"{n_before + 1} arrival(s)")
    return task


async def test_barrier_releases_all_parties_together(client):
    name = unique("b/trip")
    w0 = await arrive(client, name, 3, 0)
    w1 = await arrive(client, name, 3, 1)
    d = await client.describe(name)
    assert d.kind == KIND_BARRIER and barrier_state(d) == (3, 2, False), fmt_desc(d)
    assert d.waiters == 2, fmt_desc(d)
    assert not w0.done() and not w1.done()

    # 0 means "as declared".
    last = await client.barriers.Wait(b_wait(name, 0, timeout=10))
    r0, r1 = await asyncio.wait_for(w0, 10), await asyncio.wait_for(w1, 10)
    # Arrival index: 0 for the first, parties-1 for the one that tripped it.
    assert [r0.index, r1.index, last.index] == [0, 1, 2], (r0, r1, last)
    assert r0.cycle == r1.cycle == last.cycle == 1, (r0, r1, last)
    # Nobody waiting and not broken: reclaimed, forgetting its parties.
    await wait_until_reclaimed(client, name)
    await expect_status(client.barriers.Wait(b_wait(name, 0, timeout=0)), SC.INVALID_ARGUMENT)


async def test_barrier_next_cycle(client):
    name = unique("b/cycles")
    a = await arrive(client, name, 2, 0)
    b = await client.barriers.Wait(b_wait(name, 2, timeout=10))
    ra = await asyncio.wait_for(a, 10)
    assert (ra.index, b.index) == (0, 1) and ra.cycle == b.cycle, (ra, b)
    c = await arrive(client, name, 2, 0)
    d = await client.barriers.Wait(b_wait(name, 2, timeout=10))
    rc = await asyncio.wait_for(c, 10)
    assert (rc.index, d.index) == (0, 1) and rc.cycle == d.cycle >= 1, (rc, d)


async def test_barrier_of_one_party_trips_at_once(client):
    name = unique("b/one")
    r = await client.barriers.Wait(b_wait(name, 1, timeout=0))
    assert r.index == 0 and r.cycle == 1, r


async def test_barrier_abort_breaks_it_until_reset(client):
    name = unique("b/abort")
    w0 = await arrive(client, name, 3, 0)
    w1 = await arrive(client, name, 3, 1)
    a = await client.barriers.Abort(barrier_pb2.BarrierAbortRequest(name=name))
    assert a.aborted == 2, a
    await expect_status(w0, SC.ABORTED)
    await expect_status(w1, SC.ABORTED)
    d = await client.describe(name)
    assert d is not None and d.barrier.broken and d.barrier.arrived == 0, fmt_desc(d)
    # Later callers: ABORTED at once, without waiting.
    t0 = time.monotonic()
    await expect_status(client.barriers.Wait(b_wait(name, 3, timeout=5)), SC.ABORTED)
    assert time.monotonic() - t0 < 1.0
    # Idempotent.
    a2 = await client.barriers.Abort(barrier_pb2.BarrierAbortRequest(name=name))
    assert a2.aborted == 0
    d = await client.describe(name)
    assert d is not None and d.barrier.broken, "a broken barrier must be kept (not reclaimed) until Reset"

    r = await client.barriers.Reset(barrier_pb2.BarrierResetRequest(name=name))
    assert r.aborted == 0, r
    tasks = [await arrive(client, name, 3, 0), await arrive(client, name, 3, 1)]
    last = await client.barriers.Wait(b_wait(name, 3, timeout=10))
    got = [await asyncio.wait_for(t, 10) for t in tasks] + [last]
    assert sorted(g.index for g in got) == [0, 1, 2]
    await wait_until_reclaimed(client, name)


async def test_barrier_reset_aborts_current_waiters(client):
    name = unique("b/reset")
    w0 = await arrive(client, name, 3, 0)
    w1 = await arrive(client, name, 3, 1)
    r = await client.barriers.Reset(barrier_pb2.BarrierResetRequest(name=name))
    assert r.aborted == 2, r
    await expect_status(w0, SC.ABORTED)
    await expect_status(w1, SC.ABORTED)
    # Empty and unbroken: a new group of three trips it.
    d = await client.describe(name)
    assert d is None or (not d.barrier.broken and d.barrier.arrived == 0), fmt_desc(d)
    t0 = await arrive(client, name, 3, 0)
    t1 = await arrive(client, name, 3, 1)
    last = await client.barriers.Wait(b_wait(name, 3, timeout=10))
    assert last.index == 2
    assert {(await t0).index, (await t1).index} == {0, 1}


async def test_barrier_waiter_timeout_breaks_it_for_the_others(client):
    name = unique("b/timeout")
    w0 = await arrive(client, name, 3, 0)
    t0 = time.monotonic()
    await expect_status(client.barriers.Wait(b_wait(name, 3, timeout=0.3)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 >= 0.25
    await expect_status(asyncio.wait_for(w0, 10), SC.ABORTED)
    await expect_status(client.barriers.Wait(b_wait(name, 3, timeout=5)), SC.ABORTED)
    d = await client.describe(name)
    assert d is not None and d.barrier.broken, fmt_desc(d)
    await client.barriers.Reset(barrier_pb2.BarrierResetRequest(name=name))
    await wait_until_reclaimed(client, name)


async def test_barrier_cancelled_waiter_breaks_it_for_the_others(client):
    name = unique("b/cancel")
    w0 = await arrive(client, name, 3, 0)
    call = client.barriers.Wait(b_wait(name, 3, timeout=10))
    task = asyncio.ensure_future(call)
    await wait_desc(client, name, lambda d: d is not None and d.barrier.arrived == 2, "2 arrivals")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await expect_status(asyncio.wait_for(w0, 10), SC.ABORTED)
    d = await wait_desc(client, name, lambda d: d is not None and d.barrier.broken, "broken")
    assert d.barrier.arrived == 0, fmt_desc(d)
    await client.barriers.Reset(barrier_pb2.BarrierResetRequest(name=name))
    await wait_until_reclaimed(client, name)


async def test_barrier_parties_validation_and_mismatch(client):
    name = unique("b/parties")
    # Missing on first use, or out of range.
    await expect_status(client.barriers.Wait(b_wait(name, 0, timeout=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.barriers.Wait(b_wait(name, 100001, timeout=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.barriers.Wait(b_wait("bad name", 2, timeout=0)), SC.INVALID_ARGUMENT)
    w0 = await arrive(client, name, 3, 0)
    await expect_status(client.barriers.Wait(b_wait(name, 4, timeout=1)), SC.FAILED_PRECONDITION)
    await expect_status(client.barriers.Wait(b_wait(name, 2, timeout=1)), SC.FAILED_PRECONDITION)
    # A refused call did not arrive, and did not break the barrier.
    d = await client.describe(name)
    assert barrier_state(d) == (3, 1, False), fmt_desc(d)
    w1 = await arrive(client, name, 0, 1)
    last = await client.barriers.Wait(b_wait(name, 3, timeout=10))
    assert last.index == 2
    assert [(await w0).index, (await w1).index] == [0, 1]


async def test_barrier_wait_aborted_when_session_ends(client):
    name = unique("b/session")
    sid = await client.open_session(60, "barrier-party")
    w = await arrive(client, name, 2, 0, sid=sid)
    await close_session(client, sid)
    await expect_status(w, SC.ABORTED)
    await client.barriers.Reset(barrier_pb2.BarrierResetRequest(name=name))
    await wait_until_reclaimed(client, name)


# ===========================================================================
# Conditions
# ===========================================================================


async def acquire_and_wait(client, lock, sid, n_before, *, condition="", timeout=10):
    """Acquires `lock` for `sid`, then Waits on the condition; polls until the
    wait is registered (n_before + 1 waiters). -> (acquired token, Wait task)."""
    held = await client.locks.Acquire(lock_req(lock, sid, timeout=10))
    task = asyncio.ensure_future(
        client.conditions.Wait(c_wait(lock, held.token, sid, condition=condition, timeout=timeout))
    )
    await wait_desc(client, lock, lambda d: cond_counts(d, condition)[0] == n_before + 1,
                    f"{n_before + 1} waiter(s) on condition {condition!r}")
    return held.token, task


async def notify_as(client, lock, sid, *, condition="", n=0, all_=False):
    """Acquires the lock, notifies, releases. -> woken."""
    h = await client.locks.Acquire(lock_req(lock, sid, timeout=10))
    req = c_notify(lock, h.token, sid, condition=condition, n=n)
    r = await (client.conditions.NotifyAll(req) if all_ else client.conditions.Notify(req))
    await client.locks.Release(lock_release(lock, h.token, sid))
    return r.woken


async def test_condition_wait_and_notify_require_holding_the_lock(client):
    lock, free_lock = unique("c/requires"), unique("c/requires-free")
    s1 = await client.open_session()
    s2 = await client.open_session()
    h = await client.locks.Acquire(lock_req(lock, s1))
    # Wrong token, wrong owner, a lock that is not held at all.
    await expect_status(client.conditions.Wait(c_wait(lock, h.token + 12345, s1, timeout=1)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.Wait(c_wait(lock, h.token, s2, timeout=1)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.Wait(c_wait(free_lock, h.token, s1, timeout=1)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.Notify(c_notify(lock, h.token + 12345, s1)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.Notify(c_notify(lock, h.token, s2)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.NotifyAll(c_notify(lock, h.token, s2)), SC.FAILED_PRECONDITION)
    await expect_status(client.conditions.Notify(c_notify(free_lock, 1, s1)), SC.FAILED_PRECONDITION)
    # The holder may notify with nobody waiting.
    r = await client.conditions.Notify(c_notify(lock, h.token, s1))
    assert r.woken == 0
    # None of that disturbed the holding.
    d = await client.describe(lock)
    assert holders(d) == [(h.token, s1)], fmt_desc(d)
    await client.locks.Release(lock_release(lock, h.token, s1))
    for s in (s1, s2):
        await close_session(client, s)


async def test_condition_wait_releases_lock_and_notify_reacquires_it(client):
    lock = unique("c/wait-notify")
    s1 = await client.open_session(60, "cond-waiter")
    s2 = await client.open_session(60, "cond-notifier")
    t1, wait = await acquire_and_wait(client, lock, s1, 0)
    d = await client.describe(lock)
    assert d.kind == KIND_LOCK and holders(d) == [], f"Wait must release the lock: {fmt_desc(d)}"

    # Another client can take the lock meanwhile.
    other = await client.locks.Acquire(lock_req(lock, s2, timeout=2))
    assert other.token > t1
    n = await client.conditions.Notify(c_notify(lock, other.token, s2))
    assert n.woken == 1, n
    # Notified, but the lock is still s2's: the waiter stands in the lock's line.
    await wait_desc(client, lock, lambda d: cond_counts(d) == (0, 1), "the waiter re-acquiring")
    assert not wait.done()
    rel = await client.locks.Release(lock_release(lock, other.token, s2))
    assert rel.handed_off is True

    r = await asyncio.wait_for(wait, 10)
    assert r.outcome == NOTIFIED and r.token > other.token, r
    assert not r.HasField("expires_in"), "a session-owned holding has no lease"
    d = await client.describe(lock)
    assert holders(d) == [(r.token, s1)], fmt_desc(d)
    assert cond_counts(d) == (0, 0), fmt_desc(d)
    # The token from before the wait is stale.
    await expect_status(client.locks.Release(lock_release(lock, t1, s1)), SC.FAILED_PRECONDITION)
    await client.locks.Release(lock_release(lock, r.token, s1))
    await wait_until_reclaimed(client, lock)
    for s in (s1, s2):
        await close_session(client, s)


async def test_condition_notify_wakes_one_oldest_first(client):
    lock = unique("c/notify-one")
    sa, sb, sn = [await client.open_session() for _ in range(3)]
    _, wa = await acquire_and_wait(client, lock, sa, 0)
    _, wb = await acquire_and_wait(client, lock, sb, 1)

    assert await notify_as(client, lock, sn) == 1
    ra = await asyncio.wait_for(wa, 10)
    assert ra.outcome == NOTIFIED
    d = await client.describe(lock)
    assert holders(d) == [(ra.token, sa)] and cond_counts(d) == (1, 0), fmt_desc(d)
    assert not wb.done()
    await client.locks.Release(lock_release(lock, ra.token, sa))

    assert await notify_as(client, lock, sn) == 1
    rb = await asyncio.wait_for(wb, 10)
    assert rb.outcome == NOTIFIED and rb.token > ra.token
    await client.locks.Release(lock_release(lock, rb.token, sb))
    assert await notify_as(client, lock, sn) == 0
    await wait_until_reclaimed(client, lock)
    for s in (sa, sb, sn):
        await close_session(client, s)


async def test_condition_notify_n(client):
    lock = unique("c/notify-n")
    sids = [await client.open_session() for _ in range(4)]
    tasks = []
    for i in range(3):
        _, t = await acquire_and_wait(client, lock, sids[i], i)
        tasks.append(t)

    async def finish(t, sid):
        r = await asyncio.wait_for(t, 10)
        await client.locks.Release(lock_release(lock, r.token, sid))
        return r

    assert await notify_as(client, lock, sids[3], n=2) == 2
    first_two = await asyncio.gather(finish(tasks[0], sids[0]), finish(tasks[1], sids[1]))
    assert all(r.outcome == NOTIFIED for r in first_two)
    d = await wait_desc(client, lock, lambda d: cond_counts(d) == (1, 0), "one waiter left")
    assert not tasks[2].done(), fmt_desc(d)
    assert await notify_as(client, lock, sids[3], all_=True) == 1
    await finish(tasks[2], sids[2])
    await wait_until_reclaimed(client, lock)
    for s in sids:
        await close_session(client, s)


async def test_condition_notify_all_wakes_everyone_who_then_hold_the_lock_in_turn(client):
    lock = unique("c/notify-all")
    n = 3
    sids = [await client.open_session() for _ in range(n + 1)]
    order, problems = [], []

    async def waiter(i, wait_task):
        r = await asyncio.wait_for(wait_task, 10)
        order.append((i, r.token, r.outcome))
        d = await client.describe(lock)
        if holders(d) != [(r.token, sids[i])]:
            problems.append(f"waiter {i} returned with token {r.token} but the lock shows {fmt_desc(d)}")
        await asyncio.sleep(0.01)
        await client.locks.Release(lock_release(lock, r.token, sids[i]))

    runners = []
    for i in range(n):
        _, t = await acquire_and_wait(client, lock, sids[i], i)
        runners.append(asyncio.ensure_future(waiter(i, t)))

    h = await client.locks.Acquire(lock_req(lock, sids[n], timeout=10))
    r = await client.conditions.NotifyAll(c_notify(lock, h.token, sids[n]))
    assert r.woken == n, r
    d = await wait_desc(client, lock, lambda d: cond_counts(d) == (0, n), f"{n} re-acquiring")
    assert holders(d) == [(h.token, sids[n])], fmt_desc(d)
    await client.locks.Release(lock_release(lock, h.token, sids[n]))
    await asyncio.wait_for(asyncio.gather(*runners), 15)

    assert not problems, problems
    assert [i for i, _, _ in order] == list(range(n)), f"re-acquired in order {order}, waited in 0..{n - 1}"
    tokens = [t for _, t, _ in order]
    assert tokens == sorted(tokens) and len(set(tokens)) == n and tokens[0] > h.token, order
    assert all(o == NOTIFIED for _, _, o in order), order
    await wait_until_reclaimed(client, lock)
    for s in sids:
        await close_session(client, s)


async def test_condition_wait_timeout_returns_ok_holding_the_lock(client):
    lock = unique("c/timeout")
    s1 = await client.open_session()
    h = await client.locks.Acquire(lock_req(lock, s1))
    t0 = time.monotonic()
    r = await client.conditions.Wait(c_wait(lock, h.token, s1, timeout=0.3))
    assert time.monotonic() - t0 >= 0.25
    assert r.outcome == TIMED_OUT and r.token > h.token, r
    d = await client.describe(lock)
    assert holders(d) == [(r.token, s1)], fmt_desc(d)
    await client.locks.Release(lock_release(lock, r.token, s1))
    await close_session(client, s1)


async def test_condition_timed_out_waiter_still_waits_its_turn_for_the_lock(client):
    # "the re-acquire that follows is not bounded by [timeout]".
    lock = unique("c/timeout-reacquire")
    s1, s2 = await client.open_session(), await client.open_session()
    t1, wait = await acquire_and_wait(client, lock, s1, 0, timeout=0.3)
    other = await client.locks.Acquire(lock_req(lock, s2, timeout=2))
    await wait_desc(client, lock, lambda d: cond_counts(d) == (0, 1), "the timed-out waiter re-acquiring", 5)
    assert not wait.done()
    await client.locks.Release(lock_release(lock, other.token, s2))
    r = await asyncio.wait_for(wait, 10)
    assert r.outcome == TIMED_OUT and r.token > other.token, r
    await client.locks.Release(lock_release(lock, r.token, s1))
    for s in (s1, s2):
        await close_session(client, s)


async def test_condition_named_conditions_are_separate(client):
    lock = unique("c/named")
    sa, sb, sn = [await client.open_session() for _ in range(3)]
    _, wa = await acquire_and_wait(client, lock, sa, 0, condition="not-empty")
    _, wb = await acquire_and_wait(client, lock, sb, 0, condition="not-full")
    d = await client.describe(lock)
    assert cond_counts(d, "not-empty") == (1, 0) and cond_counts(d, "not-full") == (1, 0), fmt_desc(d)
    assert cond_counts(d, "") == (0, 0), fmt_desc(d)

    assert await notify_as(client, lock, sn, condition="") == 0
    assert await notify_as(client, lock, sn, condition="not-empty", all_=True) == 1
    ra = await asyncio.wait_for(wa, 10)
    assert ra.outcome == NOTIFIED
    await client.locks.Release(lock_release(lock, ra.token, sa))
    d = await client.describe(lock)
    assert cond_counts(d, "not-full") == (1, 0) and not wb.done(), fmt_desc(d)
    assert await notify_as(client, lock, sn, condition="not-full") == 1
    rb = await asyncio.wait_for(wb, 10)
    await client.locks.Release(lock_release(lock, rb.token, sb))
    await wait_until_reclaimed(client, lock)
    for s in (sa, sb, sn):
        await close_session(client, s)


async def test_condition_wait_aborted_when_session_ends_and_lock_not_held(client):
    lock = unique("c/session")
    s1 = await client.open_session(60, "cond-doomed")
    _, wait = await acquire_and_wait(client, lock, s1, 0)
    await close_session(client, s1)
    await expect_status(wait, SC.ABORTED)
    await wait_until_reclaimed(client, lock)


async def test_condition_cancelled_wait_does_not_hold_the_lock(client):
    lock = unique("c/cancel")
    s1 = await client.open_session()
    h = await client.locks.Acquire(lock_req(lock, s1))
    call = client.conditions.Wait(c_wait(lock, h.token, s1, timeout=10))
    task = asyncio.ensure_future(call)
    await wait_desc(client, lock, lambda d: cond_counts(d)[0] == 1, "a waiter")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_reclaimed(client, lock)
    await close_session(client, s1)


async def test_condition_wait_with_a_leased_holding(client):
    lock = unique("c/lease")
    h = await client.locks.Acquire(lock_req(lock, 0, ttl=30))
    assert h.HasField("expires_in")
    r = await client.conditions.Wait(c_wait(lock, h.token, 0, ttl=30, timeout=0.2))
    assert r.outcome == TIMED_OUT and r.token > h.token, r
    assert r.HasField("expires_in") and 25 < to_s(r.expires_in) <= 30, r
    d = await client.describe(lock)
    assert holders(d) == [(r.token, 0)] and d.holders[0].HasField("expires_in"), fmt_desc(d)
    await client.locks.Release(lock_release(lock, r.token, 0))
    await wait_until_reclaimed(client, lock)
