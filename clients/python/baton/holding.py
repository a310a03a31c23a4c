"""The lost signal of lock and semaphore holdings (clients/README.md,
"Holdings and the lost signal").

Every LockHolding and SemaphoreHolding has `lost`, an asyncio.Event set once
the holding is gone without having been released through this client, and
`lost_reason`, the error saying why:

  * its session was lost (SessionLostError);
  * its lease ran out unrefreshed (the client knows `expires_in`: the signal
    fires when that much time passed since the grant or the last refresh);
  * the server answered NOT_FOUND / FAILED_PRECONDITION to a refresh or a
    release of it.

    held = await client.lock("leader").acquire()
    await held.lost.wait()          # we are not the leader any more
    print(held.lost_reason)

The Client keeps the live holdings in a Holdings registry (below), keyed by
(kind, name, token), so that a session loss reaches each of them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from .errors import BatonError, FailedPreconditionError, NotFoundError

log = logging.getLogger("baton")


class LostSignal:
    """The shared state behind `holding.lost` / `holding.lost_reason`. Kept
    by reference when a holding is replaced (a partial semaphore release)."""

    __slots__ = ("event", "reason")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason: Optional[BaseException] = None

    def fire(self, reason: BaseException) -> bool:
        """Fires once; returns whether this call fired it."""
        if self.event.is_set():
            return False
        self.reason = reason
        self.event.set()
        return True

    def __repr__(self) -> str:
        return f"<LostSignal {'lost: ' + str(self.reason) if self.event.is_set() else 'held'}>"


def is_loss(error: BaseException) -> bool:
    """Whether a refresh or release failing with `error` means the holding is
    gone (NOT_FOUND, FAILED_PRECONDITION)."""
    return isinstance(error, (NotFoundError, FailedPreconditionError))


class Holdings:
    """The live lock and semaphore holdings of a Client, with a lease timer
    for those that have a lease."""

    def __init__(self) -> None:
        self._live: dict[tuple[str, str, int], tuple[Any, Optional[asyncio.TimerHandle]]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def add(self, kind: str, holding: Any) -> None:
        """Tracks a new holding (a LockHolding or SemaphoreHolding)."""
        key = (kind, holding.name, holding.token)
        self._forget(key)
        self._live[key] = (holding, self._timer(key, holding, holding.expires_in))

    def refreshed(self, kind: str, name: str, token: int, expires_in: Optional[float]) -> None:
        """The lease was extended: `expires_in` seconds from now."""
        key = (kind, name, token)
        entry = self._live.get(key)
        if entry is None:
            return
        holding, timer = entry
        if timer is not None:
            timer.cancel()
        self._live[key] = (holding, self._timer(key, holding, expires_in))

    def released(self, kind: str, name: str, token: int) -> None:
        """Given back through this client: no lost signal."""
        self._forget((kind, name, token))

    def lose(self, kind: str, name: str, token: int, reason: BaseException) -> None:
        """The holding is gone: fires its lost signal."""
        entry = self._forget((kind, name, token))
        if entry is not None:
            self._fire(entry[0], reason)

    def lose_session(self, session_id: int, reason: BaseException) -> int:
        """Every holding of session `session_id` is gone; returns how many."""
        keys = [k for k, (h, _) in self._live.items() if h.session_id == session_id and session_id != 0]
        for k in keys:
            entry = self._forget(k)
            if entry is not None:
                self._fire(entry[0], reason)
        return len(keys)

    def _forget(self, key: tuple[str, str, int]) -> Optional[tuple[Any, Optional[asyncio.TimerHandle]]]:
        entry = self._live.pop(key, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()
        return entry

    def _timer(self, key: tuple[str, str, int], holding: Any, expires_in: Optional[float]) -> Optional[asyncio.TimerHandle]:
        if expires_in is None:
            return None

        def expire() -> None:
            if self._live.get(key, (None,))[0] is holding:
                self._live.pop(key, None)
                self._fire(holding, BatonError(f"the lease of {key[0]} {key[1]!r} (token {key[2]}) ran out unrefreshed"))

        return asyncio.get_running_loop().call_later(max(0.0, expires_in), expire)

    @staticmethod
    def _fire(holding: Any, reason: BaseException) -> None:
        if holding._signal.fire(reason):
            log.warning("baton: %s %r (token %d) lost: %s", type(holding).__name__, holding.name, holding.token, reason)

    def clear(self) -> None:
        for _, timer in self._live.values():
            if timer is not None:
                timer.cancel()
        self._live.clear()
