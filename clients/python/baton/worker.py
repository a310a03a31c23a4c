"""Worker: the side of Tasks that runs them (baton.v1.Tasks Take / Heartbeat /
Complete).

Handler style (the worker takes, heartbeats, completes or fails for you):

    worker = client.worker("thumbnails", concurrency=4)

    @worker.handler
    async def make_thumbnail(job: baton.Job) -> bytes:
        return render(job.value)          # the result; raising fails the attempt

    await worker.run()                    # until cancelled (or max_tasks=N)

By hand:

    job = await worker.take()             # heartbeats start at once
    try:
        await job.complete(render(job.value))
    except Exception as e:
        await job.fail(e)

A taken job runs under the client's session and a lease of `ttl` seconds that
a background task renews (Tasks/Heartbeat every ttl/3) until the job is
completed or failed. If this process dies, the session or the lease ends and
the task goes back to pending for another attempt (up to its max_attempts).

Cancellation from elsewhere (Task.cancel()) reaches a running job through its
next heartbeat: `job.cancelled` is set, and under run() the handler's asyncio
task is cancelled; the worker then completes the job, which the server records
as cancelled. If run() itself is cancelled, the jobs in progress are failed
(not finally) so that they are retried elsewhere.

Every take carries a request_id (Rpc.acquire): if a take() is cancelled just
as a task was handed over, or its answer was lost (a unary call that ended
CANCELLED, a broken stream), the job is recovered, kept (heartbeating) and
returned by the next take() of this worker; close() fails (not finally) the
jobs kept that way.

RPCs: take -> Tasks/Take, heartbeat -> Tasks/Heartbeat, complete / fail ->
Tasks/Complete.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from ._rpc import set_duration
from .codec import Codec, payload_bytes
from .errors import BatonError, FailedPreconditionError, RemoteError, SessionLostError, UnavailableError
from .tasks import state_name
from .v1 import task_pb2

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("baton")

Handler = Callable[["Job"], Union[Any, Awaitable[Any]]]


class Job:
    """A task taken by this worker: `id`, `attempt` (1 for the first), the
    payload as `value` (decoded by the codec), `data` and `text`."""

    def __init__(self, worker: "Worker", resp: task_pb2.TakeTaskResponse) -> None:
        self.worker = worker
        self.id = resp.task_id
        self.attempt = resp.attempt
        self.data = payload_bytes(resp.payload, resp.text)
        self.value = worker.codec.decode(self.data)
        #: Set when the server says the task was cancelled (see module doc).
        self.cancelled = asyncio.Event()
        self.finished = False
        #: The server no longer counts this attempt as running (a heartbeat
        #: was refused): its lease or session ran out, or it was retried.
        self.lost = False
        self._heartbeats: Optional[asyncio.Task[None]] = None
        self._on_cancel: Optional[Callable[[], Any]] = None

    def __repr__(self) -> str:
        return f"<baton.Job {self.id!r} attempt={self.attempt}>"

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def _start_heartbeats(self) -> None:
        if self._heartbeats is None:
            self._heartbeats = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    def _stop_heartbeats(self) -> None:
        if self._heartbeats is not None and self._heartbeats is not asyncio.current_task():
            self._heartbeats.cancel()

    async def _heartbeat_loop(self) -> None:
        interval = self.worker.heartbeat_interval
        while not self.finished:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
            except FailedPreconditionError as e:
                # Not running with this attempt any more (lease lost, retried).
                self.lost = True
                log.warning("baton: job %s lost: %s", self.id, e)
                return
            except BatonError as e:
                log.info("baton: heartbeat of job %s failed: %s", self.id, e)

    def _mark_cancelled(self) -> None:
        if not self.cancelled.is_set():
            self.cancelled.set()
            if self._on_cancel is not None:
                self._on_cancel()

    async def heartbeat(self) -> bool:
        """Tasks/Heartbeat: renews the lease; returns True if the task was
        cancelled (stop, then complete it)."""
        client = self.worker._client
        req = task_pb2.TaskHeartbeatRequest(task_id=self.id, attempt=self.attempt)
        resp = await client._rpc.call("tasks.Heartbeat", req)
        if resp.cancelled:
            self._mark_cancelled()
        return resp.cancelled

    async def _complete(self, req: task_pb2.CompleteTaskRequest) -> str:
        client = self.worker._client
        req.task_id = self.id
        req.attempt = self.attempt
        self.finished = True
        self._stop_heartbeats()
        resp = await client._rpc.call("tasks.Complete", req)
        if resp.cancelled:
            self._mark_cancelled()
        return state_name(resp.state)

    async def complete(self, result: Any = None) -> str:
        """Tasks/Complete with a result (encoded by the codec; None: empty).
        Returns the task's state: "succeeded", or "cancelled" if it had been
        cancelled meanwhile."""
        req = task_pb2.CompleteTaskRequest()
        if result is not None or self.worker.codec.name == "json":
            data, text = self.worker.codec.encode(result)
            if data is not None:
                req.result = data
            else:
                req.text = text or ""
        return await self._complete(req)

    async def fail(self, error: Union[BaseException, str], *, code: int = 0, final: bool = False) -> str:
        """Tasks/Complete with an error: the attempt failed. The task is
        retried while attempts remain, unless `final`. Returns the state
        ("pending" when it will be retried, "failed", "cancelled")."""
        if isinstance(error, RemoteError):
            message, code = error.message, code or error.error_code
        elif isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
        else:
            message = str(error)
        req = task_pb2.CompleteTaskRequest(error=task_pb2.TaskError(code=code, message=message), final=final)
        return await self._complete(req)

    async def __aenter__(self) -> "Job":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Completes the job if the block did not: with no result after a
        clean exit (or a remote cancellation), failed (not finally) after an
        exception or a local cancellation."""
        if self.finished:
            return
        if exc is None or self.cancelled.is_set():
            await self.complete()
        else:
            await self.fail(exc if isinstance(exc, Exception) else "the worker was cancelled")


