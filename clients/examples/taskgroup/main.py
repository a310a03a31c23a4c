"""One failing task cancels its group: asyncio.TaskGroup across processes.

Four dishes are submitted in one task group (client.task_group: Tasks/Submit
with a `group`) to three worker processes (worker.py). The soufflé burns
after 0.3 s. The server then cancels the rest of the group: the two dishes
being cooked learn it at their workers' next heartbeat and stop; the fourth,
still waiting for a free worker, is cancelled without ever starting. Leaving
the `async with` block raises an ExceptionGroup holding the one failure, as
asyncio.TaskGroup does, long before the 3 s dishes could have finished.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

DISHES = [
    {"name": "roast", "seconds": 3.0},
    {"name": "stew", "seconds": 3.0},
    {"name": "souffle", "seconds": 0.3, "burns": True},
    {"name": "pie", "seconds": 3.0},  # no worker free for it: still pending when the soufflé burns
]
WORKERS = 3


async def run(args) -> str:
    workers = [
        await exlib.spawn(f"w{i}", HERE / "worker.py", *exlib.common_args(args), "--name", f"w{i}")
        for i in range(1, WORKERS + 1)
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="taskgroup main") as client:
        kitchen = f"{args.prefix}/kitchen"
        await exlib.wait_for_waiters(client, kitchen, WORKERS)

        start = time.monotonic()
        errors: list[BaseException] = []
        try:
            async with client.task_group(kitchen) as tg:
                for dish in DISHES:
                    await tg.create_task(dish)
        except* baton.RemoteError as eg:  # the failures, as asyncio.TaskGroup raises them
            errors = list(eg.exceptions)
        elapsed = time.monotonic() - start
        outcomes = {d["name"]: await t.outcome() for d, t in zip(DISHES, tg.tasks)}
        for name, o in outcomes.items():
            print(f"{name:>8}: {o.state}" + (f" ({o.error_message})" if o.error_message else ""))
        print(f"the group ended after {elapsed:.2f} s")

        await client.event(f"{args.prefix}/closed").set()
        for w in workers:
            await w.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    reports = [r for w in workers for r in w.reports]
    started = {r["started"] for r in reports if "started" in r}
    stopped = {r["cancelled"] for r in reports if "cancelled" in r}
    check(len(errors) == 1 and "souffle burnt" in str(errors[0]), f"the group raised {errors}")
    check(outcomes["souffle"].state == "failed", f"souffle: {outcomes['souffle'].state}")
    for name in ("roast", "stew", "pie"):
        check(outcomes[name].state == "cancelled", f"{name} was {outcomes[name].state}, not cancelled")
    check(started == {"roast", "stew", "souffle"}, f"started: {sorted(started)}")
    check(stopped == {"roast", "stew"}, f"the running dishes interrupted: {sorted(stopped)}")
    check(elapsed < 2.0, f"the group took {elapsed:.2f} s: the 3 s dishes were not cancelled")
    return (f"souffle failed, so roast and stew were stopped mid-cooking and pie never started; "
            f"the group ended after {elapsed:.2f} s")


if __name__ == "__main__":
    exlib.main(run(exlib.parser("taskgroup", __doc__).parse_args()), "taskgroup")
