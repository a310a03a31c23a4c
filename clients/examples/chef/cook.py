"""A cook: a worker process that takes dishes from the kitchen's work queue
and cooks them one at a time, until the kitchen closes.

    python cook.py --addr 127.0.0.1:7411 --prefix examples/chef/demo --name ann
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def cook(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label=f"cook {args.name}") as client:
        worker = client.worker(f"{args.prefix}/dishes")  # Tasks/Take, one dish at a time

        @worker.handler
        async def make(job: baton.Job) -> dict:
            dish = job.value
            print(f"cooking {dish['name']} ({dish['seconds']} s)", flush=True)
            start = time.monotonic()
            await asyncio.sleep(dish["seconds"])  # the stove does the work
            return {"dish": dish["name"], "cook": args.name, "start": start, "end": time.monotonic()}

        # Serve until the chef sets the "closed" event.
        await exlib.run_until_set(client.event(f"{args.prefix}/closed"), worker.run())
        print(f"kitchen closed; cooked {worker.processed} dish(es)", flush=True)


if __name__ == "__main__":
    parser = exlib.parser("chef", __doc__)
    parser.add_argument("--name", required=True)
    exlib.role(cook(parser.parse_args()))
