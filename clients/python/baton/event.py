"""Event: asyncio.Event shared between processes (baton.v1.Events).

    ev = client.event("cache-warm")
    await ev.wait()          # until someone sets it
    await ev.set()
    await ev.clear()
    if await ev.is_set(): ...
    async for is_set in ev.watch(): ...

is_set() is a coroutine here (it asks the server). wait() takes the client's
session, so it ends with SessionLostError if the session ends meanwhile.

RPCs: set -> Events/Set, clear -> Events/Clear, wait and is_set ->
Events/Wait (is_set with a zero timeout), watch -> Events/Watch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Optional

import grpc

from ._rpc import set_duration
from .errors import DeadlineExceededError
from .v1 import event_pb2

if TYPE_CHECKING:
    from .client import Client


class Event:
    """A named Baton event. Create with `client.event(name)`."""

    def __init__(self, client: "Client", name: str) -> None:
        self._client = client
        self.name = name

    def __repr__(self) -> str:
        return f"<baton.Event {self.name!r}>"

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Events/Wait: returns True once the event is set. Raises
        DeadlineExceededError if `timeout` seconds pass first."""
        req = event_pb2.WaitEventRequest(name=self.name, session_id=await self._client._session_for_request())
        set_duration(req, "timeout", timeout)
        await self._client._rpc.call("events.Wait", req, blocking=True)
        return True

    async def set(self) -> int:
        """Events/Set: sets the flag and wakes every waiter; returns how many."""
        resp = await self._client._rpc.call("events.Set", event_pb2.SetEventRequest(name=self.name))
        return resp.woken

    async def clear(self) -> None:
        """Events/Clear."""
        await self._client._rpc.call("events.Clear", event_pb2.ClearEventRequest(name=self.name))

    async def is_set(self) -> bool:
        """Whether the flag is set now (Events/Wait with a zero timeout)."""
        try:
            return await self.wait(timeout=0)
        except DeadlineExceededError:
            return False

    async def watch(self) -> AsyncIterator[bool]:
        """Events/Watch: yields the current state (True = set), then every
        change, until the loop is left. A slow reader sees the latest state
        rather than every intermediate change."""
        call = self._client._stubs.events.Watch(event_pb2.WatchEventRequest(name=self.name))
        try:
            while True:
                try:
                    change = await call.read()
                except grpc.RpcError as e:
                    raise self._client._rpc.error(e) from None
                if change is grpc.aio.EOF:
                    return
                yield change.state == event_pb2.EVENT_STATE_SET
        finally:
            call.cancel()
