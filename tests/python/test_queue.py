"""Behaviour of baton.v1.Queues over real gRPC, one property per test.

The contract is proto/baton/v1/queue.proto (and QueueInfo in admin.proto);
the comments cite the rule being checked. Each test uses its own queue names,
so tests share one server per module. Waits are bounded: blocking calls carry a
`timeout`, and the state the tests wait for is polled through Admin/Describe
with a deadline rather than slept for.
"""

import asyncio
import time

import pytest

from baton_helpers import (
    wait_until_reclaimed,
    AFTER_WAIT,
    IMMEDIATE,
    KIND_QUEUE,
    Q_FIFO,
    Q_LIFO,
    Q_PRIORITY,
    SC,
    BatondProcess,
    Client,
    admin_pb2,
    dur,
    expect_status,
    fmt_desc,
    lock_release,
    lock_req,
    poll_until,
    q_ack,
    q_get,
    q_item,
    q_nack,
    q_options,
    q_put,
    queue_pb2,
    session_pb2,
    to_s,
    unique,
)

UNKNOWN_SESSION = 0x7FFF_FFFF_FFFF_FF01  # never handed out by a fresh server
LEASE = 30.0  # a visibility timeout that never runs out during a test


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


async def qinfo(client, name):
    """The QueueInfo of `name`, or None when it does not exist."""
    d = await client.describe(name)
    return None if d is None else d.queue


async def wait_queue(client, name, what, timeout=5.0, **want):
    """Polls Describe until every QueueInfo field in `want` has its value."""

    async def check():
        q = await qinfo(client, name)
        if q is None:
            return False
        return all(getattr(q, k) == v for k, v in want.items())

    try:
        await poll_until(check, timeout, what=what)
    except AssertionError:
        raise AssertionError(f"{name}: {what} not reached in {timeout}s (want {want}): "
                             f"{fmt_desc(await client.describe(name))}")


async def get_one(client, name, sid=0, *, ttl=LEASE, timeout=0, **kw):
    """Gets exactly one item (zero timeout by default: it must be ready)."""
    r = await client.queues.Get(q_get(name, sid, ttl=ttl, timeout=timeout, max_items=1, **kw))
    assert len(r.items) == 1, f"Get(max_items=1) returned {len(r.items)} items: {r}"
    return r.items[0]


async def drain_texts(client, name, n, *, ack=True):
    """Gets n items one at a time (they must be ready); -> their texts in order."""
    texts = []
    for _ in range(n):
        d = await get_one(client, name)
        texts.append(d.text)
        if ack:
            await client.queues.Ack(q_ack(name, [d.receipt]))
    return texts


async def close_session(client, sid):
    await client.sessions.Close(session_pb2.CloseSessionRequest(session_id=sid))


# ---------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------


async def test_fifo_order_and_delivery_fields(client):
    name = unique("q/fifo")
    r1 = await client.queues.Put(q_put(name, ["a"]))
    assert r1.outcome == IMMEDIATE and len(r1.item_ids) == 1 and r1.size == 1, r1
    r2 = await client.queues.Put(q_put(name, ["b", "c", "d"]))
    assert len(r2.item_ids) == 3 and r2.size == 4, r2
    ids = list(r1.item_ids) + list(r2.item_ids)
    assert len(set(ids)) == 4, f"item ids not unique: {ids}"

    got = []
    for _ in range(4):
        d = await get_one(client, name)
        # `text` is stored as bytes and returned in both fields.
        assert d.data == d.text.encode(), d
        assert d.delivery_count == 1, d
        assert d.receipt != 0
        assert 0 <= to_s(d.age) < 10, d
        got.append((d.text, d.item_id))
        await client.queues.Ack(q_ack(name, [d.receipt]))
    assert got == list(zip("abcd", ids)), f"FIFO order/ids: got {got}, put {list(zip('abcd', ids))}"
    await wait_until_reclaimed(client, name)


async def test_binary_data_round_trips(client):
    name = unique("q/binary")
    payload = bytes(range(256))
    await client.queues.Put(q_put(name, [q_item(data=payload)]))
    d = await get_one(client, name)
    assert d.data == payload
    await client.queues.Ack(q_ack(name, [d.receipt]))


async def test_lifo_order(client):
    name = unique("q/lifo")
    opts = q_options(order=Q_LIFO)
    for t in ["1", "2", "3"]:
        await client.queues.Put(q_put(name, [t], options=opts))
    assert await drain_texts(client, name, 3) == ["3", "2", "1"]
    await wait_until_reclaimed(client, name)


