"""What the Python examples share: the command line, child processes, checks.

Every example is one orchestrating program (`main.py`) that starts the
example's other processes (`cook.py`, `worker.py`, ...) as children, lets them
coordinate through one batond, and checks what they did. The children are
ordinary programs: each can also be started by hand in its own terminal.

    import exlib                       # scripts do: sys.path.insert(0, <examples>/common)

    args = exlib.parser("chef", __doc__).parse_args()
    cook = await exlib.spawn("cook-1", HERE / "cook.py", *exlib.common_args(args), "--name", "cook-1")
    exlib.check(elapsed < 1.0, f"took {elapsed:.2f} s")
    exlib.main(run(args), "chef")      # prints PASS/FAIL, exit status 0/1

Children tell the orchestrator facts to check by printing `REPORT {json}`
lines (exlib.report); other output is echoed with the child's name in front.
Times are time.monotonic(), which on Linux is one clock for every process of
the machine, so times taken in different processes can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional, Sequence

EXAMPLES = Path(__file__).resolve().parent.parent
REPORT = "REPORT "


class ExampleFailed(Exception):
    """An example's claim did not hold."""


def check(condition: object, message: str) -> None:
    """Raises ExampleFailed(message) unless `condition` holds."""
    if not condition:
        raise ExampleFailed(message)


# ---- command line ----------------------------------------------------------


