"""TLS: how a Client connects to a batond that serves TLS (--tls_cert,
--tls_key) or mutual TLS (--client_ca).

    baton.Client("db1.internal:7411", tls=True)                 # system roots
    baton.Client("10.0.0.5:7411", tls=baton.TLS(ca_file="ca.pem", server_name="batond.internal"))
    baton.Client(addr, tls=baton.TLS(ca_file="ca.pem", cert_file="client.pem", key_file="client.key"))

The files are read when the Client is made, so that a missing or unreadable
file is reported there (OSError naming it), rather than as a failed
connection later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import grpc

__all__ = ["TLS"]


@dataclass(frozen=True)
class TLS:
    """TLS settings of a Client's channel.

    ca_file: PEM file of the CA certificate(s) the server's certificate must
      chain to; None: the system's roots (as bundled by grpcio).
    cert_file, key_file: PEM certificate chain and (unencrypted) private key
      of this client, for a server that requires client certificates (batond
      --client_ca). Both or neither.
    server_name: the name the server's certificate must carry, when it
      differs from the host of the target (e.g. a target given as an IP
      address and a certificate for a DNS name). Sent as the channel option
      grpc.ssl_target_name_override; meant for tests and internal networks,
      where the target address and the certificate's name disagree.

    Raises ValueError when only one of cert_file and key_file is given.
    """

    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    server_name: Optional[str] = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            given, missing = ("cert_file", "key_file") if self.key_file is None else ("key_file", "cert_file")
            raise ValueError(
                f"TLS: {given} without {missing}: a client certificate needs its private key "
                "(give both cert_file and key_file, or neither)"
            )
        if self.server_name is not None and not self.server_name:
            raise ValueError("TLS: server_name is empty (leave it None to verify the target's host)")

    def credentials(self) -> grpc.ChannelCredentials:
        """grpc.ssl_channel_credentials from the files, read now. Raises
        OSError (FileNotFoundError, PermissionError...) naming the file if
        one cannot be read, ValueError if one holds no PEM block."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca_file, "ca_file"),
            private_key=_read_pem(self.key_file, "key_file"),
            certificate_chain=_read_pem(self.cert_file, "cert_file"),
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        """The channel options these settings need (server_name)."""
        if self.server_name is None:
            return []
        return [("grpc.ssl_target_name_override", self.server_name)]

    @staticmethod
    def coerce(tls: Union["TLS", bool, None]) -> Optional["TLS"]:
        """TLS from a Client's `tls` argument: True is TLS() (system roots),
        False and None are no TLS."""
        if tls is None or tls is False:
            return None
        if tls is True:
            return TLS()
        if isinstance(tls, TLS):
            return tls
        raise TypeError(f"tls must be a baton.TLS, True, False or None, not {type(tls).__name__}")


def _read_pem(path: Optional[str], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        # OSError(errno, ...) is FileNotFoundError, PermissionError... as e was.
        raise OSError(e.errno, f"TLS: cannot read {what} {str(path)!r}: {e.strerror or e}") from e
    if b"-----BEGIN " not in data:
        raise ValueError(f"TLS: {what} {str(path)!r} holds no PEM block (-----BEGIN ...)")
    return data
