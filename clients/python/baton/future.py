"""Future: asyncio.Future shared between processes (baton.v1.Futures).

    f = client.future("report/2026-11")
    value = await f                      # waits until it is done
    await f.set_result("42 rows")        # elsewhere; only once
    await f.set_exception(ValueError("no data"))
    await f.cancel()

A named, single-assignment value. Awaiting it returns the result (decoded by
the codec), raises RemoteError for an exception set with set_exception, and
RemoteCancelledError for a cancelled future (not asyncio.CancelledError, which
would mean the awaiting task itself is being cancelled). Setting a done future
raises InvalidStateError (also asyncio.InvalidStateError). done(),
cancelled(), result() and exception() ask the server, so they are coroutines.

RPCs: await / result / exception / outcome / done -> Futures/Await,
set_result -> Futures/SetResult, set_exception -> Futures/SetException,
cancel -> Futures/Cancel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator, Optional, Union

from ._rpc import set_duration
from .codec import Codec, payload_bytes
from .errors import DeadlineExceededError, FailedPreconditionError, InvalidStateError, RemoteCancelledError, RemoteError
from .v1 import future_pb2

if TYPE_CHECKING:
    from .client import Client

_STATES: dict[int, str] = {
    future_pb2.FUTURE_STATE_PENDING: "pending",
    future_pb2.FUTURE_STATE_RESULT: "result",
    future_pb2.FUTURE_STATE_EXCEPTION: "exception",
    future_pb2.FUTURE_STATE_CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class FutureOutcome:
    """How a future ended: state "result" (with value/data), "exception"
    (error_code, error_message) or "cancelled"."""

    state: str
    value: Any
    data: bytes
    error_code: int
    error_message: str

    def unwrap(self) -> Any:
        """The value, or raises RemoteError / RemoteCancelledError."""
        if self.state == "result":
            return self.value
        if self.state == "exception":
            raise RemoteError(self.error_message, self.error_code)
        raise RemoteCancelledError("the future was cancelled")


class Future:
    """A named Baton future. Create with `client.future(name, codec=None)`."""

    def __init__(self, client: "Client", name: str, *, codec: Optional[Codec] = None) -> None:
        self._client = client
        self.name = name
        self.codec = codec or client.codec

    def __repr__(self) -> str:
        return f"<baton.Future {self.name!r}>"

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    async def outcome(self, timeout: Optional[float] = None) -> FutureOutcome:
        """Futures/Await: waits until the future is done (at most `timeout`
        seconds: DeadlineExceededError) and returns how it ended."""
        req = future_pb2.AwaitFutureRequest(name=self.name, session_id=await self._client._session_for_request())
        set_duration(req, "timeout", timeout)
        resp = await self._client._rpc.call("futures.Await", req, blocking=True)
        data = payload_bytes(resp.value, resp.text)
        state = _STATES.get(resp.state, "pending")
        return FutureOutcome(
            state=state,
            value=self.codec.decode(data) if state == "result" else None,
            data=data,
            error_code=resp.error_code,
            error_message=resp.error_message,
        )

    async def result(self, timeout: Optional[float] = None) -> Any:
        """The result; raises RemoteError / RemoteCancelledError as described
        above, DeadlineExceededError if not done within `timeout`."""
        return (await self.outcome(timeout)).unwrap()

    async def exception(self, timeout: Optional[float] = None) -> Optional[RemoteError]:
        """The exception set with set_exception, or None if it has a result.
        Raises RemoteCancelledError if cancelled (as asyncio's does)."""
        o = await self.outcome(timeout)
        if o.state == "cancelled":
            raise RemoteCancelledError("the future was cancelled")
        return RemoteError(o.error_message, o.error_code) if o.state == "exception" else None

    async def done(self) -> bool:
        """Whether the future is done (Futures/Await with a zero timeout)."""
        try:
            await self.outcome(timeout=0)
            return True
        except DeadlineExceededError:
            return False

    async def cancelled(self) -> bool:
        try:
            return (await self.outcome(timeout=0)).state == "cancelled"
        except DeadlineExceededError:
            return False

    async def set_result(self, value: Any, *, retention: Optional[float] = None) -> int:
        """Futures/SetResult: completes the future; returns the awaiters woken.
        `retention`: how long the done future is kept (server default: 1 h)."""
        data, text = self.codec.encode(value)
        req = future_pb2.SetResultRequest(name=self.name)
        if data is not None:
            req.value = data
        else:
            req.text = text or ""
        set_duration(req, "retention", retention)
        return await self._set("futures.SetResult", req)

    async def set_exception(
        self, exception: Union[BaseException, str], *, code: Optional[int] = None, retention: Optional[float] = None
    ) -> int:
        """Futures/SetException: completes the future with an error. The
        message is str(exception) (for a RemoteError, its message); `code` is
        an application error code (default: a RemoteError's code, else 0)."""
        if isinstance(exception, RemoteError):
            message, default_code = exception.message, exception.error_code
        elif isinstance(exception, BaseException):
            message, default_code = f"{type(exception).__name__}: {exception}", 0
        else:
            message, default_code = str(exception), 0
        req = future_pb2.SetExceptionRequest(
            name=self.name, code=default_code if code is None else code, message=message
        )
        set_duration(req, "retention", retention)
        return await self._set("futures.SetException", req)

    async def _set(self, method: str, req: Any) -> int:
        try:
            resp = await self._client._rpc.call(method, req)
        except FailedPreconditionError as e:
            if "already done" in e.details:
                raise InvalidStateError(e.details, e.code) from None
            raise
        return resp.woken

    async def cancel(self, *, retention: Optional[float] = None) -> bool:
        """Futures/Cancel: cancels a pending future; False if it was done."""
        req = future_pb2.CancelFutureRequest(name=self.name)
        set_duration(req, "retention", retention)
        resp = await self._client._rpc.call("futures.Cancel", req)
        return resp.cancelled
