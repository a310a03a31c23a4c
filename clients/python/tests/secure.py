"""A TLS + token batond for the tests: a CA and a server certificate for
IP:127.0.0.1 and DNS:localhost, a tokens file and a policy file, all in a
temporary directory.

With BATON_TEST_SECURE=1 (test.sh's second run) the suite's batond is started
with --tls_cert/--tls_key/--auth_policy/--auth_tokens from a Secure made here,
for one principal `suite` granted `admin *` with a random token, and every
client the `connect` fixture (and `client_kwargs`) makes uses TLS with that CA
and server name and that token. test_auth.py uses the same pieces, always, for
its own batond with a policy of several principals.

The certificates come from the `cryptography` package when it is importable,
else from the openssl CLI; make_certs() says which through Secure.made_by.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import baton

SECURE = os.environ.get("BATON_TEST_SECURE", "") not in ("", "0")
SERVER_NAME = "localhost"
PRINCIPAL = "suite"


def _openssl(d: Path, *args: str) -> None:
    r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")


def _certs_with_openssl(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=baton secure test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl(d, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    _openssl(
        d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip


def _certs_with_cryptography(d: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("baton secure test CA"))
        .issuer_name(name("baton secure test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(SERVER_NAME))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(SERVER_NAME)]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_key(ca_key, d / "ca.key")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_key(key, d / "server.key")
    (d / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_certs(d: Path) -> str:
    """Writes ca.pem, server.pem and server.key into `d`; returns what made
    them ("cryptography" or "openssl")."""
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise RuntimeError("BATON_TEST_SECURE needs the `cryptography` package or the openssl CLI")
        _certs_with_openssl(d)
        return "openssl"
    _certs_with_cryptography(d)
    return "cryptography"


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Secure:
    """Certificates, a tokens file and a policy file in directory `d`.

    `tokens` maps principal -> bearer token (random ones are made for the
    principals in `grants` without one); `roles` are (role, access, prefixes)
    and `grants` principal -> roles."""

    def __init__(
        self,
        d: Path,
        roles: list[tuple[str, str, list[str]]],
        grants: dict[str, list[str]],
        tokens: Optional[dict[str, str]] = None,
    ) -> None:
        self.dir = d
        self.made_by = make_certs(d)
        self.ca_file = str(d / "ca.pem")
        self.cert_file = str(d / "server.pem")
        self.key_file = str(d / "server.key")
        self.tokens = dict(tokens or {})
        for principal in grants:
            self.tokens.setdefault(principal, secrets.token_urlsafe(24))
        self.tokens_file = str(d / "tokens")
        Path(self.tokens_file).write_text(
            "# principal sha256(token)\n" + "".join(f"{p} {sha256_hex(t)}\n" for p, t in self.tokens.items())
        )
        self.policy_file = str(d / "policy")
        Path(self.policy_file).write_text(
            "".join(f"role {r} {access} {' '.join(prefixes)}\n" for r, access, prefixes in roles)
            + "".join(f"grant {p} {' '.join(rs)}\n" for p, rs in grants.items())
        )
        for f in (self.key_file, self.tokens_file, d / "ca.key"):
            os.chmod(f, 0o600)

    def server_args(self) -> list[str]:
        """batond flags: TLS with the server certificate, and the policy."""
        return [
            "--tls_cert", self.cert_file, "--tls_key", self.key_file,
            "--auth_policy", self.policy_file, "--auth_tokens", self.tokens_file,
        ]  # fmt: skip

    def tls(self) -> baton.TLS:
        return baton.TLS(ca_file=self.ca_file, server_name=SERVER_NAME)

    def client_kwargs(self, principal: Optional[str] = PRINCIPAL) -> dict[str, object]:
        """baton.Client keyword arguments: TLS, and the token of `principal`
        (none if None)."""
        kw: dict[str, object] = {"tls": self.tls()}
        if principal is not None:
            kw["token"] = self.tokens[principal]
        return kw


def suite_secure(d: Path) -> Secure:
    """The BATON_TEST_SECURE setup: principal `suite`, admin on every name."""
    return Secure(d, roles=[("everything", "admin", ["*"])], grants={PRINCIPAL: ["everything"]})
