"""Tasks: asyncio's create_task / gather / wait / TaskGroup across processes
(baton.v1.Tasks, submitting and awaiting side; the worker side is worker.py).

    t = await client.create_task("thumbnails", "42.png", max_attempts=3)
    thumb = await t                              # the result, once a worker completes it
    results = await client.gather(t1, t2)
    done, pending = await client.wait([t1, t2], return_when=baton.FIRST_COMPLETED)
    async with client.task_group("thumbnails") as tg:
        await tg.create_task("1.png")
        await tg.create_task("2.png")
    # leaving the block waits for all; one failure cancels the others

A task is submitted to a named *work queue* and run by a worker process
(client.worker(...)). create_task is a coroutine here: submitting is a call to
the server. Awaiting a Task returns its result (decoded by the codec), raises
RemoteError if it failed and RemoteCancelledError if it was cancelled.

RPCs: create_task -> Tasks/Submit; await / result / outcome / done ->
Tasks/Await; cancel -> Tasks/Cancel; gather / wait / TaskGroup ->
Tasks/Wait (plus Tasks/Cancel for a TaskGroup whose body failed).
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generator, Iterable, Optional, Sequence, Union

from ._rpc import set_duration
from .codec import Codec, payload_bytes
from .errors import DeadlineExceededError, RemoteCancelledError, RemoteError
from .v1 import task_pb2

if TYPE_CHECKING:
    from .client import Client

FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"
ALL_COMPLETED = "ALL_COMPLETED"
_MODES: dict[str, "task_pb2.WaitMode"] = {
    FIRST_COMPLETED: task_pb2.WAIT_MODE_FIRST_COMPLETED,
    FIRST_EXCEPTION: task_pb2.WAIT_MODE_FIRST_EXCEPTION,
    ALL_COMPLETED: task_pb2.WAIT_MODE_ALL_COMPLETED,
}

_STATES: dict[int, str] = {
    task_pb2.TASK_STATE_PENDING: "pending",
    task_pb2.TASK_STATE_RUNNING: "running",
    task_pb2.TASK_STATE_SUCCEEDED: "succeeded",
    task_pb2.TASK_STATE_FAILED: "failed",
    task_pb2.TASK_STATE_CANCELLED: "cancelled",
}


def state_name(state: int) -> str:
    return _STATES.get(state, "unspecified")


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: state "succeeded" (result/data), "failed"
    (error_code, error_message) or "cancelled"; `attempts` made."""

    task_id: str
    state: str
    result: Any
    data: bytes
    error_code: int
    error_message: str
    attempts: int

    def unwrap(self) -> Any:
        """The result, or raises RemoteError / RemoteCancelledError."""
        if self.state == "succeeded":
            return self.result
        if self.state == "failed":
            raise RemoteError(self.error_message, self.error_code)
        if self.state == "cancelled":
            raise RemoteCancelledError(f"task {self.task_id} was cancelled")
        raise RemoteError(f"task {self.task_id} is {self.state}")

    @property
    def exception(self) -> Optional[Exception]:
        try:
            self.unwrap()
        except (RemoteError, RemoteCancelledError) as e:
            return e
        return None


class Task:
    """A submitted task, named by its id ("thumbnails#17"). Create with
    `await client.create_task(...)` or, for an existing id, `client.task(id)`."""

    def __init__(self, client: "Client", task_id: str, *, codec: Optional[Codec] = None) -> None:
        self._client = client
        self.id = task_id
        self.codec = codec or client.codec

    @property
    def queue(self) -> str:
        """The work queue (the part of the id before '#')."""
        return self.id.rpartition("#")[0]

    def __repr__(self) -> str:
        return f"<baton.Task {self.id!r}>"

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    def _outcome(self, o: task_pb2.TaskOutcome) -> TaskOutcome:
        data = payload_bytes(o.result, o.text)
        state = state_name(o.state)
        return TaskOutcome(
            task_id=o.task_id or self.id,
            state=state,
            result=self.codec.decode(data) if state == "succeeded" else None,
            data=data,
            error_code=o.error.code,
            error_message=o.error.message,
            attempts=o.attempts,
        )

    async def outcome(self, timeout: Optional[float] = None) -> TaskOutcome:
        """Tasks/Await: waits until the task is done (at most `timeout`
        seconds: DeadlineExceededError); returns its outcome without raising."""
        req = task_pb2.AwaitTaskRequest(task_id=self.id)
        set_duration(req, "timeout", timeout)
        resp = await self._client._rpc.call("tasks.Await", req, blocking=True)
        return self._outcome(resp)

    async def result(self, timeout: Optional[float] = None) -> Any:
        """The task's result; raises RemoteError / RemoteCancelledError."""
        return (await self.outcome(timeout)).unwrap()

    async def exception(self, timeout: Optional[float] = None) -> Optional[Exception]:
        return (await self.outcome(timeout)).exception

    async def done(self) -> bool:
        """Whether the task is done (Tasks/Await with a zero timeout)."""
        try:
            await self.outcome(timeout=0)
            return True
        except DeadlineExceededError:
            return False

    async def cancel(self) -> bool:
        """Tasks/Cancel: a pending task ends at once; a running one when its
        worker next heartbeats or completes. False if it was already done."""
        resp = await self._client._rpc.call("tasks.Cancel", task_pb2.CancelTaskRequest(task_id=self.id)
        )
        return resp.cancelled


