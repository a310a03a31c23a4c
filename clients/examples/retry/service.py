"""An unreliable service: a worker on the work queue <prefix>/calls whose
answers follow a script, one entry per call: "hang" (never answers: sleeps
until cancelled), "fail" (raises ConnectionError) or "ok" (answers "pong").
After the script it answers "ok".

    python service.py --addr 127.0.0.1:7411 --prefix examples/retry/demo --script hang,fail,ok
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def serve(args) -> None:
    script = args.script.split(",")
    calls = 0
    async with baton.Client(args.addr, codec=baton.JSON, label="retry service") as client:
        worker = client.worker(f"{args.prefix}/calls", ttl=5, heartbeat_interval=0.1)

        @worker.handler
        async def answer(job: baton.Job) -> str:
            nonlocal calls
            calls += 1
            behaviour = script[calls - 1] if calls <= len(script) else "ok"
            exlib.report(call=calls, behaviour=behaviour, at=time.monotonic())
            print(f"call {calls} ({job.value}): {behaviour}", flush=True)
            if behaviour == "hang":
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    print(f"call {calls}: cancelled by the caller", flush=True)
                    exlib.report(cancelled=calls)
                    raise
            if behaviour == "fail":
                raise ConnectionError("connection reset by peer")
            return "pong"

        await exlib.run_until_set(client.event(f"{args.prefix}/stop"), worker.run())


if __name__ == "__main__":
    parser = exlib.parser("retry", __doc__)
    parser.add_argument("--script", default="hang,fail,ok")
    exlib.role(serve(parser.parse_args()))
