"""How every call is made: routing, error mapping and cancellation.

Primitives name a method ("locks.Acquire") and pass its request. Rpc.call
sends it over the client's session stream (stream.py, the default transport:
baton.v1.Stream/Connect) or as a unary gRPC call (the "unary" transport, and
for the few calls the stream cannot carry: Sessions/Open, KeepAlive, Close,
and calls for lease-only holdings, whose session_id 0 the stream would fill
in with its own session).

The asyncio contract: when the asyncio task awaiting a Baton call is
cancelled (task.cancel(), asyncio.wait_for, asyncio.timeout, TaskGroup), the
operation is cancelled on the server so that its wait ends, and the
CancelledError propagates unchanged. Nothing is leaked on the way:

  * The call is awaited through a shielded future, so a cancellation never
    throws away an answer that has already arrived.
  * If the answer wins the race with the cancel, `rollback(response)` undoes
    it (release the lock, Nack the items...). On the session stream every
    operation is answered exactly once, so this is all there is to it.
  * A unary call that ends CANCELLED may still have been granted: the cancel
    crossed the reply on the wire, and the server believes it delivered. So
    may an operation whose stream broke. `recover()` finds and undoes such a
    grant where the protocol allows (Acquire again with the same request_id,
    see lock.py). Queue items got that way stay in flight until the session
    ends; this is why the stream is the default.
  * The cleanup runs in its own task: cancelling the caller again does not
    interrupt it (Client.close() waits for it).

Rpc.acquire is the one acquire-with-recovery of the client, used by every
wait that grants something the caller must give back (lock and semaphore
acquire, queue Get, task Take): it gives the request a request_id, rolls a
grant that crossed a cancel back with `undo`, and recovers a grant whose
answer was lost (a unary call that ended CANCELLED, a stream that broke under
a cancelled wait) by asking again with the same request_id and a zero
timeout, then undoing what comes back. On the session stream such waits are
also re-sent with the same request_id when their stream breaks (stream.py);
on unary calls, when a try ends UNAVAILABLE (Rpc._unary_wait).

Calls that do not wait on the server (Release, Ack, Set...) are not cancelled:
the caller gets its CancelledError at once and the call completes in the
background, so a Release that was sent is never left half-known.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

import grpc
from google.protobuf import duration_pb2

from .errors import (
    BatonError,
    ClientClosedError,
    DeadlineExceededError,
    FailedPreconditionError,
    NotFoundError,
    RpcCancelledError,
    UnavailableError,
    SessionLostError,
    from_code,
    from_rpc_error,
    session_in_error,
)

if TYPE_CHECKING:
    from .client import Stubs
    from .stream import StreamSession

Rollback = Callable[[Any], Awaitable[None]]
Recover = Callable[[], Awaitable[None]]

# Every method the client calls, and the field of stream.proto's Operation
# that carries it on the session stream (None: unary only).
METHODS: dict[str, Optional[str]] = {
    "sessions.Open": None,
    "sessions.KeepAlive": None,
    "sessions.Close": None,
    "sessions.Describe": "describe_session",
    "locks.Acquire": "acquire_lock",
    "locks.Release": "release_lock",
    "locks.Refresh": "refresh_lock",
    "semaphores.Acquire": "acquire_semaphore",
    "semaphores.Release": "release_semaphore",
    "semaphores.Refresh": "refresh_semaphore",
    "semaphores.Delete": "delete_semaphore",
    "events.Set": "set_event",
    "events.Clear": "clear_event",
    "events.Wait": "wait_event",
    "conditions.Wait": "wait_condition",
    "conditions.Notify": "notify",
    "conditions.NotifyAll": "notify_all",
    "barriers.Wait": "wait_barrier",
    "barriers.Abort": "abort_barrier",
    "barriers.Reset": "reset_barrier",
    "queues.Put": "put",
    "queues.Get": "get",
    "queues.Ack": "ack",
    "queues.Nack": "nack",
    "queues.Join": "join",
    "queues.Purge": "purge",
    "queues.Delete": "delete_queue",
    "futures.SetResult": "set_result",
    "futures.SetException": "set_exception",
    "futures.Cancel": "cancel_future",
    "futures.Await": "await_future",
    "tasks.Submit": "submit_task",
    "tasks.Take": "take_task",
    "tasks.Heartbeat": "task_heartbeat",
    "tasks.Complete": "complete_task",
    "tasks.Await": "await_task",
    "tasks.Cancel": "cancel_task",
    "tasks.Wait": "wait_tasks",
    "timers.Schedule": "schedule_timer",
    "timers.Cancel": "cancel_timer",
    "admin.List": "list",
    "admin.Describe": "describe",
}

# How many times a give-back (Release, Nack) is tried across broken connections.
_UNDO_ATTEMPTS = 8
# How long recover() keeps asking through a broken connection: past a session
# TTL (15 s by default) and an RPC timeout, the session, and with it the
# grant, is gone anyway.
_RECOVER_SECONDS = 40.0

# Calls that need no live session of the client (they name one themselves).
_SESSIONLESS = frozenset({"sessions.Open", "sessions.KeepAlive", "sessions.Close", "sessions.Describe"})

log = logging.getLogger("baton")

T = TypeVar("T")

# The outcome of a call that was cancelled on our side.
_LOCALLY_CANCELLED = object()
_CANCEL_DETAILS = "cancelled by the awaiting asyncio task"


_OUTCOME_NAMES = {1: "immediate", 2: "after_wait", 3: "replayed"}


def _outcome_name(outcome: int) -> str:
    """GrantOutcome as lock.outcome_name names it."""
    return _OUTCOME_NAMES.get(outcome, "unspecified")


def duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration of `seconds` (rounded to the microsecond)."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    d = duration_pb2.Duration()
    d.FromMicroseconds(int(round(seconds * 1e6)))
    return d


def seconds(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def opt_seconds(msg: Any, field: str) -> Optional[float]:
    """The Duration `field` of `msg` in seconds, or None when it is unset."""
    return seconds(getattr(msg, field)) if msg.HasField(field) else None


def set_duration(msg: Any, field: str, value: Optional[float]) -> None:
    """Sets Duration `field` of `msg` to `value` seconds; None leaves it unset."""
    if value is not None:
        getattr(msg, field).CopyFrom(duration(value))


async def _outcome(call: Any) -> tuple[Any, Any]:
    """Awaits a grpc.aio unary call; never raises: (response, None),
    (None, AioRpcError) or (None, _LOCALLY_CANCELLED)."""
    try:
        return await call, None
    except asyncio.CancelledError:
        return None, _LOCALLY_CANCELLED
    except grpc.RpcError as e:
        return None, e


def cancel_in_core(call: Any) -> None:
    """Cancels a grpc.aio call in gRPC core, leaving grpc.aio's own task that
    waits for the response running, so that a response that already arrived is
    still handed over rather than dropped. Falls back to call.cancel()."""
    cy = getattr(call, "_cython_call", None)
    if cy is not None and hasattr(cy, "cancel") and hasattr(cy, "done"):
        try:
            if not cy.done():
                cy.cancel(_CANCEL_DETAILS)
            return
        except Exception:  # pragma: no cover - a grpc.aio without this internal
            pass
    call.cancel()


class Rpc:
    """Makes the calls of one Client. Keeps the cleanup tasks that
    cancellations leave behind, so close() can wait for them."""

    def __init__(
        self,
        session_id: Callable[[], int],
        on_session_lost: Callable[[SessionLostError], None],
        rpc_timeout: Optional[float],
        *,
        is_lost_session: Callable[[int], bool] = lambda _sid: False,
    ) -> None:
        self._session_id = session_id
        self._on_session_lost = on_session_lost
        self._is_lost_session = is_lost_session
        #: Waits for the client's live session (a new one after a loss).
        self.ready: Optional[Callable[[], Awaitable[Any]]] = None
        self.rpc_timeout = rpc_timeout
        self.closed = False
        self.stubs: Optional["Stubs"] = None
        #: The session stream, when it is the transport.
        self.stream: Optional["StreamSession"] = None
        self._background: set[asyncio.Future[Any]] = set()
        # Blocking unary calls in progress, by the session they name; those
        # of a lost session, ended by fail_pending().
        self._pending_unary: dict[Any, int] = {}
        self._lost_calls: dict[Any, SessionLostError] = {}
        #: What cancellations ran into, for tests and diagnostics:
        #: "response_won" (a reply arrived after the cancel; rolled back),
        #: "cancelled" (ended CANCELLED; recover() ran if given).
        self.cancel_stats: collections.Counter[str] = collections.Counter()

    def error(self, err: grpc.RpcError) -> BatonError:
        """Maps a gRPC error, noticing when it says our session is gone."""
        return self._noticed(from_rpc_error(err, self._session_id()))

    def error_from_code(self, code: int, details: str) -> BatonError:
        """Maps a numeric status (a stream answer), as error()."""
        return self._noticed(from_code(code, details, self._session_id()))

    def _noticed(self, mapped: BatonError) -> BatonError:
        if isinstance(mapped, SessionLostError):
            self._on_session_lost(mapped)
            return mapped
        if mapped.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED):
            sid = session_in_error(mapped.details)
            if sid is not None and self._is_lost_session(sid):
                # An earlier session of this client, lost already (and
                # replaced): its pending operations end with SessionLostError.
                return SessionLostError(mapped.details, mapped.code)
        return mapped

    async def call(
        self,
        method: str,
        request: Any,
        *,
        blocking: bool = False,
        rollback: Optional[Rollback] = None,
        recover: Optional[Recover] = None,
        unsent: Optional[Recover] = None,
        unary: bool = False,
    ) -> Any:
        """Calls `method` ("service.Method", see METHODS) with `request` and
        returns its response.

        blocking: the call waits on the server (Acquire, Get, Wait...): it is
          bounded by the request's own `timeout` field rather than by
          rpc_timeout, and cancelling the caller cancels it on the server.
        rollback: on cancellation, undoes a response that arrived anyway.
        recover: undoes a grant whose answer may have been lost (a unary call
          that ended CANCELLED, or a stream that broke).
        unsent: on cancellation, runs when the operation provably never
          reached the server (only the session stream can tell; a unary call
          that ended CANCELLED runs `recover` instead).
        unary: make a unary call even when the session stream is the transport.
        Raises a BatonError, or asyncio.CancelledError when the awaiting task
        is cancelled.
        """
        if self.closed:
            raise ClientClosedError("the client is closed")
        field = METHODS[method]
        if self.ready is not None and method not in _SESSIONLESS:
            stream = self.stream
            if stream is None or stream.lost_error is not None:
                await self.ready()  # the session was lost: a new one first
        if self.stream is not None and field is not None and not unary:
            return await self.stream.call(
                field, request, blocking=blocking, rollback=rollback, recover=recover, unsent=unsent
            )
        assert self.stubs is not None, "not connected"
        service, name = method.split(".")
        return await self.unary(
            getattr(getattr(self.stubs, service), name), request, blocking=blocking, rollback=rollback, recover=recover
        )

    async def acquire(
        self,
        method: str,
        request: Any,
        *,
        undo: Rollback,
        unary: bool = False,
        recover_cancelled_unary: bool = True,
    ) -> Any:
        """Calls `method`, a wait that grants something (Locks/Acquire,
        Semaphores/Acquire, Queues/Get, Tasks/Take), with recovery: see the
        module doc. `request.request_id` is set to a fresh one when empty.
        `undo(response)` gives a grant back (release, Nack, keep the task for
        the next take). Raises as call()."""
        if not request.request_id:
            request.request_id = uuid.uuid4().hex
        given_undo = undo

        async def undo(resp: Any) -> None:
            # Giving back must not be lost to a broken connection: a Release
            # or Nack that ended UNAVAILABLE is sent again (one that had
            # taken effect then fails FAILED_PRECONDITION: done).
            delay = 0.05
            for attempt in range(_UNDO_ATTEMPTS):
                try:
                    await given_undo(resp)
                    return
                except (FailedPreconditionError, NotFoundError, SessionLostError):
                    return  # given back already, or gone with its session
                except UnavailableError:
                    if attempt == _UNDO_ATTEMPTS - 1 or self.closed:
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)

        async def recover() -> None:
            retry = type(request)()
            retry.CopyFrom(request)
            set_duration(retry, "timeout", 0.0)
            if hasattr(retry, "ack"):
                del retry.ack[:]  # acks ride once; the retry only asks what it holds
            # Asked until it answers: batond keeps a grant whose answer may
            # have been read (the reply crossed the cancel or the connection
            # broke), so this is what gives it back. A broken connection is
            # waited out, as long as the session could still hold the grant.
            delay = 0.05
            deadline = time.monotonic() + _RECOVER_SECONDS
            while True:
                try:
                    resp = await self.call(method, retry, blocking=True, unary=unary)
                    break
                except (DeadlineExceededError, SessionLostError, ClientClosedError):
                    return  # nothing of ours is held
                except UnavailableError:
                    if self.closed or time.monotonic() + delay > deadline:
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
            self.cancel_stats["recovered_" + _outcome_name(getattr(resp, "outcome", 0))] += 1
            await undo(resp)

        on_unary = unary or self.stream is None or METHODS[method] is None
        if not on_unary:
            return await self.call(method, request, blocking=True, rollback=undo, recover=recover, unary=unary)
        return await self._unary_wait(
            method, request, undo, recover if recover_cancelled_unary else None, unary=unary
        )

    async def _unary_wait(
        self, method: str, request: Any, undo: Rollback, recover: Optional[Recover], *, unary: bool
    ) -> Any:
        """A granting wait as a unary call (the "unary" transport, or a
        lease-only holding). As the stream re-sends such a wait after a break,
        a try that ends UNAVAILABLE (the connection dropped, the node reached
        is not the leader: a failover) is sent again, after the stream's
        backoff, with the same request_id and what is left of its timeout,
        until it is answered, its time is up, its session is lost or the
        server stays unreachable for _RECOVER_SECONDS. The request_id lets
        batond replay a grant the lost answer carried, or give the wait its
        place in line back, so nothing is lost or doubled. Giving up (or
        being cancelled between tries) recovers what the last try may have
        been granted before raising (`recover` None: Tasks/Take, whose task
        batond gives back itself)."""
        from .session import Backoff  # session.py imports this module

        timeout = opt_seconds(request, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        sid = getattr(request, "session_id", 0)
        backoff = Backoff()
        unreachable_since: Optional[float] = None
        attempt = request
        while True:
            try:
                return await self.call(
                    method,
                    attempt,
                    blocking=True,
                    rollback=undo,
                    recover=recover,
                    unary=unary,
                )
            except UnavailableError:
                now = time.monotonic()
                unreachable_since = now if unreachable_since is None else unreachable_since
                pause = backoff.next()
                if (
                    self.closed
                    or (sid and self._session_id() != sid)
                    or now - unreachable_since > _RECOVER_SECONDS
                    or (deadline is not None and now + pause >= deadline)
                ):
                    await self._recover_after(recover)
                    raise
                try:
                    await asyncio.sleep(pause)
                except asyncio.CancelledError:
                    await self._recover_after(recover)
                    raise
            if deadline is not None:
                attempt = type(request)()
                attempt.CopyFrom(request)
                set_duration(attempt, "timeout", max(0.0, deadline - time.monotonic()))

    async def _recover_after(self, recover: Optional[Recover]) -> None:
        """Runs `recover` (a try's outcome is unknown) in its own task, as
        the cleanup after a cancel does: cancelling the caller again does
        not interrupt it."""
        if recover is None:
            return
        cleanup = asyncio.ensure_future(recover())
        self.track(cleanup)
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            pass  # the cleanup goes on in the background
        except Exception:
            pass  # logged by track()

    def fail_pending(self, session_id: int, error: SessionLostError) -> None:
        """Ends the pending unary waits of session `session_id` (lost) with
        `error`. (On the session stream, StreamSession does this itself.)"""
        for call, sid in list(self._pending_unary.items()):
            if sid == session_id:
                self._lost_calls[call] = error
                cancel_in_core(call)

    def track(self, fut: "asyncio.Future[Any]") -> None:
        """Keeps a background task referenced until it ends; logs its failure."""
        self._background.add(fut)

        def done(f: "asyncio.Future[Any]") -> None:
            self._background.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.warning("baton: background cleanup failed: %r", f.exception())

        fut.add_done_callback(done)

    async def drain(self, timeout: float) -> None:
        """Waits (at most `timeout` s) for the background cleanups to finish."""
        pending = [f for f in self._background if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def unary(
        self,
        method: Any,
        request: Any,
        *,
        blocking: bool = False,
        rollback: Optional[Rollback] = None,
        recover: Optional[Recover] = None,
    ) -> Any:
        """A unary call of the grpc.aio multicallable `method`; arguments as
        for call(). Blocking calls get no gRPC deadline; others get
        rpc_timeout."""
        call = method(request, timeout=None if blocking else self.rpc_timeout)
        outcome: asyncio.Future[tuple[Any, Any]] = asyncio.ensure_future(_outcome(call))
        sid = getattr(request, "session_id", 0) if blocking else 0
        if sid:
            self._pending_unary[call] = sid
        try:
            response, err = await asyncio.shield(outcome)
        except asyncio.CancelledError:
            if not blocking:
                # A call that does not wait (Release, Ack, Set...) is left to
                # finish: it takes a moment, and cancelling it would leave the
                # caller unsure whether it happened.
                self.track(outcome)
                raise
            cancel_in_core(call)
            cleanup = asyncio.ensure_future(self._after_cancel(outcome, rollback, recover))
            self.track(cleanup)
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                pass  # cancelled again: the cleanup goes on in the background
            except Exception:
                pass  # logged by track()
            raise
        finally:
            self._pending_unary.pop(call, None)
        lost = self._lost_calls.pop(call, None)
        if err is None:
            return response
        if lost is not None:
            raise SessionLostError(lost.details, lost.code)
        if err is _LOCALLY_CANCELLED:
            if self.closed:
                raise ClientClosedError("the client was closed during the call")
            raise RpcCancelledError("the call was cancelled", grpc.StatusCode.CANCELLED)
        raise self.error(err) from None

    async def _after_cancel(
        self,
        outcome: "asyncio.Future[tuple[Any, Any]]",
        rollback: Optional[Rollback],
        recover: Optional[Recover],
    ) -> None:
        response, err = await outcome
        if err is None:
            self.cancel_stats["response_won"] += 1
            if rollback is not None:
                await rollback(response)
        elif err is _LOCALLY_CANCELLED or err.code() == grpc.StatusCode.CANCELLED:
            self.cancel_stats["cancelled"] += 1
            if recover is not None:
                await recover()
        else:
            self.cancel_stats["ended_" + err.code().name] += 1