async def test_priority_order_lower_first_fifo_among_equals(client):
    name = unique("q/prio")
    opts = q_options(order=Q_PRIORITY)
    items = [("a", 5), ("b", 1), ("c", 5), ("d", 1), ("e", -3), ("f", 0)]
    # One batch and single puts mixed: FIFO among equals holds across both.
    await client.queues.Put(q_put(name, [q_item(t, priority=p) for t, p in items[:3]], options=opts))
    for t, p in items[3:]:
        await client.queues.Put(q_put(name, [q_item(t, priority=p)], options=opts))
    got = []
    for _ in items:
        d = await get_one(client, name)
        got.append((d.text, d.priority))
        await client.queues.Ack(q_ack(name, [d.receipt]))
    assert got == [("e", -3), ("f", 0), ("b", 1), ("d", 1), ("a", 5), ("c", 5)], f"priority order: {got}"
    await wait_until_reclaimed(client, name)


async def test_priority_is_ignored_by_fifo_queue(client):
    name = unique("q/fifo-prio")
    await client.queues.Put(q_put(name, [q_item("x", priority=9), q_item("y", priority=1)]))
    assert await drain_texts(client, name, 2) == ["x", "y"]


# ---------------------------------------------------------------------------
# maxsize, put_nowait, get_nowait, blocking
# ---------------------------------------------------------------------------


async def test_bounded_put_blocks_until_a_get_makes_room(client):
    name = unique("q/maxsize")
    opts = q_options(maxsize=2)
    await client.queues.Put(q_put(name, ["a", "b"], options=opts))

    # put_nowait on a full queue: RESOURCE_EXHAUSTED (asyncio.QueueFull), nothing added.
    await expect_status(client.queues.Put(q_put(name, ["x"], timeout=0)), SC.RESOURCE_EXHAUSTED)
    # A bounded wait that runs out: DEADLINE_EXCEEDED, and it leaves no putter behind.
    t0 = time.monotonic()
    await expect_status(client.queues.Put(q_put(name, ["y"], timeout=0.2)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 >= 0.15
    await wait_queue(client, name, "no putter left", size=2, waiting_putters=0)

    put = asyncio.ensure_future(client.queues.Put(q_put(name, ["c"], timeout=10)))
    await wait_queue(client, name, "one putter waiting", waiting_putters=1)
    assert not put.done()

    first = await get_one(client, name)  # in flight does not count against maxsize
    assert first.text == "a"
    r = await asyncio.wait_for(put, 10)
    assert r.outcome == AFTER_WAIT and r.size == 2 and len(r.item_ids) == 1, r
    await client.queues.Ack(q_ack(name, [first.receipt]))
    assert await drain_texts(client, name, 2) == ["b", "c"]
    await wait_until_reclaimed(client, name)


async def test_putters_are_served_fifo_without_barging(client):
    # "waits (FIFO among putters) until the whole batch fits": a small put that
    # would fit must not overtake an older, bigger one.
    name = unique("q/putters-fifo")
    await client.queues.Put(q_put(name, ["1", "2", "3"], options=q_options(maxsize=3)))
    big = asyncio.ensure_future(client.queues.Put(q_put(name, ["A1", "A2"], timeout=10)))
    await wait_queue(client, name, "the big putter waiting", waiting_putters=1)
    small = asyncio.ensure_future(client.queues.Put(q_put(name, ["B"], timeout=10)))
    await wait_queue(client, name, "both putters waiting", waiting_putters=2)

    await get_one(client, name)  # one slot free: the batch of 2 does not fit yet
    await wait_queue(client, name, "one slot free, both still waiting", size=2, waiting_putters=2)
    assert not big.done() and not small.done()

    await get_one(client, name)  # two free: the big put goes, the small one still waits
    rb = await asyncio.wait_for(big, 10)
    assert rb.outcome == AFTER_WAIT and len(rb.item_ids) == 2
    await wait_queue(client, name, "big put done", size=3, waiting_putters=1)
    assert not small.done()

    await get_one(client, name)
    rs = await asyncio.wait_for(small, 10)
    assert rs.outcome == AFTER_WAIT
    texts = [(await get_one(client, name)).text for _ in range(3)]
    assert texts == ["A1", "A2", "B"], texts
    await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))


