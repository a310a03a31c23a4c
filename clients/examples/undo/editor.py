"""The editor: types words into a document (a file), one edit at a time, and
pushes each edit onto the undo stack <prefix>/undo (a LIFO queue), then exits.
The stack lives on the server: another process can undo the edits later.

    python editor.py --addr 127.0.0.1:7411 --prefix examples/undo/demo --doc /tmp/doc.txt the quick brown fox
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def edit(args) -> None:
    doc = Path(args.doc)
    async with baton.Client(args.addr, codec=baton.JSON, label="undo editor") as client:
        undo = client.queue(f"{args.prefix}/undo", order="lifo")  # asyncio.LifoQueue
        for word in args.words:
            words = doc.read_text().split() if doc.exists() else []
            doc.write_text(" ".join(words + [word]))
            await undo.put({"op": "append", "word": word})
            print(f"typed {word!r}: {doc.read_text()!r}", flush=True)


if __name__ == "__main__":
    parser = exlib.parser("undo", __doc__)
    parser.add_argument("--doc", required=True, help="the document (a text file)")
    parser.add_argument("words", nargs="+")
    exlib.role(edit(parser.parse_args()))
