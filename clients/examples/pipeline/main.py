"""A pipeline over queues: producer -> 3 workers -> aggregator, each a process.

producer.py puts 1..N into <prefix>/raw (bounded: maxsize 10). Three
workers (worker.py) square them into <prefix>/results, acknowledging each
number only after its result is queued; one of them crashes on its 3rd item,
holding it unacknowledged. The aggregator (aggregator.py) consumes the
results. This program waits with Queues/Join until every item of both queues
is acknowledged, stops everyone with an event, and checks the aggregator's
tally: every number aggregated exactly once, the crashed worker's item
included (redelivered once its session ended).

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

COUNT = 40


async def run(args) -> str:
    common = exlib.common_args(args)
    aggregator = await exlib.spawn("aggregator", HERE / "aggregator.py", *common)
    workers = [
        await exlib.spawn("w1", HERE / "worker.py", *common, "--name", "w1", "--crash-on", "3"),
        await exlib.spawn("w2", HERE / "worker.py", *common, "--name", "w2"),
        await exlib.spawn("w3", HERE / "worker.py", *common, "--name", "w3"),
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="pipeline main") as client:
        raw = client.queue(f"{args.prefix}/raw", maxsize=10)
        results = client.queue(f"{args.prefix}/results")
        # Start the producer once the workers wait in Queues/Get (and the
        # aggregator's stream is open) so that the crash happens mid-stream.
        await exlib.wait_for_waiters(client, raw.name, len(workers))
        producer = await exlib.spawn("producer", HERE / "producer.py", *common, "--count", str(COUNT))
        await producer.wait_ok()

        crashed = await workers[0].wait(timeout=30)
        check(crashed == 3, f"w1 should have crashed with status 3, exited with {crashed}")
        await raw.join(timeout=30)  # every number acknowledged (the crashed one too, by another worker)
        await results.join(timeout=30)  # every result aggregated and acknowledged
        await client.event(f"{args.prefix}/stop").set()
        tally = await client.future(f"{args.prefix}/tally").result(timeout=30)
        for w in workers[1:]:
            await w.wait_ok()
        await aggregator.wait_ok()
        info = await raw.info()
        await exlib.check_nothing_held(client, args.prefix)

    counts = {int(n): c for n, c in tally["counts"].items()}
    missing = [n for n in range(1, COUNT + 1) if n not in counts]
    twice = [n for n, c in counts.items() if c != 1]
    check(not missing, f"never aggregated: {missing}")
    check(not twice, f"aggregated more than once: {twice}")
    check(set(counts) == set(range(1, COUNT + 1)), f"unexpected items: {sorted(set(counts) - set(range(1, COUNT + 1)))}")
    check(tally["sum"] == sum(n * n for n in range(1, COUNT + 1)), f"wrong sum of squares {tally['sum']}")
    check(len(tally["redelivered"]) == 1, f"expected the crashed worker's one item redelivered, got {tally['redelivered']}")
    check("w1" not in tally["by"] or tally["by"]["w1"] == 2, f"w1 delivered {tally['by'].get('w1')} results before crashing on its 3rd")
    check(info is None or info.total_acked == info.total_put == COUNT,
          f"raw queue: {info and info.total_put} put, {info and info.total_acked} acknowledged")
    print(f"results by worker: {dict(tally['by'])}; redelivered after the crash: {tally['redelivered']}")
    return f"{COUNT} items, each aggregated exactly once; item {tally['redelivered'][0]} survived a worker crash"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("pipeline", __doc__).parse_args()), "pipeline")