async def test_putter_giving_up_lets_the_next_one_in():
    # The head putter (a batch that does not fit) times out; the one behind it,
    # which fits, must then proceed. Afterwards the queue (and every queue on
    # its shard: same name, so same shard) must still take puts: the server's
    # byte accounting (--max_queue_bytes) must follow items enqueued this way
    # too. Own server: a broken byte count would make the shard refuse every
    # later Put and spill into unrelated tests.
    server = BatondProcess()
    client = Client(server.start())
    try:
        name = unique("q/putter-leaves")
        data = b"p" * 1000
        await client.queues.Put(q_put(name, [q_item(data=data)], options=q_options(maxsize=2)))
        big = asyncio.ensure_future(client.queues.Put(q_put(name, [q_item(data=data)] * 2, timeout=0.3)))
        await wait_queue(client, name, "the big putter waiting", waiting_putters=1)
        small = asyncio.ensure_future(client.queues.Put(q_put(name, [q_item(data=data)], timeout=10)))
        await wait_queue(client, name, "both putters waiting", waiting_putters=2)
        await expect_status(big, SC.DEADLINE_EXCEEDED)
        r = await asyncio.wait_for(small, 10)
        assert r.outcome == AFTER_WAIT and r.size == 2, r
        got = await client.queues.Get(q_get(name, ttl=LEASE, max_items=10, timeout=0))
        assert len(got.items) == 2
        await client.queues.Ack(q_ack(name, [i.receipt for i in got.items]))
        await wait_until_reclaimed(client, name)
        for size in (1, 10, 1000):
            await client.queues.Put(q_put(name, [q_item(data=b"s" * size)]))
            await drain_texts(client, name, 1)
    finally:
        await client.close()
        code = server.terminate()
    assert code == 0, f"exit code {code} after SIGTERM"


async def test_batch_put_is_all_or_none(client):
    name = unique("q/all-or-none")
    await client.queues.Put(q_put(name, ["a", "b"], options=q_options(maxsize=3)))
    # Two more do not fit (one would): nothing is added.
    await expect_status(client.queues.Put(q_put(name, ["c", "d"], timeout=0)), SC.RESOURCE_EXHAUSTED)
    await wait_queue(client, name, "size unchanged", size=2)
    r = await client.queues.Put(q_put(name, ["c"], timeout=0))
    assert r.size == 3
    await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))


async def test_get_nowait_on_empty_is_deadline_exceeded(client):
    name = unique("q/get-nowait")
    t0 = time.monotonic()
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, timeout=0)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, timeout=0.2)), SC.DEADLINE_EXCEEDED)
    assert time.monotonic() - t0 >= 0.15
    await wait_until_reclaimed(client, name)


async def test_blocking_get_is_woken_by_put_and_getters_are_fifo(client):
    name = unique("q/getters")
    g1 = asyncio.ensure_future(client.queues.Get(q_get(name, ttl=LEASE, timeout=10)))
    await wait_queue(client, name, "getter 1 waiting", waiting_getters=1)
    g2 = asyncio.ensure_future(client.queues.Get(q_get(name, ttl=LEASE, timeout=10)))
    await wait_queue(client, name, "getter 2 waiting", waiting_getters=2)
    d = await client.describe(name)
    assert d.kind == KIND_QUEUE and d.waiters == 2, fmt_desc(d)  # waiters counts getters

    await client.queues.Put(q_put(name, ["first"]))
    r1 = await asyncio.wait_for(g1, 10)
    assert r1.outcome == AFTER_WAIT and [i.text for i in r1.items] == ["first"], r1
    assert not g2.done()
    await client.queues.Put(q_put(name, ["second"]))
    r2 = await asyncio.wait_for(g2, 10)
    assert [i.text for i in r2.items] == ["second"], r2
    await client.queues.Ack(q_ack(name, [r1.items[0].receipt, r2.items[0].receipt]))
    await wait_until_reclaimed(client, name)


async def test_cancelled_get_leaves_no_getter_and_takes_nothing(client):
    name = unique("q/get-cancel")
    call = client.queues.Get(q_get(name, ttl=LEASE, timeout=10))
    task = asyncio.ensure_future(call)
    await wait_queue(client, name, "getter waiting", waiting_getters=1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def no_getter():
        q = await qinfo(client, name)
        return q is None or q.waiting_getters == 0

    await poll_until(no_getter, what="the cancelled getter to leave")
    await client.queues.Put(q_put(name, ["kept"]))
    d = await get_one(client, name)
    assert d.text == "kept" and d.delivery_count == 1, d
    await client.queues.Ack(q_ack(name, [d.receipt]))


async def test_batch_get_takes_up_to_max_items(client):
    name = unique("q/batch")
    r = await client.queues.Put(q_put(name, list("abcde")))
    assert len(r.item_ids) == 5 and r.size == 5
    g1 = await client.queues.Get(q_get(name, ttl=LEASE, max_items=3, timeout=0))
    assert [i.text for i in g1.items] == ["a", "b", "c"], g1
    assert [i.item_id for i in g1.items] == list(r.item_ids[:3])
    # Fewer ready than asked for: returns what there is, does not wait for more.
    g2 = await client.queues.Get(q_get(name, ttl=LEASE, max_items=10, timeout=5))
    assert [i.text for i in g2.items] == ["d", "e"], g2
    receipts = [i.receipt for i in list(g1.items) + list(g2.items)]
    assert len(set(receipts)) == 5
    a = await client.queues.Ack(q_ack(name, receipts))
    assert a.acked == 5 and a.unfinished == 0, a
    await wait_until_reclaimed(client, name)


async def test_delayed_item_is_invisible_until_its_delay_passes(client):
    name = unique("q/delay")
    t0 = time.monotonic()
    await client.queues.Put(q_put(name, [q_item("later", delay=0.6)]))
    await client.queues.Put(q_put(name, ["now"]))
    q = await qinfo(client, name)
    assert q.delayed == 1 and q.size == 1, q
    # The undelayed item, put after it, comes first.
    d1 = await get_one(client, name)
    assert d1.text == "now"
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, timeout=0)), SC.DEADLINE_EXCEEDED)
    r = await client.queues.Get(q_get(name, ttl=LEASE, timeout=5))
    waited = time.monotonic() - t0
    assert [i.text for i in r.items] == ["later"], r
    assert waited >= 0.55, f"a 0.6 s delayed item was got after {waited:.3f}s"
    await client.queues.Ack(q_ack(name, [d1.receipt, r.items[0].receipt]))
    await wait_until_reclaimed(client, name)


