"""A worker that starts only when the monitor says so: it waits on the event
<prefix>/go (Events/Wait, no polling), then does its job and reports to the
queue <prefix>/reports.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/monitor/demo --name w1
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def work(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label=f"monitor {args.name}") as client:
        ready = time.monotonic()
        await client.event(f"{args.prefix}/go").wait()
        started = time.monotonic()
        print(f"started after waiting {started - ready:.2f} s", flush=True)
        await asyncio.sleep(0.05)  # the job
        await client.queue(f"{args.prefix}/reports").put({"worker": args.name, "started": started})


if __name__ == "__main__":
    parser = exlib.parser("monitor", __doc__)
    parser.add_argument("--name", required=True)
    exlib.role(work(parser.parse_args()))
