"""Queue: asyncio.Queue / PriorityQueue / LifoQueue shared between processes,
with acknowledgements and redelivery (baton.v1.Queues).

    q = client.queue("jobs", maxsize=100, order="priority")
    await q.put("refund order 7", priority=1)
    item = await q.get()             # an Item: .value, .data, .text, .priority ...
    ...
    q.task_done(item)                # or: await item.ack()
    await q.join()                   # until every item put is acknowledged

    async with q.consume(prefetch=16) as stream:   # a server-push stream
        async for item in stream:
            await item.ack()

Where Baton differs from asyncio (see proto/baton/v1/queue.proto):
  * A got item is *in flight* until acknowledged (task_done / ack) or
    returned (nack). It belongs to the client's session (and to a
    `visibility_timeout` lease, if given): if this process dies, the item goes
    back to the queue for another consumer.
  * put_nowait / get_nowait and qsize / empty / full ask the server, so they
    are coroutines. get_nowait raises QueueEmpty, put_nowait QueueFull (both
    also asyncio's).
  * task_done(item) names the item it finishes. It sends the Ack in the
    background and returns the task doing it, which you may await.
  * Items that fail `max_deliveries` times go to the dead letters
    (dead_letters(), purge_dead_letters()).
  * The options (maxsize, order, max_deliveries, max_item_bytes) are declared
    by the first user. A Queue made without any of them uses the declared ones;
    one made with some must match them exactly.

Cancellation: cancelling a get() cancels the wait on the server. Items whose
reply arrived anyway are returned to the head of the queue (Nack; that counts
as a delivery for max_deliveries). A put() that is cancelled is withdrawn by
the server unless its reply was already sent.

RPCs: put / put_many / put_nowait -> Queues/Put; get / get_many /
get_nowait / dead_letters -> Queues/Get; task_done / ack / Item.ack ->
Queues/Ack; nack / Item.nack -> Queues/Nack; join -> Queues/Join; purge /
purge_dead_letters -> Queues/Purge; delete -> Queues/Delete; consume ->
Queues/Get with acks riding on it (session stream) or Queues/Consume
(unary); qsize / empty / full / info -> Admin/Describe.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

import grpc

from ._rpc import cancel_in_core, seconds, set_duration
from .codec import Codec, payload_bytes
from .errors import (
    BatonError,
    DeadlineExceededError,
    FailedPreconditionError,
    QueueEmpty,
    QueueFull,
    ResourceExhaustedError,
)
from .v1 import queue_pb2

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("baton")

ORDERS = {
    "fifo": queue_pb2.QUEUE_ORDER_FIFO,
    "lifo": queue_pb2.QUEUE_ORDER_LIFO,
    "priority": queue_pb2.QUEUE_ORDER_PRIORITY,
}


@dataclass
class Item:
    """One delivery of a queue item. Acknowledge it with `await item.ack()`
    (or `queue.task_done(item)`), or give it back with `await item.nack()`."""

    queue: "Queue" = field(repr=False)
    receipt: int
    id: int
    value: Any
    data: bytes
    priority: int
    delivery_count: int
    age: float
    # The consumer that handed it out (its acks ride on the consumer's Gets).
    _consumer: Optional["Consumer"] = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The payload as text (UTF-8)."""
        return self.data.decode("utf-8")

    async def ack(self) -> None:
        """Acknowledges this delivery (asyncio's task_done): Queues/Ack, or,
        for an item from a consumer on the session stream, queued to ride on
        the consumer's next Get (see Consumer)."""
        c = self._consumer
        if c is not None and c._on_stream and not c._closed:
            c._queue_ack(self.receipt)
            return
        await self.queue.ack(self)

    async def nack(self, delay: Optional[float] = None) -> bool:
        """Queues/Nack: returns the item to the head of the queue (after
        `delay` seconds). Returns True if it went to the dead letters instead."""
        return await self.queue.nack(self, delay=delay) > 0