# ---------------------------------------------------------------------------
# Ack, Nack, leases, sessions, dead letters
# ---------------------------------------------------------------------------


async def test_ack_and_nack(client):
    name = unique("q/ack-nack")
    await client.queues.Put(q_put(name, ["a", "b", "c"]))
    d1 = await get_one(client, name)
    assert d1.text == "a" and d1.delivery_count == 1
    n = await client.queues.Nack(q_nack(name, [d1.receipt]))
    assert n.returned == 1 and n.dead_lettered == 0, n

    # Back at the head, delivery count raised, a new receipt.
    d2 = await get_one(client, name)
    assert d2.text == "a" and d2.item_id == d1.item_id and d2.delivery_count == 2, d2
    assert d2.receipt != d1.receipt
    # The old receipt is not in flight any more.
    await expect_status(client.queues.Ack(q_ack(name, [d1.receipt])), SC.FAILED_PRECONDITION)
    a = await client.queues.Ack(q_ack(name, [d2.receipt]))
    assert a.acked == 1 and a.unfinished == 2, a
    # Acking twice is refused.
    await expect_status(client.queues.Ack(q_ack(name, [d2.receipt])), SC.FAILED_PRECONDITION)

    # A mix of valid and stale receipts: error, but the valid one is acknowledged.
    d3 = await get_one(client, name)
    assert d3.text == "b"
    await expect_status(client.queues.Ack(q_ack(name, [d3.receipt, d1.receipt])), SC.FAILED_PRECONDITION)
    await wait_queue(client, name, "b acknowledged despite the stale receipt", in_flight=0, size=1, unfinished=1)
    assert (await drain_texts(client, name, 1)) == ["c"]
    await wait_until_reclaimed(client, name)


async def test_nack_with_delay(client):
    name = unique("q/nack-delay")
    await client.queues.Put(q_put(name, ["x", "y"]))
    dx = await get_one(client, name)
    t0 = time.monotonic()
    await client.queues.Nack(q_nack(name, [dx.receipt], delay=0.5))
    dy = await get_one(client, name)
    assert dy.text == "y"
    q = await qinfo(client, name)
    assert q.delayed == 1 and q.size == 0 and q.in_flight == 1, q
    r = await client.queues.Get(q_get(name, ttl=LEASE, timeout=5))
    assert [(i.text, i.delivery_count) for i in r.items] == [("x", 2)], r
    assert time.monotonic() - t0 >= 0.45
    await client.queues.Ack(q_ack(name, [dy.receipt, r.items[0].receipt]))
    await wait_until_reclaimed(client, name)


async def test_lease_expiry_redelivers_at_head(client):
    name = unique("q/lease")
    await client.queues.Put(q_put(name, ["a", "b"]))
    t0 = time.monotonic()
    d1 = await get_one(client, name, ttl=0.4)
    assert d1.text == "a"
    q = await qinfo(client, name)
    assert q.in_flight == 1 and q.size == 1, q
    await wait_queue(client, name, "the leased item to come back", in_flight=0, size=2)
    assert time.monotonic() - t0 >= 0.35, "item returned before its 0.4 s lease ran out"

    d2 = await get_one(client, name)
    assert (d2.text, d2.item_id, d2.delivery_count) == ("a", d1.item_id, 2), d2
    # The expired receipt cannot be acknowledged.
    await expect_status(client.queues.Ack(q_ack(name, [d1.receipt])), SC.FAILED_PRECONDITION)
    await client.queues.Ack(q_ack(name, [d2.receipt]))
    assert await drain_texts(client, name, 1) == ["b"]
    await wait_until_reclaimed(client, name)


