"""Timers: loop.call_later / call_at / periodic calls on the server
(baton.v1.Timers).

    h = await client.call_later(30, client.event("cache-warm").set)
    h = await client.call_at(datetime(2026, 11, 1, tzinfo=timezone.utc), q.put, "report")
    h = await client.call_every(600, q.put, "beat")          # periodic
    await h.cancel()

As loop.call_later(delay, callback, *args), with one difference: a server
cannot run your code, so the callback must be one of these bound methods of
Baton objects, which the timer performs on the server (or an action object,
baton.SetEvent(...) etc.):

    event.set / event.clear                  -> set_event / clear_event
    queue.put / queue.put_nowait (item[, priority=])   -> put
    future.set_result (value)                -> set_future
    client.create_task (queue, payload[, max_attempts=])  -> submit_task

Timers are named: `name=` (default: "timers/<random>"); scheduling a name that
exists fails unless `replace=True`. They live in the server's memory and do
not survive its restart.

RPCs: call_later / call_at / call_every -> Timers/Schedule; TimerHandle.cancel
-> Timers/Cancel; TimerHandle.info -> Admin/Describe.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from ._rpc import opt_seconds, seconds, set_duration
from .codec import Codec
from .v1 import queue_pb2, timer_pb2

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class SetEvent:
    """Timer action: set the event `name`."""

    name: str


@dataclass(frozen=True)
class ClearEvent:
    """Timer action: clear the event `name`."""

    name: str


@dataclass(frozen=True)
class PutItem:
    """Timer action: put `item` into `queue` (a Put that waits for room)."""

    queue: str
    item: Any
    priority: int = 0
    codec: Optional[Codec] = None


@dataclass(frozen=True)
class SetFuture:
    """Timer action: set the result of the future `name`."""

    name: str
    value: Any
    codec: Optional[Codec] = None


@dataclass(frozen=True)
class SubmitTask:
    """Timer action: submit a task (a periodic timer submits one per period)."""

    queue: str
    payload: Any = b""
    max_attempts: int = 1
    codec: Optional[Codec] = None


Action = Union[SetEvent, ClearEvent, PutItem, SetFuture, SubmitTask]


def to_action(client: "Client", callback: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Action:
    """The timer action for `callback(*args, **kwargs)` (see module doc)."""
    from .event import Event
    from .future import Future
    from .queue import Queue

    if isinstance(callback, (SetEvent, ClearEvent, PutItem, SetFuture, SubmitTask)):
        if args or kwargs:
            raise TypeError("an action object takes no arguments")
        return callback
    owner = getattr(callback, "__self__", None)
    fn = getattr(callback, "__name__", "")
    if isinstance(owner, Event) and fn in ("set", "clear") and not args and not kwargs:
        return SetEvent(owner.name) if fn == "set" else ClearEvent(owner.name)
    if isinstance(owner, Queue) and fn in ("put", "put_nowait") and len(args) == 1:
        extra = set(kwargs) - {"priority"}
        if not extra:
            return PutItem(owner.name, args[0], kwargs.get("priority", 0), owner.codec)
    if isinstance(owner, Future) and fn == "set_result" and len(args) == 1 and not kwargs:
        return SetFuture(owner.name, args[0], owner.codec)
    if owner is client and fn == "create_task" and 1 <= len(args) <= 2:
        extra = set(kwargs) - {"max_attempts", "codec"}
        if not extra:
            return SubmitTask(
                args[0], args[1] if len(args) > 1 else b"", kwargs.get("max_attempts", 1), kwargs.get("codec")
            )
    raise TypeError(
        f"a Baton timer cannot call {callback!r}: give event.set, event.clear, queue.put(item), "
        "future.set_result(value), client.create_task(queue, payload) or an action object"
    )


def _encode(codec: Codec, value: Any) -> tuple[bytes, str]:
    data, text = codec.encode(value)
    return (data or b"", "") if data is not None else (b"", text or "")


def action_proto(client: "Client", action: Action) -> timer_pb2.TimerAction:
    a = timer_pb2.TimerAction()
    if isinstance(action, SetEvent):
        a.set_event.name = action.name
    elif isinstance(action, ClearEvent):
        a.clear_event.name = action.name
    elif isinstance(action, PutItem):
        data, text = _encode(action.codec or client.codec, action.item)
        a.put.queue = action.queue
        a.put.item.CopyFrom(queue_pb2.QueueItem(data=data, text=text, priority=action.priority))
    elif isinstance(action, SetFuture):
        data, text = _encode(action.codec or client.codec, action.value)
        a.set_future.name = action.name
        a.set_future.value = data
        a.set_future.text = text
    elif isinstance(action, SubmitTask):
        data, text = _encode(action.codec or client.codec, action.payload)
        a.submit_task.queue = action.queue
        a.submit_task.payload = data
        a.submit_task.text = text
        a.submit_task.max_attempts = action.max_attempts
    else:  # pragma: no cover
        raise TypeError(f"not a timer action: {action!r}")
    return a


@dataclass(frozen=True)
class TimerInfo:
    """Admin/Describe of a timer. `due_in` is None for a one-shot timer that
    has fired; `every` None for a one-shot timer."""

    due_in: Optional[float]
    every: Optional[float]
    fired: int
    since_fired: Optional[float]
    action: str


class TimerHandle:
    """A scheduled timer, like asyncio.TimerHandle. `due_in`: seconds until
    the first firing, as the server computed it when scheduling."""

    def __init__(self, client: "Client", name: str, due_in: Optional[float] = None) -> None:
        self._client = client
        self.name = name
        self.due_in = due_in

    def __repr__(self) -> str:
        return f"<baton.TimerHandle {self.name!r}>"

    async def cancel(self) -> bool:
        """Timers/Cancel. False if there is no such timer or a one-shot timer
        has already fired. `fired` keeps how many times it had fired."""
        resp = await self._client._rpc.call("timers.Cancel", timer_pb2.CancelTimerRequest(name=self.name)
        )
        self.fired = resp.fired
        return resp.cancelled

    async def info(self) -> Optional[TimerInfo]:
        """Admin/Describe of the timer; None once it is gone."""
        desc = await self._client.describe(self.name, missing_ok=True)
        if desc is None:
            return None
        t = desc.timer
        return TimerInfo(
            due_in=opt_seconds(t, "due_in"),
            every=opt_seconds(t, "every"),
            fired=t.fired,
            since_fired=opt_seconds(t, "since_fired"),
            action=t.action,
        )


async def schedule(
    client: "Client",
    action: Action,
    *,
    after: Optional[float] = None,
    at: Union[datetime.datetime, float, None] = None,
    every: Optional[float] = None,
    name: Optional[str] = None,
    replace: bool = False,
) -> TimerHandle:
    """Timers/Schedule: exactly one of `after` (seconds) and `at` (an aware
    datetime, or a POSIX timestamp) gives the first firing; `every` (seconds)
    makes it periodic."""
    if (after is None) == (at is None):
        raise ValueError("give exactly one of after= and at=")
    name = name or f"timers/{uuid.uuid4().hex[:16]}"
    req = timer_pb2.ScheduleTimerRequest(name=name, replace=replace, action=action_proto(client, action))
    set_duration(req, "after", after)
    if at is not None:
        if isinstance(at, datetime.datetime):
            req.at.FromDatetime(at.astimezone(datetime.timezone.utc))  # naive: local time
        else:
            req.at.FromNanoseconds(int(float(at) * 1e9))
    set_duration(req, "every", every)
    resp = await client._rpc.call("timers.Schedule", req)
    return TimerHandle(client, name, seconds(resp.due_in))
