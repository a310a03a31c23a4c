"""A kitchen worker: takes dishes from the work queue <prefix>/kitchen and
cooks them. A dish marked "burns" fails after its time; the others take their
time, unless cancelled: the worker's heartbeats (every 0.1 s) tell it when
the task was cancelled, and the handler's asyncio task is then cancelled.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/taskgroup/demo --name w1
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
    async with baton.Client(args.addr, codec=baton.JSON, label=f"taskgroup {args.name}") as client:
        worker = client.worker(f"{args.prefix}/kitchen", ttl=5, heartbeat_interval=0.1)

        @worker.handler
        async def cook(job: baton.Job) -> str:
            dish = job.value
            exlib.report(started=dish["name"], at=time.monotonic())
            print(f"cooking {dish['name']} ({dish['seconds']} s)", flush=True)
            try:
                await asyncio.sleep(dish["seconds"])
            except asyncio.CancelledError:
                print(f"{dish['name']}: cancelled, stove off", flush=True)
                exlib.report(cancelled=dish["name"], at=time.monotonic())
                raise
            if dish.get("burns"):
                print(f"{dish['name']}: burnt!", flush=True)
                raise RuntimeError(f"{dish['name']} burnt")
            return f"{dish['name']} ready"

        await exlib.run_until_set(client.event(f"{args.prefix}/closed"), worker.run())


if __name__ == "__main__":
    parser = exlib.parser("taskgroup", __doc__)
    parser.add_argument("--name", required=True)
    exlib.role(work(parser.parse_args()))