async def test_session_end_redelivers_and_aborts_its_gets(client):
    name = unique("q/session")
    other = unique("q/session-empty")
    sid = await client.open_session(60, "queue-consumer")
    await client.queues.Put(q_put(name, ["a", "b"]))
    d = await get_one(client, name, sid, ttl=None)
    assert d.text == "a"
    pending = asyncio.ensure_future(client.queues.Get(q_get(other, sid, timeout=10)))
    await wait_queue(client, other, "getter waiting", waiting_getters=1)

    await close_session(client, sid)
    await expect_status(pending, SC.ABORTED)
    await wait_queue(client, name, "the session's item to come back", in_flight=0, size=2)
    d2 = await get_one(client, name)
    assert (d2.text, d2.delivery_count) == ("a", 2), d2
    await client.queues.Ack(q_ack(name, [d2.receipt]))
    assert await drain_texts(client, name, 1) == ["b"]
    # The ended session cannot own items any more.
    await expect_status(client.queues.Get(q_get(name, sid, timeout=0)), SC.NOT_FOUND)
    await wait_until_reclaimed(client, name)
    await wait_until_reclaimed(client, other)


async def test_max_deliveries_moves_items_to_dead_letters(client):
    name = unique("q/dead")
    opts = q_options(max_deliveries=2)
    await client.queues.Put(q_put(name, ["poison", "fine"], options=opts))
    d1 = await get_one(client, name)
    n1 = await client.queues.Nack(q_nack(name, [d1.receipt]))
    assert n1.returned == 1 and n1.dead_lettered == 0, n1
    d2 = await get_one(client, name)
    assert (d2.text, d2.delivery_count) == ("poison", 2)
    n2 = await client.queues.Nack(q_nack(name, [d2.receipt]))
    assert n2.returned == 1 and n2.dead_lettered == 1, n2

    q = await qinfo(client, name)
    assert q.dead_letters == 1 and q.size == 1 and q.in_flight == 0 and q.max_deliveries == 2, q
    # A dead-lettered item counts as finished for Join.
    assert q.unfinished == 1, q
    assert await drain_texts(client, name, 1) == ["fine"]
    j = await client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(2)))
    assert j.outcome == IMMEDIATE, j
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, timeout=0)), SC.DEADLINE_EXCEEDED)

    # The dead letters are read with Get{dead_letters}; a queue holding them is not idle.
    assert (await client.describe(name)) is not None
    dl = await client.queues.Get(q_get(name, ttl=LEASE, timeout=0, dead_letters=True))
    assert [i.text for i in dl.items] == ["poison"], dl
    await client.queues.Ack(q_ack(name, [dl.items[0].receipt]))
    await wait_until_reclaimed(client, name)


async def test_lease_expiry_also_counts_towards_max_deliveries(client):
    name = unique("q/dead-lease")
    await client.queues.Put(q_put(name, ["x"], options=q_options(max_deliveries=1)))
    await get_one(client, name, ttl=0.3)
    await wait_queue(client, name, "the expired item dead-lettered", dead_letters=1, in_flight=0, size=0)
    p = await client.queues.Purge(queue_pb2.PurgeRequest(name=name, dead_letters=True))
    assert p.purged == 1, p
    await wait_until_reclaimed(client, name)


# ---------------------------------------------------------------------------
# Join, Purge, Delete
# ---------------------------------------------------------------------------


async def test_join_returns_when_the_last_item_is_acked(client):
    name = unique("q/join")
    # Unknown (or empty) queue: at once.
    j0 = await client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(5)))
    assert j0.outcome == IMMEDIATE, j0

    await client.queues.Put(q_put(name, ["a", "b"]))
    await expect_status(client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(0))), SC.DEADLINE_EXCEEDED)
    join = asyncio.ensure_future(client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(10))))
    await wait_queue(client, name, "joiner waiting", waiting_joiners=1)

    r = await client.queues.Get(q_get(name, ttl=LEASE, max_items=2, timeout=0))
    assert len(r.items) == 2
    # Got but not acknowledged is still unfinished.
    await wait_queue(client, name, "both in flight, joiner still waiting", in_flight=2, unfinished=2, waiting_joiners=1)
    a1 = await client.queues.Ack(q_ack(name, [r.items[0].receipt]))
    assert a1.unfinished == 1
    await wait_queue(client, name, "one acked, joiner still waiting", unfinished=1, waiting_joiners=1)
    assert not join.done()
    await client.queues.Ack(q_ack(name, [r.items[1].receipt]))
    j = await asyncio.wait_for(join, 10)
    assert j.outcome == AFTER_WAIT, j
    await wait_until_reclaimed(client, name)


