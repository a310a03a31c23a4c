"""The chef: cooks dishes concurrently with asyncio.gather, across processes.

Each dish is a Baton task (Tasks/Submit) in the work queue <prefix>/dishes;
cook processes (cook.py) take and cook them; the chef awaits them all with
client.gather (Tasks/Wait). With one cook per dish the meal is ready after
about the longest dish, not after the sum of all of them.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

DISHES = {"soup": 0.6, "pasta": 0.5, "bread": 0.4, "cake": 0.3, "salad": 0.2}


async def run(args) -> str:
    cooks = [
        await exlib.spawn(name, HERE / "cook.py", *exlib.common_args(args), "--name", name)
        for name in ("ann", "bob", "cat", "dan", "eve")[: args.cooks]
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="chef") as client:
        dishes = f"{args.prefix}/dishes"
        # Every cook waiting in Tasks/Take: the kitchen is staffed.
        await exlib.wait_for_waiters(client, dishes, len(cooks))

        start = time.monotonic()
        tasks = await asyncio.gather(
            *(client.create_task(dishes, {"name": n, "seconds": s}) for n, s in DISHES.items())
        )
        meals = await client.gather(*tasks)  # asyncio.gather, over Tasks/Wait
        elapsed = time.monotonic() - start

        for m in meals:
            print(f"{m['dish']:>6} by {m['cook']}: {m['start'] - start:.2f} s .. {m['end'] - start:.2f} s")
        longest, total = max(DISHES.values()), sum(DISHES.values())
        print(f"all {len(meals)} dishes in {elapsed:.2f} s; longest dish {longest} s, one after another {total:.1f} s")

        await client.event(f"{args.prefix}/closed").set()
        for c in cooks:
            await c.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    check([m["dish"] for m in meals] == list(DISHES), "gather returned the results out of order")
    check(elapsed >= longest, f"done in {elapsed:.2f} s, before the longest dish ({longest} s) could be cooked")
    # About the longest dish, not the sum: well under the sum, with room for a loaded machine.
    bound = (longest + total) / 2
    check(elapsed < bound, f"took {elapsed:.2f} s: not concurrent (longest {longest} s, sum {total:.1f} s)")
    cooked_by = {m["cook"] for m in meals}
    check(len(cooked_by) == len(cooks), f"only {sorted(cooked_by)} cooked: the dishes were not spread")
    return f"{len(DISHES)} dishes by {len(cooked_by)} cooks in {elapsed:.2f} s (longest {longest} s, sum {total:.1f} s)"


if __name__ == "__main__":
    parser = exlib.parser("chef", __doc__)
    parser.add_argument("--cooks", type=int, default=5, help="cook processes to start (1..5; default 5)")
    args = parser.parse_args()
    if not 1 <= args.cooks <= 5:
        parser.error("--cooks must be 1..5")
    exlib.main(run(args), "chef")
