"""Bearer tokens: how a Client tells the server who it is.

    baton.Client("10.0.0.5:7411", tls=baton.TLS(ca_file="ca.pem"), token_file="/run/secrets/baton")
    baton.Client("127.0.0.1:7411", token="s3cr3t")

Every call the client makes (unary calls, the session stream Stream/Connect,
Sessions/KeepAliveStream, server streams such as Events/Watch, and the raw
`client.stubs`) carries the gRPC metadata `authorization: Bearer <token>`.

The token is added per call, by wrapping the channel's multicallables, rather
than by grpc.aio interceptors (an intercepted call is another object, which
would defeat _rpc.cancel_in_core) or by grpc.metadata_call_credentials (which
gRPC attaches on secure channels only).

A token is never sent in clear to another machine: with a token and no TLS
(no `tls`, no `credentials`), the target must be loopback (127.0.0.0/8, ::1,
localhost, unix:) or the Client raises ValueError, unless
insecure_token=True says the network is trusted (the counterpart of
batond --allow_plaintext).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Optional, Union

__all__ = ["resolve_token", "is_loopback_target", "check_plaintext_token", "TokenChannel"]

AUTHORIZATION = "authorization"


def _check_token(token: str, where: str) -> str:
    """The token if it can be sent as a bearer token; ValueError otherwise
    (the message names `where`, never the token)."""
    if not isinstance(token, str):
        raise TypeError(f"{where} must be a str, not {type(token).__name__}")
    if not token:
        raise ValueError(f"{where} is empty")
    if any(c.isspace() for c in token):
        raise ValueError(f"{where} contains whitespace; a bearer token is one word")
    if any(not ("\x21" <= c <= "\x7e") for c in token):
        raise ValueError(f"{where} contains characters other than printable ASCII, which a gRPC header cannot carry")
    return token


def resolve_token(token: Optional[str], token_file: Union[str, "os.PathLike[str]", None]) -> Optional[str]:
    """The token from `token` or from the file `token_file` (read now, its
    surrounding whitespace stripped); None when neither is given.

    Raises ValueError for both given, an empty token (or file) or one with
    whitespace or non-printable characters inside; OSError
    (FileNotFoundError, PermissionError...) naming a file that cannot be read."""
    if token is not None and token_file is not None:
        raise ValueError("give token or token_file, not both")
    if token is not None:
        return _check_token(token, "token")
    if token_file is None:
        return None
    path = os.fspath(token_file)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        # OSError(errno, ...) is FileNotFoundError, PermissionError... as e was.
        raise OSError(e.errno, f"token_file: cannot read {path!r}: {e.strerror or e}") from e
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"token_file {path!r} is not ASCII text") from None
    text = text.strip()
    if not text:
        raise ValueError(f"token_file {path!r} is empty")
    return _check_token(text, f"the token in token_file {path!r}")


def _host_is_loopback(host: str) -> bool:
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]  # an IPv6 zone
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: it is not resolved here, so it does not count
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _address_is_loopback(address: str) -> bool:
    """host, host:port, [v6]:port or a bare IPv6 address."""
    address = address.strip()
    if not address:
        return False
    if address.startswith("["):
        return _host_is_loopback(address[: address.find("]") + 1]) if "]" in address else False
    if address.count(":") > 1:  # a bare IPv6 address, no port
        return _host_is_loopback(address)
    return _host_is_loopback(address.rpartition(":")[0] if ":" in address else address)


def is_loopback_target(target: str) -> bool:
    """True if the gRPC target names this machine only: a unix socket
    (unix:, unix-abstract:), or hosts that are 127.0.0.0/8, ::1 or
    localhost (also as dns:[//authority/]host:port or ipv4:/ipv6: lists,
    every address of which must be loopback). Names are not resolved."""
    t = target.strip()
    low = t.lower()
    if low.startswith(("unix:", "unix-abstract:")):
        return True
    if low.startswith(("ipv4:", "ipv6:")):
        addresses = t.split(":", 1)[1].split(",")
        return all(_address_is_loopback(a) for a in addresses)
    if low.startswith("dns:"):
        t = t[4:]
        if t.startswith("//"):
            t = t[2:].partition("/")[2]  # dns://authority/host:port
    return _address_is_loopback(t)


def check_plaintext_token(target: str, *, secure: bool, allow: bool) -> None:
    """ValueError if a token would cross the network in clear: no TLS, a
    target that is not loopback, and no insecure_token."""
    if secure or allow or is_loopback_target(target):
        return
    raise ValueError(
        f"refusing to send the token in clear to {target!r}, which is not a loopback address "
        "(127.0.0.0/8, ::1, localhost, unix:): give tls=baton.TLS(...) (or credentials), or "
        "insecure_token=True if the network is trusted (a batond started with --allow_plaintext)"
    )


class _WithToken:
    """A grpc.aio multicallable whose every call also sends the token."""

    __slots__ = ("_inner", "_metadata")

    def __init__(self, inner: Any, metadata: tuple[tuple[str, str], ...]) -> None:
        self._inner = inner
        self._metadata = metadata

    def __call__(self, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
        if metadata is None:
            merged: Any = self._metadata
        else:
            pairs = tuple(metadata)
            # The caller's own authorization, if any, wins.
            merged = pairs if any(k.lower() == AUTHORIZATION for k, _ in pairs) else pairs + self._metadata
        return self._inner(*args, metadata=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TokenChannel:
    """Wraps a grpc.aio.Channel: the multicallables it makes (so every stub
    made on it) send `authorization: Bearer <token>` with each call.
    Everything else is the channel's own."""

    def __init__(self, channel: Any, token: str) -> None:
        self._channel = channel
        self._metadata = ((AUTHORIZATION, f"Bearer {token}"),)

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.unary_unary(*args, **kwargs), self._metadata)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.unary_stream(*args, **kwargs), self._metadata)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.stream_unary(*args, **kwargs), self._metadata)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.stream_stream(*args, **kwargs), self._metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def __repr__(self) -> str:
        return f"<baton TokenChannel over {self._channel!r}>"  # never the token
