"""The client's session: opened once, kept alive in the background.

A Client owns one session. Whatever the client holds (locks, permits,
in-flight queue items, running tasks) belongs to it, and the server releases
all of it when the session ends. A background asyncio task keeps it alive
through a stream that the server counts as "the client is there": while such
a stream is open the session cannot expire.

Two ways, one per transport (Client(transport=...)):
  * "stream" (StreamSession, stream.py): the session stream
    baton.v1.Stream/Connect, which also carries every operation.
  * "unary" (KeepAliveSession, below): Sessions/Open, then
    Sessions/KeepAliveStream beside unary calls.

Either way the task also asks, every `probe_interval` seconds, whether the
session still exists, so that it learns promptly when it was ended from
elsewhere (Sessions/Close by an operator). If the stream breaks (network
blip, proxy restart), the session's TTL starts counting on the server and the
task re-opens the stream with the same session id, retrying with the shared
backoff (Backoff: 100 ms, x1.6 per attempt, +-20 % jitter, at most 2 s) while
gRPC re-establishes the connection. Back within the TTL, nothing was lost.

If the server no longer knows the session (it expired meanwhile, or was
closed), or nothing was heard from the server for a whole TTL, this session is
*lost*: `lost` is set, the lost callbacks run (the Client's fires the lost
signal of every holding of the session and opens a new session for the
operations that follow, see client.py), and every pending operation of this
session ends with SessionLostError.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from typing import Any, Awaitable, Callable, Optional, TypeVar, Union

import grpc

from ._rpc import Rpc, duration, seconds
from .errors import SessionLostError, UnavailableError
from .v1 import session_pb2, session_pb2_grpc

log = logging.getLogger("baton")

LostCallback = Callable[[SessionLostError], Union[None, Awaitable[None]]]

T = TypeVar("T")

# The defaults every Baton client shares (clients/README.md).
DEFAULT_SESSION_TTL = 15.0
PROBE_MIN, PROBE_MAX = 0.1, 5.0


def default_probe_interval(ttl: float) -> float:
    """TTL/3, clamped to 100 ms .. 5 s."""
    return max(PROBE_MIN, min(ttl / 3.0, PROBE_MAX))


class Backoff:
    """The stream re-open backoff: 100 ms, x1.6 per attempt, +-20 % jitter,
    at most 2 s; reset() after a success."""

    INITIAL, FACTOR, JITTER, MAX = 0.1, 1.6, 0.2, 2.0

    def __init__(self) -> None:
        self._next = self.INITIAL

    def reset(self) -> None:
        self._next = self.INITIAL

    def next(self) -> float:
        """The delay before the next attempt (and moves on)."""
        base = self._next
        self._next = min(self._next * self.FACTOR, self.MAX)
        return min(base * random.uniform(1 - self.JITTER, 1 + self.JITTER), self.MAX)


def task_is_cancelled() -> bool:
    """Whether the current task has a cancellation pending. grpc.aio raises
    CancelledError from a stream whose call was cancelled (break_stream()),
    which must not be taken for the task's own cancellation. Before Python
    3.11 this cannot be told apart, and True is returned."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


