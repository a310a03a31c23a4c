"""A worker that goes through phases in step with the others: after each
phase it waits at the barrier <prefix>/phase until every party has arrived.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/barrier/demo --name w1 --parties 3
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402

PHASES = ["load", "transform", "save"]


async def work(args) -> None:
    rng = random.Random(args.name)
    async with baton.Client(args.addr, label=f"barrier {args.name}") as client:
        barrier = client.barrier(f"{args.prefix}/phase", args.parties)  # asyncio.Barrier(3)
        for phase, what in enumerate(PHASES):
            start = time.monotonic()
            seconds = rng.uniform(0.05, 0.4)  # the workers are not equally fast
            await asyncio.sleep(seconds)
            end = time.monotonic()
            index = await barrier.wait(timeout=30)  # Barriers/Wait
            print(f"{what}: {seconds:.2f} s of work, arrived {index + 1}. of {args.parties}", flush=True)
            exlib.report(phase=phase, start=start, end=end, index=index, passed=time.monotonic())


if __name__ == "__main__":
    parser = exlib.parser("barrier", __doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--parties", type=int, default=3)
    exlib.role(work(parser.parse_args()))
