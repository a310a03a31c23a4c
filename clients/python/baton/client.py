"""Client: one connection and one session to a Baton server; the factory of
every primitive.

    client = await baton.connect("127.0.0.1:7411")
    ...
    await client.close()

    async with baton.Client("127.0.0.1:7411") as client:
        async with client.lock("billing/migrate") as held:
            ...

A Client owns a grpc.aio channel and a session (see session.py) that owns
whatever it acquires. It is used from one asyncio event loop; any number of
tasks may share it. close() ends the session, which releases everything it
still holds on the server.

Every blocking method takes `timeout` (seconds; None = as long as it takes;
0 = try once) and raises DeadlineExceededError (a TimeoutError) when it runs
out. asyncio.wait_for / asyncio.timeout / task.cancel() work too: they cancel
the wait on the server (see _rpc.py for how nothing leaks).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
from types import TracebackType
from typing import Any, Iterable, Literal, Optional, Sequence, Union, overload

import grpc

from . import admin as _admin
from . import tasks as _tasks
from . import timers as _timers
from ._rpc import Rpc
from .auth import TokenChannel, check_plaintext_token, resolve_token
from .barrier import Barrier
from .codec import RAW, Codec
from .condition import Condition
from .errors import ClientClosedError, SessionLostError, UnavailableError
from .event import Event
from .future import Future
from .lock import Lock
from .queue import Queue
from .semaphore import Semaphore
from .holding import Holdings
from .session import DEFAULT_SESSION_TTL, Backoff, KeepAliveSession, LostCallback, Session
from .stream import StreamSession
from .tasks import ALL_COMPLETED, Task, TaskGroup
from .timers import TimerHandle
from .tls import TLS
from .v1 import (
    admin_pb2,
    admin_pb2_grpc,
    barrier_pb2_grpc,
    condition_pb2_grpc,
    event_pb2_grpc,
    future_pb2_grpc,
    lock_pb2_grpc,
    queue_pb2_grpc,
    semaphore_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
    stream_pb2_grpc,
    task_pb2_grpc,
    timer_pb2_grpc,
)
from .worker import Worker

DEFAULT_TARGET = "127.0.0.1:7411"

log = logging.getLogger("baton")


def _retrieve_quietly(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("baton: opening a new session failed: %s", task.exception())

# gRPC keepalive pings detect a dead connection under a long wait; the server
# accepts a ping every 5 s (batond's --keepalive flags). A short reconnect
# backoff gets the session's keep-alive stream back well within its TTL.
# min_reconnect_backoff_ms is also gRPC core's connect timeout (a TCP +
# HTTP/2 handshake must finish within it), so it stays well above a loaded
# machine's handshake time; the first retry still comes after 100 ms.
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 5_000),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)


class Stubs:
    """The generated stubs of every Baton service over one channel, for
    calls the high-level API does not cover."""

    def __init__(self, channel: Union[grpc.aio.Channel, TokenChannel]) -> None:
        self.sessions = session_pb2_grpc.SessionsStub(channel)
        self.locks = lock_pb2_grpc.LocksStub(channel)
        self.semaphores = semaphore_pb2_grpc.SemaphoresStub(channel)
        self.events = event_pb2_grpc.EventsStub(channel)
        self.conditions = condition_pb2_grpc.ConditionsStub(channel)
        self.barriers = barrier_pb2_grpc.BarriersStub(channel)
        self.queues = queue_pb2_grpc.QueuesStub(channel)
        self.futures = future_pb2_grpc.FuturesStub(channel)
        self.tasks = task_pb2_grpc.TasksStub(channel)
        self.timers = timer_pb2_grpc.TimersStub(channel)
        self.admin = admin_pb2_grpc.AdminStub(channel)
        self.stream = stream_pb2_grpc.StreamStub(channel)


async def connect(target: str = DEFAULT_TARGET, **kwargs: Any) -> "Client":
    """Connects to the server at `target` ("host:port") and opens a session.
    Keyword arguments as for Client."""
    return await Client(target, **kwargs).connect()


class Client:
    """A connection to a Baton server with one session.

    target: "host:port" of the server.
    session_ttl: how long (s) the server keeps the session, and so what it
      holds, once this process stops keeping it alive (dies, or loses the
      connection for longer than that). 1 s to the server's maximum (1 h).
      Default 15 s (the same in every Baton client).
    label: shown by Sessions/Describe; default "python:<host>:<pid>".
    codec: how payloads of queues, futures and tasks are encoded (codec.py).
    rpc_timeout: gRPC deadline (s) of calls that do not wait (Release, Set...).
    probe_interval: how often (s) the keep-alive stream asks whether the
      session still exists; default ttl/3, clamped to 100 ms .. 5 s.
    on_session_lost: called (sync or async) with the SessionLostError each
      time the client's session is lost; the client then opens a new session
      for the operations that follow (see "the session" below).
    transport: "stream" (default): every operation travels on one session
      stream (baton.v1.Stream/Connect), whose answers are exactly-once even
      under cancellation; "unary": one gRPC call per operation, with the
      session kept alive by Sessions/KeepAliveStream (for servers without
      the session stream).
    tls: baton.TLS(ca_file=..., cert_file=..., key_file=..., server_name=...)
      for a server that serves TLS (and mutual TLS with cert_file/key_file);
      True: TLS verified against the system's roots. The files are read here:
      OSError naming a file that cannot be read, ValueError for a
      cert_file without key_file (or the reverse). See tls.py.
    credentials: grpc.ChannelCredentials, for TLS set up by hand; None and
      no `tls`: plaintext. Not together with `tls` (ValueError).
    channel_options: extra grpc channel arguments.
    token: a bearer token, sent as the metadata `authorization: Bearer
      <token>` with every call (unary calls and every stream). ValueError if
      it is empty or contains whitespace. See auth.py.
    token_file: a file holding the token (read here; surrounding whitespace
      stripped): OSError naming it if it cannot be read, ValueError naming it
      if it is empty. Not together with `token`.
    insecure_token: with a token and no TLS (`tls`, `credentials`),
      the target must be loopback (127.0.0.0/8, ::1, localhost, unix:),
      otherwise ValueError: the token would cross the network in clear.
      True allows it (a trusted network, batond --allow_plaintext).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        session_ttl: float = DEFAULT_SESSION_TTL,
        label: Optional[str] = None,
        codec: Codec = RAW,
        rpc_timeout: Optional[float] = 30.0,
        probe_interval: Optional[float] = None,
        transport: str = "stream",
        tls: Union[TLS, bool, None] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        token: Optional[str] = None,
        token_file: Union[str, "os.PathLike[str]", None] = None,
        insecure_token: bool = False,
        on_session_lost: Optional[LostCallback] = None,
    ) -> None:
        if transport not in ("stream", "unary"):
            raise ValueError('transport must be "stream" or "unary"')
        self._token = resolve_token(token, token_file)
        tls_settings = TLS.coerce(tls)
        tls_options: list[tuple[str, Any]] = []
        if tls_settings is not None:
            if credentials is not None:
                raise ValueError("give tls or credentials, not both (tls builds the credentials)")
            credentials = tls_settings.credentials()
            tls_options = tls_settings.channel_options()
        if self._token is not None:
            check_plaintext_token(target, secure=credentials is not None, allow=insecure_token)
        self.target = target
        self.transport = transport
        self.codec = codec
        self._session_ttl = session_ttl
        self._label = label if label is not None else f"python:{socket.gethostname()}:{os.getpid()}"
        self._probe_interval = probe_interval
        self._credentials = credentials
        self._channel_options = list(_CHANNEL_OPTIONS) + tls_options + list(channel_options)
        self._rpc_timeout = rpc_timeout
        self._channel: Optional[grpc.aio.Channel] = None
        self._stubs: Stubs
        self._rpc = Rpc(self._session_id_for_errors, self._lost, rpc_timeout, is_lost_session=self._is_lost_session)
        self._rpc.ready = self._ready_session
        self._session: Optional[Session] = None
        self._closed = False
        # Session loss (see the "the session" section below).
        self._lost_callbacks: list[LostCallback] = [on_session_lost] if on_session_lost is not None else []
        self._lost_sids: set[int] = set()
        self._replacing: Optional[asyncio.Task[Session]] = None
        self._loss_waiters: list[asyncio.Future[SessionLostError]] = []
        self._session_lost = asyncio.Event()
        #: How many sessions this client lost (each replaced by a new one).
        self.sessions_lost = 0
        #: The error of the last session loss, None if none was lost.
        self.last_session_loss: Optional[SessionLostError] = None
        # The live lock and semaphore holdings, for their lost signal.
        self._holdings = Holdings()
        # Lock tokens this client holds, by lock name (see Condition).
        self._lock_tokens: dict[str, set[int]] = {}
        # Condition waits in progress, by lock name (see Condition).
        self._cond_waits: dict[str, int] = {}

    def __repr__(self) -> str:
        sid = self._session.id if self._session else None
        return f"<baton.Client {self.target} session={sid}>"

    # ---- lifecycle -----------------------------------------------------

    async def connect(self) -> "Client":
        """Opens the channel and the session (Sessions/Open) and starts the
        keep-alive task. Returns self."""
        if self._channel is not None:
            return self
        if self._credentials is not None:
            self._channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._channel_options)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._channel_options)
        # With a token, every stub's calls carry it (auth.py).
        channel = self._channel if self._token is None else TokenChannel(self._channel, self._token)
        self._stubs = Stubs(channel)
        self._rpc.stubs = self._stubs
        try:
            await self._open_session()
        except BaseException:
            await self._channel.close()
            self._channel = None
            raise
        return self

    def _new_session(self) -> Session:
        if self.transport == "stream":
            return StreamSession(
                self._stubs.stream, self._rpc, ttl=self._session_ttl, label=self._label, probe_interval=self._probe_interval
            )
        return KeepAliveSession(
            self._stubs.sessions, self._rpc, ttl=self._session_ttl, label=self._label, probe_interval=self._probe_interval
        )

    async def _open_session(self) -> Session:
        """Opens a session and makes it the client's; raises what opening
        failed with."""
        session = self._new_session()
        await session.open()
        if self._closed:
            await session.close()
            raise ClientClosedError("the client was closed while its session was opened")
        session.add_lost_callback(lambda err, s=session: self._session_lost_cb(s, err))
        self._session = session
        self._rpc.stream = session if isinstance(session, StreamSession) else None
        return session

    async def close(self) -> None:
        """Waits briefly for background cleanups (rolled-back grants), ends
        the session (Sessions/Close: the server releases what it holds) and
        closes the channel. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._rpc.drain(timeout=5.0)
        if self._replacing is not None and not self._replacing.done():
            self._replacing.cancel()
            await asyncio.gather(self._replacing, return_exceptions=True)
        for w in self._loss_waiters:
            if not w.done():
                w.set_exception(ClientClosedError("the client was closed"))
        self._loss_waiters.clear()
        self._holdings.clear()
        if self._session is not None:
            await self._session.close()
        self._rpc.closed = True
        if self._channel is not None:
            await self._channel.close()

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    @property
    def stubs(self) -> Stubs:
        """The generated stubs of every service on this client's channel
        (unary calls; they do not go through the session stream)."""
        if self._channel is None:
            raise ClientClosedError("the client is not connected: await client.connect() first")
        return self._stubs

    # ---- the session ---------------------------------------------------

    @property
    def session(self) -> Session:
        if self._session is None:
            raise ClientClosedError("the client is not connected: await client.connect() first")
        return self._session

    @property
    def session_id(self) -> int:
        """The session's id, as other clients and Admin/Describe see it."""
        return self.session.id

    @property
    def session_lost(self) -> asyncio.Event:
        """Set once a session of this client was lost (and stays set; the
        client carries on with a new session: see sessions_lost,
        last_session_loss, wait_session_lost())."""
        return self._session_lost

    def on_session_lost(self, callback: LostCallback) -> None:
        """Calls `callback(SessionLostError)` (sync or async) each time the
        client's session is lost from now on (also: Client(on_session_lost=))."""
        self._lost_callbacks.append(callback)

    async def wait_session_lost(self) -> SessionLostError:
        """Waits for the next session loss and returns its error."""
        fut: asyncio.Future[SessionLostError] = asyncio.get_running_loop().create_future()
        self._loss_waiters.append(fut)
        try:
            return await fut
        finally:
            if fut in self._loss_waiters:
                self._loss_waiters.remove(fut)

    def _session_lost_cb(self, session: Session, err: SessionLostError) -> None:
        """A session of ours is lost: fire the lost signals of its holdings,
        report the loss, and open the next session (at once, in the
        background; operations wait for it)."""
        if self._closed:
            return
        self._lost_sids.add(session.id)
        self._holdings.lose_session(session.id, err)
        self._rpc.fail_pending(session.id, err)
        self.sessions_lost += 1
        self.last_session_loss = err
        self._session_lost.set()
        for w in self._loss_waiters:
            if not w.done():
                w.set_result(err)
        self._loss_waiters.clear()
        for cb in list(self._lost_callbacks):
            session._run_callback(cb, err)
        if self._replacing is None or self._replacing.done():
            self._replacing = asyncio.get_running_loop().create_task(self._replace(), name="baton-new-session")
            self._replacing.add_done_callback(_retrieve_quietly)
        # The old session may still exist on the server (lost by silence):
        # end it, so that what it held is released as its lost signals say.
        self._rpc.track(asyncio.ensure_future(self._close_lost(session)))

    async def _close_lost(self, session: Session) -> None:
        try:
            await session._stop()
            if session.id:
                req = session_pb2.CloseSessionRequest(session_id=session.id)
                await self._rpc.unary(self._stubs.sessions.Close, req)
        except Exception:
            pass  # NOT_FOUND: it is gone already; unreachable: it expires

    async def _replace(self) -> Session:
        """Opens the session that follows a lost one, retrying (Backoff)
        while the server cannot be reached."""
        backoff = Backoff()
        while True:
            try:
                session = await self._open_session()
            except UnavailableError as e:
                log.info("baton: opening a new session failed (%s); retrying", e)
                await asyncio.sleep(backoff.next())
                continue
            log.info("baton: session %d opened after the loss of the previous one", session.id)
            return session

    async def _ready_session(self) -> Session:
        """The client's live session, opening a new one first if it was lost
        (raises what opening failed with; the next call tries again)."""
        while True:
            if self._closed:
                raise ClientClosedError("the client is closed")
            s = self._session
            if s is None:
                raise ClientClosedError("the client is not connected: await client.connect() first")
            if s.lost_error is None:
                return s
            if self._replacing is None or self._replacing.done():
                self._replacing = asyncio.get_running_loop().create_task(self._replace(), name="baton-new-session")
                self._replacing.add_done_callback(_retrieve_quietly)
            # Bounded as a call is: the new session may take a while when the
            # server cannot be reached.
            done, _ = await asyncio.wait((self._replacing,), timeout=self._rpc_timeout)
            if not done:
                raise UnavailableError(
                    f"the session was lost and no new one could be opened within {self._rpc_timeout}s",
                    grpc.StatusCode.UNAVAILABLE,
                )
            self._replacing.result()

    async def _session_for_request(self) -> int:
        """The session id to put in a request (after opening a new session
        if the last one was lost)."""
        return (await self._ready_session()).id

    def _sid(self) -> int:
        """The session id for a request; raises SessionLostError /
        ClientClosedError when there is none to give."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        return self.session.check()

    def _session_id_for_errors(self) -> int:
        return self._session.id if self._session is not None else 0

    def _is_lost_session(self, session_id: int) -> bool:
        return session_id in self._lost_sids

    def _lost(self, err: SessionLostError) -> None:
        if self._session is not None:
            self._session.mark_lost(err)

    def _note_lock_token(self, name: str, token: int, *, held: bool) -> None:
        tokens = self._lock_tokens.setdefault(name, set())
        if held:
            tokens.add(token)
        else:
            tokens.discard(token)
            if not tokens:
                del self._lock_tokens[name]

    def _knows_lock_token(self, name: str, token: int) -> bool:
        return token in self._lock_tokens.get(name, ())

    async def describe_session(self, session_id: Optional[int] = None) -> session_pb2.DescribeSessionResponse:
        """Sessions/Describe of this client's session (or another's)."""
        return await self.session.describe(session_id)

    # ---- primitives ----------------------------------------------------

    def lock(self, name: str, *, ttl: Optional[float] = None, session: bool = True) -> Lock:
        """A Lock (asyncio.Lock). Owned by the session; with `ttl`, also by a
        lease of that many seconds; session=False: by the lease only."""
        return Lock(self, name, ttl=ttl, session=session)

    def semaphore(
        self, name: str, value: Optional[int] = None, *, ttl: Optional[float] = None, session: bool = True
    ) -> Semaphore:
        """A Semaphore (asyncio.BoundedSemaphore(value), weighted). `value`
        declares the capacity; None uses the declared one."""
        return Semaphore(self, name, value, ttl=ttl, session=session)

    def event(self, name: str) -> Event:
        """An Event (asyncio.Event)."""
        return Event(self, name)

    def condition(self, name: str = "", *, lock: Union[str, Lock, None] = None) -> Condition:
        """A Condition (asyncio.Condition(lock)): condition `name` under the
        lock `lock` (a name or a Lock; default: a lock named `name`)."""
        return Condition(self, name, lock=lock)

    def barrier(self, name: str, parties: int = 0) -> Barrier:
        """A Barrier (asyncio.Barrier(parties)); parties=0: as declared."""
        return Barrier(self, name, parties)

    def queue(
        self,
        name: str,
        maxsize: int = 0,
        *,
        order: Optional[str] = None,
        max_deliveries: int = 0,
        max_item_bytes: int = 0,
        visibility_timeout: Optional[float] = None,
        codec: Optional[Codec] = None,
    ) -> Queue:
        """A Queue: order "fifo" (asyncio.Queue), "lifo" (LifoQueue) or
        "priority" (PriorityQueue). Options left out: as declared by the
        first user. visibility_timeout: a lease on each got item, which
        returns to the queue if not acknowledged in time."""
        return Queue(
            self,
            name,
            maxsize,
            order=order,
            max_deliveries=max_deliveries,
            max_item_bytes=max_item_bytes,
            visibility_timeout=visibility_timeout,
            codec=codec,
        )

    def future(self, name: str, *, codec: Optional[Codec] = None) -> Future:
        """A Future (asyncio.Future), named."""
        return Future(self, name, codec=codec)

    # ---- tasks ---------------------------------------------------------

    async def create_task(
        self,
        queue: str,
        payload: Any = b"",
        *,
        delay: Optional[float] = None,
        at: Union[datetime.datetime, float, None] = None,
        max_attempts: int = 1,
        group: str = "",
        shielded: bool = False,
        run_timeout: Optional[float] = None,
        codec: Optional[Codec] = None,
    ) -> Task:
        """Tasks/Submit: a task for the workers of work queue `queue`.
        delay / at: pending only after that many seconds / from that time.
        max_attempts: attempts before it fails for good. group / shielded:
        see task_group. run_timeout: longest an attempt may run."""
        return await _tasks.create_task(
            self,
            queue,
            payload,
            delay=delay,
            at=at,
            max_attempts=max_attempts,
            group=group,
            shielded=shielded,
            run_timeout=run_timeout,
            codec=codec,
        )

    def task(self, task_id: str, *, codec: Optional[Codec] = None) -> Task:
        """The Task with this id (from another process, say)."""
        return Task(self, task_id, codec=codec)

    async def gather(self, *tasks: Task, return_exceptions: bool = False) -> list[Any]:
        """asyncio.gather for Tasks (Tasks/Wait)."""
        return await _tasks.gather(self, *tasks, return_exceptions=return_exceptions)

    async def wait(
        self, tasks: Iterable[Task], *, timeout: Optional[float] = None, return_when: str = ALL_COMPLETED
    ) -> tuple[set[Task], set[Task]]:
        """asyncio.wait for Tasks (Tasks/Wait): (done, pending)."""
        return await _tasks.wait(self, tasks, timeout=timeout, return_when=return_when)

    def task_group(self, queue: str, *, group: Optional[str] = None, codec: Optional[Codec] = None) -> TaskGroup:
        """asyncio.TaskGroup for Tasks of one work queue."""
        return TaskGroup(self, queue, group=group, codec=codec)

    def worker(
        self,
        queue: str,
        *,
        ttl: float = 30.0,
        concurrency: int = 1,
        heartbeat_interval: Optional[float] = None,
        codec: Optional[Codec] = None,
    ) -> Worker:
        """A Worker that takes and runs the tasks of `queue` (worker.py)."""
        return Worker(self, queue, ttl=ttl, concurrency=concurrency, heartbeat_interval=heartbeat_interval, codec=codec)

    # ---- timers --------------------------------------------------------

    async def call_later(
        self, delay: float, callback: Any, *args: Any, name: Optional[str] = None, replace: bool = False, **kwargs: Any
    ) -> TimerHandle:
        """loop.call_later on the server: performs `callback(*args)` (an
        action, see timers.py) in `delay` seconds."""
        action = _timers.to_action(self, callback, args, kwargs)
        return await _timers.schedule(self, action, after=delay, name=name, replace=replace)

    async def call_at(
        self,
        when: Union[datetime.datetime, float],
        callback: Any,
        *args: Any,
        name: Optional[str] = None,
        replace: bool = False,
        **kwargs: Any,
    ) -> TimerHandle:
        """loop.call_at on the server, at wall-clock time `when` (a datetime,
        naive = local time, or a POSIX timestamp; unlike asyncio, not the
        loop's monotonic clock, which other processes do not share)."""
        action = _timers.to_action(self, callback, args, kwargs)
        return await _timers.schedule(self, action, at=when, name=name, replace=replace)

    async def call_every(
        self,
        period: float,
        callback: Any,
        *args: Any,
        delay: Optional[float] = None,
        name: Optional[str] = None,
        replace: bool = False,
        **kwargs: Any,
    ) -> TimerHandle:
        """A periodic timer: performs `callback(*args)` every `period`
        seconds, first after `delay` (default: one period), until cancelled."""
        action = _timers.to_action(self, callback, args, kwargs)
        return await _timers.schedule(
            self, action, after=period if delay is None else delay, every=period, name=name, replace=replace
        )

    def timer(self, name: str) -> TimerHandle:
        """A handle on the timer `name` (to cancel or inspect it)."""
        return TimerHandle(self, name)

    # ---- admin ---------------------------------------------------------

    async def ls(self, prefix: str = "", *, kind: Optional[str] = None) -> list[_admin.ResourceSummary]:
        """Admin/List: the live resources under `prefix` (of one `kind`)."""
        return await _admin.ls(self, prefix, kind=kind)

    @overload
    async def describe(self, name: str, *, missing_ok: Literal[False] = False) -> admin_pb2.DescribeResponse: ...
    @overload
    async def describe(self, name: str, *, missing_ok: bool) -> Optional[admin_pb2.DescribeResponse]: ...
    async def describe(self, name: str, *, missing_ok: bool = False) -> Optional[admin_pb2.DescribeResponse]:
        """Admin/Describe of one resource (NotFoundError, or None with
        missing_ok, if it does not exist)."""
        return await _admin.describe(self, name, missing_ok=missing_ok)