def parser(example: str, doc: Optional[str]) -> argparse.ArgumentParser:
    """The arguments every script takes: --addr and --prefix (the names it
    uses start with the prefix; default examples/<example>/<random>, so runs
    sharing a server do not meet)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--addr",
        default=os.environ.get("BATON_ADDR", "127.0.0.1:7411"),
        help="batond's host:port (default $BATON_ADDR or 127.0.0.1:7411)",
    )
    p.add_argument(
        "--prefix",
        default=f"examples/{example}/{uuid.uuid4().hex[:8]}",
        help="prefix of every resource name (default examples/%s/<random>)" % example,
    )
    return p


def common_args(args: argparse.Namespace) -> list[str]:
    """--addr and --prefix, to pass on to a child."""
    return ["--addr", args.addr, "--prefix", args.prefix]


# ---- children --------------------------------------------------------------

_children: list["Child"] = []
# Set for the children: the orchestrator's pid (see role()).
PARENT_ENV = "BATON_EXAMPLE_PARENT"


class Child:
    """A child process whose output is echoed and whose REPORT lines are
    collected in `reports` (parsed JSON)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self.reports: list[dict[str, Any]] = []
        self._new_report = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(REPORT):
                self.reports.append(json.loads(line[len(REPORT) :]))
                self._new_report.set()
            else:
                self.lines.append(line)
                print(f"  [{self.name}] {line}", flush=True)

    async def wait(self, timeout: float = 30.0) -> int:
        """Waits for the child to exit (and its output to be read); returns
        its exit status. Kills it and fails if it takes over `timeout` s."""
        try:
            await asyncio.wait_for(asyncio.gather(self.proc.wait(), self._reader), timeout)
        except asyncio.TimeoutError:
            self.kill()
            raise ExampleFailed(f"{self.name} did not finish within {timeout} s") from None
        return self.proc.returncode  # type: ignore[return-value]

    async def wait_ok(self, timeout: float = 30.0) -> None:
        """wait(), then fails unless the exit status is 0."""
        code = await self.wait(timeout)
        check(code == 0, f"{self.name} exited with status {code}")

    async def report(self, key: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first REPORT of this child that has `key`, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for r in self.reports:
                if key in r:
                    return r
            if self._reader.done():
                raise ExampleFailed(f"{self.name} ended without reporting {key!r}")
            self._new_report.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise ExampleFailed(f"{self.name} did not report {key!r} within {timeout} s")
            try:
                await asyncio.wait_for(self._new_report.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


async def spawn_cmd(name: str, argv: Sequence[str], *, cwd: Optional[Path] = None) -> Child:
    """Starts `argv` as a child (stdout and stderr captured and echoed)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, PARENT_ENV: str(os.getpid())},
    )
    child = Child(name, proc)
    _children.append(child)
    return child


async def spawn(name: str, script: Path, *args: str) -> Child:
    """Starts the Python script `script` with this interpreter."""
    return await spawn_cmd(name, [sys.executable, "-u", str(script), *args])


# ---- waiting on the server -------------------------------------------------


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    """Polls `predicate` every 20 ms until it is true; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise ExampleFailed(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def waiters(client: Any, name: str) -> int:
    """How many calls wait on resource `name` now (Admin/Describe): event
    waiters, workers in Tasks/Take, getters of a queue, ..."""
    desc = await client.describe(name, missing_ok=True)
    return desc.waiters if desc is not None else 0


async def wait_for_waiters(client: Any, name: str, n: int, timeout: float = 20.0) -> None:
    """Waits until `n` calls wait on `name`: the processes are ready."""

    async def enough() -> bool:
        return await waiters(client, name) >= n

    await wait_until(enough, f"{n} waiters on {name}", timeout)


async def check_nothing_held(client: Any, prefix: str) -> None:
    """Checks (Admin/List) that no resource under `prefix` is held or waited
    on any more: every process let go of what it took."""
    busy = [r for r in await client.ls(prefix) if r.holders or r.waiters]
    check(not busy, "still held or waited on at the end: " + ", ".join(
        f"{r.name} ({r.kind}: holders={r.holders} waiters={r.waiters})" for r in busy))


async def run_until_set(event: Any, work: Awaitable[Any]) -> None:
    """Runs `work` (a worker loop, say) until the Baton `event` is set, then
    cancels it. Raises what `work` raises if it ends first with an error."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (work_task, stop_task):
            t.cancel()
        await asyncio.gather(work_task, stop_task, return_exceptions=True)
    for t in (work_task, stop_task):
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


# ---- running ---------------------------------------------------------------


def report(**fields: Any) -> None:
    """Tells the orchestrating process a fact (a REPORT line on stdout)."""
    print(REPORT + json.dumps(fields), flush=True)


def main(coro: Awaitable[Optional[str]], example: str) -> None:
    """Runs an orchestrating program: prints `PASS: example: <what coro
    returned>` and exits 0, or prints FAIL and exits 1. Kills the children
    still running."""
    code = 1
    try:
        summary = asyncio.run(_with_cleanup(coro))
        print(f"PASS: {example}: {summary or 'ok'}", flush=True)
        code = 0
    except ExampleFailed as e:
        print(f"FAIL: {example}: {e}", flush=True)
    except asyncio.CancelledError:
        print(f"FAIL: {example}: stopped by SIGTERM before it finished", flush=True)
    except BaseException:  # noqa: BLE001 - the traceback is the report
        traceback.print_exc()
        print(f"FAIL: {example}: unexpected error (traceback above)", flush=True)
    sys.exit(code)


async def _with_cleanup(coro: Awaitable[Optional[str]]) -> Optional[str]:
    # SIGTERM (test.sh's timeout, say) cancels the example, so that the
    # children are stopped below.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    try:
        return await coro
    finally:
        for c in _children:
            c.kill()
        for c in _children:
            try:
                await asyncio.wait_for(asyncio.gather(c.proc.wait(), c._reader), 5)
            except (asyncio.TimeoutError, OSError):
                pass


def role(coro: Awaitable[Any]) -> None:
    """Runs a child program: exit status 0, or 1 with a traceback. A child
    started by an orchestrator exits when the orchestrator is gone (killed
    before it could stop its children), rather than wait forever."""
    try:
        asyncio.run(_with_parent_watch(coro))
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        sys.stdout.flush()
        sys.exit(1)


async def _with_parent_watch(coro: Awaitable[Any]) -> Any:
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return await coro

    async def watch() -> None:
        # Checks for a new parent (we were reparented: the orchestrator died).
        # Not prctl(PR_SET_PDEATHSIG): setting it needs Python code between
        # fork and exec, which is unsafe in a process running gRPC threads.
        while os.getppid() == int(parent):
            await asyncio.sleep(0.5)
        print("the orchestrating process is gone; exiting", flush=True)
        os._exit(1)

    watcher = asyncio.ensure_future(watch())
    try:
        return await coro
    finally:
        watcher.cancel()
