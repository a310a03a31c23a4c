"""TLS and mutual TLS against a real batond serving them (--tls_cert,
--tls_key, --client_ca), with certificates made by the openssl CLI for this
run: a CA, a server certificate for IP:127.0.0.1 and DNS:localhost, a client
certificate, and a CA and client certificate that the server does not trust.

These tests keep their own servers (and a plaintext one) under
BATON_TEST_SECURE=1 too: what they test is the TLS handshake itself.

Every failing connection is bounded by asyncio.wait_for; the failures come
from the handshake at once (no server answer is awaited), so they are not
timing-dependent."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import baton
from conftest import Batond

# Longest a connection that must fail may take (it fails in milliseconds).
FAIL_WITHIN = 10.0

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is needed to make certificates")


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")


def _make_ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=baton test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def _make_cert(d: Path, name: str, ca: str, cn: str, extensions: str) -> None:
    (d / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca, server (IP:127.0.0.1, DNS:localhost), client (signed by ca);
    other-ca and other-client (signed by other-ca)."""
    d = tmp_path_factory.mktemp("tls")
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _make_cert(
        d, "server", "ca", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    _make_cert(d, "client", "ca", "baton-test-client", "extendedKeyUsage=clientAuth\n")
    _make_cert(d, "other-client", "other-ca", "baton-test-other-client", "extendedKeyUsage=clientAuth\n")
    return d


def _start(certs: Path, *extra: str) -> Iterator[Batond]:
    s = Batond(
        "--durability", "none",
        "--tls_cert", str(certs / "server.pem"), "--tls_key", str(certs / "server.key"),
        *extra,
    )  # fmt: skip
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def tls_server(certs: Path) -> Iterator[Batond]:
    """batond serving TLS, no client certificates asked for."""
    yield from _start(certs)


@pytest.fixture(scope="module")
def mtls_server(certs: Path) -> Iterator[Batond]:
    """batond serving mutual TLS: clients need a certificate signed by ca."""
    yield from _start(certs, "--client_ca", str(certs / "ca.pem"))


@pytest.fixture(scope="module")
def plain_server() -> Iterator[Batond]:
    """batond serving plaintext (whatever BATON_TEST_SECURE says)."""
    s = Batond("--durability", "none")
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def _lock_round_trip(client: baton.Client, name: str) -> None:
    lock = client.lock(name)
    held = await asyncio.wait_for(lock.acquire(), FAIL_WITHIN)
    assert held.fence > 0
    assert await asyncio.wait_for(lock.release(), FAIL_WITHIN) is False  # no waiter to hand it to
    again = await asyncio.wait_for(lock.acquire(timeout=0), FAIL_WITHIN)  # it was released
    assert again.fence > held.fence
    await asyncio.wait_for(lock.release(), FAIL_WITHIN)


async def _connect_fails(target: str, transport: str, **kwargs: object) -> baton.UnavailableError:
    with pytest.raises(baton.UnavailableError) as e:
        c = await asyncio.wait_for(baton.connect(target, transport=transport, **kwargs), FAIL_WITHIN)  # type: ignore[arg-type]
        await c.close()  # not reached unless the test fails
    return e.value


# ---- TLS -------------------------------------------------------------------


async def test_client_trusting_the_ca_connects_and_locks(tls_server, certs, transport, name):
    tls = baton.TLS(ca_file=str(certs / "ca.pem"))
    async with baton.Client(tls_server.addr, tls=tls, transport=transport) as c:
        await _lock_round_trip(c, name("lock"))


async def test_server_name_overrides_the_host_checked(tls_server, certs, transport, name):
    good = baton.TLS(ca_file=str(certs / "ca.pem"), server_name="localhost")
    async with baton.Client(tls_server.addr, tls=good, transport=transport) as c:
        await _lock_round_trip(c, name("lock"))
    wrong = baton.TLS(ca_file=str(certs / "ca.pem"), server_name="not-this-server.example")
    await _connect_fails(tls_server.addr, transport, tls=wrong)


async def test_plaintext_client_fails_unavailable(tls_server, transport):
    await _connect_fails(tls_server.addr, transport)


async def test_client_trusting_another_ca_fails_unavailable(tls_server, certs, transport):
    await _connect_fails(tls_server.addr, transport, tls=baton.TLS(ca_file=str(certs / "other-ca.pem")))


async def test_system_roots_do_not_trust_a_private_ca(tls_server, transport):
    await _connect_fails(tls_server.addr, transport, tls=True)


async def test_tls_client_against_a_plaintext_server_fails_unavailable(plain_server, certs, transport):
    await _connect_fails(plain_server.addr, transport, tls=baton.TLS(ca_file=str(certs / "ca.pem")))


# ---- mutual TLS ------------------------------------------------------------


async def test_mtls_client_with_its_certificate_connects_and_locks(mtls_server, certs, transport, name):
    tls = baton.TLS(
        ca_file=str(certs / "ca.pem"), cert_file=str(certs / "client.pem"), key_file=str(certs / "client.key")
    )
    async with baton.Client(mtls_server.addr, tls=tls, transport=transport) as c:
        await _lock_round_trip(c, name("lock"))


async def test_mtls_client_without_a_certificate_fails_unavailable(mtls_server, certs, transport):
    await _connect_fails(mtls_server.addr, transport, tls=baton.TLS(ca_file=str(certs / "ca.pem")))


async def test_mtls_client_with_a_certificate_of_another_ca_fails_unavailable(mtls_server, certs, transport):
    tls = baton.TLS(
        ca_file=str(certs / "ca.pem"),
        cert_file=str(certs / "other-client.pem"),
        key_file=str(certs / "other-client.key"),
    )
    await _connect_fails(mtls_server.addr, transport, tls=tls)


# ---- the options themselves (no server) --------------------------------------


def test_cert_without_key_and_key_without_cert_are_value_errors(certs):
    with pytest.raises(ValueError, match="cert_file without key_file"):
        baton.TLS(ca_file=str(certs / "ca.pem"), cert_file=str(certs / "client.pem"))
    with pytest.raises(ValueError, match="key_file without cert_file"):
        baton.TLS(key_file=str(certs / "client.key"))


def test_unreadable_file_is_an_error_naming_it(certs, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(FileNotFoundError, match="ca_file .*no-such-ca.pem"):
        baton.Client("127.0.0.1:1", tls=baton.TLS(ca_file=missing))
    with pytest.raises(FileNotFoundError, match="key_file .*nokey"):
        baton.Client(
            "127.0.0.1:1", tls=baton.TLS(cert_file=str(certs / "client.pem"), key_file=str(tmp_path / "nokey"))
        )
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.pem"
        shutil.copy(certs / "ca.pem", locked)
        locked.chmod(0)
        with pytest.raises(PermissionError, match="locked.pem"):
            baton.Client("127.0.0.1:1", tls=baton.TLS(ca_file=str(locked)))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ValueError, match="no PEM block"):
        baton.Client("127.0.0.1:1", tls=baton.TLS(ca_file=str(not_pem)))


def test_tls_and_credentials_together_is_a_value_error(certs):
    import grpc

    with pytest.raises(ValueError, match="not both"):
        baton.Client("127.0.0.1:1", tls=True, credentials=grpc.ssl_channel_credentials())
    with pytest.raises(TypeError):
        baton.Client("127.0.0.1:1", tls="yes")  # type: ignore[arg-type]
