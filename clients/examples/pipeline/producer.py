"""The producer: puts the numbers 1..N into the queue <prefix>/raw and exits.

    python producer.py --addr 127.0.0.1:7411 --prefix examples/pipeline/demo --count 40
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def produce(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label="pipeline producer") as client:
        raw = client.queue(f"{args.prefix}/raw", maxsize=10)  # a bounded queue: put waits for room
        for n in range(1, args.count + 1):
            await raw.put({"n": n})
        print(f"put {args.count} items", flush=True)


if __name__ == "__main__":
    parser = exlib.parser("pipeline", __doc__)
    parser.add_argument("--count", type=int, default=40)
    exlib.role(produce(parser.parse_args()))
