"""Semaphore: asyncio.BoundedSemaphore shared between processes, with weights
(baton.v1.Semaphores).

    async with client.semaphore("payments", 8):
        await call_payment_api()

The capacity (`value`, as asyncio.Semaphore(value)) is declared by the first
user; `client.semaphore(name)` without it uses whatever was declared. Each
acquire is a *holding* of `count` permits with its own token; a Semaphore
object can have many at once (one per task using it). `async with` releases
the holding it took; `release()` without arguments releases the newest holding
taken by the calling task (else the newest one).

The declaration (the capacity) lasts until delete(), also while no permit is
held: delete the semaphore when the name is done with, or to declare it again
with another capacity.

RPCs: acquire -> Semaphores/Acquire, release -> Semaphores/Release,
refresh -> Semaphores/Refresh, delete -> Semaphores/Delete, available ->
Admin/Describe.

Cancellation is safe as for Lock: a grant that crossed the cancellation is
released (Rpc.acquire, see lock.py). Each holding has the lost signal
(`holding.lost`, `holding.lost_reason`; see holding.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Optional

from ._rpc import opt_seconds, set_duration
from .errors import FailedPreconditionError, NotHeldError, SessionLostError
from .holding import LostSignal, is_loss
from .lock import outcome_name
from .v1 import semaphore_pb2

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("baton")


@dataclass(frozen=True)
class SemaphoreHolding:
    """A grant of `count` permits. `available`: permits free right after it."""

    name: str
    token: int
    count: int
    available: int
    outcome: str
    expires_in: Optional[float]
    request_id: str
    session_id: int
    _signal: LostSignal = field(default_factory=LostSignal, compare=False, repr=False)

    @property
    def lost(self) -> asyncio.Event:
        """Set once the holding is gone without a release through this
        client (session lost, lease ran out, refused refresh or release)."""
        return self._signal.event

    @property
    def lost_reason(self) -> Optional[BaseException]:
        """Why `lost` was set (None while it is not)."""
        return self._signal.reason


class Semaphore:
    """A named Baton semaphore. Create with `client.semaphore(name, value)`."""

    def __init__(
        self,
        client: "Client",
        name: str,
        value: Optional[int] = None,
        *,
        ttl: Optional[float] = None,
        session: bool = True,
    ) -> None:
        if not session and ttl is None:
            raise ValueError("a semaphore holding that is not owned by the session needs a ttl (a lease)")
        if value is not None and value < 1:
            raise ValueError("a semaphore's value (capacity) must be at least 1")
        self._client = client
        self.name = name
        self.capacity = value
        self.ttl = ttl
        self.use_session = session
        self._holdings: list[SemaphoreHolding] = []
        self._by_task: dict[Optional[asyncio.Task[object]], list[int]] = {}

    def __repr__(self) -> str:
        return f"<baton.Semaphore {self.name!r} capacity={self.capacity} holdings={len(self._holdings)}>"

    @property
    def holdings(self) -> list[SemaphoreHolding]:
        """The holdings taken through this object and not yet released."""
        return list(self._holdings)

    async def _owner(self) -> int:
        return await self._client._session_for_request() if self.use_session else 0

    async def acquire(
        self, count: int = 1, timeout: Optional[float] = None, *, request_id: Optional[str] = None
    ) -> SemaphoreHolding:
        """Semaphores/Acquire: takes `count` permits, waiting in FIFO line
        while too few are free. timeout as for Lock.acquire."""
        sid = await self._owner()
        req = semaphore_pb2.AcquireSemaphoreRequest(
            name=self.name, capacity=self.capacity or 0, count=count, session_id=sid, request_id=request_id or ""
        )
        set_duration(req, "ttl", self.ttl)
        set_duration(req, "timeout", timeout)

        async def undo(resp: semaphore_pb2.AcquireSemaphoreResponse) -> None:
            await self._release_token(resp.token, sid, None)

        resp = await self._client._rpc.acquire("semaphores.Acquire", req, undo=undo, unary=not self.use_session)
        h = SemaphoreHolding(
            name=self.name,
            token=resp.token,
            count=resp.count,
            available=resp.available,
            outcome=outcome_name(resp.outcome),
            expires_in=opt_seconds(resp, "expires_in"),
            request_id=req.request_id,
            session_id=sid,
        )
        self._holdings.append(h)
        self._by_task.setdefault(asyncio.current_task(), []).append(h.token)
        self._client._holdings.add("semaphore", h)
        return h

    async def _release_token(self, token: int, sid: int, count: Optional[int]) -> semaphore_pb2.ReleaseSemaphoreResponse:
        req = semaphore_pb2.ReleaseSemaphoreRequest(name=self.name, token=token, session_id=sid)
        if count is not None:
            req.count = count
        try:
            resp = await self._client._rpc.call("semaphores.Release", req, unary=sid == 0)
        except Exception as e:
            if is_loss(e):
                self._client._holdings.lose("semaphore", self.name, token, e)
            raise
        if resp.remaining == 0:
            self._client._holdings.released("semaphore", self.name, token)
        return resp

    def _pick(self) -> SemaphoreHolding:
        mine = self._by_task.get(asyncio.current_task()) or []
        for token in reversed(mine):
            for h in self._holdings:
                if h.token == token:
                    return h
        if not self._holdings:
            raise NotHeldError(f"semaphore {self.name!r}: nothing is acquired through this object")
        return self._holdings[-1]

    def _forget(self, token: int) -> None:
        self._holdings = [h for h in self._holdings if h.token != token]
        for task, tokens in list(self._by_task.items()):
            if token in tokens:
                tokens.remove(token)
            if not tokens:
                del self._by_task[task]

    async def release(self, holding: Optional[SemaphoreHolding] = None, count: Optional[int] = None) -> int:
        """Semaphores/Release: returns `count` permits (default: all) of
        `holding` (default: the calling task's newest, else the newest).
        Returns the permits the holding still has."""
        h = holding or self._pick()
        if count is None or count >= h.count:
            self._forget(h.token)
        else:
            self._holdings = [replace(x, count=x.count - count) if x.token == h.token else x for x in self._holdings]
        resp = await self._release_token(h.token, h.session_id, count)
        return resp.remaining

    async def refresh(self, holding: Optional[SemaphoreHolding] = None, ttl: Optional[float] = None) -> float:
        """Semaphores/Refresh: extends a holding's lease to `ttl` from now.
        Returns the lease time left, in seconds."""
        h = holding or self._pick()
        ttl = ttl if ttl is not None else self.ttl
        if ttl is None:
            raise ValueError("refresh needs a ttl")
        req = semaphore_pb2.RefreshSemaphoreRequest(name=self.name, token=h.token, session_id=h.session_id)
        set_duration(req, "ttl", ttl)
        try:
            resp = await self._client._rpc.call("semaphores.Refresh", req, unary=h.session_id == 0)
        except Exception as e:
            if is_loss(e):
                self._client._holdings.lose("semaphore", self.name, h.token, e)
            raise
        left = opt_seconds(resp, "expires_in")
        self._client._holdings.refreshed("semaphore", self.name, h.token, left)
        return left or 0.0

    async def delete(self) -> bool:
        """Semaphores/Delete: ends the semaphore's declaration, so that the name
        may be declared again with another capacity. Returns False if there was
        no such semaphore. FailedPreconditionError while permits are held
        (release them first) or if the name is another kind."""
        resp = await self._client._rpc.call("semaphores.Delete", semaphore_pb2.DeleteSemaphoreRequest(name=self.name))
        return resp.deleted

    async def available(self) -> int:
        """Permits free now (Admin/Describe); the capacity if nobody holds any."""
        desc = await self._client.describe(self.name, missing_ok=True)
        if desc is None:
            if self.capacity is None:
                raise ValueError(f"semaphore {self.name!r} does not exist and has no declared capacity")
            return self.capacity
        return desc.available

    async def __aenter__(self) -> SemaphoreHolding:
        return await self.acquire()

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            h = self._pick()
        except NotHeldError:
            return
        try:
            await self.release(h)
        except (FailedPreconditionError, SessionLostError) as e:
            if exc is None:
                raise
            log.warning("baton: releasing semaphore %r after an error failed: %s", self.name, e)
