"""Undo: pops the last N edits off the undo stack <prefix>/undo (a LIFO queue:
the newest edit first) and reverts each one in the document.

    python undoer.py --addr 127.0.0.1:7411 --prefix examples/undo/demo --doc /tmp/doc.txt --steps 2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def undo(args) -> None:
    doc = Path(args.doc)
    async with baton.Client(args.addr, codec=baton.JSON, label="undo undoer") as client:
        stack = client.queue(f"{args.prefix}/undo", order="lifo")
        for _ in range(args.steps):
            edit = await stack.get_nowait()  # QueueEmpty (asyncio's) if nothing is left to undo
            words = doc.read_text().split()
            if edit.value["op"] != "append" or not words or words[-1] != edit.value["word"]:
                await edit.nack()  # leave it on the stack
                raise RuntimeError(f"cannot undo {edit.value} on {words}")
            doc.write_text(" ".join(words[:-1]))
            await edit.ack()  # the edit is undone: off the stack for good
            exlib.report(undone=edit.value["word"])
            print(f"undid {edit.value['word']!r}: {doc.read_text()!r}", flush=True)


if __name__ == "__main__":
    parser = exlib.parser("undo", __doc__)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--steps", type=int, default=1)
    exlib.role(undo(parser.parse_args()))
