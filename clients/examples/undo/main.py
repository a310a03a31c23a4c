"""An undo stack that outlives the editor: a LIFO queue.

The editor process (editor.py) types a sentence into a document, pushing
every edit onto <prefix>/undo (order "lifo"), and exits. A second process
(undoer.py) undoes the last three edits: it must get them newest first. A
third process undoes one more. What is left on the stack is the older edits,
in order.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

WORDS = "the quick brown fox jumps over the lazy dog".split()


async def run(args) -> str:
    common = exlib.common_args(args)
    with tempfile.TemporaryDirectory(prefix="baton-undo-") as tmp:
        doc = Path(tmp) / "doc.txt"
        editor = await exlib.spawn("editor", HERE / "editor.py", *common, "--doc", str(doc), *WORDS)
        await editor.wait_ok()
        first = await exlib.spawn("undo-3", HERE / "undoer.py", *common, "--doc", str(doc), "--steps", "3")
        await first.wait_ok()
        second = await exlib.spawn("undo-1", HERE / "undoer.py", *common, "--doc", str(doc), "--steps", "1")
        await second.wait_ok()
        text = doc.read_text()

        async with baton.Client(args.addr, codec=baton.JSON, label="undo main") as client:
            stack = client.queue(f"{args.prefix}/undo", order="lifo")
            left = await stack.info()
            check(left is not None and left.size == len(WORDS) - 4, f"stack after 4 undos: {left}")
            # Drain what is left: still newest first.
            rest = []
            while True:
                try:
                    edit = await stack.get_nowait()
                except baton.QueueEmpty:
                    break
                rest.append(edit.value["word"])
                await edit.ack()
            await exlib.check_nothing_held(client, args.prefix)

    undone = [r["undone"] for r in first.reports + second.reports]
    print(f"undone: {undone}; document now {text!r}; still on the stack: {rest}")
    check(undone == WORDS[::-1][:4], f"undone in the order {undone}, expected newest first {WORDS[::-1][:4]}")
    check(text == " ".join(WORDS[:-4]), f"document is {text!r}")
    check(rest == WORDS[:-4][::-1], f"the rest of the stack came out as {rest}")
    return f"{len(WORDS)} edits by one process, the last 4 undone newest-first by two others"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("undo", __doc__).parse_args()), "undo")
