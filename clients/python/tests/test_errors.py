"""The status-to-exception table (no server needed)."""

import asyncio

import grpc
import pytest

import baton
from baton.errors import from_code, from_status, session_in_error

SC = grpc.StatusCode


@pytest.mark.parametrize(
    "code, cls, builtin",
    [
        (SC.INVALID_ARGUMENT, baton.InvalidArgumentError, ValueError),
        (SC.NOT_FOUND, baton.NotFoundError, LookupError),
        (SC.FAILED_PRECONDITION, baton.FailedPreconditionError, baton.BatonError),
        (SC.DEADLINE_EXCEEDED, baton.DeadlineExceededError, TimeoutError),
        (SC.ABORTED, baton.AbortedError, baton.BatonError),
        (SC.RESOURCE_EXHAUSTED, baton.ResourceExhaustedError, baton.BatonError),
        (SC.UNAVAILABLE, baton.UnavailableError, ConnectionError),
        (SC.CANCELLED, baton.RpcCancelledError, baton.BatonError),
        (SC.UNAUTHENTICATED, baton.UnauthenticatedError, baton.BatonError),
        (SC.PERMISSION_DENIED, baton.PermissionDeniedError, baton.BatonError),
        (SC.INTERNAL, baton.BatonError, Exception),
    ],
)
def test_status_maps_to_class(code, cls, builtin):
    err = from_status(code, "details")
    assert type(err) is cls and isinstance(err, builtin) and err.code == code
    assert str(err) == f"{code.name}: details"


def test_deadline_is_asyncio_timeout():
    assert isinstance(from_status(SC.DEADLINE_EXCEEDED, "x"), asyncio.TimeoutError)


def test_numeric_codes_of_the_session_stream():
    assert type(from_code(4, "late")) is baton.DeadlineExceededError
    assert type(from_code(999, "?")) is baton.BatonError
    assert type(from_code(7, "denied")) is baton.PermissionDeniedError
    assert type(from_code(16, "who?")) is baton.UnauthenticatedError


def test_own_session_gone_is_session_lost():
    msg = "session 17 not found: it was closed, it expired, or it was never opened"
    assert type(from_status(SC.NOT_FOUND, msg, session_id=17)) is baton.SessionLostError
    assert type(from_status(SC.ABORTED, "session 17 ended while waiting", session_id=17)) is baton.SessionLostError
    # Another session's, or no session: as usual.
    assert type(from_status(SC.NOT_FOUND, msg, session_id=18)) is baton.NotFoundError
    assert session_in_error("queue 'x' was deleted") is None


def test_asyncio_flavoured_classes():
    assert issubclass(baton.QueueEmpty, asyncio.QueueEmpty)
    assert issubclass(baton.QueueFull, asyncio.QueueFull)
    assert issubclass(baton.InvalidStateError, asyncio.InvalidStateError)
    assert issubclass(baton.BrokenBarrierError, asyncio.BrokenBarrierError)
    assert issubclass(baton.NotHeldError, RuntimeError)
    assert not issubclass(baton.RemoteCancelledError, asyncio.CancelledError)


def test_codecs():
    assert baton.RAW.encode("t") == (None, "t") and baton.RAW.encode(b"b") == (b"b", None)
    assert baton.TEXT.decode(b"caf\xc3\xa9") == "café"
    assert baton.JSON.encode({"a": 1}) == (None, '{"a":1}') and baton.JSON.decode(b"") is None
    with pytest.raises(TypeError):
        baton.RAW.encode(42)
