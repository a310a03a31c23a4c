"""The aggregator: consumes <prefix>/results (a Queues/Consume stream),
tallies every result, acknowledges it, and when the event <prefix>/stop is
set publishes its tally as the future <prefix>/tally.

    python aggregator.py --addr 127.0.0.1:7411 --prefix examples/pipeline/demo
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def aggregate(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label="pipeline aggregator") as client:
        results = client.queue(f"{args.prefix}/results")
        seen: Counter[int] = Counter()
        total = 0
        by: Counter[str] = Counter()
        redelivered: list[int] = []

        async def consume() -> None:
            nonlocal total
            async with results.consume(prefetch=8) as stream:
                async for item in stream:
                    r = item.value
                    seen[r["n"]] += 1
                    total += r["square"]
                    by[r["by"]] += 1
                    if r["delivery"] > 1:
                        redelivered.append(r["n"])
                    await item.ack()

        await exlib.run_until_set(client.event(f"{args.prefix}/stop"), consume())
        tally = {"counts": seen, "sum": total, "by": by, "redelivered": redelivered}
        await client.future(f"{args.prefix}/tally").set_result(tally)
        print(f"aggregated {sum(seen.values())} results, sum of squares {total}", flush=True)


if __name__ == "__main__":
    exlib.role(aggregate(exlib.parser("pipeline", __doc__).parse_args()))