@dataclass(frozen=True)
class QueueInfo:
    """Admin/Describe of a queue."""

    order: str
    maxsize: int
    max_deliveries: int
    size: int
    delayed: int
    in_flight: int
    dead_letters: int
    unfinished: int
    waiting_getters: int
    waiting_putters: int
    total_put: int
    total_acked: int


class Queue:
    """A named Baton queue. Create with `client.queue(name, maxsize=0,
    order="fifo"|"lifo"|"priority", max_deliveries=0, max_item_bytes=0,
    visibility_timeout=None, codec=None)`."""

    def __init__(
        self,
        client: "Client",
        name: str,
        maxsize: int = 0,
        *,
        order: Optional[str] = None,
        max_deliveries: int = 0,
        max_item_bytes: int = 0,
        visibility_timeout: Optional[float] = None,
        codec: Optional[Codec] = None,
    ) -> None:
        if order is not None and order not in ORDERS:
            raise ValueError(f"order must be one of {sorted(ORDERS)}, not {order!r}")
        self._client = client
        self.name = name
        self.order = order
        self.visibility_timeout = visibility_timeout
        self.codec = codec or client.codec
        self._options: Optional[queue_pb2.QueueOptions] = None
        if order is not None or maxsize or max_deliveries or max_item_bytes:
            self._options = queue_pb2.QueueOptions(
                order=ORDERS[order] if order else queue_pb2.QUEUE_ORDER_UNSPECIFIED,
                maxsize=maxsize,
                max_deliveries=max_deliveries,
                max_item_bytes=max_item_bytes,
            )
        self._maxsize = maxsize
        self._pending_acks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<baton.Queue {self.name!r}>"

    @property
    def maxsize(self) -> int:
        """The maxsize given to client.queue() (0: unbounded / as declared)."""
        return self._maxsize

    # ---- putting -------------------------------------------------------

    def _item(self, value: Any, priority: int, delay: Optional[float]) -> queue_pb2.QueueItem:
        data, text = self.codec.encode(value)
        it = queue_pb2.QueueItem(priority=priority)
        if data is not None:
            it.data = data
        else:
            it.text = text or ""
        set_duration(it, "delay", delay)
        return it

    async def put_many(
        self,
        items: Iterable[Any],
        *,
        priority: int = 0,
        delay: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> list[int]:
        """Queues/Put of a batch, all or none: waits until the whole batch
        fits under maxsize. Returns the item ids. `delay`: visible to getters
        only after that many seconds. `timeout`: DeadlineExceededError if no
        room comes in time; 0 raises QueueFull at once."""
        req = queue_pb2.PutRequest(name=self.name, items=[self._item(v, priority, delay) for v in items])
        if self._options is not None:
            req.options.CopyFrom(self._options)
        set_duration(req, "timeout", timeout)
        try:
            resp = await self._client._rpc.call("queues.Put", req, blocking=True)
        except ResourceExhaustedError as e:
            if timeout == 0:
                raise QueueFull(e.details, e.code) from None
            raise
        return list(resp.item_ids)

    async def put(
        self, item: Any, *, priority: int = 0, delay: Optional[float] = None, timeout: Optional[float] = None
    ) -> int:
        """Queues/Put of one item, waiting for room; returns its id.
        `priority`: lower first, for order="priority" queues."""
        return (await self.put_many([item], priority=priority, delay=delay, timeout=timeout))[0]

    async def put_nowait(self, item: Any, *, priority: int = 0, delay: Optional[float] = None) -> int:
        """Puts without waiting; raises QueueFull when there is no room."""
        return await self.put(item, priority=priority, delay=delay, timeout=0)

    # ---- getting -------------------------------------------------------

    def _delivery(self, d: queue_pb2.Delivery, consumer: Optional["Consumer"] = None) -> Item:
        data = payload_bytes(d.data, d.text)
        return Item(
            _consumer=consumer,
            queue=self,
            receipt=d.receipt,
            id=d.item_id,
            value=self.codec.decode(data),
            data=data,
            priority=d.priority,
            delivery_count=d.delivery_count,
            age=seconds(d.age),
        )

    async def get_many(self, max_items: int, timeout: Optional[float] = None) -> list[Item]:
        """Queues/Get: takes up to `max_items` items (at least one), waiting
        while the queue is empty (at most `timeout` seconds:
        DeadlineExceededError)."""
        resp = await self._get(max_items, timeout)
        return [self._delivery(d) for d in resp.items]

    async def _get(
        self, max_items: int, timeout: Optional[float], *, ack: Iterable[int] = (), dead_letters: bool = False
    ) -> queue_pb2.GetResponse:
        """One Queues/Get through Rpc.acquire (a request_id; items that
        crossed a cancel, or whose answer was lost, are returned with Nack).
        `ack`: receipts acknowledged first, in the same step (GetRequest.ack)."""
        req = queue_pb2.GetRequest(
            name=self.name,
            max_items=max_items,
            session_id=await self._client._session_for_request(),
            dead_letters=dead_letters,
        )
        req.ack.extend(ack)
        if self._options is not None and not dead_letters:
            req.options.CopyFrom(self._options)
        set_duration(req, "ttl", self.visibility_timeout)
        set_duration(req, "timeout", timeout)

        async def undo(resp: queue_pb2.GetResponse) -> None:
            receipts = [d.receipt for d in resp.items]
            if receipts:
                await self._nack_receipts(receipts, None)

        return await self._client._rpc.acquire("queues.Get", req, undo=undo)

    async def get(self, timeout: Optional[float] = None) -> Item:
        """Queues/Get of one item, waiting while the queue is empty."""
        return (await self.get_many(1, timeout))[0]

    async def get_nowait(self) -> Item:
        """Gets without waiting; raises QueueEmpty when nothing is ready."""
        try:
            return await self.get(timeout=0)
        except DeadlineExceededError as e:
            raise QueueEmpty(e.details, e.code) from None

    async def dead_letters(self, max_items: int = 100) -> list[Item]:
        """Queues/Get on the dead-letter list (never waits): up to
        `max_items` items, in flight as usual: ack them to drop them; nack
        (or losing the session) returns them to the dead letters. To retry
        one, put its payload again and ack it. Empty list if there are none."""
        try:
            resp = await self._get(max_items, None, dead_letters=True)
        except DeadlineExceededError:
            return []
        return [self._delivery(d) for d in resp.items]

    # ---- finishing -----------------------------------------------------

    @staticmethod
    def _receipts(items: Iterable[Union[Item, int]]) -> list[int]:
        return [i.receipt if isinstance(i, Item) else int(i) for i in items]

    async def ack(self, *items: Union[Item, int]) -> int:
        """Queues/Ack of items (or receipts); returns the unfinished count
        left (what join() waits for). Raises FailedPreconditionError for an
        item no longer in flight (its lease ran out and it was redelivered);
        the valid ones are acknowledged all the same."""
        req = queue_pb2.AckRequest(name=self.name, receipts=self._receipts(items))
        resp = await self._client._rpc.call("queues.Ack", req)
        return resp.unfinished

    def task_done(self, item: Union[Item, int]) -> "asyncio.Task[None]":
        """asyncio's task_done for `item`: acknowledges it in the background
        (Queues/Ack). Returns the task; await it to wait for the Ack and see
        its error. join() waits for the Acks this queue object started."""

        async def ack() -> None:
            if isinstance(item, Item):
                await item.ack()  # a consumer's item: rides on its next Get
            else:
                await self.ack(item)

        task = asyncio.get_running_loop().create_task(ack())
        self._pending_acks.add(task)

        def done(t: "asyncio.Task[None]") -> None:
            self._pending_acks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("baton: task_done on queue %r failed: %s", self.name, t.exception())

        task.add_done_callback(done)
        return task

    async def _nack_receipts(self, receipts: list[int], delay: Optional[float]) -> int:
        req = queue_pb2.NackRequest(name=self.name, receipts=receipts)
        set_duration(req, "delay", delay)
        resp = await self._client._rpc.call("queues.Nack", req)
        return resp.dead_lettered

    async def nack(self, *items: Union[Item, int], delay: Optional[float] = None) -> int:
        """Queues/Nack: returns items to the head of the queue (after
        `delay`). Returns how many went to the dead letters instead."""
        return await self._nack_receipts(self._receipts(items), delay)

    async def join(self, timeout: Optional[float] = None) -> None:
        """Queues/Join: waits until every item ever put is acknowledged or
        dead-lettered (DeadlineExceededError after `timeout`)."""
        if self._pending_acks:
            await asyncio.wait(list(self._pending_acks))
        req = queue_pb2.JoinRequest(name=self.name)
        set_duration(req, "timeout", timeout)
        await self._client._rpc.call("queues.Join", req, blocking=True)

    async def purge(self) -> int:
        """Queues/Purge: drops every queued (not in-flight) item; returns how many."""
        resp = await self._client._rpc.call("queues.Purge", queue_pb2.PurgeRequest(name=self.name))
        return resp.purged

    async def purge_dead_letters(self) -> int:
        """Queues/Purge of the dead letters."""
        resp = await self._client._rpc.call("queues.Purge", queue_pb2.PurgeRequest(name=self.name, dead_letters=True)
        )
        return resp.purged

    async def delete(self) -> bool:
        """Queues/Delete: drops the queue, its items and dead letters; pending
        puts, gets, joins and consumers end with AbortedError."""
        resp = await self._client._rpc.call("queues.Delete", queue_pb2.DeleteQueueRequest(name=self.name)
        )
        return resp.deleted

    # ---- inspecting ----------------------------------------------------

    async def info(self) -> Optional[QueueInfo]:
        """Admin/Describe of the queue; None if it does not exist (an unused
        queue is reclaimed)."""
        desc = await self._client.describe(self.name, missing_ok=True)
        if desc is None:
            return None
        q = desc.queue
        order = {v: k for k, v in ORDERS.items()}.get(q.order, "fifo")
        return QueueInfo(
            order=order,
            maxsize=q.maxsize,
            max_deliveries=q.max_deliveries,
            size=q.size,
            delayed=q.delayed,
            in_flight=q.in_flight,
            dead_letters=q.dead_letters,
            unfinished=q.unfinished,
            waiting_getters=q.waiting_getters,
            waiting_putters=q.waiting_putters,
            total_put=q.total_put,
            total_acked=q.total_acked,
        )

    async def qsize(self) -> int:
        """Items ready to get (not delayed, not in flight)."""
        info = await self.info()
        return info.size if info else 0

    async def empty(self) -> bool:
        return await self.qsize() == 0

    async def full(self) -> bool:
        """True when queued items (ready and delayed) reach maxsize."""
        info = await self.info()
        return bool(info and info.maxsize and info.size + info.delayed >= info.maxsize)

    # ---- streaming -----------------------------------------------------

    def consume(self, prefetch: int = 16) -> "Consumer":
        """The consumer: items handed out one by one, fetched `prefetch` at a
        time. On the session stream (the default transport) it loops
        Queues/Get(max_items=prefetch, ack=<receipts acknowledged since the
        last Get>): acknowledgements ride on the next Get. On the unary
        transport it reads Queues/Consume, a stream the server pushes items
        on while fewer than `prefetch` are unacknowledged. Use as `async
        with q.consume(...) as stream: async for item in stream` (or iterate
        it directly and `await stream.close()` when done)."""
        return Consumer(self, prefetch)


_END = object()

#: How long a consumer's acknowledgement waits for the next Get to carry it
#: before it goes out as a plain Ack (batched with the others waiting).
ACK_FLUSH_DELAY = 0.010
DEFAULT_PREFETCH = 16


class Consumer:
    """A queue consumer (Queue.consume). Items are in flight as with get():
    acknowledge each one (`await item.ack()` / `queue.task_done(item)`) or
    nack it. Iteration ends when the consumer is closed; it raises
    SessionLostError / AbortedError (queue deleted) / UnavailableError when
    the server ends it.

    On the session stream an item's ack() only queues its receipt and
    returns: the receipt rides on the consumer's next Get
    (GetRequest.ack), or goes out with the others in one Queues/Ack if no
    Get follows within ACK_FLUSH_DELAY (10 ms). `acked` counts the
    acknowledgements the server confirmed, `ack_failed` lists the receipts
    it refused (not in flight any more: their lease ran out), `acks_on_get`
    and `acks_flushed` how they travelled.

    close() sends the acknowledgements still queued, and returns (Nack) the
    items received but not handed out. On the unary transport, items the
    server had pushed that had not reached this client stay in flight,
    owned by the session, until it ends (or until the queue's
    visibility_timeout)."""

    def __init__(self, queue: Queue, prefetch: int) -> None:
        if not 0 <= prefetch <= 1000:
            raise ValueError("prefetch must be 0..1000 (0: the server's default, 16)")
        self.queue = queue
        self.prefetch = prefetch
        self._closed = False
        self._error: Optional[BaseException] = None
        # On the session stream: Get-based.
        self._on_stream = queue._client.transport == "stream"
        self._items: collections.deque[Item] = collections.deque()
        self._acks: list[int] = []
        self._flush_timer: Optional[asyncio.TimerHandle] = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._getting: Optional[asyncio.Task[queue_pb2.GetResponse]] = None
        self._ride = True  # False once the server showed it ignores GetRequest.ack
        self.acked = 0
        self.ack_failed: list[int] = []
        self.acks_on_get = 0
        self.acks_flushed = 0
        # On the unary transport: Queues/Consume.
        self._buffer: asyncio.Queue[Any] = asyncio.Queue()
        self._call: Any = None
        self._reader: Optional[asyncio.Task[None]] = None

    @property
    def buffered(self) -> int:
        """Items received and not handed out yet."""
        if self._on_stream:
            return len(self._items)
        return sum(1 for it in list(self._buffer._queue) if it is not _END)  # type: ignore[attr-defined]

    async def __aenter__(self) -> "Consumer":
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    def __aiter__(self) -> "Consumer":
        return self

    async def __anext__(self) -> Item:
        if self._on_stream:
            return await self._next_from_gets()
        await self._start()
        item = await self._buffer.get()
        if item is _END:
            self._buffer.put_nowait(_END)  # later calls end too
            if self._error is not None and not self._closed:
                raise self._error
            raise StopAsyncIteration
        return item

    # ---- the session stream: Get with acks riding on it ----------------

    def _queue_ack(self, receipt: int) -> None:
        """An item handed out by this consumer was acknowledged: its receipt
        rides on the next Get, or is flushed after ACK_FLUSH_DELAY."""
        self._acks.append(receipt)
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(ACK_FLUSH_DELAY, self._flush_soon)

    def _take_acks(self) -> list[int]:
        acks, self._acks = self._acks, []
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        return acks

    def _flush_soon(self) -> None:
        self._flush_timer = None
        acks = self._take_acks()
        if acks:
            self._send_ack(acks)

    def _send_ack(self, acks: list[int]) -> "asyncio.Task[None]":
        task = asyncio.get_running_loop().create_task(self._plain_ack(acks))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        self.queue._client._rpc.track(task)
        return task

    async def _plain_ack(self, acks: list[int]) -> None:
        """One Queues/Ack of `acks`. A receipt not in flight any more fails
        the call (FAILED_PRECONDITION) while the others are acknowledged: the
        failed ones are then found by acking each alone."""
        q = self.queue
        try:
            await q._client._rpc.call("queues.Ack", queue_pb2.AckRequest(name=q.name, receipts=acks))
            self.acked += len(acks)
            self.acks_flushed += len(acks)
        except FailedPreconditionError:
            for r in acks:
                try:
                    await q._client._rpc.call("queues.Ack", queue_pb2.AckRequest(name=q.name, receipts=[r]))
                except FailedPreconditionError:
                    self.ack_failed.append(r)
                    log.warning("baton: consumer of %r: receipt %d was not in flight any more", q.name, r)
                else:
                    self.acked += 1
                    self.acks_flushed += 1

    def _note_acks(self, sent: list[int], resp: queue_pb2.GetResponse) -> None:
        if not sent:
            return
        if resp.acked + len(resp.ack_failed) < len(sent):
            # A server that predates GetRequest.ack ignored them: ack them
            # the old way, from now on always.
            self._ride = False
            self._send_ack(sent)
            return
        self.acked += resp.acked
        self.acks_on_get += resp.acked
        for r in resp.ack_failed:
            self.ack_failed.append(r)
            log.warning("baton: consumer of %r: receipt %d was not in flight any more", self.queue.name, r)

    async def _next_from_gets(self) -> Item:
        while True:
            if self._items:
                return self._items.popleft()
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            acks = self._take_acks() if self._ride else []
            if not self._ride and self._acks:
                self._flush_soon()
            max_items = self.prefetch or DEFAULT_PREFETCH
            self._getting = asyncio.ensure_future(self.queue._get(max_items, None, ack=acks))
            try:
                resp = await asyncio.shield(self._getting)
            except asyncio.CancelledError:
                # The caller gave up (or close() did): the Get is cancelled
                # and what crossed the cancel is nacked (Rpc.acquire). The
                # acks may not have gone out: send them again (an ack of an
                # acknowledged receipt fails harmlessly).
                self._getting.cancel()
                if acks:
                    self._send_ack(acks)
                raise
            except BatonError as e:
                if acks:
                    self._send_ack(acks)  # a failed Get applied them; harmless again
                if self._closed:
                    raise StopAsyncIteration from None
                self._error = e
                raise
            finally:
                self._getting = None
            self._note_acks(acks, resp)
            items = [self.queue._delivery(d, self) for d in resp.items]
            if self._closed:
                if items:
                    await self.queue._nack_receipts([i.receipt for i in items], None)
                raise StopAsyncIteration
            self._items.extend(items)

    # ---- the unary transport: Queues/Consume -----------------------------

    async def _start(self) -> None:
        if self._on_stream or self._call is not None or self._closed:
            return
        q = self.queue
        req = queue_pb2.ConsumeRequest(
            name=q.name, session_id=await q._client._session_for_request(), prefetch=self.prefetch
        )
        if self._call is not None or self._closed:
            return
        if q._options is not None:
            req.options.CopyFrom(q._options)
        set_duration(req, "ttl", q.visibility_timeout)
        self._call = q._client._stubs.queues.Consume(req)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        # Never cancelled: it stops when the call ends (close() cancels the
        # call), so a message that arrived is never dropped on our side.
        try:
            while True:
                resp = await self._call.read()
                if resp is grpc.aio.EOF:
                    break
                for d in resp.items:
                    self._buffer.put_nowait(self.queue._delivery(d))
        except asyncio.CancelledError:
            pass
        except grpc.RpcError as e:
            if not self._closed and e.code() != grpc.StatusCode.CANCELLED:
                self._error = self.queue._client._rpc.error(e)
        self._buffer.put_nowait(_END)

    async def close(self) -> None:
        """Ends the consumer: sends the acknowledgements still queued, and
        returns (Nack) the items received but not handed out."""
        if self._closed:
            return
        self._closed = True
        if self._on_stream:
            getting = self._getting
            if getting is not None and not getting.done():
                getting.cancel()  # rolled back by Rpc.acquire (Nack)
                await asyncio.gather(getting, return_exceptions=True)
            acks = self._take_acks()
            if acks:
                self._send_ack(acks)
            if self._flushes:
                await asyncio.gather(*list(self._flushes), return_exceptions=True)
            left = [it.receipt for it in self._items]
            self._items.clear()
            if left:
                await self.queue._nack_receipts(left, None)
            return
        if self._call is not None:
            cancel_in_core(self._call)
        if self._reader is not None:
            await asyncio.shield(self._reader)
        left = []
        while not self._buffer.empty():
            item = self._buffer.get_nowait()
            if item is not _END:
                left.append(item.receipt)
        self._buffer.put_nowait(_END)
        if left:
            await self.queue._nack_receipts(left, None)
