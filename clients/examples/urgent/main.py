"""Urgent work first: a priority queue shared by a dispatcher and a responder.

This program is the dispatcher. It queues routine work (priority 10) and
urgent work (priority 0) in a mixed order, then opens the event the responder
process (responder.py) waits on. The responder must handle everything urgent
first, and each class in the order it was queued (FIFO among equals). Then,
while the responder is busy with routine work, one more urgent item arrives:
it must be handled next, ahead of the routine work still waiting.

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

URGENT, ROUTINE = 0, 10
FIRST_BATCH = [
    ("refill paper", ROUTINE),
    ("server room on fire", URGENT),
    ("water plants", ROUTINE),
    ("order pens", ROUTINE),
    ("CEO locked out", URGENT),
    ("tidy desk", ROUTINE),
]
LATER_ROUTINE = ["file reports", "update wiki", "sort mail", "clean fridge"]
LATE_URGENT = "database down"


async def run(args) -> str:
    responder = await exlib.spawn("responder", HERE / "responder.py", *exlib.common_args(args))
    async with baton.Client(args.addr, codec=baton.JSON, label="urgent dispatcher") as client:
        work = client.queue(f"{args.prefix}/work", order="priority")
        for text, priority in FIRST_BATCH:
            await work.put({"text": text, "seconds": 0.05}, priority=priority)
        open_ = client.event(f"{args.prefix}/open")
        await exlib.wait_for_waiters(client, open_.name, 1)
        await open_.set()

        # First batch: urgent ones first, then routine, each in queued order.
        expected = [t for t, p in FIRST_BATCH if p == URGENT] + [t for t, p in FIRST_BATCH if p == ROUTINE]
        # More routine work; the first item is a long one (0.5 s).
        for i, text in enumerate(LATER_ROUTINE):
            await work.put({"text": text, "seconds": 0.5 if i == 0 else 0.05}, priority=ROUTINE)

        # Wait until the responder is on that long item, with the others
        # waiting, then raise the alarm.
        async def busy_with_later_work() -> bool:
            return any(r["handling"] == LATER_ROUTINE[0] for r in responder.reports)

        await exlib.wait_until(busy_with_later_work, f"the responder to start on {LATER_ROUTINE[0]!r}")
        await work.put({"text": LATE_URGENT, "seconds": 0.05}, priority=URGENT)
        await work.join(timeout=30)
        await client.event(f"{args.prefix}/stop").set()
        await responder.wait_ok()
        await exlib.check_nothing_held(client, args.prefix)

    order = [r["handling"] for r in responder.reports]
    print("handled in this order: " + ", ".join(order))
    n = len(FIRST_BATCH)
    check(order[:n] == expected, f"first batch handled as {order[:n]}, expected {expected}")
    # The late urgent item overtakes the routine items that were waiting.
    late = order[n:]
    check(late[0] == LATER_ROUTINE[0], f"the item in progress was {late[0]!r}")
    check(late[1] == LATE_URGENT, f"after the alarm came {late[1]!r}, not {LATE_URGENT!r}")
    check(late[2:] == LATER_ROUTINE[1:], f"the waiting routine work came as {late[2:]}")
    return f"{len(order)} items; urgent ones first, the late alarm ahead of {len(LATER_ROUTINE) - 1} waiting routine items"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("urgent", __doc__).parse_args()), "urgent")