class StreamWatch:
    """Watches one gRPC stream call of a session: `ended` is done as soon as
    the call has ended for any reason (the server ended it, the connection
    broke, or it was cancelled: break_stream(), a failed write), and step()
    runs the call's writes and reads so that none outlives it.

    Why: grpc.aio never ends a write() that waits for the stream's headers if
    the call is cancelled before they went out: call.cancel() also cancels
    the task that would send them and set the event that write() waits on.
    A session that awaited such a write directly waited on it for ever, with
    no stream holding the session open, so the server ended the session once
    its TTL ran out. break_stream() right after a stream was opened did it;
    a loaded machine widens that window.

    Used only on the client's event loop."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        call.add_done_callback(self._on_done)  # runs at once if already done

    def _on_done(self, _call: Any) -> None:
        if not self.ended.done():
            self.ended.set_result(None)

    async def step(self, step: Awaitable[T]) -> T:
        """Awaits `step`, a write() or read() of the call, and returns or
        raises what it does. If the call is cancelled first, gives the step
        up and raises ConnectionError; so too if grpc.aio reports the
        cancellation as a CancelledError, which is thus never taken for the
        task's own (that one propagates unchanged). A call that ended
        otherwise (status from the server, broken connection) lets the step
        end with the call's error, as grpc.aio does then."""
        task = asyncio.ensure_future(step)
        task.add_done_callback(_retrieve)  # a step given up on may still fail
        try:
            await asyncio.wait((task, self.ended), return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and not self.call.cancelled():
                await asyncio.wait((task,))
        finally:
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise ConnectionError("the stream was cancelled")
        return task.result()

    async def until_ended(self, timeout: float) -> bool:
        """Sleeps `timeout` seconds, or less if the call ends meanwhile;
        returns whether it ended."""
        await asyncio.wait((self.ended,), timeout=timeout)
        return self.ended.done()


def _retrieve(task: "asyncio.Task[Any]") -> None:
    """Marks a step's exception as seen, so that asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class Session:
    """What both transports share: the id, the lost state and its callbacks,
    Sessions/Describe, Sessions/KeepAlive and Sessions/Close."""

    def __init__(self, rpc: Rpc, *, ttl: float, label: str, probe_interval: Optional[float]) -> None:
        self._rpc = rpc
        self.ttl = ttl
        self.label = label
        self.probe_interval = probe_interval if probe_interval is not None else default_probe_interval(ttl)
        self._explicit_probe = probe_interval is not None
        self.id = 0
        #: loop.time() of the last message from the server (see silent_too_long).
        self.last_heard = asyncio.get_running_loop().time()
        #: Set once the session is gone for good (see module doc).
        self.lost = asyncio.Event()
        self.lost_error: Optional[SessionLostError] = None
        #: Set while a stream holds the session open.
        self.attached = asyncio.Event()
        #: How many times the stream broke and was re-opened.
        self.stream_breaks = 0
        self._callbacks: list[LostCallback] = []
        self._task: Optional[asyncio.Task[None]] = None
        self._stream: Any = None
        self._closing = False

    async def open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def heard(self) -> None:
        """Notes that the server answered just now."""
        self.last_heard = asyncio.get_running_loop().time()

    def _set_ttl(self, ttl: float) -> None:
        """The TTL the server granted; the default probe interval follows it."""
        self.ttl = ttl
        if not self._explicit_probe:
            self.probe_interval = default_probe_interval(ttl)

    def silent_too_long(self) -> bool:
        """True when nothing was heard from the server for a whole TTL: the
        session may have expired there, and is taken as lost."""
        return bool(self.id) and asyncio.get_running_loop().time() - self.last_heard > self.ttl

    def _silence_left(self) -> float:
        """Seconds until nothing will have been heard for a whole TTL."""
        return max(0.0, self.ttl - (asyncio.get_running_loop().time() - self.last_heard)) + 0.01

    def mark_silent_lost(self) -> None:
        self.mark_lost(
            SessionLostError(
                f"nothing was heard from the server for a whole TTL ({self.ttl:g} s)", grpc.StatusCode.UNAVAILABLE
            )
        )

    def check(self) -> int:
        """The session id; raises SessionLostError if the session is gone."""
        if self.lost_error is not None:
            raise self.lost_error
        return self.id

    def add_lost_callback(self, callback: LostCallback) -> None:
        """Calls `callback(error)` (sync or async) when the session is lost;
        at once if it already is."""
        self._callbacks.append(callback)
        if self.lost_error is not None:
            self._run_callback(callback, self.lost_error)

    def mark_lost(self, error: SessionLostError) -> None:
        """Records that the session is gone (idempotent) and runs the callbacks."""
        if self.lost_error is not None or self._closing:
            return
        self.lost_error = SessionLostError(f"session {self.id} was lost: {error.details}", error.code)
        log.warning("baton: %s", self.lost_error)
        self.lost.set()
        self.attached.clear()
        self._on_lost()
        for cb in list(self._callbacks):
            self._run_callback(cb, self.lost_error)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def _on_lost(self) -> None:
        """Transport-specific cleanup when the session is lost."""

    def _run_callback(self, cb: LostCallback, err: SessionLostError) -> None:
        try:
            result = cb(err)
        except Exception:
            log.exception("baton: session-lost callback failed")
            return
        if inspect.isawaitable(result):
            self._rpc.track(asyncio.ensure_future(result))

    def break_stream(self) -> bool:
        """Cancels the current stream, as a network failure would; the
        background task re-opens it. For tests and diagnostics."""
        call = self._stream
        return bool(call is not None and call.cancel())

    async def describe(self, session_id: Optional[int] = None) -> session_pb2.DescribeSessionResponse:
        """Sessions/Describe of this session (or of `session_id`)."""
        req = session_pb2.DescribeSessionRequest(session_id=session_id or self.id)
        return await self._rpc.call("sessions.Describe", req)

    async def keep_alive_once(self) -> float:
        """Sessions/KeepAlive: restarts the TTL now; returns the time left (s)."""
        req = session_pb2.KeepAliveRequest(session_id=self.check())
        resp = await self._rpc.call("sessions.KeepAlive", req, unary=True)
        return seconds(resp.expires_in)

    async def _stop(self) -> None:
        """Stops the background task (transports add their own teardown)."""
        self._closing = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            # Bounded: closing never hangs on the background task.
            await asyncio.wait((self._task,), timeout=5.0)
            if not self._task.done():
                log.warning("baton: the session task of session %d did not stop", self.id)

    async def close(self) -> None:
        """Stops the background task and ends the session (Sessions/Close),
        releasing everything it holds. A lost session is not closed again."""
        await self._stop()
        if self.id and self.lost_error is None:
            try:
                req = session_pb2.CloseSessionRequest(session_id=self.id)
                await self._rpc.call("sessions.Close", req, unary=True)
            except Exception as e:  # the server may be gone: it will expire the session
                log.info("baton: closing session %d failed: %s", self.id, e)
        self.attached.clear()


class KeepAliveSession(Session):
    """The unary transport's session: Sessions/Open, kept alive by
    Sessions/KeepAliveStream, whose periodic requests are the probes (the
    server answers SESSION_STATE_NOT_FOUND for a session that is gone)."""

    def __init__(
        self,
        stub: session_pb2_grpc.SessionsStub,
        rpc: Rpc,
        *,
        ttl: float,
        label: str,
        probe_interval: Optional[float],
    ) -> None:
        super().__init__(rpc, ttl=ttl, label=label, probe_interval=probe_interval)
        self._stub = stub

    async def open(self) -> None:
        """Sessions/Open, then starts the keep-alive task."""
        req = session_pb2.OpenSessionRequest(ttl=duration(self.ttl), label=self.label)
        resp = await self._rpc.call("sessions.Open", req, unary=True)
        self.id = resp.session_id
        self._set_ttl(seconds(resp.ttl))
        self.heard()
        self._task = asyncio.get_running_loop().create_task(self._keep_alive(), name=f"baton-session-{self.id}")
        # Open only once the keep-alive stream holds the session, as the
        # stream transport's welcome does: until then the session lives on
        # its bare TTL, and whatever the caller does first (on a loaded
        # machine, the attach itself) eats into it. A short TTL could run out
        # right there (a break in that window lost the session).
        attached = asyncio.ensure_future(self.attached.wait())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait(
                (attached, lost, self._task), timeout=self._rpc.rpc_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            attached.cancel()
            lost.cancel()
        if self.attached.is_set() and self.lost_error is None:
            return
        error: BaseException = self.lost_error or UnavailableError(
            f"the keep-alive stream of session {self.id} did not attach within {self._rpc.rpc_timeout}s",
            grpc.StatusCode.UNAVAILABLE,
        )
        if self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            error = self._task.exception()  # type: ignore[assignment]
        await self.close()
        raise error

    async def _keep_alive(self) -> None:
        backoff = Backoff()
        req = session_pb2.KeepAliveRequest(session_id=self.id)
        while not self._closing and self.lost_error is None:
            if self.silent_too_long():
                self.mark_silent_lost()
                return
            call = self._stub.KeepAliveStream()
            self._stream = call
            watch = StreamWatch(call)
            try:
                while not self._closing:
                    await watch.step(call.write(req))
                    # Bounded: a server that says nothing for a whole TTL may
                    # have let the session expire. (asyncio.wait, not
                    # wait_for, which can swallow this task's cancellation
                    # when the read ends at the same moment.)
                    read = asyncio.ensure_future(watch.step(call.read()))
                    read.add_done_callback(_retrieve)
                    try:
                        await asyncio.wait((read,), timeout=self._silence_left())
                    finally:
                        if not read.done():
                            read.cancel()
                    if not read.done() or read.cancelled():
                        if self.silent_too_long():
                            self.mark_silent_lost()
                            return
                        raise ConnectionError("no answer to the keep-alive")
                    resp = read.result()
                    if resp is grpc.aio.EOF:
                        raise ConnectionError("keep-alive stream ended")
                    if resp.state == session_pb2.SESSION_STATE_NOT_FOUND:
                        self.mark_lost(
                            SessionLostError(
                                f"the server no longer knows session {self.id}: it was closed, "
                                f"or it expired while the client could not reach the server",
                                grpc.StatusCode.NOT_FOUND,
                            )
                        )
                        return
                    self.heard()
                    backoff.reset()
                    self.attached.set()
                    # Until the next probe; re-open at once if the stream breaks.
                    if await watch.until_ended(self.probe_interval):
                        raise ConnectionError(f"keep-alive stream ended: {await call.code()}")
            except Exception as e:  # RpcError, ConnectionError...
                if self._closing:
                    return
                self.attached.clear()
                self.stream_breaks += 1
                log.info("baton: keep-alive stream of session %d broke (%s); re-opening", self.id, e)
            finally:
                call.cancel()
                self._stream = None
            await asyncio.sleep(backoff.next())
