"""A long operation that survives a short timeout: shield.

Three jobs run as one task group, each in a worker process (worker.py):

  * "check": a quick health check, submitted with run_timeout=0.3 s. It hangs
    (1.5 s), so the server fails it after 0.3 s, and a failure in a group
    cancels the group's other tasks (asyncio.TaskGroup), except...
  * "upload": the long operation (1.0 s), submitted with shielded=True
    (asyncio.shield): group cancellation passes it by and it completes;
  * "index": a job like upload but not shielded: cancelled mid-way.

Also, on the waiting side: asyncio.wait_for(upload.result(), 0.2) gives up
after 0.2 s with TimeoutError, and that cancels only the wait (Tasks/Await),
not the remote operation, which the program then awaits to the end.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

WORKERS = 3


async def run(args) -> str:
    workers = [
        await exlib.spawn(f"w{i}", HERE / "worker.py", *exlib.common_args(args), "--name", f"w{i}")
        for i in range(1, WORKERS + 1)
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="shield main") as client:
        jobs = f"{args.prefix}/jobs"
        await exlib.wait_for_waiters(client, jobs, WORKERS)

        start = time.monotonic()
        timed_out = False
        group_failed = None
        try:
            async with client.task_group(jobs) as tg:  # leaving the block waits for the whole group
                upload = await tg.create_task({"name": "upload", "seconds": 1.0}, shielded=True)
                index = await tg.create_task({"name": "index", "seconds": 1.0})
                check_ = await tg.create_task({"name": "check", "seconds": 1.5}, run_timeout=0.3)

                # A caller that cannot wait long gives up; the upload goes on.
                try:
                    await asyncio.wait_for(upload.result(), timeout=0.2)
                except TimeoutError:
                    timed_out = True
                    print(f"gave up waiting for the upload after {time.monotonic() - start:.2f} s; it keeps running")
        except* baton.RemoteError as eg:
            group_failed = eg.exceptions
        elapsed = time.monotonic() - start
        result = await upload  # the shielded upload's result
        outcomes = {n: await t.outcome() for n, t in (("upload", upload), ("index", index), ("check", check_))}
        for n, o in outcomes.items():
            print(f"{n:>7}: {o.state}" + (f" ({o.error_message})" if o.error_message else ""))
        print(f"the group ended after {elapsed:.2f} s with the upload's result {result!r}")

        await client.event(f"{args.prefix}/closed").set()
        for w in workers:
            await w.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    reports = [r for w in workers for r in w.reports]
    finished = {r["finished"] for r in reports if "finished" in r}
    cancelled = {r["cancelled"] for r in reports if "cancelled" in r}
    check(timed_out, "waiting 0.2 s for a 1 s upload did not time out")
    check(outcomes["check"].state == "failed" and "run_timeout" in outcomes["check"].error_message,
          f"check: {outcomes['check']}")
    check(group_failed is not None and len(group_failed) == 1, f"the group raised {group_failed}")
    check(outcomes["index"].state == "cancelled", f"index was {outcomes['index'].state}, not cancelled")
    check(outcomes["upload"].state == "succeeded" and result == "upload done", f"upload: {outcomes['upload']}")
    check("index" in cancelled and "index" not in finished, "the unshielded index job was not interrupted")
    check("upload" in finished and "upload" not in cancelled, "the shielded upload did not run to the end")
    check(elapsed >= 1.0, f"the group ended after {elapsed:.2f} s, before the 1 s upload could finish")
    return "check timed out (0.3 s) and failed its group: index was cancelled, the shielded upload finished"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("shield", __doc__).parse_args()), "shield")
