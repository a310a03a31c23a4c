"""pytest fixtures for Baton's integration tests.

Importing baton_helpers generates the gRPC stubs (into a temporary directory)
before any test module is imported.

Fixtures:
  batond      one server process per test module, listening on 127.0.0.1 port 0;
              yields "127.0.0.1:PORT". At teardown it is sent SIGTERM and must exit
              with code 0 within 10 s: a clean shutdown is part of the spec.
  client      a baton_helpers.Client (stubs for every service) on that server,
              with a default deadline on every call.
"""

import pytest

import baton_helpers
from baton_helpers import BatondProcess, Client


@pytest.fixture(scope="module")
def batond_process():
    server = BatondProcess()
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    was_alive = server.alive()
    code = server.terminate()
    if not was_alive:
        pytest.fail(
            f"batond died during the tests (exit code {server.proc.returncode}); "
            f"stderr tail:\n{server.stderr_text(4000)}",
            pytrace=False,
        )
    if code != 0:
        pytest.fail(
            f"batond did not shut down cleanly on SIGTERM: exit code {code} "
            f"(None = still running after {BatondProcess.SHUTDOWN_TIMEOUT}s, killed); "
            f"stderr tail:\n{server.stderr_text(4000)}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def batond(batond_process):
    return batond_process.addr


@pytest.fixture
async def client(batond):
    c = Client(batond)
    yield c
    await c.close()


@pytest.fixture
def batond_path():
    return baton_helpers.batond_path()
