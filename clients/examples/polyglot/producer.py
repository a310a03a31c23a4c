"""The Python side of the polyglot example: the producer. Once the Go
consumer and the Node service both wait on the event <prefix>/open, it opens
the shop (Events/Set: it must wake both), puts N orders as JSON into the
queue <prefix>/orders, waits until every one is acknowledged (Queues/Join),
then checks the total the Go consumer published (future <prefix>/total) and
the receipt the Node service issued for it (future <prefix>/receipt).

    python producer.py --addr 127.0.0.1:7411 --prefix examples/polyglot/demo --count 20 --waiters 2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402

ITEMS = ["tea", "coffee", "scone", "bagel", "juice"]


async def produce(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label="polyglot producer") as client:
        open_ = client.event(f"{args.prefix}/open")
        await exlib.wait_for_waiters(client, open_.name, args.waiters, timeout=30)
        woken = await open_.set()
        print(f"shop open: woke {woken} waiting processes", flush=True)

        orders = client.queue(f"{args.prefix}/orders")
        expected = 0
        for i in range(1, args.count + 1):
            amount = 150 + 25 * i
            expected += amount
            await orders.put({"id": i, "item": ITEMS[i % len(ITEMS)], "amount_cents": amount})
        print(f"put {args.count} orders worth {expected} cents", flush=True)
        await orders.join(timeout=30)  # the Go consumer acknowledged every one

        text = client.future(f"{args.prefix}/total", codec=baton.TEXT)
        total = int(await text.result(timeout=30))
        receipt = await client.future(f"{args.prefix}/receipt", codec=baton.TEXT).result(timeout=30)
        print(f"Go says the total is {total} cents; Node says {receipt!r}", flush=True)
        exlib.report(woken=woken, expected=expected, total=total, receipt=receipt)


if __name__ == "__main__":
    parser = exlib.parser("polyglot", __doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--waiters", type=int, default=2, help="processes to wait for on the event")
    exlib.role(produce(parser.parse_args()))
