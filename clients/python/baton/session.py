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
task re-opens the stream with the same session id, retrying with a short
backoff while gRPC re-establishes the connection. Back within the TTL, nothing
was lost. If the server no longer knows the session (it expired meanwhile, or
was closed), the session is *lost*: `lost` is set, the `on_lost` callbacks run,
and every later call that needs the session raises SessionLostError.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable, Optional, Union

import grpc

from ._rpc import Rpc, duration, seconds
from .errors import SessionLostError
from .v1 import session_pb2, session_pb2_grpc

log = logging.getLogger("baton")

LostCallback = Callable[[SessionLostError], Union[None, Awaitable[None]]]


def task_is_cancelled() -> bool:
    """Whether the current task has a cancellation pending. grpc.aio raises
    CancelledError from a stream whose call was cancelled (break_stream()),
    which must not be taken for the task's own cancellation. Before Python
    3.11 this cannot be told apart, and True is returned."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


class Session:
    """What both transports share: the id, the lost state and its callbacks,
    Sessions/Describe, Sessions/KeepAlive and Sessions/Close."""

    def __init__(self, rpc: Rpc, *, ttl: float, label: str, probe_interval: Optional[float]) -> None:
        self._rpc = rpc
        self.ttl = ttl
        self.label = label
        self.probe_interval = probe_interval if probe_interval is not None else max(0.2, min(ttl / 3.0, 5.0))
        self.id = 0
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
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

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
        self.ttl = seconds(resp.ttl)
        self._task = asyncio.get_running_loop().create_task(self._keep_alive(), name=f"baton-session-{self.id}")

    async def _keep_alive(self) -> None:
        backoff = 0.05
        req = session_pb2.KeepAliveRequest(session_id=self.id)
        while not self._closing and self.lost_error is None:
            call = self._stub.KeepAliveStream()
            self._stream = call
            try:
                while True:
                    await call.write(req)
                    resp = await call.read()
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
                    backoff = 0.05
                    self.attached.set()
                    await asyncio.sleep(self.probe_interval)
            except asyncio.CancelledError:
                if self._closing or self.lost_error is not None or task_is_cancelled():
                    raise
                self.attached.clear()
                self.stream_breaks += 1
            except Exception as e:  # RpcError, or InvalidStateError writing to a finished call...
                if self._closing:
                    return
                self.attached.clear()
                self.stream_breaks += 1
                log.info("baton: keep-alive stream of session %d broke (%s); re-opening", self.id, e)
            finally:
                call.cancel()
                self._stream = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
