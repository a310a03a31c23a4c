"""A fetcher: a worker process that takes URLs from the work queue
<prefix>/fetch, downloads each one and returns what it got.

    python fetcher.py --addr 127.0.0.1:7411 --prefix examples/fetch/demo --name f1
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
import exlib  # noqa: E402

import baton  # noqa: E402


# No proxy, whatever the environment says: the site is local.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def download(url: str) -> bytes:
    with _opener.open(url, timeout=30) as resp:
        return resp.read()


async def fetcher(args) -> None:
    async with baton.Client(args.addr, codec=baton.JSON, label=f"fetcher {args.name}") as client:
        worker = client.worker(f"{args.prefix}/fetch")

        @worker.handler
        async def fetch(job: baton.Job) -> dict:
            url = job.value
            start = time.monotonic()
            body = await asyncio.to_thread(download, url)  # blocking I/O off the event loop
            print(f"fetched {url} ({len(body)} bytes, {time.monotonic() - start:.2f} s)", flush=True)
            return {"url": url, "bytes": len(body), "by": args.name}

        await exlib.run_until_set(client.event(f"{args.prefix}/done"), worker.run())


if __name__ == "__main__":
    parser = exlib.parser("fetch", __doc__)
    parser.add_argument("--name", required=True)
    exlib.role(fetcher(parser.parse_args()))
