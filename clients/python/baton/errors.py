"""The exceptions Baton calls raise, and the one place gRPC statuses map to them.

Every failure is a BatonError. Its subclasses follow the gRPC status the
server answered (see proto/baton/v1/common.proto) and, where asyncio has an
exception for the same situation, subclass that too, so that the asyncio idiom
works unchanged:

    DEADLINE_EXCEEDED    DeadlineExceededError  (also the builtin TimeoutError,
                                                 which is asyncio.TimeoutError)
    INVALID_ARGUMENT     InvalidArgumentError   (also ValueError)
    NOT_FOUND            NotFoundError          (also LookupError)
    FAILED_PRECONDITION  FailedPreconditionError
    ABORTED              AbortedError
    RESOURCE_EXHAUSTED   ResourceExhaustedError
    UNAVAILABLE          UnavailableError       (also ConnectionError)
    UNAUTHENTICATED      UnauthenticatedError   (no token, or one the server
                                                 does not know)
    PERMISSION_DENIED    PermissionDeniedError  (the principal's roles do not
                                                 give the access asked for)
    CANCELLED            asyncio.CancelledError when the asyncio task awaiting
                         the call was cancelled (raised by asyncio itself);
                         RpcCancelledError when something else cancelled it
    anything else        BatonError

Situations with their own class: SessionLostError (the client's session ended),
QueueEmpty / QueueFull (get_nowait / put_nowait, also asyncio's), InvalidStateError
(a future that is already done, also asyncio's), BrokenBarrierError (also
asyncio's, Python 3.11+), and, for outcomes that are data rather than gRPC
errors, RemoteError (a future set with set_exception, a failed task) and
RemoteCancelledError (a cancelled future or task).
"""

from __future__ import annotations

import asyncio
import re

import grpc

__all__ = [
    "AbortedError",
    "BatonError",
    "BrokenBarrierError",
    "ClientClosedError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "InvalidStateError",
    "NotFoundError",
    "NotHeldError",
    "PermissionDeniedError",
    "QueueEmpty",
    "QueueFull",
    "RemoteCancelledError",
    "RemoteError",
    "ResourceExhaustedError",
    "RpcCancelledError",
    "SessionLostError",
    "UnauthenticatedError",
    "UnavailableError",
]


class BatonError(Exception):
    """Base of every Baton error. `code` is the gRPC status (None for errors
    raised by the client itself), `details` the server's message."""

    def __init__(self, details: str = "", code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.code = code

    def __str__(self) -> str:
        if self.code is None:
            return self.details
        return f"{self.code.name}: {self.details}"


class InvalidArgumentError(BatonError, ValueError):
    """INVALID_ARGUMENT: a bad name, TTL, timeout, count, page size..."""


class NotFoundError(BatonError, LookupError):
    """NOT_FOUND: unknown session, task, or a resource that does not exist."""


class FailedPreconditionError(BatonError):
    """FAILED_PRECONDITION: releasing what you do not hold, a name used as
    another kind, a capacity or parties count that differs from the declared one."""


class NotHeldError(FailedPreconditionError, RuntimeError):
    """Releasing a lock or semaphore that this object does not hold (asyncio
    raises RuntimeError there, which this also is)."""


class InvalidStateError(FailedPreconditionError, asyncio.InvalidStateError):
    """A future that is already done cannot be set again (asyncio.InvalidStateError)."""


class DeadlineExceededError(BatonError, TimeoutError):
    """DEADLINE_EXCEEDED: not granted in time. `except TimeoutError` catches it."""


class AbortedError(BatonError):
    """ABORTED: the wait was ended by the server (session ended, queue deleted,
    barrier broken or reset)."""


class SessionLostError(AbortedError):
    """The client's session ended (closed from elsewhere, or expired while the
    client could not reach the server). Everything it held was released.
    Raised by every later call that needs the session; see Client.session_lost."""


_BrokenBarrierBase: type[Exception] = getattr(asyncio, "BrokenBarrierError", RuntimeError)


class BrokenBarrierError(AbortedError, _BrokenBarrierBase):  # type: ignore[misc, valid-type]
    """The barrier is broken (aborted, reset, or a waiter gave up): asyncio.BrokenBarrierError."""


class ResourceExhaustedError(BatonError):
    """RESOURCE_EXHAUSTED: a configured limit of the server."""


class UnavailableError(BatonError, ConnectionError):
    """UNAVAILABLE: the server is shutting down or cannot be reached."""


class UnauthenticatedError(BatonError):
    """UNAUTHENTICATED: the server checks principals and this call has none it
    knows (no token, a token not in its tokens file, a malformed header).
    Connecting raises it too: the session is opened by a call."""


class PermissionDeniedError(BatonError):
    """PERMISSION_DENIED: the principal is known, but its roles do not give
    the access the call needs on a name it names (read, write or admin), or
    the session named is another principal's. `details` names both."""


class RpcCancelledError(BatonError):
    """CANCELLED, when it was not the awaiting asyncio task that was cancelled
    (for example the server cancelled the call)."""


class ClientClosedError(BatonError):
    """The Client was closed while the call was pending, or before it was made."""


class QueueEmpty(BatonError, asyncio.QueueEmpty):
    """Queue.get_nowait() on an empty queue (asyncio.QueueEmpty)."""


class QueueFull(ResourceExhaustedError, asyncio.QueueFull):
    """Queue.put_nowait() on a full queue (asyncio.QueueFull)."""


class RemoteError(BatonError):
    """An error set by another process: a future completed with set_exception,
    or a task whose worker failed it. `error_code` is the application's code,
    `message` its text."""

    def __init__(self, message: str, error_code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    def __str__(self) -> str:
        return f"{self.message} (code {self.error_code})" if self.error_code else self.message


class RemoteCancelledError(BatonError):
    """The awaited future or task was cancelled.

    Unlike asyncio, awaiting a cancelled remote future does not raise
    asyncio.CancelledError: that exception means "this asyncio task is being
    cancelled", and a remote cancellation is not that."""


_BY_CODE: dict[grpc.StatusCode, type[BatonError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.CANCELLED: RpcCancelledError,
}

# The server's messages when a session is gone (service/apply/sessions.cc,
# shard_state.cc): "session 17 not found: ...", "session 17 ended while waiting".
_SESSION_GONE = re.compile(r"^session (\d+) (not found|ended)")


def session_in_error(details: str) -> int | None:
    """The session id named by a "session N not found / ended" message, else None."""
    m = _SESSION_GONE.match(details or "")
    return int(m.group(1)) if m else None


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def from_rpc_error(err: grpc.RpcError, session_id: int = 0) -> BatonError:
    """Maps a failed call to a BatonError (see from_status)."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else str(err)) or ""
    return from_status(code, details, session_id)


def from_code(code: int, details: str, session_id: int = 0) -> BatonError:
    """Maps a numeric gRPC status code (as the session stream answers) to a BatonError."""
    return from_status(_CODES.get(code, grpc.StatusCode.UNKNOWN), details, session_id)


def from_status(code: "grpc.StatusCode | None", details: str, session_id: int = 0) -> BatonError:
    """The BatonError for a gRPC status. A NOT_FOUND or ABORTED naming
    `session_id` becomes SessionLostError."""
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED):
        sid = session_in_error(details)
        if sid is not None and sid == session_id:
            return SessionLostError(details, code)
    cls = _BY_CODE.get(code, BatonError) if code is not None else BatonError
    return cls(details, code)
