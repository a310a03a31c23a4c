"""A worker of the pipeline: gets numbers from <prefix>/raw, squares them,
puts the result into <prefix>/results and only then acknowledges the number.
Stops when the event <prefix>/stop is set.

With --crash-on K it dies (exit status 3) on its K-th item, after getting it
and before acknowledging it: the item is in flight, owned by this process's
session, and goes back to the queue for another worker when the session ends.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/pipeline/demo --name w1
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def work(args) -> None:
    # A short session TTL: if this process dies, its items return within 1 s.
    async with baton.Client(args.addr, codec=baton.JSON, session_ttl=1.0, label=f"pipeline {args.name}") as client:
        raw = client.queue(f"{args.prefix}/raw", maxsize=10)
        results = client.queue(f"{args.prefix}/results")
        done = 0

        async def loop() -> None:
            nonlocal done
            while True:
                item = await raw.get()
                n = item.value["n"]
                if args.crash_on and done + 1 == args.crash_on:
                    print(f"crashing while holding item {n}", flush=True)
                    os._exit(3)  # no ack, no goodbye: the session just stops being kept alive
                await asyncio.sleep(0.01)  # the work
                await results.put({"n": n, "square": n * n, "by": args.name, "delivery": item.delivery_count})
                await item.ack()  # after the result is safely in the next queue
                done += 1

        await exlib.run_until_set(client.event(f"{args.prefix}/stop"), loop())
        print(f"processed {done} items", flush=True)
        exlib.report(processed=done)


if __name__ == "__main__":
    parser = exlib.parser("pipeline", __doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--crash-on", type=int, default=0, help="die on the K-th item (0: never)")
    exlib.role(work(parser.parse_args()))
