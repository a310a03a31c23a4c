"""Fetching three slow URLs one after another, then all at once.

A local web site (slow_server.py) answers each page after a delay. Fetcher
processes (fetcher.py) take URLs from the work queue <prefix>/fetch. This
program submits the three URLs as Baton tasks: first sequentially (submit,
await, next), then concurrently (submit all, client.gather). Sequentially it
takes the sum of the delays; concurrently about the longest one.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

PAGES = {"news": 0.5, "weather": 0.4, "sports": 0.3}


async def run(args) -> str:
    site = await exlib.spawn("site", HERE / "slow_server.py")
    port = (await site.report("port"))["port"]
    urls = [f"http://127.0.0.1:{port}/{page}?delay={delay}" for page, delay in PAGES.items()]
    fetchers = [
        await exlib.spawn(f"f{i}", HERE / "fetcher.py", *exlib.common_args(args), "--name", f"f{i}")
        for i in range(1, len(urls) + 1)
    ]
    async with baton.Client(args.addr, codec=baton.JSON, label="fetch main") as client:
        queue = f"{args.prefix}/fetch"
        await exlib.wait_for_waiters(client, queue, len(fetchers))

        start = time.monotonic()
        one_by_one = []
        for url in urls:  # await each before submitting the next
            one_by_one.append(await (await client.create_task(queue, url)))
        sequential = time.monotonic() - start
        print(f"sequentially: {sequential:.2f} s")

        start = time.monotonic()
        tasks = [await client.create_task(queue, url) for url in urls]
        together = await client.gather(*tasks)
        concurrent = time.monotonic() - start
        print(f"concurrently: {concurrent:.2f} s, by {sorted(r['by'] for r in together)}")

        await client.event(f"{args.prefix}/done").set()
        for f in fetchers:
            await f.wait_ok()
        site.kill()
        await exlib.check_nothing_held(client, args.prefix)

    for results in (one_by_one, together):
        check([r["url"] for r in results] == urls, "results do not match the URLs, in order")
        check(all(r["bytes"] > 0 for r in results), "an empty page")
    total, longest = sum(PAGES.values()), max(PAGES.values())
    check(sequential >= total, f"sequential fetches took {sequential:.2f} s, less than the sum of delays {total} s")
    check(concurrent >= longest, f"concurrent fetches took {concurrent:.2f} s, less than the longest delay")
    check(concurrent < (total + longest) / 2, f"concurrent fetches took {concurrent:.2f} s: not concurrent")
    check(concurrent < sequential * 0.75, f"concurrent {concurrent:.2f} s is not faster than sequential {sequential:.2f} s")
    return f"sequential {sequential:.2f} s (sum of delays {total:.1f} s), concurrent {concurrent:.2f} s (longest {longest} s)"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("fetch", __doc__).parse_args()), "fetch")