async def create_task(
    client: "Client",
    queue: str,
    payload: Any = b"",
    *,
    delay: Optional[float] = None,
    at: Union[datetime.datetime, float, None] = None,
    max_attempts: int = 1,
    group: str = "",
    shielded: bool = False,
    run_timeout: Optional[float] = None,
    codec: Optional[Codec] = None,
) -> Task:
    """Tasks/Submit. See Client.create_task."""
    codec = codec or client.codec
    data, text = codec.encode(payload)
    req = task_pb2.SubmitTaskRequest(
        queue=queue, max_attempts=max_attempts, group=group, shielded=shielded
    )
    if data is not None:
        req.payload = data
    else:
        req.text = text or ""
    set_duration(req, "delay", delay)
    if at is not None:
        req.at.FromDatetime(_utc(at))
    set_duration(req, "run_timeout", run_timeout)
    resp = await client._rpc.call("tasks.Submit", req)
    return Task(client, resp.task_id, codec=codec)


def _utc(at: Union[datetime.datetime, float]) -> datetime.datetime:
    if isinstance(at, datetime.datetime):
        return at.astimezone(datetime.timezone.utc)  # a naive datetime is local time
    return datetime.datetime.fromtimestamp(float(at), tz=datetime.timezone.utc)


async def _wait_one_queue(
    client: "Client",
    tasks: Sequence[Task],
    mode: "task_pb2.WaitMode",
    timeout: Optional[float],
) -> tuple[dict[str, task_pb2.TaskOutcome], list[str]]:
    req = task_pb2.WaitTasksRequest(task_ids=[t.id for t in tasks], mode=mode)
    set_duration(req, "timeout", timeout)
    resp = await client._rpc.call("tasks.Wait", req, blocking=True)
    return {o.task_id: o for o in resp.done}, list(resp.pending)


def _by_queue(tasks: Iterable[Task]) -> dict[str, list[Task]]:
    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.queue, []).append(t)
    return groups


async def wait(
    client: "Client",
    tasks: Iterable[Task],
    *,
    timeout: Optional[float] = None,
    return_when: str = ALL_COMPLETED,
) -> tuple[set[Task], set[Task]]:
    """asyncio.wait over tasks: Tasks/Wait. Returns (done, pending) sets of
    Task. `timeout` does not raise: what is not done by then is pending.
    Tasks of several work queues are waited for with one Tasks/Wait per
    queue (FIRST_COMPLETED / FIRST_EXCEPTION then return when any of those
    returns)."""
    if return_when not in _MODES:
        raise ValueError(f"return_when must be one of {sorted(_MODES)}")
    tasks = list(dict.fromkeys(tasks))
    if not tasks:
        raise ValueError("wait() needs at least one task")
    groups = _by_queue(tasks)
    mode = _MODES[return_when]
    if len(groups) == 1:
        done_ids, _ = await _wait_one_queue(client, tasks, mode, timeout)
    else:
        waits = [asyncio.ensure_future(_wait_one_queue(client, g, mode, timeout)) for g in groups.values()]
        try:
            if return_when == ALL_COMPLETED:
                await asyncio.wait(waits)
            else:
                # Done when one queue reports a completion (or a failure).
                pending_waits = set(waits)
                while pending_waits:
                    finished, pending_waits = await asyncio.wait(pending_waits, return_when=asyncio.FIRST_COMPLETED)
                    if any(_satisfied(f.result()[0], return_when) for f in finished if not f.exception()):
                        break
        finally:
            for w in waits:
                w.cancel()
        done_ids = {}
        for w in waits:
            if w.done() and not w.cancelled():
                if w.exception() is not None:
                    raise w.exception()  # type: ignore[misc]
                done_ids.update(w.result()[0])
    done = {t for t in tasks if t.id in done_ids}
    return done, set(tasks) - done


