#!/usr/bin/env python3
"""Recovery time and memory of a durable batond holding N live resources.

Starts batond on a fresh data directory (on disk), creates N events in the
set state (each a live resource) over one session stream, 1,000 operations a
message, then kill -9s it, restarts it on the same directory and measures:
the time from exec to the first served call (Admin/Describe of one event),
the log entries replayed, the data directory's size, and batond's resident
memory (VmRSS) before the kill and after the restart.

    .venv/bin/python bench/recovery.py [N] [SNAPSHOT_ENTRIES] [RESTART_SHARDS]
                                   (defaults: 1,000,000, batond's default, the same)

SNAPSHOT_ENTRIES is batond's --snapshot_entries: 0 replays the whole log; the
default restores the newest snapshot and replays only the log after it.
RESTART_SHARDS restarts with that --shards (the fill runs with 2): the
restart then re-shards the data directory first, and its time is included.

Uses the stubs and BatondProcess of tests/python/baton_helpers.py; BATOND
picks the binary (default build/service/batond).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

import grpc  # noqa: E402

import baton_helpers as h  # noqa: E402
from baton.v1 import admin_pb2, admin_pb2_grpc, stream_pb2, stream_pb2_grpc  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def dir_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


async def fill(addr: str, n: int, per_message: int = 1000) -> float:
    start = time.monotonic()
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = stream_pb2_grpc.StreamStub(ch)
        call = stub.Connect()
        hello = stream_pb2.StreamRequest()
        hello.hello.ttl.seconds = 600
        await call.write(hello)
        await call.read()  # welcome
        done = 0
        next_id = 1
        window = 20  # messages in flight
        sent = 0

        async def reader() -> None:
            nonlocal done
            while done < n:
                resp = await call.read()
                for r in resp.results:
                    if r.code != 0:
                        raise RuntimeError(f"op {r.id}: {r.code} {r.message}")
                done += len(resp.results)

        task = asyncio.create_task(reader())
        while sent < n:
            while sent - done > window * per_message:
                await asyncio.sleep(0.001)
            req = stream_pb2.StreamRequest()
            for _ in range(min(per_message, n - sent)):
                op = req.ops.add()
                op.id = next_id
                op.set_event.name = f"recovery/{next_id}"
                next_id += 1
            sent += len(req.ops)
            await call.write(req)
        await task
        await call.done_writing()
    return time.monotonic() - start


async def first_call(addr: str) -> None:
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        await stub.Describe(admin_pb2.DescribeRequest(name="recovery/1"), timeout=600)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    args = ["--max_resources", str(2 * n + 1000)]
    if len(sys.argv) > 2:
        args += ["--snapshot_entries", sys.argv[2]]
    restart_args = list(args)
    if len(sys.argv) > 3:
        args += ["--shards", "2"]
        restart_args += ["--shards", sys.argv[3]]
    data = tempfile.mkdtemp(prefix="baton-recovery-", dir=os.environ.get("TMPDIR", "/tmp"))
    server = h.BatondProcess(args, data_dir=data)
    server.STARTUP_TIMEOUT = 900.0
    addr = server.start()
    fill_s = asyncio.run(fill(addr, n))
    rss_before = rss_kib(server.proc.pid)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    snapshot_lines = [l for l in server.stderr_text().splitlines() if "snapshot at" in l]
    log_bytes = dir_bytes(data)

    wal_bytes = dir_bytes(os.path.join(data, "wal"))
    snap_bytes = dir_bytes(os.path.join(data, "snap")) if os.path.isdir(os.path.join(data, "snap")) else 0

    t0 = time.monotonic()
    server = h.BatondProcess(restart_args, data_dir=data)
    server.STARTUP_TIMEOUT = 900.0
    addr = server.start()
    asyncio.run(first_call(addr))
    recovered_s = time.monotonic() - t0
    rss_after = rss_kib(server.proc.pid)
    replayed = [l for l in server.stderr_text().splitlines() if "replayed" in l or "re-sharded" in l]
    server.terminate()
    os.system(f"rm -rf {data}")
    print(f"resources: {n}")
    print(f"fill: {fill_s:.1f} s ({n / fill_s:,.0f} ops/s, durable)")
    print(f"data directory: {log_bytes / 2**20:.1f} MiB (log {wal_bytes / 2**20:.1f} MiB, "
          f"snapshots {snap_bytes / 2**20:.1f} MiB)")
    print(f"restart to first served call: {recovered_s:.2f} s")
    print(f"RSS before kill: {rss_before / 1024:.0f} MiB; after recovery: {rss_after / 1024:.0f} MiB")
    print("\n".join(replayed) if replayed else "(no replay line)")
    print(f"snapshots taken while filling: {len(snapshot_lines)}")
    if snapshot_lines:
        print(f"the last: {snapshot_lines[-1]}")


if __name__ == "__main__":
    main()
