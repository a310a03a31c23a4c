"""Tasks (create_task / gather / wait / TaskGroup) and the Worker side."""

import asyncio

import pytest

import baton


async def _serve(worker: baton.Worker, handler, n: int) -> int:
    return await worker.run(handler, max_tasks=n)


async def test_create_task_and_await_result(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "42.png", max_attempts=3)
    assert t.queue == q and t.id.startswith(q + "#")
    assert not await t.done()
    worker = (await connect()).worker(q)
    job = await worker.take(timeout=5)
    assert (job.id, job.text, job.attempt) == (t.id, "42.png", 1)
    assert await job.complete("thumb-42.png") == "succeeded"
    assert await t == b"thumb-42.png"
    o = await t.outcome()
    assert o.state == "succeeded" and o.attempts == 1
    assert await client.task(t.id).done()


async def test_failure_is_retried_then_final(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "x", max_attempts=2)
    w = (await connect()).worker(q)
    job = await w.take(timeout=5)
    assert await job.fail(ValueError("flaky")) == "pending"
    job = await w.take(timeout=5)
    assert job.attempt == 2
    assert await job.fail("still broken", code=7) == "failed"
    with pytest.raises(baton.RemoteError) as e:
        await t
    assert e.value.error_code == 7 and "still broken" in e.value.message


async def test_final_failure_skips_retries(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "x", max_attempts=5)
    w = (await connect()).worker(q)
    job = await w.take(timeout=5)
    assert await job.fail("bad input", final=True) == "failed"
    assert (await t.outcome()).attempts == 1


async def test_worker_run_with_decorated_handler(client, connect, name):
    q = name("work")
    tasks = [await client.create_task(q, f"{i}", codec=baton.TEXT) for i in range(5)]
    worker = (await connect()).worker(q, concurrency=2, codec=baton.TEXT)

    @worker.handler
    async def square(job: baton.Job) -> str:
        return str(int(job.value) ** 2)

    assert await worker.run(max_tasks=5) == 5
    assert await client.gather(*tasks) == ["0", "1", "4", "9", "16"]


async def test_handler_exception_fails_the_attempt(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "x")
    worker = (await connect()).worker(q)

    def boom(job):
        raise RuntimeError("kaputt")

    await worker.run(boom, max_tasks=1)
    with pytest.raises(baton.RemoteError, match="kaputt"):
        await t


async def test_cancel_pending_and_running_task(client, connect, name):
    q = name("work")
    pending = await client.create_task(q, "later", delay=30)
    assert await pending.cancel()
    with pytest.raises(baton.RemoteCancelledError):
        await pending
    running = await client.create_task(q, "long")
    worker = (await connect()).worker(q, ttl=0.6)  # heartbeats every 0.2 s
    started = asyncio.Event()

    async def long_job(job: baton.Job) -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    run = asyncio.create_task(worker.run(long_job, max_tasks=1))
    await asyncio.wait_for(started.wait(), 5)
    assert await running.cancel()
    # The next heartbeat tells the worker; the handler is cancelled and the
    # task ends as cancelled.
    assert await asyncio.wait_for(run, 5) == 1
    assert (await running.outcome(timeout=5)).state == "cancelled"


async def test_heartbeats_keep_a_long_job(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "slow")
    worker = (await connect()).worker(q, ttl=0.5)

    async def slow(job):
        await asyncio.sleep(1.5)  # three leases long
        return "done"

    await worker.run(slow, max_tasks=1)
    assert await t == b"done"


async def test_worker_stopped_midway_fails_job_for_retry(client, connect, name):
    q = name("work")
    t = await client.create_task(q, "x", max_attempts=2)
    c = await connect()
    started = asyncio.Event()

    async def stuck(job):
        started.set()
        await asyncio.sleep(30)

    run = asyncio.create_task(c.worker(q).run(stuck))
    await asyncio.wait_for(started.wait(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    job = await c.worker(q).take(timeout=5)
    assert job.attempt == 2
    await job.complete("ok")
    assert await t == b"ok"


async def test_wait_first_completed(client, connect, name):
    q = name("work")
    a = await client.create_task(q, "a")
    b = await client.create_task(q, "b")
    w = (await connect()).worker(q)
    job = await w.take(timeout=5)
    await job.complete("done")
    done, pending = await client.wait([a, b], return_when=baton.FIRST_COMPLETED, timeout=5)
    assert done == {client.task(job.id)} and len(pending) == 1
    done, pending = await client.wait([a, b], timeout=0.1)
    assert len(done) == 1 and len(pending) == 1


async def test_gather_raises_first_failure_or_collects(client, connect, name):
    q = name("work")
    ok = await client.create_task(q, "ok")
    bad = await client.create_task(q, "bad")
    w = (await connect()).worker(q)
    for _ in range(2):
        job = await w.take(timeout=5)
        if job.text == "ok":
            await job.complete("fine")
        else:
            await job.fail("nope", final=True)
    with pytest.raises(baton.RemoteError):
        await client.gather(ok, bad)
    results = await client.gather(ok, bad, return_exceptions=True)
    assert results[0] == b"fine" and isinstance(results[1], baton.RemoteError)


async def test_task_group_failure_cancels_siblings(client, connect, name):
    q = name("work")
    w = (await connect()).worker(q)
    with pytest.raises(ExceptionGroup) as e:
        async with client.task_group(q) as tg:
            await tg.create_task("fails")
            sibling = await tg.create_task("sibling")
            job = await w.take(timeout=5)
            assert job.text == "fails"
            await job.fail("boom", final=True)
    assert [str(x) for x in e.value.exceptions] == ["boom"]
    assert (await sibling.outcome()).state == "cancelled"


async def test_task_group_success(client, connect, name):
    q = name("work")
    worker = (await connect()).worker(q)
    serving = asyncio.create_task(worker.run(lambda job: job.text.upper(), max_tasks=2))
    async with client.task_group(q) as tg:
        await tg.create_task("a")
        await tg.create_task("b")
    assert await tg.results() == [b"A", b"B"]
    await serving


async def test_task_group_body_error_cancels_tasks(client, name):
    q = name("work")
    with pytest.raises(KeyError):
        async with client.task_group(q) as tg:
            t = await tg.create_task("x")
            raise KeyError("body failed")
    assert (await t.outcome()).state == "cancelled"


async def test_unknown_task_is_not_found(client, name):
    with pytest.raises(baton.NotFoundError):
        await client.task(name("work") + "#999").outcome(timeout=0)
