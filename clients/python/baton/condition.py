"""Condition: asyncio.Condition shared between processes (baton.v1.Conditions).

    async with client.condition("non-empty", lock="orders") as cond:
        await cond.wait_for(lambda: orders_ready())
    ...
    async with client.condition("non-empty", lock="orders") as cond:
        await cond.notify_all()

A condition is bound to a Baton lock, as asyncio.Condition(lock) is: `lock`
is a lock name or a baton.Lock (default: a lock named like the condition).
`async with cond` acquires and releases that lock. wait() needs the lock: the
server releases it, waits for a notify, and re-acquires it before replying,
with a new fencing token (`cond.lock.fence`).

Differences from asyncio, because the lock lives on the server:
  * wait(timeout=...) returns False when its timeout ran out (the lock is
    held again, as after a notify), True when notified, like
    threading.Condition.wait.
  * A wait that is cancelled (task.cancel(), asyncio.wait_for,
    asyncio.timeout) or ends with an error leaves the lock *released*:
    `async with` then has nothing to release. asyncio re-acquires before
    raising; a server cannot hand a lock to a caller that has gone. Use the
    `timeout` argument to keep holding the lock after a timeout.

RPCs: wait and wait_for -> Conditions/Wait, notify -> Conditions/Notify,
notify_all -> Conditions/NotifyAll; the lock -> Locks/Acquire and Release.
"""

from __future__ import annotations

import inspect
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union

from ._rpc import opt_seconds, set_duration
from .errors import FailedPreconditionError, NotFoundError, NotHeldError
from .lock import Lock, LockHolding
from .v1 import condition_pb2, lock_pb2

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("baton")

T = TypeVar("T")


