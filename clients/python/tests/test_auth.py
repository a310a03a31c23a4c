"""Principals enforced through the client, against a batond of its own (TLS,
--auth_policy, --auth_tokens), whatever BATON_TEST_SECURE says:

    role rw   write ro/ rw/        grant writer rw
    role ro   read  ro/            grant reader ro

No token: connecting raises UnauthenticatedError (the session is opened by a
call); an unknown token too. `reader` may open a session and describe names
under ro/, but a lock acquire there (write access) raises
PermissionDeniedError, and so does anything outside ro/; `writer` acquires.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest

import baton
from conftest import Batond
from secure import Secure

# Bound on every call, so that a broken test fails instead of hanging.
WITHIN = 10.0


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Secure:
    return Secure(
        Path(tmp_path_factory.mktemp("auth")),
        roles=[("rw", "write", ["ro/", "rw/"]), ("ro", "read", ["ro/"])],
        grants={"writer": ["rw"], "reader": ["ro"]},
    )


@pytest.fixture(scope="module")
def auth_server(auth: Secure) -> Iterator[Batond]:
    s = Batond("--durability", "none", *auth.server_args())
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_no_token_is_unauthenticated(auth_server, auth, transport):
    with pytest.raises(baton.UnauthenticatedError) as e:
        c = await asyncio.wait_for(baton.connect(auth_server.addr, transport=transport, tls=auth.tls()), WITHIN)
        await c.close()  # not reached unless the test fails
    assert e.value.code.name == "UNAUTHENTICATED"
    assert isinstance(e.value, baton.BatonError)


async def test_unknown_token_is_unauthenticated(auth_server, auth, transport):
    with pytest.raises(baton.UnauthenticatedError):
        c = await asyncio.wait_for(
            baton.connect(auth_server.addr, transport=transport, tls=auth.tls(), token="not-a-known-token"), WITHIN
        )
        await c.close()


async def test_read_only_principal_cannot_acquire(auth_server, auth, transport, name):
    async with baton.Client(auth_server.addr, transport=transport, **auth.client_kwargs("reader")) as c:
        lock = c.lock(f"ro/{name('lock')}")
        with pytest.raises(baton.PermissionDeniedError) as e:
            await asyncio.wait_for(lock.acquire(timeout=0), WITHIN)
        assert e.value.code.name == "PERMISSION_DENIED"
        assert "ro/" in e.value.details
        # Reading is what it may do there: a lock nobody declared describes as absent.
        assert await asyncio.wait_for(c.describe(lock.name, missing_ok=True), WITHIN) is None
        # Outside its prefix, not even that.
        with pytest.raises(baton.PermissionDeniedError):
            await asyncio.wait_for(c.describe(f"rw/{name('lock')}", missing_ok=True), WITHIN)
        # The session survives a denied call.
        with pytest.raises(baton.PermissionDeniedError):
            await asyncio.wait_for(c.lock(f"rw/{name('lock')}").acquire(timeout=0), WITHIN)


async def test_writer_acquires_where_reader_may_not(auth_server, auth, transport, name):
    lock_name = f"ro/{name('lock')}"
    async with baton.Client(auth_server.addr, transport=transport, **auth.client_kwargs("writer")) as w:
        async with w.lock(lock_name) as held:
            assert held.fence > 0
        with pytest.raises(baton.PermissionDeniedError):
            await asyncio.wait_for(w.lock(f"other/{name('lock')}").acquire(timeout=0), WITHIN)