async def test_purge_removes_queued_items_and_unblocks_putters_and_joiners(client):
    name = unique("q/purge")
    await client.queues.Put(q_put(name, ["a"], options=q_options(maxsize=3)))
    inflight = await get_one(client, name)
    await client.queues.Put(q_put(name, [q_item("b", delay=30), "c", "d"]))
    q = await qinfo(client, name)
    assert q.size == 2 and q.delayed == 1 and q.in_flight == 1 and q.unfinished == 4, q

    put = asyncio.ensure_future(client.queues.Put(q_put(name, ["e"], timeout=10)))
    join = asyncio.ensure_future(client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(10))))
    await wait_queue(client, name, "putter and joiner waiting", waiting_putters=1, waiting_joiners=1)

    p = await client.queues.Purge(queue_pb2.PurgeRequest(name=name))
    assert p.purged == 3, p  # ready and delayed; not the in-flight one
    rp = await asyncio.wait_for(put, 10)
    assert rp.outcome == AFTER_WAIT
    await wait_queue(client, name, "after purge", size=1, delayed=0, in_flight=1, unfinished=2, waiting_joiners=1)
    assert not join.done()
    de = await get_one(client, name)
    assert de.text == "e"
    await client.queues.Ack(q_ack(name, [de.receipt, inflight.receipt]))
    j = await asyncio.wait_for(join, 10)
    assert j.outcome == AFTER_WAIT
    await wait_until_reclaimed(client, name)


async def test_purge_of_queue_alone_lets_join_return(client):
    name = unique("q/purge-join")
    await client.queues.Put(q_put(name, ["a", "b"]))
    join = asyncio.ensure_future(client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(10))))
    await wait_queue(client, name, "joiner waiting", waiting_joiners=1)
    await client.queues.Purge(queue_pb2.PurgeRequest(name=name))
    await asyncio.wait_for(join, 10)
    await wait_until_reclaimed(client, name)


async def test_delete_aborts_pending_get_put_and_join(client):
    name = unique("q/delete")
    # maxsize 1 filled by a delayed item: full (putters wait) and nothing ready (getters wait).
    await client.queues.Put(q_put(name, [q_item("hidden", delay=30)], options=q_options(maxsize=1)))
    get = asyncio.ensure_future(client.queues.Get(q_get(name, ttl=LEASE, timeout=10)))
    put = asyncio.ensure_future(client.queues.Put(q_put(name, ["blocked"], timeout=10)))
    join = asyncio.ensure_future(client.queues.Join(queue_pb2.JoinRequest(name=name, timeout=dur(10))))
    await wait_queue(client, name, "a getter, a putter and a joiner waiting",
                     waiting_getters=1, waiting_putters=1, waiting_joiners=1, delayed=1)

    r = await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))
    assert r.deleted is True
    await expect_status(get, SC.ABORTED)
    await expect_status(put, SC.ABORTED)
    await expect_status(join, SC.ABORTED)
    assert (await client.describe(name)) is None
    r2 = await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))
    assert r2.deleted is False


async def test_delete_drops_in_flight_items(client):
    name = unique("q/delete-inflight")
    await client.queues.Put(q_put(name, ["a"]))
    await get_one(client, name)
    assert (await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))).deleted
    assert (await client.describe(name)) is None
    # A fresh queue of the same name starts empty.
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, timeout=0)), SC.DEADLINE_EXCEEDED)


# ---------------------------------------------------------------------------
# Options, validation, kinds
# ---------------------------------------------------------------------------


async def test_options_must_match_the_declared_ones(client):
    name = unique("q/options")
    opts = q_options(order=Q_PRIORITY, maxsize=10, max_deliveries=3)
    await client.queues.Put(q_put(name, ["a"], options=opts))
    await expect_status(
        client.queues.Put(q_put(name, ["b"], options=q_options(order=Q_FIFO, maxsize=10, max_deliveries=3))),
        SC.FAILED_PRECONDITION,
    )
    await expect_status(
        client.queues.Get(q_get(name, ttl=LEASE, timeout=0, options=q_options(order=Q_PRIORITY, maxsize=5,
                                                                              max_deliveries=3))),
        SC.FAILED_PRECONDITION,
    )
    # Omitted options: as declared. Repeated exactly: fine.
    await client.queues.Put(q_put(name, ["b"]))
    d = await get_one(client, name, options=opts)
    d2 = await get_one(client, name)
    q = await qinfo(client, name)
    assert q.order == Q_PRIORITY and q.maxsize == 10 and q.max_deliveries == 3, q
    await client.queues.Ack(q_ack(name, [d.receipt, d2.receipt]))
    # Reclaimed when idle, forgetting its options: the name may be declared anew.
    await wait_until_reclaimed(client, name)
    await client.queues.Put(q_put(name, ["c"], options=q_options(order=Q_LIFO, maxsize=5)))
    q = await qinfo(client, name)
    assert q.order == Q_LIFO and q.maxsize == 5, q
    await client.queues.Purge(queue_pb2.PurgeRequest(name=name))
    await wait_until_reclaimed(client, name)