class Condition:
    """A named condition under a Baton lock. Create with
    `client.condition(name, lock=...)`."""

    def __init__(self, client: "Client", name: str = "", *, lock: Union[str, Lock, None] = None) -> None:
        self._client = client
        self.name = name
        if lock is None:
            if not name:
                raise ValueError("a condition needs a lock: client.condition(name, lock=...)")
            lock = name
        self.lock: Lock = client.lock(lock) if isinstance(lock, str) else lock

    def __repr__(self) -> str:
        return f"<baton.Condition {self.name!r} lock={self.lock.name!r}>"

    async def acquire(self, timeout: Optional[float] = None) -> LockHolding:
        """Acquires the underlying lock (Locks/Acquire)."""
        return await self.lock.acquire(timeout)

    async def release(self) -> bool:
        """Releases the underlying lock (Locks/Release)."""
        return await self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()

    def _held(self) -> LockHolding:
        h = self.lock.holding
        if h is None:
            raise NotHeldError(f"condition {self.name!r}: lock {self.lock.name!r} is not acquired")
        return h

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Conditions/Wait: releases the lock, waits for a notify, re-acquires
        the lock. Returns True if notified, False if `timeout` seconds passed
        first (the lock is held again either way)."""
        h = self._held()
        client = self._client
        req = condition_pb2.ConditionWaitRequest(
            lock=self.lock.name, condition=self.name, token=h.token, session_id=h.session_id
        )
        set_duration(req, "ttl", self.lock.ttl)
        set_duration(req, "timeout", timeout)
        # A lease-only holding (session 0) must not go over the session
        # stream, which would fill in its session.
        lease_only = h.session_id == 0
        # The server releases the lock as the wait starts: from here on this
        # object does not hold it until a reply says otherwise.
        self.lock._adopt(None)
        client._note_lock_token(self.lock.name, h.token, held=False)
        client._holdings.released("lock", self.lock.name, h.token)
        client._cond_waits[self.lock.name] = client._cond_waits.get(self.lock.name, 0) + 1
        counted = [True]

        def uncount() -> None:
            if counted[0]:
                counted[0] = False
                client._cond_waits[self.lock.name] -= 1

        async def rollback(resp: condition_pb2.ConditionWaitResponse) -> None:
            # Re-acquired although the caller gave up: release it, so that a
            # cancelled wait always leaves the lock released.
            req = lock_pb2.ReleaseLockRequest(name=self.lock.name, token=resp.token, session_id=h.session_id)
            await client._rpc.call("locks.Release", req, unary=lease_only)

        async def recover() -> None:
            uncount()
            await self._release_stranded(h)

        async def unsent() -> None:
            # The wait never reached the server: the lock is still held under
            # the old token. Release it, as every cancelled wait leaves it.
            req = lock_pb2.ReleaseLockRequest(name=self.lock.name, token=h.token, session_id=h.session_id)
            await client._rpc.call("locks.Release", req, unary=lease_only)

        try:
            resp = await client._rpc.call(
                "conditions.Wait",
                req,
                blocking=True,
                rollback=rollback,
                recover=recover,
                unsent=unsent,
                unary=lease_only,
            )
        finally:
            uncount()
        holding = LockHolding(
            name=self.lock.name,
            token=resp.token,
            outcome="after_wait",
            expires_in=opt_seconds(resp, "expires_in"),
            request_id="",
            session_id=h.session_id,
        )
        self.lock._adopt(holding)
        client._note_lock_token(self.lock.name, resp.token, held=True)
        client._holdings.add("lock", holding)
        return resp.outcome == condition_pb2.CONDITION_OUTCOME_NOTIFIED

    async def _release_stranded(self, old: LockHolding) -> None:
        """After a wait whose outcome is unknown (a unary call that ended
        CANCELLED, or a broken stream), makes sure the caller holds nothing,
        as Admin/Describe shows it now:
          * the old holding, if the wait never started on the server;
          * a re-acquire whose reply was lost: ours (our session), no
            request_id (condition re-acquires carry none; Lock.acquire always
            sends one), a token newer than the old one, unknown to every
            local Lock. Skipped while another wait of this client on the same
            lock may be re-acquiring, whose holding would look the same.
        A re-acquire granted after this look stays held until the session
        ends: that is the unary transport's limit (the session stream has no
        such case)."""
        client = self._client
        try:
            desc = await client.describe(self.lock.name)
        except NotFoundError:
            return
        others_waiting = client._cond_waits.get(self.lock.name, 0) > 0
        for holder in desc.holders:
            ours = holder.session_id == old.session_id
            stranded = (
                ours
                and old.session_id != 0
                and not others_waiting
                and holder.request_id == ""
                and holder.token > old.token
                and not client._knows_lock_token(self.lock.name, holder.token)
            )
            if (ours and holder.token == old.token) or stranded:
                log.info("baton: releasing lock %r left by a cancelled condition wait", self.lock.name)
                req = lock_pb2.ReleaseLockRequest(name=self.lock.name, token=holder.token, session_id=old.session_id)
                try:
                    await client._rpc.call("locks.Release", req, unary=old.session_id == 0)
                except FailedPreconditionError:
                    pass  # the server let go of it meanwhile

    async def wait_for(
        self, predicate: Callable[[], Union[T, Awaitable[T]]], timeout: Optional[float] = None
    ) -> T:
        """Waits until `predicate()` (sync or async) is true; returns its
        value. With `timeout`, returns the predicate's (false) value once
        that many seconds have passed. The lock is held on return."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result: Any = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if deadline is None:
                await self.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return result
            await self.wait(timeout=left)

    async def notify(self, n: int = 1) -> int:
        """Conditions/Notify: wakes up to `n` waiters, oldest first; returns
        how many. Requires the lock."""
        h = self._held()
        req = condition_pb2.NotifyRequest(
            lock=self.lock.name, condition=self.name, token=h.token, session_id=h.session_id, n=n
        )
        resp = await self._client._rpc.call("conditions.Notify", req, unary=h.session_id == 0)
        return resp.woken

    async def notify_all(self) -> int:
        """Conditions/NotifyAll: wakes every waiter. Requires the lock."""
        h = self._held()
        req = condition_pb2.NotifyRequest(lock=self.lock.name, condition=self.name, token=h.token, session_id=h.session_id)
        resp = await self._client._rpc.call("conditions.NotifyAll", req, unary=h.session_id == 0)
        return resp.woken

    async def __aenter__(self) -> "Condition":
        await self.lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.lock.__aexit__(exc_type, exc, tb)
