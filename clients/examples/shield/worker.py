"""A worker for the backup jobs in <prefix>/jobs: each job sleeps for its
"seconds" and reports when it starts, finishes or is cancelled. Heartbeats
every 0.1 s, so a cancellation reaches it quickly.

A job can also be *lost*: when it runs past the run_timeout it was submitted
with, the server takes it away (and fails it, or retries it). The worker then
gets FailedPreconditionError when it completes it; it logs that and goes on.

    python worker.py --addr 127.0.0.1:7411 --prefix examples/shield/demo --name w1
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


async def work(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label=f"shield {args.name}") as client:
        worker = client.worker(f"{args.prefix}/jobs", ttl=5, heartbeat_interval=0.1)

        @worker.handler
        async def run_job(job: baton.Job) -> str:
            name, seconds = job.value["name"], job.value["seconds"]
            print(f"{name}: started ({seconds} s)", flush=True)
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                print(f"{name}: cancelled", flush=True)
                exlib.report(cancelled=name)
                raise
            print(f"{name}: finished", flush=True)
            exlib.report(finished=name, at=time.monotonic())
            return f"{name} done"

        async def serve() -> None:
            # Worker.run() ends with FailedPreconditionError when it completes
            # a job the server no longer counts as running (lost: run_timeout
            # or lease); such a job's outcome is already decided. Go on.
            while True:
                try:
                    await worker.run()
                except baton.FailedPreconditionError as e:
                    print(f"a job was lost: {e.details}", flush=True)

        await exlib.run_until_set(client.event(f"{args.prefix}/closed"), serve())


if __name__ == "__main__":
    parser = exlib.parser("shield", __doc__)
    parser.add_argument("--name", required=True)
    exlib.role(work(parser.parse_args()))
