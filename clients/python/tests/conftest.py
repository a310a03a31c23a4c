"""Fixtures: a real batond for the whole run, clients, a TCP proxy to break
connections, and small helpers.

The server binary comes from $BATOND (default: build/service/batond of this
repository). It listens on 127.0.0.1 port 0; the port it prints is used. Its
state goes to a temporary data directory of its own, deleted once it stopped.

With BATON_TEST_SECURE=1 the run's batond serves TLS and checks bearer tokens
against a policy (secure.py: one principal `suite`, admin on every name), and
every client made by `connect` (or with `client_kwargs`) uses TLS and that
token. The TCP proxy passes the TLS bytes through unchanged.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator, Optional

import pytest

import baton
from helpers import TcpProxy
from secure import SECURE, Secure, suite_secure

REPO = Path(__file__).resolve().parents[3]
DEFAULT_BATOND = REPO / "build" / "service" / "batond"


def _die_with_parent() -> None:
    """In the child: SIGTERM when pytest dies, so that a killed test run
    leaves no server behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


# setpriv (util-linux) sets the same parent-death signal and execs batond
# under the same pid. Preferred to preexec_fn: Python code run in a child
# forked from this multithreaded process (gRPC's threads) is unsafe, and now
# and then the child died before exec with gRPC's "epoll_wait error: Bad
# file descriptor" (batond "did not start"); without preexec_fn, subprocess
# can vfork, where no fork handler runs.
_SETPRIV = shutil.which("setpriv")


def _spawn_prefix() -> tuple[list[str], dict[str, object]]:
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "TERM"], {}
    return [], {"preexec_fn": _die_with_parent}


def _names_own_data_dir(args: list[str]) -> bool:
    """True if batond flags `args` choose their own --data_dir or say
    --durability=none: then no data directory is added."""
    for i, a in enumerate(args):
        if not a.startswith("-"):
            continue
        flag, eq, value = a.lstrip("-").partition("=")
        if not eq:  # "--flag value"
            value = args[i + 1] if i + 1 < len(args) else ""
        if flag == "data_dir" or (flag == "durability" and value == "none"):
            return True
    return False


class Batond:
    """One batond process on 127.0.0.1 with a kernel-chosen port and, unless
    `args` name their own --data_dir or --durability=none, a fresh temporary
    data directory, deleted by stop() once the process has exited."""

    def __init__(self, *args: str) -> None:
        self.path = Path(os.environ.get("BATOND") or DEFAULT_BATOND)
        self.args = list(args)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.addr = ""
        self.data_dir: Optional[str] = None  # ours to delete
        self._stderr = tempfile.TemporaryFile()

    def start(self) -> str:
        if not os.access(self.path, os.X_OK):
            raise RuntimeError(f"batond not found at {self.path}: build it or set BATOND")
        data_args: list[str] = []
        if not _names_own_data_dir(self.args):
            self.data_dir = tempfile.mkdtemp(prefix="baton-client-test-data-")
            data_args = ["--data_dir", self.data_dir]
        prefix, spawn_kwargs = _spawn_prefix()
        try:
            self.proc = subprocess.Popen(
                [*prefix, str(self.path), "--listen", "127.0.0.1:0", *data_args, *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                **spawn_kwargs,  # type: ignore[arg-type]
            )
        except BaseException:
            self.stop()
            raise
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self.proc.stdout.readline().decode()), daemon=True  # type: ignore[union-attr]
        )
        reader.start()
        reader.join(15)
        if not line or not line[0].startswith("listening on "):
            self.stop()
            self._stderr.seek(0)
            raise RuntimeError(f"batond did not start: {line!r} {self._stderr.read()[-2000:]!r}")
        self.addr = line[0].split()[-1]
        return self.addr

    def stderr_tail(self, limit: int = 4000) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-limit:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


@pytest.fixture(scope="session")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Optional[Secure]:
    """The TLS + token setup of the run's batond under BATON_TEST_SECURE=1, else None."""
    return suite_secure(tmp_path_factory.mktemp("secure")) if SECURE else None


@pytest.fixture(scope="session")
def client_kwargs(secure: Optional[Secure]) -> dict[str, object]:
    """What a baton.Client of the run's batond needs besides its target:
    TLS and the token under BATON_TEST_SECURE=1, nothing otherwise."""
    return secure.client_kwargs() if secure is not None else {}


def pytest_report_header(config: pytest.Config) -> str:
    if SECURE:
        return "baton: BATON_TEST_SECURE=1: batond with TLS and a bearer token (principal suite, admin *)"
    return "baton: plaintext batond without tokens (BATON_TEST_SECURE=1 for TLS + token)"


@pytest.fixture(scope="session")
def server(secure: Optional[Secure]) -> Iterator[Batond]:
    s = Batond(*(secure.server_args() if secure is not None else ()))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def addr(server: Batond) -> str:
    return server.addr


@pytest.fixture(autouse=True)
def server_alive(server: Batond) -> Iterator[None]:
    """Fails the test during which the server died, with its last words."""
    yield
    assert server.proc is not None
    if server.proc.poll() is not None:
        pytest.fail(f"batond exited with {server.proc.returncode} during this test:\n{server.stderr_tail()}")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique resource names per test: name("lock") -> "test_x/lock/1a2b3c"."""

    def make(kind: str = "r") -> str:
        return f"{request.node.name[:60]}/{kind}/{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture(params=["stream", "unary"])
def transport(request: pytest.FixtureRequest) -> str:
    """Every test that uses a client runs over both transports."""
    return request.param


@pytest.fixture
async def connect(
    addr: str, transport: str, client_kwargs: dict[str, object]
) -> AsyncIterator[Callable[..., Awaitable[baton.Client]]]:
    """Factory of connected clients, closed after the test (with TLS and the
    token under BATON_TEST_SECURE=1, unless the caller gives its own)."""
    clients: list[baton.Client] = []

    async def make(target: Optional[str] = None, **kwargs: object) -> baton.Client:
        kwargs.setdefault("transport", transport)
        for k, v in client_kwargs.items():
            kwargs.setdefault(k, v)
        c = await baton.connect(target or addr, **kwargs)  # type: ignore[arg-type]
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def client(connect: Callable[..., Awaitable[baton.Client]]) -> baton.Client:
    return await connect()


@pytest.fixture
async def admin(connect: Callable[..., Awaitable[baton.Client]]) -> baton.Client:
    """A second client, for looking at things from outside."""
    return await connect(label="pytest-admin")


@pytest.fixture
async def proxy(addr: str) -> AsyncIterator[TcpProxy]:
    p = TcpProxy(addr)
    await p.start()
    yield p
    await p.close()