def _satisfied(done: dict[str, task_pb2.TaskOutcome], return_when: str) -> bool:
    if return_when == FIRST_COMPLETED:
        return bool(done)
    return any(o.state != task_pb2.TASK_STATE_SUCCEEDED for o in done.values())


async def gather(client: "Client", *tasks: Task, return_exceptions: bool = False) -> list[Any]:
    """asyncio.gather over tasks: their results, in order. The first failure
    raises (RemoteError / RemoteCancelledError) unless return_exceptions,
    which puts the exceptions in the list instead. Tasks/Wait per work queue."""
    if not tasks:
        return []
    mode = task_pb2.WAIT_MODE_ALL_COMPLETED if return_exceptions else task_pb2.WAIT_MODE_FIRST_EXCEPTION
    groups = _by_queue(tasks)
    outcomes: dict[str, task_pb2.TaskOutcome] = {}
    waits = [_wait_one_queue(client, g, mode, None) for g in groups.values()]
    for done, _ in await asyncio.gather(*waits):
        outcomes.update(done)
    results: list[Any] = []
    for t in tasks:
        if t.id not in outcomes:
            # FIRST_EXCEPTION returned early: this one is still running.
            o = await t.outcome()
        else:
            o = t._outcome(outcomes[t.id])
        if return_exceptions:
            results.append(o.exception if o.state != "succeeded" else o.result)
        else:
            results.append(o.unwrap())
    return results


if sys.version_info >= (3, 11):
    _ExceptionGroup = ExceptionGroup  # noqa: F821
else:  # pragma: no cover
    class _ExceptionGroup(Exception):
        def __init__(self, message: str, exceptions: Sequence[BaseException]) -> None:
            super().__init__(message)
            self.exceptions = tuple(exceptions)


class TaskGroup:
    """asyncio.TaskGroup over a work queue: the tasks submitted through it share
    a group, so the server cancels the others when one fails (unless
    submitted with shielded=True). Leaving the block waits for every task
    (Tasks/Wait on the group); failures are raised together as an
    ExceptionGroup of RemoteError / RemoteCancelledError. If the block itself
    raises, the group's tasks are cancelled."""

    def __init__(self, client: "Client", queue: str, *, group: Optional[str] = None, codec: Optional[Codec] = None) -> None:
        self._client = client
        self.queue = queue
        self.group = group or f"group-{uuid.uuid4().hex[:16]}"
        self.codec = codec or client.codec
        self.tasks: list[Task] = []

    async def create_task(self, payload: Any = b"", **kwargs: Any) -> Task:
        """Tasks/Submit into the group (same options as Client.create_task)."""
        kwargs.setdefault("codec", self.codec)
        t = await create_task(self._client, self.queue, payload, group=self.group, **kwargs)
        self.tasks.append(t)
        return t

    async def __aenter__(self) -> "TaskGroup":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is not None:
            await asyncio.gather(*(t.cancel() for t in self.tasks), return_exceptions=True)
            return
        if not self.tasks:
            return
        req = task_pb2.WaitTasksRequest(queue=self.queue, group=self.group, mode=task_pb2.WAIT_MODE_ALL_COMPLETED)
        resp = await self._client._rpc.call("tasks.Wait", req, blocking=True)
        by_id = {o.task_id: o for o in resp.done}
        failed: list[Exception] = []
        cancelled: list[Exception] = []
        for t in self.tasks:
            o = t._outcome(by_id[t.id]) if t.id in by_id else await t.outcome()
            if o.state != "succeeded":
                (cancelled if o.state == "cancelled" else failed).append(
                    o.exception or RemoteError(f"task {t.id} is {o.state}")
                )
        # As asyncio.TaskGroup: the failures, not the siblings cancelled
        # because of them.
        errors = failed or cancelled
        if errors:
            raise _ExceptionGroup(f"{len(errors)} task(s) of group {self.group!r} did not succeed", errors)

    async def results(self) -> list[Any]:
        """The results of the group's tasks, in submission order (after the block)."""
        return await gather(self._client, *self.tasks)
