"""Lock: asyncio.Lock shared between processes (baton.v1.Locks).

    async with client.lock("billing/migrate") as held:
        print(held.fence)        # fencing token: pass it to the storage you protect

A Lock object stands for one named lock. Like an asyncio.Lock it can be shared
by the tasks of a process: each `acquire()` waits in the server's FIFO line,
and at most one holding exists at a time. The holding belongs to the client's
session (released by the server if this process dies), to a lease (`ttl`), or
to both.

RPCs: acquire -> Locks/Acquire, release -> Locks/Release,
refresh -> Locks/Refresh.

Cancellation: cancelling the task that awaits acquire() (task.cancel(),
asyncio.wait_for, asyncio.timeout) cancels the wait on the server. A grant
that crossed the cancellation is released again: if its reply arrived it is
released at once; if the call ended CANCELLED (unary), or the session stream
broke under it, the acquire is asked again with the same request_id and a
zero timeout, which returns a grant the server believed delivered
(GRANT_OUTCOME_REPLAYED), and that is released too (Rpc.acquire in _rpc.py,
shared by every acquiring call). No lock is leaked.

Losing it: `holding.lost` (an asyncio.Event) is set, with `holding.lost_reason`,
when the holding is gone without a release through this client: its session
was lost, its lease ran out unrefreshed, or the server refused a refresh or
release of it (see holding.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Optional

from ._rpc import opt_seconds, set_duration
from .errors import FailedPreconditionError, NotHeldError, SessionLostError
from .holding import LostSignal, is_loss
from .v1 import common_pb2, lock_pb2

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("baton")

_OUTCOMES: dict[int, str] = {
    common_pb2.GRANT_OUTCOME_IMMEDIATE: "immediate",
    common_pb2.GRANT_OUTCOME_AFTER_WAIT: "after_wait",
    common_pb2.GRANT_OUTCOME_REPLAYED: "replayed",
}


def outcome_name(outcome: int) -> str:
    """"immediate", "after_wait" or "replayed" (GrantOutcome)."""
    return _OUTCOMES.get(outcome, "unspecified")


@dataclass(frozen=True)
class LockHolding:
    """A grant of a lock. `token` (alias `fence`) is its fencing token, strictly
    greater than every token the server handed out before."""

    name: str
    token: int
    outcome: str
    expires_in: Optional[float]
    request_id: str
    session_id: int
    _signal: LostSignal = field(default_factory=LostSignal, compare=False, repr=False)

    @property
    def fence(self) -> int:
        return self.token

    @property
    def lost(self) -> asyncio.Event:
        """Set once the holding is gone without a release through this
        client (session lost, lease ran out, refused refresh or release)."""
        return self._signal.event

    @property
    def lost_reason(self) -> Optional[BaseException]:
        """Why `lost` was set (None while it is not)."""
        return self._signal.reason


class Lock:
    """A named Baton lock. Create with `client.lock(name, ttl=None, session=True)`."""

    def __init__(self, client: "Client", name: str, *, ttl: Optional[float] = None, session: bool = True) -> None:
        if not session and ttl is None:
            raise ValueError("a lock that is not owned by the session needs a ttl (a lease)")
        self._client = client
        self.name = name
        self.ttl = ttl
        self.use_session = session
        self._holding: Optional[LockHolding] = None

    def __repr__(self) -> str:
        state = f"held token={self._holding.token}" if self._holding else "not held"
        return f"<baton.Lock {self.name!r} {state}>"

    @property
    def holding(self) -> Optional[LockHolding]:
        """The current holding through this object, or None."""
        return self._holding

    @property
    def fence(self) -> Optional[int]:
        """The fencing token of the current holding, or None."""
        return self._holding.token if self._holding else None

    def locked(self) -> bool:
        """True while this object holds the lock (and its holding was not
        lost). (Whether *anyone* holds it: `await client.describe(name)`.)"""
        return self._holding is not None and not self._holding.lost.is_set()

    async def _owner(self) -> int:
        return await self._client._session_for_request() if self.use_session else 0

    async def acquire(self, timeout: Optional[float] = None, *, request_id: Optional[str] = None) -> LockHolding:
        """Locks/Acquire: waits in line until the lock is granted.

        timeout: None waits as long as it takes; 0 tries once; otherwise at
          most that many seconds. Raises DeadlineExceededError (a TimeoutError)
          when it runs out: nothing is held then.
        request_id: idempotency key; by default a fresh one per call.
        """
        sid = await self._owner()
        req = lock_pb2.AcquireLockRequest(name=self.name, session_id=sid, request_id=request_id or "")
        set_duration(req, "ttl", self.ttl)
        set_duration(req, "timeout", timeout)

        async def undo(resp: lock_pb2.AcquireLockResponse) -> None:
            await self._release_token(resp.token, sid)

        resp = await self._client._rpc.acquire("locks.Acquire", req, undo=undo, unary=not self.use_session)
        holding = LockHolding(
            name=self.name,
            token=resp.token,
            outcome=outcome_name(resp.outcome),
            expires_in=opt_seconds(resp, "expires_in"),
            request_id=req.request_id,
            session_id=sid,
        )
        self._holding = holding
        self._client._note_lock_token(self.name, holding.token, held=True)
        self._client._holdings.add("lock", holding)
        return holding

    async def _release_token(self, token: int, sid: int) -> bool:
        req = lock_pb2.ReleaseLockRequest(name=self.name, token=token, session_id=sid)
        try:
            resp = await self._client._rpc.call("locks.Release", req, unary=sid == 0)
        except Exception as e:
            if is_loss(e):
                self._client._holdings.lose("lock", self.name, token, e)
            raise
        finally:
            self._client._note_lock_token(self.name, token, held=False)
            self._client._holdings.released("lock", self.name, token)
        return resp.handed_off

    async def release(self) -> bool:
        """Locks/Release of the current holding. Returns True when the lock went
        straight to a waiter. Raises NotHeldError if this object holds nothing,
        FailedPreconditionError if the server no longer counts it as held (its
        lease ran out)."""
        h = self._holding
        if h is None:
            raise NotHeldError(f"lock {self.name!r} is not acquired through this object")
        self._holding = None
        return await self._release_token(h.token, h.session_id)

    async def refresh(self, ttl: Optional[float] = None) -> float:
        """Locks/Refresh: extends the holding's lease to `ttl` (default: the
        lock's ttl) from now. Returns the lease time left, in seconds."""
        h = self._holding
        if h is None:
            raise NotHeldError(f"lock {self.name!r} is not acquired through this object")
        ttl = ttl if ttl is not None else self.ttl
        if ttl is None:
            raise ValueError("refresh needs a ttl")
        req = lock_pb2.RefreshLockRequest(name=self.name, token=h.token, session_id=h.session_id)
        set_duration(req, "ttl", ttl)
        try:
            resp = await self._client._rpc.call("locks.Refresh", req, unary=h.session_id == 0)
        except Exception as e:
            if is_loss(e):
                self._client._holdings.lose("lock", self.name, h.token, e)
            raise
        left = opt_seconds(resp, "expires_in")
        self._client._holdings.refreshed("lock", self.name, h.token, left)
        return left or 0.0

    # Used by Condition, whose Wait releases and re-acquires the lock.
    def _adopt(self, holding: Optional[LockHolding]) -> None:
        self._holding = holding

    async def __aenter__(self) -> LockHolding:
        return await self.acquire()

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._holding is None:
            return  # released inside the block, or lost by a cancelled Condition.wait
        try:
            await self.release()
        except (FailedPreconditionError, SessionLostError) as e:
            if exc is None:
                raise
            log.warning("baton: releasing lock %r after an error failed: %s", self.name, e)
