"""A monitor that starts all workers at once: one event.

Six worker processes (worker.py) start at their own pace and block on the
event <prefix>/go. The monitor watches them line up (Admin/Describe shows the
event's waiters), then sets the event once: Events/Set says how many it
woke, and every worker must start right after that moment, all together.

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

WORKERS = 6
SPREAD = 0.5  # s: "at once", with room for a loaded machine


async def run(args) -> str:
    workers = [
        await exlib.spawn(f"w{i}", HERE / "worker.py", *exlib.common_args(args), "--name", f"w{i}")
        for i in range(1, WORKERS + 1)
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="monitor") as client:
        go = client.event(f"{args.prefix}/go")
        await exlib.wait_for_waiters(client, go.name, WORKERS)
        check(not await go.is_set(), "the event was set before the monitor set it")
        print(f"all {WORKERS} workers are waiting; go!")
        set_at = time.monotonic()
        woken = await go.set()

        reports = client.queue(f"{args.prefix}/reports")
        started = {}
        for _ in range(WORKERS):
            item = await reports.get(timeout=30)
            started[item.value["worker"]] = item.value["started"]
            await item.ack()
        for w in workers:
            await w.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    first, last = min(started.values()), max(started.values())
    print(f"Events/Set woke {woken}; workers started {first - set_at:.3f} .. {last - set_at:.3f} s after it")
    check(woken == WORKERS, f"Events/Set woke {woken} workers, expected {WORKERS}")
    check(len(started) == WORKERS, f"reports from {sorted(started)} only")
    check(first >= set_at, f"a worker started {set_at - first:.3f} s before the event was set")
    check(last - first < SPREAD, f"the workers started over {last - first:.2f} s, not at once")
    return f"one Events/Set started {woken} waiting workers within {last - first:.3f} s of each other"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("monitor", __doc__).parse_args()), "monitor")
