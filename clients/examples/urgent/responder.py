"""The responder: handles the work in <prefix>/work (a priority queue, lowest
priority number first) one item at a time (each {"text", "seconds"}: what to do and how long it
takes), until the event <prefix>/stop.
Reports the order in which it handled them.

    python responder.py --addr 127.0.0.1:7411 --prefix examples/urgent/demo
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def respond(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label="urgent responder") as client:
        work = client.queue(f"{args.prefix}/work", order="priority")  # asyncio.PriorityQueue
        await client.event(f"{args.prefix}/open").wait()

        async def loop() -> None:
            while True:
                item = await work.get()
                job = item.value  # {"text": ..., "seconds": ...}
                exlib.report(handling=job["text"], priority=item.priority)
                print(f"handling {job['text']} (priority {item.priority}, {job['seconds']} s)", flush=True)
                await asyncio.sleep(job["seconds"])
                await item.ack()

        await exlib.run_until_set(client.event(f"{args.prefix}/stop"), loop())


if __name__ == "__main__":
    exlib.role(respond(exlib.parser("urgent", __doc__).parse_args()))
