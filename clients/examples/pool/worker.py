"""A pool user: waits for the start signal, then uses one of the pool's slots
(the semaphore <prefix>/slots) a few times, each time for a little while.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/pool/demo --name w1 --referee /tmp/ref.json
"""

from __future__ import annotations

import asyncio
import random
import sys
from contextlib import AsyncExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from referee import Referee  # noqa: E402

import baton  # noqa: E402


async def work(args) -> None:
    referee = Referee(Path(args.referee))
    rng = random.Random(args.name)
    async with baton.Client(args.addr, label=f"pool {args.name}") as client:
        slots = client.semaphore(f"{args.prefix}/slots", args.capacity)  # asyncio.BoundedSemaphore(3)
        await client.event(f"{args.prefix}/start").wait()
        for _ in range(args.rounds):
            async with AsyncExitStack() as stack:
                if not args.unguarded:
                    held = await stack.enter_async_context(slots)  # Semaphores/Acquire ... Release
                    token = held.token
                else:
                    token = 0
                in_use = referee.enter()
                print(f"using a slot (token {token}, {in_use} in use)", flush=True)
                await asyncio.sleep(rng.uniform(0.1, 0.2))
                referee.leave()


if __name__ == "__main__":
    parser = exlib.parser("pool", __doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--referee", required=True, help="the referee's file")
    parser.add_argument("--capacity", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unguarded", action="store_true", help="skip the semaphore (to see the referee catch it)")
    exlib.role(work(parser.parse_args()))