async def test_queue_first_used_without_options_is_declared_by_a_later_call(client):
    # "A queue first used without options (a consumer that came before any
    # producer) has the defaults (FIFO, the server's limits) until a call with
    # options declares it, which it may do while the queue holds no items."
    name = unique("q/late-declare")
    getter = asyncio.ensure_future(client.queues.Get(q_get(name, ttl=LEASE, timeout=10)))
    await wait_queue(client, name, "a getter waiting on an undeclared queue", waiting_getters=1)
    q = await qinfo(client, name)
    assert q.order == Q_FIFO, q
    opts = q_options(order=Q_PRIORITY, maxsize=5)
    await client.queues.Put(q_put(name, [q_item("x", priority=3)], options=opts))
    g = await asyncio.wait_for(getter, 10)
    assert [i.text for i in g.items] == ["x"], g
    q = await qinfo(client, name)
    assert (q.order, q.maxsize) == (Q_PRIORITY, 5), q
    # Declared now: other options are refused.
    await expect_status(client.queues.Put(q_put(name, ["y"], options=q_options(order=Q_LIFO, maxsize=5))),
                        SC.FAILED_PRECONDITION)
    await client.queues.Ack(q_ack(name, [g.items[0].receipt]))
    await wait_until_reclaimed(client, name)

    # Used without options and holding items: too late to declare other options.
    other = unique("q/late-declare-held")
    await client.queues.Put(q_put(other, ["a"]))
    await expect_status(client.queues.Put(q_put(other, ["b"], options=q_options(order=Q_LIFO))),
                        SC.FAILED_PRECONDITION)
    await client.queues.Purge(queue_pb2.PurgeRequest(name=other))
    await wait_until_reclaimed(client, other)


