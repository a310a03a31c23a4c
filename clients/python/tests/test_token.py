"""Bearer tokens (Client(token=..., token_file=...)): the `authorization:
Bearer <token>` metadata on unary calls and on every kind of stream, the
refusal to send a token in clear to a non-loopback target, and the errors of
token and token_file.

The metadata is checked on an in-process fake gRPC server on 127.0.0.1 port 0
that records the authorization header of every call it gets and answers just
enough of the protocol (Stream/Connect's welcome, Sessions/Open,
KeepAliveStream, Close, Admin/ServerInfo, Events/Watch) for a Client to
connect. A handler records the header before it answers, so once the client
has its answer the record is there: no sleeping, no polling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Optional

import grpc
import pytest
from google.protobuf import duration_pb2

import baton
from baton.auth import is_loopback_target
from baton.v1 import admin_pb2, event_pb2, session_pb2, stream_pb2
from conftest import Batond
from secure import SECURE

TOKEN = "tok-3f9a.B_c~d+e/f="
# Bound on every wait, so that a broken test fails instead of hanging.
WITHIN = 10.0


class FakeBatond:
    """A grpc.aio server on 127.0.0.1:0 that records (method, authorization
    header or None) of each call."""

    def __init__(self) -> None:
        self.server: Optional[grpc.aio.Server] = None
        self.addr = ""
        self.calls: list[tuple[str, Optional[str]]] = []

    def _record(self, method: str, context: Any) -> None:
        auth = [v for k, v in (context.invocation_metadata() or ()) if k == "authorization"]
        self.calls.append((method, auth[0] if len(auth) == 1 else (repr(auth) if auth else None)))

    def auth_of(self, method: str) -> list[Optional[str]]:
        return [a for m, a in self.calls if m == method]

    async def start(self) -> str:
        ttl = duration_pb2.Duration(seconds=30)

        async def connect(requests: Any, context: Any) -> AsyncIterator[stream_pb2.StreamResponse]:
            self._record("Stream/Connect", context)
            async for _ in requests:  # the hello; later ones are ignored
                yield stream_pb2.StreamResponse(welcome=stream_pb2.StreamWelcome(session_id=7, ttl=ttl))
                break
            async for _ in requests:
                pass

        async def open_session(req: Any, context: Any) -> session_pb2.OpenSessionResponse:
            self._record("Sessions/Open", context)
            return session_pb2.OpenSessionResponse(session_id=8, ttl=ttl)

        async def keep_alive_stream(requests: Any, context: Any) -> AsyncIterator[session_pb2.KeepAliveResponse]:
            self._record("Sessions/KeepAliveStream", context)
            async for req in requests:
                yield session_pb2.KeepAliveResponse(
                    session_id=req.session_id, state=session_pb2.SESSION_STATE_ALIVE, expires_in=ttl
                )

        async def close_session(req: Any, context: Any) -> session_pb2.CloseSessionResponse:
            self._record("Sessions/Close", context)
            return session_pb2.CloseSessionResponse()

        async def server_info(req: Any, context: Any) -> admin_pb2.ServerInfoResponse:
            self._record("Admin/ServerInfo", context)
            return admin_pb2.ServerInfoResponse(version="fake")

        async def watch(req: Any, context: Any) -> AsyncIterator[event_pb2.EventChange]:
            self._record("Events/Watch", context)
            yield event_pb2.EventChange(state=event_pb2.EVENT_STATE_SET, sequence=1)

        def h(kind: Callable[..., Any], fn: Any, req: Any, resp: Any) -> Any:
            return kind(fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

        handlers = [
            grpc.method_handlers_generic_handler(
                "baton.v1.Stream",
                {
                    "Connect": h(
                        grpc.stream_stream_rpc_method_handler,
                        connect,
                        stream_pb2.StreamRequest,
                        stream_pb2.StreamResponse,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "baton.v1.Sessions",
                {
                    "Open": h(
                        grpc.unary_unary_rpc_method_handler,
                        open_session,
                        session_pb2.OpenSessionRequest,
                        session_pb2.OpenSessionResponse,
                    ),
                    "KeepAliveStream": h(
                        grpc.stream_stream_rpc_method_handler,
                        keep_alive_stream,
                        session_pb2.KeepAliveRequest,
                        session_pb2.KeepAliveResponse,
                    ),
                    "Close": h(
                        grpc.unary_unary_rpc_method_handler,
                        close_session,
                        session_pb2.CloseSessionRequest,
                        session_pb2.CloseSessionResponse,
                    ),
                },
            ),
            grpc.method_handlers_generic_handler(
                "baton.v1.Admin",
                {
                    "ServerInfo": h(
                        grpc.unary_unary_rpc_method_handler,
                        server_info,
                        admin_pb2.ServerInfoRequest,
                        admin_pb2.ServerInfoResponse,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "baton.v1.Events",
                {
                    "Watch": h(
                        grpc.unary_stream_rpc_method_handler, watch, event_pb2.WatchEventRequest, event_pb2.EventChange
                    )
                },
            ),
        ]
        self.server = grpc.aio.server(handlers=handlers)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.addr = f"127.0.0.1:{port}"
        return self.addr

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBatond]:
    f = FakeBatond()
    await f.start()
    yield f
    await f.stop()


async def _unary_and_server_stream(client: baton.Client) -> None:
    """Admin/ServerInfo (unary) and Events/Watch (server stream) on the raw stubs."""
    info = await asyncio.wait_for(client.stubs.admin.ServerInfo(admin_pb2.ServerInfoRequest()), WITHIN)
    assert info.version == "fake"
    call = client.stubs.events.Watch(event_pb2.WatchEventRequest(name="e"))
    first = await asyncio.wait_for(call.read(), WITHIN)
    assert first.sequence == 1
    call.cancel()


async def test_token_on_session_stream_unary_and_server_stream(fake: FakeBatond) -> None:
    client = baton.Client(fake.addr, token=TOKEN, transport="stream", probe_interval=60)
    await asyncio.wait_for(client.connect(), WITHIN)  # the welcome on Stream/Connect
    try:
        assert fake.auth_of("Stream/Connect") == [f"Bearer {TOKEN}"]
        await _unary_and_server_stream(client)
        assert fake.auth_of("Admin/ServerInfo") == [f"Bearer {TOKEN}"]
        assert fake.auth_of("Events/Watch") == [f"Bearer {TOKEN}"]
    finally:
        await asyncio.wait_for(client.close(), WITHIN)
    assert fake.auth_of("Sessions/Close") == [f"Bearer {TOKEN}"]


async def test_token_on_keepalive_stream_and_unary_transport(fake: FakeBatond) -> None:
    client = baton.Client(fake.addr, token=TOKEN, transport="unary", probe_interval=60)
    await asyncio.wait_for(client.connect(), WITHIN)  # Sessions/Open
    try:
        # Set once the first keep-alive answer came back on KeepAliveStream.
        await asyncio.wait_for(client.session.attached.wait(), WITHIN)
        assert fake.auth_of("Sessions/Open") == [f"Bearer {TOKEN}"]
        assert fake.auth_of("Sessions/KeepAliveStream") == [f"Bearer {TOKEN}"]
        await _unary_and_server_stream(client)
        assert fake.auth_of("Admin/ServerInfo") == [f"Bearer {TOKEN}"]
        assert fake.auth_of("Events/Watch") == [f"Bearer {TOKEN}"]
    finally:
        await asyncio.wait_for(client.close(), WITHIN)
    assert fake.auth_of("Sessions/Close") == [f"Bearer {TOKEN}"]


async def test_no_token_sends_no_authorization(fake: FakeBatond) -> None:
    async with baton.Client(fake.addr, probe_interval=60) as client:
        await _unary_and_server_stream(client)
    assert fake.calls and all(auth is None for _, auth in fake.calls), fake.calls


async def test_token_file_is_read_and_stripped(fake: FakeBatond, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"\n  {TOKEN}\r\n")
    async with baton.Client(fake.addr, token_file=str(path), probe_interval=60) as client:
        await _unary_and_server_stream(client)
    assert fake.auth_of("Admin/ServerInfo") == [f"Bearer {TOKEN}"]
    assert fake.auth_of("Stream/Connect") == [f"Bearer {TOKEN}"]


async def test_explicit_authorization_metadata_is_not_doubled(fake: FakeBatond) -> None:
    async with baton.Client(fake.addr, token=TOKEN, probe_interval=60) as client:
        await client.stubs.admin.ServerInfo(admin_pb2.ServerInfoRequest(), metadata=(("x-other", "1"),))
        await client.stubs.admin.ServerInfo(
            admin_pb2.ServerInfoRequest(), metadata=(("authorization", "Bearer other"),)
        )
    assert fake.auth_of("Admin/ServerInfo") == [f"Bearer {TOKEN}", "Bearer other"]


# ---- token errors ----------------------------------------------------------


def test_token_file_missing_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no-such-token"
    with pytest.raises(FileNotFoundError, match="no-such-token"):
        baton.Client("127.0.0.1:1", token_file=str(path))


def test_token_file_unreadable_names_the_file(tmp_path: Path) -> None:
    # A directory cannot be read as a file, whoever runs the test (root too).
    with pytest.raises(OSError, match=str(tmp_path.name)):
        baton.Client("127.0.0.1:1", token_file=str(tmp_path))


@pytest.mark.parametrize("content", ["", "\n", "  \t\r\n"])
def test_token_file_empty_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty-token"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"token_file .*empty-token.* is empty"):
        baton.Client("127.0.0.1:1", token_file=str(path))


def test_token_file_with_inner_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "two-words"
    path.write_text("secret1 secret2\n")
    with pytest.raises(ValueError, match="two-words.*whitespace") as e:
        baton.Client("127.0.0.1:1", token_file=str(path))
    assert "secret1" not in str(e.value)


@pytest.mark.parametrize("token", ["", "a b", "ab\n", "\tab", "a\u00a0b", "caf\u00e9", "a\x00b"])
def test_bad_tokens_are_rejected(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        baton.Client("127.0.0.1:1", token=token)


def test_token_and_token_file_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        baton.Client("127.0.0.1:1", token=TOKEN, token_file=str(tmp_path / "t"))


# ---- never in clear to another machine --------------------------------------

NOT_LOOPBACK = [
    "10.0.0.5:7411",
    "batond.example.com:7411",
    "dns:///batond.example.com:7411",
    "dns://8.8.8.8/batond.example.com:7411",
    "[2001:db8::1]:7411",
    "0.0.0.0:7411",
    "localhost.example.com:7411",
    "ipv4:127.0.0.1:7411,10.0.0.1:7411",
]
LOOPBACK = [
    "127.0.0.1:7411",
    "127.3.2.1:7411",
    "localhost:7411",
    "LOCALHOST:7411",
    "[::1]:7411",
    "::1",
    "unix:/tmp/batond.sock",
    "unix:///tmp/batond.sock",
    "unix-abstract:batond",
    "dns:///localhost:7411",
    "dns:127.0.0.1:7411",
    "ipv4:127.0.0.1:7411,127.0.0.2:7411",
    "ipv6:[::1]:7411",
]


@pytest.mark.parametrize("target", NOT_LOOPBACK)
def test_plaintext_token_to_non_loopback_is_refused(target: str) -> None:
    assert not is_loopback_target(target)
    with pytest.raises(ValueError, match="refusing to send the token in clear") as e:
        baton.Client(target, token=TOKEN)
    assert TOKEN not in str(e.value)
    # Without a token, plaintext is the caller's (and the server's) business.
    baton.Client(target)


@pytest.mark.parametrize("target", LOOPBACK)
def test_plaintext_token_to_loopback_is_allowed(target: str) -> None:
    assert is_loopback_target(target)
    baton.Client(target, token=TOKEN)


def test_plaintext_token_opt_out_and_tls() -> None:
    baton.Client("10.0.0.5:7411", token=TOKEN, insecure_token=True)
    baton.Client("10.0.0.5:7411", token=TOKEN, tls=True)
    baton.Client("10.0.0.5:7411", token=TOKEN, credentials=grpc.ssl_channel_credentials())


# ---- against the real batond --------------------------------------------------


@pytest.fixture(scope="module")
def plain_addr(addr: str) -> Iterator[str]:
    """A batond without token checks: the run's, or under BATON_TEST_SECURE=1
    (where the run's checks tokens) one of this module's, plaintext."""
    if not SECURE:
        yield addr
        return
    s = Batond("--durability", "none")
    s.start()
    try:
        yield s.addr
    finally:
        s.stop()


async def test_token_with_real_batond(plain_addr: str, transport: str, name: Callable[[str], str]) -> None:
    """A client with a token works end to end (a batond without token
    checking ignores the header): the session, a lock, an event watch."""
    async with baton.Client(plain_addr, token=TOKEN, transport=transport) as client:
        async with client.lock(name("lock")) as held:
            assert held.fence > 0
        ev = client.event(name("event"))
        await ev.set()
        async for is_set in ev.watch():
            assert is_set
            break
