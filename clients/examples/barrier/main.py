"""Workers meeting at a barrier, phase after phase.

Three worker processes (worker.py) each go through three phases (load,
transform, save) of uneven length and wait at the barrier <prefix>/phase
(parties 3) after each one. The claim: nobody starts a phase before everyone
has finished the previous one, and each trip of the barrier hands out the
arrival indexes 0, 1, 2.

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

PARTIES, PHASES = 3, 3


async def run(args) -> str:
    workers = [
        await exlib.spawn(f"w{i}", HERE / "worker.py", *exlib.common_args(args), "--name", f"w{i}",
                          "--parties", str(PARTIES))
        for i in range(1, PARTIES + 1)
    ]
    for w in workers:
        await w.wait_ok()
    async with baton.Client(args.addr, label="barrier main") as client:
        state = await client.barrier(f"{args.prefix}/phase").state()
        await exlib.check_nothing_held(client, args.prefix)

    by_phase = {p: [r for w in workers for r in w.reports if r["phase"] == p] for p in range(PHASES)}
    for p, rows in by_phase.items():
        check(len(rows) == PARTIES, f"phase {p}: {len(rows)} reports")
        check(sorted(r["index"] for r in rows) == list(range(PARTIES)), f"phase {p}: indexes {[r['index'] for r in rows]}")
        last_arrival = max(r["end"] for r in rows)
        check(all(r["passed"] >= last_arrival for r in rows), f"phase {p}: someone passed the barrier early")
        if p + 1 < PHASES:
            next_start = min(r["start"] for r in by_phase[p + 1])
            check(next_start >= last_arrival,
                  f"phase {p + 1} started {last_arrival - next_start:.3f} s before phase {p} was finished by all")
            print(f"phase {p}: last worker done at +{last_arrival - by_phase[0][0]['start']:.2f} s, "
                  f"phase {p + 1} started at +{next_start - by_phase[0][0]['start']:.2f} s")
    check(state.n_waiting == 0 and not state.broken, f"the barrier is left {state}")
    return f"{PARTIES} workers through {PHASES} phases in step, nobody ahead of the others"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("barrier", __doc__).parse_args()), "barrier")