async def test_kind_mismatch_is_failed_precondition(client):
    lock_name, queue_name = unique("q/kind-lock"), unique("q/kind-queue")
    sid = await client.open_session()
    held = await client.locks.Acquire(lock_req(lock_name, sid))
    await expect_status(client.queues.Put(q_put(lock_name, ["x"])), SC.FAILED_PRECONDITION)
    await expect_status(client.queues.Get(q_get(lock_name, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await client.queues.Put(q_put(queue_name, ["x"]))
    await expect_status(client.locks.Acquire(lock_req(queue_name, sid, timeout=0)), SC.FAILED_PRECONDITION)
    await client.locks.Release(lock_release(lock_name, held.token, sid))
    await client.queues.Purge(queue_pb2.PurgeRequest(name=queue_name))
    await close_session(client, sid)


async def test_put_rejects_bad_input(client):
    name = unique("q/bad-put")
    # No items.
    await expect_status(client.queues.Put(q_put(name, [])), SC.INVALID_ARGUMENT)
    # A bad name.
    await expect_status(client.queues.Put(q_put("has space", ["x"])), SC.INVALID_ARGUMENT)
    await expect_status(client.queues.Put(q_put("", ["x"])), SC.INVALID_ARGUMENT)
    # max_item_bytes: exactly at the limit is fine, one byte over is not, for data and for text.
    opts = q_options(max_item_bytes=16, maxsize=2)
    await client.queues.Put(q_put(name, [q_item(data=b"x" * 16)], options=opts))
    await expect_status(client.queues.Put(q_put(name, [q_item(data=b"x" * 17)])), SC.INVALID_ARGUMENT)
    await expect_status(client.queues.Put(q_put(name, [q_item("y" * 17)])), SC.INVALID_ARGUMENT)
    # All or none: one bad item refuses the batch.
    await expect_status(client.queues.Put(q_put(name, [q_item(data=b"ok"), q_item(data=b"z" * 17)])),
                        SC.INVALID_ARGUMENT)
    # A batch larger than maxsize could never fit.
    await expect_status(client.queues.Put(q_put(name, ["1", "2", "3"])), SC.INVALID_ARGUMENT)
    q = await qinfo(client, name)
    assert q.size == 1 and q.total_put == 1, q
    await client.queues.Purge(queue_pb2.PurgeRequest(name=name))
    await wait_until_reclaimed(client, name)


async def test_put_rejects_bad_options_order(client):
    name = unique("q/bad-order")
    opts = queue_pb2.QueueOptions()
    opts.order = 7  # not a QueueOrder (proto3 enums are open on the wire)
    await expect_status(client.queues.Put(q_put(name, ["x"], options=opts)), SC.INVALID_ARGUMENT)
    assert (await client.describe(name)) is None


async def test_get_rejects_bad_input(client):
    name = unique("q/bad-get")
    # max_items over 1000.
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, max_items=1001, timeout=0)), SC.INVALID_ARGUMENT)
    # No owner: neither a session nor a ttl.
    await expect_status(client.queues.Get(q_get(name, timeout=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.queues.Get(q_get("bad name", ttl=LEASE, timeout=0)), SC.INVALID_ARGUMENT)
    await expect_status(client.queues.Get(q_get(name, UNKNOWN_SESSION, timeout=0)), SC.NOT_FOUND)
    # 1000 is allowed (an empty queue then answers DEADLINE_EXCEEDED).
    await expect_status(client.queues.Get(q_get(name, ttl=LEASE, max_items=1000, timeout=0)), SC.DEADLINE_EXCEEDED)
    await wait_until_reclaimed(client, name)


# ---------------------------------------------------------------------------
# Admin
# ---------------------------------------------------------------------------


async def test_describe_shows_queue_state(client):
    name = unique("q/describe")
    await client.queues.Put(q_put(name, ["a", "b", "c"], options=q_options(order=Q_FIFO, maxsize=50)))
    d1 = await get_one(client, name)
    d = await client.describe(name)
    assert d.name == name and d.kind == KIND_QUEUE, fmt_desc(d)
    q = d.queue
    assert (q.order, q.maxsize) == (Q_FIFO, 50), fmt_desc(d)
    assert (q.size, q.delayed, q.in_flight, q.dead_letters, q.unfinished) == (2, 0, 1, 0, 3), fmt_desc(d)
    assert q.total_put == 3 and q.total_acked == 0, fmt_desc(d)
    assert q.HasField("oldest_item_age") and 0 <= to_s(q.oldest_item_age) < 10, fmt_desc(d)
    assert q.waiting_getters == 0 and q.waiting_putters == 0 and q.waiting_joiners == 0

    r = await client.queues.Get(q_get(name, ttl=LEASE, max_items=5, timeout=0))
    assert len(r.items) == 2
    getter = asyncio.ensure_future(client.queues.Get(q_get(name, ttl=LEASE, timeout=10)))
    await wait_queue(client, name, "a getter waiting", waiting_getters=1)
    d = await client.describe(name)
    q = d.queue
    assert (q.size, q.in_flight, q.unfinished, d.waiters) == (0, 3, 3, 1), fmt_desc(d)
    assert not q.HasField("oldest_item_age"), "oldest_item_age must be unset when nothing is queued"

    await client.queues.Ack(q_ack(name, [d1.receipt]))
    q = await qinfo(client, name)
    assert q.total_acked == 1 and q.unfinished == 2 and q.in_flight == 2, q

    # Admin/List knows the kind.
    lst = await client.admin.List(admin_pb2.ListRequest(kind=KIND_QUEUE, prefix=name))
    assert [(s.name, s.kind) for s in lst.resources] == [(name, KIND_QUEUE)], lst

    await client.queues.Put(q_put(name, ["z"]))
    g = await asyncio.wait_for(getter, 10)
    await client.queues.Ack(q_ack(name, [i.receipt for i in list(r.items) + list(g.items)]))
    await wait_until_reclaimed(client, name)


async def test_idle_queue_is_reclaimed(client):
    # Drained and acknowledged.
    a = unique("q/reclaim-acked")
    await client.queues.Put(q_put(a, ["x"]))
    await drain_texts(client, a, 1)
    await wait_until_reclaimed(client, a)
    # Its only getter timed out.
    b = unique("q/reclaim-timeout")
    await expect_status(client.queues.Get(q_get(b, ttl=LEASE, timeout=0.1)), SC.DEADLINE_EXCEEDED)
    await wait_until_reclaimed(client, b)
    # Purged.
    c = unique("q/reclaim-purged")
    await client.queues.Put(q_put(c, ["x", "y"]))
    await client.queues.Purge(queue_pb2.PurgeRequest(name=c))
    await wait_until_reclaimed(client, c)
    # Not while an item is in flight.
    e = unique("q/reclaim-inflight")
    await client.queues.Put(q_put(e, ["x"]))
    d = await get_one(client, e)
    q = await qinfo(client, e)
    assert q is not None and q.in_flight == 1, q
    await client.queues.Ack(q_ack(e, [d.receipt]))
    await wait_until_reclaimed(client, e)
