"""A pool of 3 slots shared by 8 worker processes: a Baton semaphore.

Each worker (worker.py) uses a slot three times, holding the semaphore
<prefix>/slots (capacity 3) meanwhile. A referee outside Baton (a flock-guarded
counter file, referee.py) counts the slots in use; this program also samples
the server's view (Admin/Describe). The claim: never more than 3 in use, and
the pool is used to the full: exactly 3 at the busiest moment.

    python main.py --addr 127.0.0.1:7411
    python main.py --unguarded     # workers skip the semaphore: the check fails
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402
from referee import Referee  # noqa: E402

import baton  # noqa: E402

CAPACITY, WORKERS, ROUNDS = 3, 8, 3


async def run(args) -> str:
    with tempfile.TemporaryDirectory(prefix="baton-pool-") as tmp:
        referee = Referee(Path(tmp) / "referee.json")
        referee.reset()
        extra = ["--referee", str(referee.path), "--capacity", str(CAPACITY), "--rounds", str(ROUNDS)]
        if args.unguarded:
            extra.append("--unguarded")
        workers = [
            await exlib.spawn(f"w{i}", HERE / "worker.py", *exlib.common_args(args), "--name", f"w{i}", *extra)
            for i in range(1, WORKERS + 1)
        ]
        async with baton.Client(args.addr, label="pool main") as client:
            start = client.event(f"{args.prefix}/start")
            await exlib.wait_for_waiters(client, start.name, WORKERS)
            await start.set()  # everyone rushes for the 3 slots at once

            # Meanwhile, the server's view: holders and waiters of the semaphore.
            seen_holders = seen_waiters = 0
            done = asyncio.ensure_future(asyncio.gather(*(w.wait_ok() for w in workers)))
            while not done.done():
                desc = await client.describe(f"{args.prefix}/slots", missing_ok=True)
                if desc is not None:
                    seen_holders = max(seen_holders, len(desc.holders))
                    seen_waiters = max(seen_waiters, desc.waiters)
                await asyncio.wait([done], timeout=0.05)
            await done
            print(f"server view: at most {seen_holders} holders and {seen_waiters} waiters at once")
            await exlib.check_nothing_held(client, args.prefix)
        tally = referee.read()

    print(f"referee: {tally['uses']} uses, at most {tally['max']} at once")
    check(tally["uses"] == WORKERS * ROUNDS, f"{tally['uses']} uses, expected {WORKERS * ROUNDS}")
    check(tally["in_use"] == 0, f"{tally['in_use']} slots still counted in use")
    check(tally["max"] <= CAPACITY, f"{tally['max']} workers used the pool at once; it has {CAPACITY} slots")
    check(tally["max"] == CAPACITY, f"at most {tally['max']} at once: the pool was never used to the full")
    if not args.unguarded:
        check(seen_holders <= CAPACITY, f"the server showed {seen_holders} holders of a {CAPACITY}-slot semaphore")
    return f"{WORKERS} workers, {tally['uses']} uses, at most {tally['max']} slots in use at once (capacity {CAPACITY})"


if __name__ == "__main__":
    parser = exlib.parser("pool", __doc__)
    parser.add_argument("--unguarded", action="store_true", help="workers skip the semaphore: the check must fail")
    exlib.main(run(parser.parse_args()), "pool")
