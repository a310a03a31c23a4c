"""The session stream: one baton.v1.Stream/Connect call carries the session
and every operation of the client (the default transport).

Protocol (proto/baton/v1/stream.proto): the first request says hello (a new
session with a TTL, or resume one by id); the server welcomes with the session
id. Then each request carries operations, each with an id chosen here, and
cancellations by id; every operation is answered exactly once, in completion
order. A cancelled operation is answered CANCELLED, unless its answer was
already on the wire, in which case that answer arrives and is rolled back by
the caller (see _rpc.py). So a cancellation never leaves an outcome unknown:
no lock, permit or queue item gets stranded.

Threading: everything here runs on the client's event loop. One writer task
sends what is queued (operations and cancellations) in one message per
write; one reader resolves the answers; a probe asks Sessions/Describe every
probe_interval so that a session closed from elsewhere is noticed.

When the stream breaks, operations not yet sent stay queued for the next
stream. Waits that carry a request_id (lock and semaphore acquire, queue Get,
task Take: RESENDABLE) and were sent on the broken stream are sent again on
the next one, with the same request_id and what is left of their deadline: a
grant whose answer was lost on the broken wire comes back as
GRANT_OUTCOME_REPLAYED, otherwise the wait goes on; the caller sees only the
delay. One of them cancelled meanwhile is sent again with a zero timeout, and
what comes back is rolled back (the call's `rollback`). Any other operation
sent on the broken stream ends with UnavailableError (its outcome is unknown;
`recover`, if given, runs). The stream is re-opened with the same session id
(Backoff in session.py); if the server no longer knows it, or nothing was
heard from the server for a whole TTL, the session is lost: every pending
operation ends with SessionLostError.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import grpc

from ._rpc import Recover, Rollback, Rpc, duration, seconds, set_duration
from .errors import BatonError, ClientClosedError, DeadlineExceededError, SessionLostError, UnavailableError
from .session import Backoff, Session, StreamWatch, task_is_cancelled
from .v1 import session_pb2, stream_pb2, stream_pb2_grpc

log = logging.getLogger("baton")

_CANCELLED = grpc.StatusCode.CANCELLED.value[0]
# The status grpc.aio gives a stream whose write failed in gRPC core, which
# it puts in place of the server's (see _run); retried this many times.
_CORE_WRITE_FAILED = "Internal error from Core"
_CORE_WRITE_RETRIES = 3


class _Broken:
    """Outcome of an operation sent on a stream that broke before its answer."""


class _Unsent:
    """Outcome of an operation cancelled before it was sent."""


_BROKEN = _Broken()
_UNSENT = _Unsent()

#: The operations re-sent on the next stream when theirs broke (when they
#: carry a request_id): the waits whose grant a retry with the same
#: request_id returns (GRANT_OUTCOME_REPLAYED) instead of granting again.
RESENDABLE = frozenset({"acquire_lock", "acquire_semaphore", "get", "take_task"})


@dataclass
class _Op:
    fut: "asyncio.Future[Any]"
    field: str
    operation: Any = field(repr=False)
    # The stream generation it was last sent on; None while queued.
    sent_on: Optional[int] = None
    # Sent at least once (a queued re-send is not "unsent").
    was_sent: bool = False
    # Re-sent on the next stream if its own breaks (RESENDABLE, request_id).
    resend: bool = False
    # loop.time() by which the wait ends (its timeout), None: no timeout.
    deadline: Optional[float] = None
    # The caller gave up: a re-send asks with a zero timeout (recovery).
    cancelled: bool = False
    resent: int = 0


def _retrieve_probe(fut: "asyncio.Future[Any]") -> None:
    if fut.cancelled():
        return
    e = fut.exception()
    if isinstance(e, BatonError) and not isinstance(e, (SessionLostError, ClientClosedError)):
        log.info("baton: session probe failed: %s", e)


class StreamSession(Session):
    """The session and transport of a Client with transport="stream"."""

    def __init__(
        self,
        stub: stream_pb2_grpc.StreamStub,
        rpc: Rpc,
        *,
        ttl: float,
        label: str,
        probe_interval: Optional[float],
    ) -> None:
        super().__init__(rpc, ttl=ttl, label=label, probe_interval=probe_interval)
        self._stub = stub
        self._ops: dict[int, _Op] = {}
        self._outbox: dict[int, stream_pb2.Operation] = {}
        self._cancels: list[int] = []
        self._wake = asyncio.Event()
        self._next_id = 1
        self._generation = 0
        self._welcome: Optional[asyncio.Future[None]] = None
        #: Operations re-sent after a break (RESENDABLE waits), for tests.
        self.resent = 0

    # ---- lifecycle -----------------------------------------------------

    async def open(self) -> None:
        """Opens the stream with a hello for a new session and waits for the
        welcome; raises what the first connection failed with."""
        loop = asyncio.get_running_loop()
        self._welcome = loop.create_future()
        self._task = loop.create_task(self._run(), name="baton-session-stream")
        try:
            await asyncio.shield(self._welcome)
        except BaseException:
            self._closing = True
            self._task.cancel()
            raise

    async def _run(self) -> None:
        backoff = Backoff()
        core_write_failures = 0
        while not self._closing and self.lost_error is None:
            if self.id and self.silent_too_long():
                self.mark_silent_lost()
                return
            self._generation += 1
            call = self._stub.Connect()
            self._stream = call
            watch = StreamWatch(call)
            writer: Optional[asyncio.Task[None]] = None
            prober: Optional[asyncio.Task[None]] = None
            welcomed = False
            try:
                hello = stream_pb2.StreamHello(session_id=self.id)
                if not self.id:
                    hello = stream_pb2.StreamHello(ttl=duration(self.ttl), label=self.label)
                # Through the watch: a stream cancelled before its headers
                # went out would leave a bare write() waiting for ever.
                await watch.step(call.write(stream_pb2.StreamRequest(hello=hello)))
                first = await watch.step(call.read())
                if first is grpc.aio.EOF:
                    raise ConnectionError("the session stream ended before its welcome")
                self.id = first.welcome.session_id
                self._set_ttl(seconds(first.welcome.ttl))
                self.heard()
                welcomed = True
                self.attached.set()
                backoff.reset()
                core_write_failures = 0
                if self._welcome is not None and not self._welcome.done():
                    self._welcome.set_result(None)
                self._answer(first)
                writer = asyncio.ensure_future(self._write(call, self._generation))
                prober = asyncio.ensure_future(self._probe())
                self._wake.set()
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        raise ConnectionError("the server ended the session stream")
                    self.heard()
                    self._answer(resp)
            except asyncio.CancelledError:
                if self._closing or self.lost_error is not None or task_is_cancelled():
                    raise
                self.stream_breaks += 1  # break_stream(): the call was cancelled
            except Exception as e:  # RpcError, or InvalidStateError on a finished call...
                if self._closing or self.lost_error is not None:
                    return
                if not welcomed:
                    if isinstance(e, grpc.RpcError):
                        err = self._rpc.error(e)
                    else:
                        err = UnavailableError(f"the session stream failed: {e!r}", grpc.StatusCode.UNAVAILABLE)
                    if (
                        err.code == grpc.StatusCode.INTERNAL
                        and err.details == _CORE_WRITE_FAILED
                        and core_write_failures < _CORE_WRITE_RETRIES
                    ):
                        # grpc.aio replaces the server's status (UNAUTHENTICATED
                        # for a call refused at its headers) with this one when
                        # the hello's write loses the race with that status:
                        # try again (below) to learn the real one.
                        core_write_failures += 1
                    elif self._welcome is not None and not self._welcome.done():
                        self._welcome.set_exception(err)  # the first connection failed
                        return
                    elif err.code == grpc.StatusCode.NOT_FOUND and self.id:
                        self.mark_lost(SessionLostError(err.details, err.code))
                        return
                self.stream_breaks += 1
                log.info("baton: session stream of session %d broke (%s); re-opening", self.id, e)
            finally:
                self.attached.clear()
                for t in (writer, prober):
                    if t is not None:
                        t.cancel()
                call.cancel()
                self._stream = None
                if self.lost_error is None and not self._closing:
                    self._fail_sent(self._generation)
            await asyncio.sleep(backoff.next())

    async def _write(self, call: Any, generation: int) -> None:
        """Sends the queued operations and cancellations, one message per write."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if not self._outbox and not self._cancels:
                    continue
                req = stream_pb2.StreamRequest(ops=list(self._outbox.values()), cancel=self._cancels)
                for op_id in self._outbox:
                    op = self._ops[op_id]
                    op.sent_on = generation
                    op.was_sent = True
                self._outbox.clear()
                self._cancels = []
                await call.write(req)
        except Exception:  # RpcError, or InvalidStateError on a finished call
            call.cancel()  # the reader sees the break and reconnects

    async def _probe(self) -> None:
        """Asks for the session every probe_interval: a session closed from
        elsewhere answers NOT_FOUND, which marks it lost (see Rpc.error).
        A server that answers nothing for a whole TTL loses the session too."""
        while True:
            await asyncio.sleep(self.probe_interval)
            if self.silent_too_long():
                self.mark_silent_lost()
                return
            probe = asyncio.ensure_future(
                self.call(
                    "describe_session",
                    session_pb2.DescribeSessionRequest(session_id=self.id),
                    blocking=False,
                    rollback=None,
                    recover=None,
                )
            )
            probe.add_done_callback(_retrieve_probe)
            # Not waited on for longer than a probe interval: the silence
            # check above must keep running while the server says nothing.
            await asyncio.wait((probe,), timeout=max(self.probe_interval, 0.05))
            if probe.done() and not probe.cancelled() and isinstance(probe.exception(), SessionLostError):
                return

    def _answer(self, resp: stream_pb2.StreamResponse) -> None:
        for r in resp.results:
            op = self._ops.pop(r.id, None)
            if op is not None and not op.fut.done():
                op.fut.set_result(r)

    def _fail_sent(self, generation: int) -> None:
        """After the stream of `generation` broke: re-queues the RESENDABLE
        waits sent on it (same request_id, the rest of their deadline; a
        zero timeout for one its caller gave up on), ends the others with
        _BROKEN. Cancellations not yet written are dropped: they named
        operations of the broken stream."""
        self._cancels = []
        now = asyncio.get_running_loop().time()
        for op_id, op in list(self._ops.items()):
            if op.sent_on is None or op.sent_on > generation:
                continue
            if op.resend and not op.fut.done():
                request = getattr(op.operation, op.field)
                if op.cancelled or op.deadline is not None:
                    left = 0.0 if op.cancelled or op.deadline is None else max(0.0, op.deadline - now)
                    set_duration(request, "timeout", left)
                op.sent_on = None
                op.resent += 1
                self.resent += 1
                self._outbox[op_id] = op.operation
                continue
            del self._ops[op_id]
            if not op.fut.done():
                op.fut.set_result(_BROKEN)

    def _fail_all(self, error: BatonError) -> None:
        self._outbox.clear()
        self._cancels = []
        ops, self._ops = self._ops, {}
        for op in ops.values():
            if not op.fut.done():
                op.fut.set_result(error)

    def _on_lost(self) -> None:
        assert self.lost_error is not None
        self._fail_all(self.lost_error)

    async def _stop(self) -> None:
        self._closing = True
        self._fail_all(ClientClosedError("the client was closed during the call"))
        await super()._stop()

    # ---- operations ----------------------------------------------------

    async def call(
        self,
        field_name: str,
        request: Any,
        *,
        blocking: bool,
        rollback: Optional[Rollback],
        recover: Optional[Recover],
        unsent: Optional[Recover] = None,
    ) -> Any:
        """Runs one operation (the request in Operation field `field_name`)
        and returns its response; see _rpc.py for the cancellation contract.
        Operations that do not block give up after rpc_timeout
        (DeadlineExceededError) if no answer comes."""
        if self.lost_error is not None:
            raise self.lost_error
        if self._closing:
            raise ClientClosedError("the client is closed")
        loop = asyncio.get_running_loop()
        op_id = self._next_id
        self._next_id += 1
        fut: asyncio.Future[Any] = loop.create_future()
        operation = stream_pb2.Operation(id=op_id)
        getattr(operation, field_name).CopyFrom(request)
        op = _Op(fut, field_name, operation)
        if field_name in RESENDABLE and request.request_id:
            op.resend = True
            if request.HasField("timeout"):
                op.deadline = loop.time() + seconds(request.timeout)
        self._ops[op_id] = op
        self._outbox[op_id] = operation
        self._wake.set()
        try:
            if blocking or self._rpc.rpc_timeout is None:
                outcome = await asyncio.shield(fut)
            else:
                done, _ = await asyncio.wait([fut], timeout=self._rpc.rpc_timeout)
                if not done:
                    raise DeadlineExceededError(
                        f"no answer within {self._rpc.rpc_timeout}s", grpc.StatusCode.DEADLINE_EXCEEDED
                    )
                outcome = fut.result()
        except asyncio.CancelledError:
            if not blocking:
                # Left to complete: the caller is told at once, the server
                # still does what was asked (see _rpc.py).
                raise
            self._cancel(op_id)
            cleanup = asyncio.ensure_future(self._after_cancel(op, rollback, recover, unsent))
            self._rpc.track(cleanup)
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                pass
            except Exception:
                pass  # logged by Rpc.track
            raise
        return await self._unwrap(outcome, field_name, recover)

    def _cancel(self, op_id: int) -> None:
        op = self._ops.get(op_id)
        if op is None:
            return  # answered already
        op.cancelled = True
        if op.sent_on is None:
            if op.was_sent:
                # A re-send waiting for the next stream: its grant may have
                # happened on the broken one. Ask with a zero timeout; what
                # comes back is rolled back (_after_cancel).
                set_duration(getattr(op.operation, op.field), "timeout", 0.0)
                return
            self._outbox.pop(op_id, None)
            del self._ops[op_id]
            if not op.fut.done():
                op.fut.set_result(_UNSENT)
        elif op.sent_on == self._generation and self._stream is not None:
            self._cancels.append(op_id)
            self._wake.set()
        # Otherwise sent on a stream that broke and not re-queued yet:
        # _fail_sent re-sends it with a zero timeout (or ends it _BROKEN).

    async def _after_cancel(
        self,
        op: _Op,
        rollback: Optional[Rollback],
        recover: Optional[Recover],
        unsent: Optional[Recover],
    ) -> None:
        field_name = op.field
        outcome = await op.fut
        stats = self._rpc.cancel_stats
        if isinstance(outcome, stream_pb2.OperationResult):
            if outcome.code == 0:
                stats["response_won" if not op.resent else "recovered_on_resend"] += 1
                if rollback is not None:
                    await rollback(getattr(outcome, field_name))
            elif outcome.code == _CANCELLED:
                stats["cancelled"] += 1
            else:
                stats["ended_" + str(outcome.code)] += 1
        elif outcome is _BROKEN:
            stats["broken"] += 1
            if recover is not None:
                await recover()
        elif outcome is _UNSENT:
            stats["unsent"] += 1
            if unsent is not None:
                await unsent()

    async def _unwrap(self, outcome: Any, field_name: str, recover: Optional[Recover]) -> Any:
        if isinstance(outcome, stream_pb2.OperationResult):
            if outcome.code == 0:
                return getattr(outcome, field_name)
            raise self._rpc.error_from_code(outcome.code, outcome.message)
        if outcome is _BROKEN:
            if recover is not None:
                await recover()
            raise UnavailableError(
                "the connection to the server broke during the call; it may or may not have taken effect",
                grpc.StatusCode.UNAVAILABLE,
            )
        if isinstance(outcome, BatonError):
            # A copy: the same error ends every pending operation, and
            # raising one instance from many tasks chains their tracebacks.
            raise type(outcome)(outcome.details, outcome.code)
        if isinstance(outcome, BaseException):
            raise outcome
        raise ClientClosedError(f"unexpected outcome {outcome!r}")  # pragma: no cover
