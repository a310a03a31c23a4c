"""Retry with backoff around an unreliable call, each try bounded by wait_for.

The call is a Baton task answered by an unreliable service process
(service.py) that hangs on the first call, fails on the second and answers on
the third. The caller bounds each try with asyncio.wait_for(task.result(),
0.5 s); as asyncio.wait_for cancels what it waited for, a try that times out
cancels its task (Tasks/Cancel), which stops the hung handler at its next
heartbeat. After a failed try the caller sleeps 0.1 s, 0.2 s, ... (doubling)
before the next one.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

TIMEOUT, BACKOFF, ATTEMPTS = 0.5, 0.1, 5


async def call_with_retry(client: baton.Client, queue: str, request: Any, log: list[dict]) -> Any:
    delay = BACKOFF
    for attempt in range(1, ATTEMPTS + 1):
        task = await client.create_task(queue, request)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(task.result(), TIMEOUT)
            log.append({"attempt": attempt, "task": task, "at": started, "outcome": "ok"})
            return result
        except TimeoutError:
            await task.cancel()  # as asyncio.wait_for does: the timed-out call is cancelled
            log.append({"attempt": attempt, "task": task, "at": started, "outcome": "timeout"})
        except baton.RemoteError as e:
            log.append({"attempt": attempt, "task": task, "at": started, "outcome": f"error: {e}"})
        print(f"attempt {attempt}: {log[-1]['outcome']}; retrying in {delay:.1f} s")
        await asyncio.sleep(delay)
        delay *= 2
    raise RuntimeError(f"gave up after {ATTEMPTS} attempts")


async def run(args) -> str:
    service = await exlib.spawn("service", HERE / "service.py", *exlib.common_args(args), "--script", "hang,fail,ok")
    async with baton.Client(args.addr, codec=baton.JSON, label="retry caller") as client:
        queue = f"{args.prefix}/calls"
        await exlib.wait_for_waiters(client, queue, 1)
        log: list[dict] = []
        start = time.monotonic()
        answer = await call_with_retry(client, queue, "ping", log)
        print(f"answer {answer!r} after {len(log)} attempts, {time.monotonic() - start:.2f} s")
        hung = await log[0]["task"].outcome(timeout=10)
        await client.event(f"{args.prefix}/stop").set()
        await service.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    outcomes = [e["outcome"] for e in log]
    check(answer == "pong", f"answer {answer!r}")
    check(outcomes[0] == "timeout" and outcomes[1].startswith("error: ConnectionError") and outcomes[2] == "ok",
          f"attempts went {outcomes}")
    check(hung.state == "cancelled", f"the timed-out call is {hung.state}, not cancelled")
    check(any(r.get("cancelled") == 1 for r in service.reports), "the hung handler was not stopped")
    # Each retry waited for its backoff: try 2 starts >= timeout + 0.1 s after try 1, try 3 >= 0.2 s after try 2.
    gaps = [log[i + 1]["at"] - log[i]["at"] for i in range(len(log) - 1)]
    check(gaps[0] >= TIMEOUT + BACKOFF, f"the 2nd try came {gaps[0]:.2f} s after the 1st")
    check(gaps[1] >= 2 * BACKOFF, f"the 3rd try came {gaps[1]:.2f} s after the 2nd")
    return f"timeout, error, then 'pong' on attempt 3 (backoff {BACKOFF}, {2 * BACKOFF} s); the hung call was cancelled"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("retry", __doc__).parse_args()), "retry")
