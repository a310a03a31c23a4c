"""Baton for asyncio: asyncio's primitives shared between processes over gRPC.

    import baton

    async with baton.Client("127.0.0.1:7411") as client:
        async with client.lock("billing/migrate") as held:
            print(held.fence)

See README.md for the whole API and which RPC each call makes.
"""

from .admin import ResourceSummary
from .barrier import Barrier, BarrierState
from .client import DEFAULT_TARGET, Client, Stubs, connect
from .codec import JSON, RAW, TEXT, Codec
from .condition import Condition
from .errors import (
    AbortedError,
    BatonError,
    BrokenBarrierError,
    ClientClosedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    NotHeldError,
    PermissionDeniedError,
    QueueEmpty,
    QueueFull,
    RemoteCancelledError,
    RemoteError,
    ResourceExhaustedError,
    RpcCancelledError,
    SessionLostError,
    UnauthenticatedError,
    UnavailableError,
)
from .event import Event
from .future import Future, FutureOutcome
from .lock import Lock, LockHolding
from .queue import Consumer, Item, Queue, QueueInfo
from .semaphore import Semaphore, SemaphoreHolding
from .session import KeepAliveSession, Session
from .stream import StreamSession
from .tasks import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Task, TaskGroup, TaskOutcome
from .timers import ClearEvent, PutItem, SetEvent, SetFuture, SubmitTask, TimerHandle, TimerInfo
from .tls import TLS
from .worker import Job, Worker

__version__ = "0.1.0"

__all__ = [
    "ALL_COMPLETED",
    "DEFAULT_TARGET",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "JSON",
    "RAW",
    "TEXT",
    "TLS",
    "AbortedError",
    "Barrier",
    "BarrierState",
    "BatonError",
    "BrokenBarrierError",
    "ClearEvent",
    "Client",
    "ClientClosedError",
    "Codec",
    "Condition",
    "Consumer",
    "DeadlineExceededError",
    "Event",
    "FailedPreconditionError",
    "Future",
    "FutureOutcome",
    "InvalidArgumentError",
    "InvalidStateError",
    "Item",
    "Job",
    "Lock",
    "LockHolding",
    "NotFoundError",
    "NotHeldError",
    "PermissionDeniedError",
    "PutItem",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueInfo",
    "RemoteCancelledError",
    "RemoteError",
    "ResourceExhaustedError",
    "ResourceSummary",
    "RpcCancelledError",
    "Semaphore",
    "SemaphoreHolding",
    "Session",
    "KeepAliveSession",
    "StreamSession",
    "SessionLostError",
    "SetEvent",
    "SetFuture",
    "Stubs",
    "SubmitTask",
    "Task",
    "TaskGroup",
    "TaskOutcome",
    "TimerHandle",
    "TimerInfo",
    "UnauthenticatedError",
    "UnavailableError",
    "Worker",
    "connect",
]