class Worker:
    """Takes and runs the tasks of one work queue. Create with
    `client.worker(queue, ttl=30.0, concurrency=1, codec=None)`."""

    def __init__(
        self,
        client: "Client",
        queue: str,
        *,
        ttl: float = 30.0,
        concurrency: int = 1,
        heartbeat_interval: Optional[float] = None,
        codec: Optional[Codec] = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._client = client
        self.queue = queue
        self.ttl = ttl
        self.concurrency = concurrency
        self.heartbeat_interval = heartbeat_interval or max(ttl / 3.0, 0.05)
        self.codec = codec or client.codec
        self._handler: Optional[Handler] = None
        self._kept: list[Job] = []
        #: Jobs completed (any outcome) by run().
        self.processed = 0

    def __repr__(self) -> str:
        return f"<baton.Worker {self.queue!r}>"

    def handler(self, fn: Handler) -> Handler:
        """Decorator: the function run() calls for each job."""
        self._handler = fn
        return fn

    async def take(self, timeout: Optional[float] = None) -> Job:
        """Tasks/Take: the oldest pending task, waiting while there is none
        (at most `timeout` seconds: DeadlineExceededError). Heartbeats start
        at once."""
        while self._kept:
            job = self._kept.pop(0)
            # A kept job may have been given back by the server meanwhile (a
            # unary Take's cancellation is processed there after our retry
            # with its request_id took the task): hand out only a live one.
            if job.finished or job.lost:
                continue
            try:
                await job.heartbeat()
            except asyncio.CancelledError:
                self._kept.insert(0, job)  # still ours: the next take gets it
                raise
            except FailedPreconditionError as e:
                job.lost = True
                job._stop_heartbeats()
                log.info("baton: kept job %s was given back by the server: %s", job.id, e)
                continue
            return job
        client = self._client
        req = task_pb2.TakeTaskRequest(queue=self.queue, session_id=await client._session_for_request())
        set_duration(req, "ttl", self.ttl)
        set_duration(req, "timeout", timeout)

        async def undo(resp: task_pb2.TakeTaskResponse) -> None:
            # Taken although the caller gave up (or its answer was lost and
            # recovered): kept, heartbeating, for this worker's next take.
            if any(j.id == resp.task_id and j.attempt == resp.attempt for j in self._kept):
                return  # recovered twice (a replay of the same attempt)
            job = Job(self, resp)
            job._start_heartbeats()
            self._kept.append(job)

        # On the unary transport a cancelled Take is not retried with its
        # request_id: batond processes the cancellation of the first call
        # after the retry and gives back (Unstart) the task the retry took, by
        # request_id. Such a Take leaves the task running unseen until its
        # lease runs out (then it is retried), as before request_ids.
        resp = await client._rpc.acquire("tasks.Take", req, undo=undo, recover_cancelled_unary=False)
        job = Job(self, resp)
        job._start_heartbeats()
        return job

    async def run(self, handler: Optional[Handler] = None, *, max_tasks: Optional[int] = None) -> int:
        """Runs `handler(job)` (or the @handler function) for each task, with
        `concurrency` jobs at once, until cancelled or `max_tasks` jobs are
        done. The handler's return value completes the job; an exception
        fails the attempt. A take that fails because the connection broke or
        the session was lost is retried (the client reconnects, with a new
        session after a loss).
        Returns the number of jobs processed."""
        fn = handler or self._handler
        if fn is None:
            raise ValueError("no handler: pass one to run() or decorate one with @worker.handler")
        reserved = [0]

        async def loop() -> None:
            backoff = 0.05
            while max_tasks is None or reserved[0] < max_tasks:
                reserved[0] += 1
                try:
                    job = await self.take()
                except (UnavailableError, SessionLostError) as e:
                    # The connection broke, or the session was lost: the
                    # client reconnects (with a new session). Keep serving.
                    reserved[0] -= 1
                    log.info("baton: worker %r: take failed (%s); retrying", self.queue, e)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                except BaseException:
                    reserved[0] -= 1
                    raise
                backoff = 0.05
                await self._process(fn, job)

        loops = [asyncio.ensure_future(loop()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*loops)
        finally:
            for lp in loops:
                lp.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        return self.processed

    async def _process(self, fn: Handler, job: Job) -> None:
        async def call() -> Any:
            result = fn(job)
            if inspect.isawaitable(result):
                result = await result
            return result

        work = asyncio.ensure_future(call())
        job._on_cancel = work.cancel
        if job.cancelled.is_set():
            work.cancel()
        try:
            result = await work
        except asyncio.CancelledError:
            if job.cancelled.is_set() and not _cancelling():
                await job.complete()  # recorded as cancelled
                self.processed += 1
                return
            await asyncio.shield(self._fail_quietly(job, "the worker was stopped"))
            raise
        except Exception as e:
            await self._finish(job, job.fail(e))
        else:
            await self._finish(job, job.complete(result))
        self.processed += 1

    @staticmethod
    async def _finish(job: Job, outcome: Awaitable[Any]) -> None:
        """Reports a job's outcome. A job lost meanwhile (its run_timeout or
        lease ran out, so the server retried or failed it) is refused with
        FAILED_PRECONDITION: that ends this job, not the worker."""
        try:
            await outcome
        except FailedPreconditionError as e:
            log.warning("baton: job %s was lost before it finished: %s", job.id, e)

    @staticmethod
    async def _fail_quietly(job: Job, message: str) -> None:
        if job.finished:
            return
        try:
            await job.fail(message)
        except BatonError as e:
            log.info("baton: failing job %s failed: %s", job.id, e)

    async def close(self) -> None:
        """Fails (not finally) the jobs kept from cancelled takes, so that
        they are retried at once rather than after the session ends."""
        kept, self._kept = self._kept, []
        for job in kept:
            await self._fail_quietly(job, "the worker closed before running it")


def _cancelling() -> bool:
    """Whether the current asyncio task has a cancellation request pending
    (Python 3.11+; False before)."""
    task = asyncio.current_task()
    return bool(task is not None and getattr(task, "cancelling", lambda: 0)())
