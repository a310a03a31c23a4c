"""Helpers shared by the tests: a TCP proxy that breaks connections, polling."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Optional, Union

import baton


class TcpProxy:
    """A TCP proxy in front of the server, to break connections on purpose.

    drop() closes every open connection (both sides see a reset);
    blackout(True) also refuses new connections until blackout(False)."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.server: Optional[asyncio.base_events.Server] = None
        self.addr = ""
        self.refusing = False
        self.connections: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.addr = f"127.0.0.1:{port}"
        return self.addr

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.connections.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self.connections.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> int:
        n = len(self.connections)
        for w in list(self.connections):
            transport = w.transport
            transport.abort()
        self.connections.clear()
        return n

    def blackout(self, on: bool) -> None:
        self.refusing = on
        if on:
            self.drop()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def eventually(
    predicate: Callable[[], Awaitable[object]],
    timeout: float = 5.0,
    what: Union[str, Callable[[], str]] = "condition",
) -> object:
    """Polls async `predicate` until truthy; fails after `timeout` seconds.
    `what` names the condition in the failure; pass a callable to describe
    the state at the time of the failure rather than at the call."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.02)
    described = what() if callable(what) else what
    raise AssertionError(f"timed out waiting for {described}; last: {last!r}")


async def idle(client: baton.Client, name: str) -> bool:
    """True when the resource has no holders and no waiters (or is gone)."""
    d = await client.describe(name, missing_ok=True)
    return d is None or (not d.holders and d.waiters == 0)
