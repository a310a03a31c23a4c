"""Barrier: asyncio.Barrier shared between processes (baton.v1.Barriers).

    b = client.barrier("shards/checkpoint", parties=3)
    index = await b.wait()       # 0 .. parties-1, as asyncio's
    await b.abort()              # breaks it: waiters get BrokenBarrierError
    await b.reset()              # empty and unbroken again

As in asyncio, a waiter that times out or is cancelled breaks the barrier for
everyone (BrokenBarrierError, also asyncio.BrokenBarrierError) until reset().
`parties` is fixed by the first wait; `client.barrier(name)` without it uses
the declared number.

RPCs: wait -> Barriers/Wait, abort -> Barriers/Abort, reset ->
Barriers/Reset, state -> Admin/Describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ._rpc import set_duration
from .errors import AbortedError, BrokenBarrierError, SessionLostError
from .v1 import barrier_pb2

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class BarrierState:
    """What Admin/Describe tells of a barrier."""

    parties: int
    n_waiting: int
    broken: bool
    cycles: int


class Barrier:
    """A named Baton barrier. Create with `client.barrier(name, parties)`."""

    def __init__(self, client: "Client", name: str, parties: int = 0) -> None:
        if parties < 0:
            raise ValueError("parties must be positive")
        self._client = client
        self.name = name
        self.parties = parties
        #: The cycle (trip count, from 1) of the last successful wait().
        self.last_cycle = 0

    def __repr__(self) -> str:
        return f"<baton.Barrier {self.name!r} parties={self.parties}>"

    async def wait(self, timeout: Optional[float] = None) -> int:
        """Barriers/Wait: arrives and waits for the other parties; returns this
        caller's arrival index. Raises BrokenBarrierError if the barrier is or
        becomes broken, DeadlineExceededError after `timeout` (which breaks
        the barrier, as in asyncio)."""
        req = barrier_pb2.BarrierWaitRequest(name=self.name, parties=self.parties, session_id=await self._client._session_for_request())
        set_duration(req, "timeout", timeout)
        try:
            resp = await self._client._rpc.call("barriers.Wait", req, blocking=True)
        except SessionLostError:
            raise
        except AbortedError as e:
            raise BrokenBarrierError(e.details, e.code) from None
        self.last_cycle = resp.cycle
        return resp.index

    async def abort(self) -> int:
        """Barriers/Abort: breaks the barrier; returns the waiters it ended."""
        resp = await self._client._rpc.call("barriers.Abort", barrier_pb2.BarrierAbortRequest(name=self.name)
        )
        return resp.aborted

    async def reset(self) -> int:
        """Barriers/Reset: back to empty and unbroken; current waiters get
        BrokenBarrierError. Returns how many."""
        resp = await self._client._rpc.call("barriers.Reset", barrier_pb2.BarrierResetRequest(name=self.name)
        )
        return resp.aborted

    async def state(self) -> BarrierState:
        """Admin/Describe: parties, waiting now, broken, trips so far. A
        barrier nobody uses does not exist: then (parties, 0, False, 0)."""
        desc = await self._client.describe(self.name, missing_ok=True)
        if desc is None:
            return BarrierState(self.parties, 0, False, 0)
        b = desc.barrier
        return BarrierState(b.parties, b.arrived, b.broken, b.cycles)

    async def n_waiting(self) -> int:
        return (await self.state()).n_waiting

    async def broken(self) -> bool:
        return (await self.state()).broken
