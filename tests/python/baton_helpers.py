"""Shared helpers for Baton's Python integration tests.

Importing this module generates the Python stubs for proto/baton/v1/*.proto and
proto/grpc/health/v1/health.proto into a temporary directory (removed at exit)
and makes them importable as `baton.v1.*_pb2` and `batontest_health.v1.health_pb2`.
Nothing generated is written into the source tree.

The health proto is generated under a different Python path because its natural
one, `grpc.health.v1`, would collide with the installed grpcio package `grpc`.
Its protobuf package (and so the service name /grpc.health.v1.Health) is
unchanged.

Also here: BatondProcess, which starts the server on 127.0.0.1 port 0 with a
data directory of its own and stops it with SIGTERM, and small helpers for
durations, status codes and polling.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.resources
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROTO_DIR = Path(os.environ.get("BATON_PROTO_DIR", REPO / "proto"))
DEFAULT_BATOND = REPO / "build" / "service" / "batond"


def batond_path() -> Path:
    return Path(os.environ.get("BATOND") or DEFAULT_BATOND)


# --------------------------------------------------------------------------
# Stub generation
# --------------------------------------------------------------------------


def _generate_stubs() -> Path:
    from grpc_tools import protoc

    gen = Path(tempfile.mkdtemp(prefix="baton-pytest-gen-"))
    atexit.register(shutil.rmtree, gen, ignore_errors=True)
    src = gen / "proto"
    out = gen / "py"
    out.mkdir()
    shutil.copytree(PROTO_DIR / "baton", src / "baton")
    health_dir = src / "batontest_health" / "v1"
    health_dir.mkdir(parents=True)
    shutil.copy(PROTO_DIR / "grpc" / "health" / "v1" / "health.proto", health_dir / "health.proto")

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{src}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed ({rc}) generating stubs from {PROTO_DIR}")
    sys.path.insert(0, str(out))
    return out


GEN_DIR = _generate_stubs()

from baton.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from baton.v1 import barrier_pb2, barrier_pb2_grpc  # noqa: E402
from baton.v1 import common_pb2  # noqa: E402
from baton.v1 import condition_pb2, condition_pb2_grpc  # noqa: E402
from baton.v1 import event_pb2, event_pb2_grpc  # noqa: E402
from baton.v1 import future_pb2, future_pb2_grpc  # noqa: E402
from baton.v1 import lock_pb2, lock_pb2_grpc  # noqa: E402
from baton.v1 import queue_pb2, queue_pb2_grpc  # noqa: E402
from baton.v1 import semaphore_pb2, semaphore_pb2_grpc  # noqa: E402
from baton.v1 import session_pb2, session_pb2_grpc  # noqa: E402
from batontest_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

SC = grpc.StatusCode

# --------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------


def names_own_data_dir(args: list[str]) -> bool:
    """True if batond flags `args` choose their own --data_dir or turn
    durability off (--durability=none): then no data directory is added."""
    for i, a in enumerate(args):
        if not a.startswith("-"):
            continue
        flag, eq, value = a.lstrip("-").partition("=")
        if not eq:  # "--flag value"
            value = args[i + 1] if i + 1 < len(args) else ""
        if flag == "data_dir" or (flag == "durability" and value == "none"):
            return True
    return False


class BatondProcess:
    """One batond process listening on 127.0.0.1 with a kernel-chosen port.

    Its state goes to `data_dir` if given (kept: a test can start another
    BatondProcess on the same directory to restart the server); else to a
    fresh temporary directory made by start() and deleted once the process
    has stopped (terminate() or kill()). Nothing is added when `extra_args`
    name their own --data_dir or say --durability=none."""

    STARTUP_TIMEOUT = 15.0
    SHUTDOWN_TIMEOUT = 10.0

    def __init__(
        self,
        extra_args: list[str] | None = None,
        data_dir: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
    ):
        self.path = batond_path()
        self.extra_args = extra_args or []
        self.env = env  # added to this process's environment for batond
        self.data_dir: Path | None = Path(data_dir) if data_dir is not None else None
        self._own_data_dir: Path | None = None  # made by start(), deleted after the process stops
        self.proc: subprocess.Popen | None = None
        self.addr: str | None = None
        self.stdout_lines: list[str] = []
        self._stderr_file = None
        self._reader: threading.Thread | None = None

    def start(self) -> str:
        if not self.path.is_file() or not os.access(self.path, os.X_OK):
            raise RuntimeError(
                f"batond not found or not executable at {self.path} (set BATOND or build it first)"
            )
        self._stderr_file = tempfile.TemporaryFile(mode="w+b")
        data_args: list[str] = []
        if self.data_dir is not None:
            data_args = ["--data_dir", str(self.data_dir)]
        elif not names_own_data_dir(self.extra_args):
            self._own_data_dir = Path(tempfile.mkdtemp(prefix="baton-pytest-data-"))
            data_args = ["--data_dir", str(self._own_data_dir)]
        try:
            self.proc = subprocess.Popen(
                [str(self.path), "--listen", "127.0.0.1:0", *data_args, *self.extra_args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr_file,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        except BaseException:
            self._remove_own_data_dir()
            raise
        first: list[str] = []
        got_line = threading.Event()

        def read_stdout() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self.stdout_lines.append(line)
                if not first:
                    first.append(line)
                    got_line.set()
            got_line.set()

        self._reader = threading.Thread(target=read_stdout, daemon=True)
        self._reader.start()
        if not got_line.wait(self.STARTUP_TIMEOUT) or not first:
            self.kill()
            raise RuntimeError(
                f"batond printed no 'listening on' line within {self.STARTUP_TIMEOUT}s; "
                f"exit={self.proc.poll()} stderr:\n{self.stderr_text()}"
            )
        line = first[0].strip()
        prefix = "listening on "
        if not line.startswith(prefix):
            self.kill()
            raise RuntimeError(f"unexpected first stdout line from batond: {line!r}")
        self.addr = line[len(prefix):].strip()
        host, _, port = self.addr.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit() or int(port) == 0:
            self.kill()
            raise RuntimeError(f"batond reported a bad address: {line!r}")
        return self.addr

    def stderr_text(self, limit: int = 20000) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.flush()
        self._stderr_file.seek(0)
        data = self._stderr_file.read()
        return data[-limit:].decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> int | None:
        """SIGTERM; returns the exit code, or None if it did not exit in time
        (the process is then killed)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(self.SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._remove_own_data_dir()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._remove_own_data_dir()

    def _remove_own_data_dir(self) -> None:
        """Deletes the data directory start() made (never one passed in),
        once the process has exited."""
        if self._own_data_dir is not None and (self.proc is None or self.proc.poll() is not None):
            shutil.rmtree(self._own_data_dir, ignore_errors=True)
            self._own_data_dir = None


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

DEFAULT_RPC_TIMEOUT = 20.0


class _DefaultDeadline(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Gives every call without an explicit deadline one, so a hung server
    fails a test instead of hanging the suite."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _details(self, d):
        if d.timeout is not None:
            return d
        return grpc.aio.ClientCallDetails(d.method, self.seconds, d.metadata, d.credentials, d.wait_for_ready)

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)

    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


class Client:
    """Stubs for every Baton service over one grpc.aio channel."""

    def __init__(self, addr: str, default_deadline: float | None = DEFAULT_RPC_TIMEOUT):
        interceptors = [_DefaultDeadline(default_deadline)] if default_deadline else None
        self.channel = grpc.aio.insecure_channel(addr, interceptors=interceptors)
        self.sessions = session_pb2_grpc.SessionsStub(self.channel)
        self.locks = lock_pb2_grpc.LocksStub(self.channel)
        self.semaphores = semaphore_pb2_grpc.SemaphoresStub(self.channel)
        self.events = event_pb2_grpc.EventsStub(self.channel)
        self.queues = queue_pb2_grpc.QueuesStub(self.channel)
        self.futures = future_pb2_grpc.FuturesStub(self.channel)
        self.barriers = barrier_pb2_grpc.BarriersStub(self.channel)
        self.conditions = condition_pb2_grpc.ConditionsStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def open_session(self, ttl_s: float = 60.0, label: str = "pytest") -> int:
        resp = await self.sessions.Open(session_pb2.OpenSessionRequest(ttl=dur(ttl_s), label=label))
        assert resp.session_id != 0
        return resp.session_id

    async def describe(self, name: str, timeout: float = 5.0):
        """Admin/Describe, or None when the resource does not exist."""
        try:
            return await self.admin.Describe(admin_pb2.DescribeRequest(name=name), timeout=timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == SC.NOT_FOUND:
                return None
            raise


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def dur(seconds: float) -> duration_pb2.Duration:
    """A Duration of `seconds` (may be negative)."""
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def ms(milliseconds: float) -> duration_pb2.Duration:
    return dur(milliseconds / 1000.0)


def to_s(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


async def expect_status(awaitable, code: grpc.StatusCode, *, need_message: bool = True) -> grpc.aio.AioRpcError:
    """Awaits a call that must fail with `code`; returns the error."""
    try:
        resp = await awaitable
    except grpc.aio.AioRpcError as e:
        assert e.code() == code, f"expected {code.name}, got {e.code().name}: {e.details()!r}"
        if need_message and code not in (SC.CANCELLED, SC.DEADLINE_EXCEEDED):
            assert e.details(), f"{code.name} without a message a person can act on"
        return e
    raise AssertionError(f"expected {code.name}, but the call succeeded: {resp!r}")


async def poll_until(predicate, timeout: float = 5.0, interval: float = 0.01, what: str = "condition"):
    """Calls async `predicate` until it returns a truthy value; returns it.
    Fails with the last value seen when `timeout` passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = await predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)


def is_idle(desc, capacity: int | None = None) -> bool:
    """True if a Describe result shows no holders and no waiters (or the
    resource is gone)."""
    if desc is None:
        return True
    if desc.holders or desc.waiters:
        return False
    if capacity is not None and desc.available != capacity:
        return False
    return True


def is_idle_declared(desc) -> bool:
    """True for a semaphore or a declared queue at rest: nothing held, queued,
    in flight, dead or waiting. Declarations last until deleted, so such a
    resource is not reclaimed on its own."""
    if desc is None or desc.holders or desc.waiters:
        return False
    if desc.kind == common_pb2.RESOURCE_KIND_SEMAPHORE:
        return desc.available == desc.capacity
    if desc.kind == common_pb2.RESOURCE_KIND_QUEUE:
        q = desc.queue
        return not (q.size or q.delayed or q.in_flight or q.dead_letters or q.unfinished or q.waiting_getters
                    or q.waiting_putters)
    return False


async def wait_until_reclaimed(client, name, timeout=5.0):
    """Waits until `name` is gone, or is a declaration at rest (a semaphore, a
    queue declared with options), which it then deletes and checks is gone:
    either way nothing was left held, queued or waiting."""
    last = None

    async def check():
        nonlocal last
        last = await client.describe(name)
        return last is None or is_idle_declared(last)

    try:
        await poll_until(check, timeout, what=f"{name} to be reclaimed")
    except AssertionError:
        raise AssertionError(f"idle resource {name} not reclaimed after {timeout}s: {fmt_desc(last)}") from None
    if last is None:
        return
    if last.kind == common_pb2.RESOURCE_KIND_SEMAPHORE:
        r = await client.semaphores.Delete(semaphore_pb2.DeleteSemaphoreRequest(name=name))
    else:
        r = await client.queues.Delete(queue_pb2.DeleteQueueRequest(name=name))
    assert r.deleted, f"Delete of idle {name} deleted nothing"
    assert await client.describe(name) is None, f"{name} still there after Delete"


def fmt_desc(desc) -> str:
    if desc is None:
        return "NOT_FOUND"
    from google.protobuf import text_format

    return text_format.MessageToString(desc, as_one_line=True)


# --------------------------------------------------------------------------
# Request builders (durations in seconds; None = field unset)
# --------------------------------------------------------------------------


def _set_durations(msg, **durations):
    for field, seconds in durations.items():
        if seconds is not None:
            getattr(msg, field).CopyFrom(seconds if isinstance(seconds, duration_pb2.Duration) else dur(seconds))
    return msg


def lock_req(name, sid=0, *, ttl=None, timeout=None, request_id=""):
    return _set_durations(
        lock_pb2.AcquireLockRequest(name=name, session_id=sid, request_id=request_id), ttl=ttl, timeout=timeout
    )


def lock_release(name, token, sid=0):
    return lock_pb2.ReleaseLockRequest(name=name, token=token, session_id=sid)


def sem_req(name, capacity, count=None, sid=0, *, ttl=None, timeout=None, request_id=""):
    r = semaphore_pb2.AcquireSemaphoreRequest(name=name, capacity=capacity, session_id=sid, request_id=request_id)
    if count is not None:
        r.count = count
    return _set_durations(r, ttl=ttl, timeout=timeout)


def sem_release(name, token, sid=0, count=None):
    r = semaphore_pb2.ReleaseSemaphoreRequest(name=name, token=token, session_id=sid)
    if count is not None:
        r.count = count
    return r


def event_wait(name, *, timeout=None, sid=0):
    return _set_durations(event_pb2.WaitEventRequest(name=name, session_id=sid), timeout=timeout)


def q_item(text=None, *, data=None, priority=0, delay=None):
    """A QueueItem: `text` (str) or `data` (bytes); delay in seconds."""
    it = queue_pb2.QueueItem(priority=priority)
    if text is not None:
        it.text = text
    if data is not None:
        it.data = data
    return _set_durations(it, delay=delay)


def q_options(order=0, maxsize=0, max_item_bytes=0, max_deliveries=0):
    return queue_pb2.QueueOptions(
        order=order, maxsize=maxsize, max_item_bytes=max_item_bytes, max_deliveries=max_deliveries
    )


def q_put(name, items, *, options=None, timeout=None):
    """Queues/Put; `items` are QueueItems or strings (their text)."""
    r = queue_pb2.PutRequest(name=name, items=[q_item(i) if isinstance(i, str) else i for i in items])
    if options is not None:
        r.options.CopyFrom(options)
    return _set_durations(r, timeout=timeout)


def q_get(name, sid=0, *, ttl=None, timeout=None, max_items=0, options=None, dead_letters=False):
    r = queue_pb2.GetRequest(name=name, session_id=sid, max_items=max_items, dead_letters=dead_letters)
    if options is not None:
        r.options.CopyFrom(options)
    return _set_durations(r, ttl=ttl, timeout=timeout)


def q_ack(name, receipts):
    return queue_pb2.AckRequest(name=name, receipts=list(receipts))


def q_nack(name, receipts, *, delay=None):
    return _set_durations(queue_pb2.NackRequest(name=name, receipts=list(receipts)), delay=delay)


# Enum shorthands.
IMMEDIATE = common_pb2.GRANT_OUTCOME_IMMEDIATE
AFTER_WAIT = common_pb2.GRANT_OUTCOME_AFTER_WAIT
REPLAYED = common_pb2.GRANT_OUTCOME_REPLAYED
KIND_LOCK = common_pb2.RESOURCE_KIND_LOCK
KIND_SEMAPHORE = common_pb2.RESOURCE_KIND_SEMAPHORE
KIND_EVENT = common_pb2.RESOURCE_KIND_EVENT
KIND_QUEUE = common_pb2.RESOURCE_KIND_QUEUE
KIND_FUTURE = common_pb2.RESOURCE_KIND_FUTURE
KIND_BARRIER = common_pb2.RESOURCE_KIND_BARRIER
Q_FIFO = queue_pb2.QUEUE_ORDER_FIFO
Q_LIFO = queue_pb2.QUEUE_ORDER_LIFO
Q_PRIORITY = queue_pb2.QUEUE_ORDER_PRIORITY
EV_SET = event_pb2.EVENT_STATE_SET
EV_CLEAR = event_pb2.EVENT_STATE_CLEAR


# --------------------------------------------------------------------------
# Crashing a server (test_crash.py)
# --------------------------------------------------------------------------

from baton.v1 import task_pb2, task_pb2_grpc  # noqa: E402
from baton.v1 import timer_pb2, timer_pb2_grpc  # noqa: E402


def with_task_timer_stubs(client: Client) -> Client:
    """Adds `tasks` and `timers` stubs to `client` (on its channel); returns it."""
    client.tasks = task_pb2_grpc.TasksStub(client.channel)
    client.timers = timer_pb2_grpc.TimersStub(client.channel)
    return client


def sigkill(server: BatondProcess) -> str:
    """Kills the process `server` started with SIGKILL (by its pid, nothing
    else), waits for it and returns its stderr; then closes the pipe and file
    that captured its output, so that a test can restart a server hundreds of
    times. A data directory passed in is kept."""
    assert server.proc is not None
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    text = server.stderr_text()
    if server._reader is not None:
        server._reader.join(2)
    if server.proc.stdout is not None:
        server.proc.stdout.close()
    if server._stderr_file is not None:
        server._stderr_file.close()
        server._stderr_file = None
    server._remove_own_data_dir()
    return text
