// Tasks: submit, take, heartbeat, complete, fail and retry, cancel, wait,
// groups, and the worker loop.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  CancelledError,
  NotFoundError,
  NotHeldError,
  TaskCancelledError,
  TaskFailedError,
  TimeoutError,
} from "baton-client";

import { client, eventually, startBatond, uniq, type Server, TRANSPORTS, useTransport } from "./helpers";

let server: Server;
let a: BatonClient;
let worker: BatonClient;

before(async () => {
  server = await startBatond();
});

after(async () => {
  await a?.close();
  await worker?.close();
  await server?.stop();
});

// Every test runs on both transports: the session stream (the default) and unary calls.
for (const transport of TRANSPORTS) {
  describe(transport === "stream" ? "Tasks" : "Tasks (unary)", () => {
    before(async () => {
      await a?.close();
      await worker?.close();
      useTransport(transport);
      a = client(server.address);
      worker = client(server.address);
    });

    test("submit, take, complete, await", async () => {
      const queue = uniq("tasks");
      const handle = await a.tasks(queue).submit("42.png", { maxAttempts: 3 });
      assert.match(handle.id, /#/);
      const pending = await handle.await({ timeoutMs: 0 }).catch((e: unknown) => e);
      assert.ok(pending instanceof TimeoutError, "not done yet");
      const task = await worker.tasks(queue).take({ ttlMs: 5000 });
      assert.equal(task.id, handle.id);
      assert.equal(task.text, "42.png");
      assert.equal(task.attempt, 1);
      assert.deepEqual(await task.heartbeat(), { cancelled: false });
      const d = await a.tasks(queue).describe();
      assert.equal(d.tasks?.running, 1);
      assert.equal(d.holders[0]?.requestId, task.id);
      assert.deepEqual(await task.complete("thumb-42.png"), { state: "succeeded", cancelled: false });
      assert.equal((await handle.result()).toString(), "thumb-42.png");
      const out = await a.task(handle.id).await();
      assert.equal(out.state, "succeeded");
      assert.equal(out.attempts, 1);
      await assert.rejects(task.complete("again"), NotHeldError);
    });

    test("a failed attempt is retried while attempts remain; final failures stick", async () => {
      const queue = uniq("tasks");
      const handle = await a.tasks(queue).submit(Uint8Array.from([7]), { maxAttempts: 2 });
      const first = await worker.tasks(queue).take();
      assert.deepEqual([...first.payload], [7]);
      assert.equal((await first.fail({ code: 13, message: "flaky" })).state, "pending");
      const second = await worker.tasks(queue).take({ timeoutMs: 3000 });
      assert.equal(second.attempt, 2);
      assert.equal((await second.fail(new Error("still flaky"))).state, "failed");
      const err = await handle.result().catch((e: unknown) => e);
      assert.ok(err instanceof TaskFailedError);
      assert.equal(err.errorMessage, "still flaky");

      const final = await a.tasks(queue).submit("x", { maxAttempts: 5 });
      const t = await worker.tasks(queue).take();
      assert.equal((await t.fail({ code: 3, message: "bad input" }, { final: true })).state, "failed");
      const out = await final.await();
      assert.deepEqual(out.error, { code: 3, message: "bad input" });
      assert.equal(out.attempts, 1);
    });

    test("a worker that misses its heartbeat loses the task to the next attempt", async () => {
      const queue = uniq("tasks");
      const handle = await a.tasks(queue).submit("job", { maxAttempts: 2 });
      const lost = await worker.tasks(queue).take({ ttlMs: 100 });
      const retry = await a.tasks(queue).take({ timeoutMs: 3000 });
      assert.equal(retry.attempt, 2);
      await assert.rejects(lost.heartbeat(), NotHeldError);
      await retry.complete("ok");
      assert.equal((await handle.await()).attempts, 2);
    });

    test("cancel: a pending task at once, a running one at its next heartbeat", async () => {
      const queue = uniq("tasks");
      const pending = await a.tasks(queue).submit("p", { delayMs: 60_000 });
      assert.deepEqual(await pending.cancel(), { cancelled: true, state: "cancelled" });
      await assert.rejects(pending.result(), TaskCancelledError);
      const running = await a.tasks(queue).submit("r");
      const t = await worker.tasks(queue).take();
      const c = await running.cancel();
      assert.equal(c.cancelled, true);
      assert.deepEqual(await t.heartbeat(), { cancelled: true });
      assert.equal((await t.complete("done anyway")).cancelled, true);
      assert.equal((await running.await()).state, "cancelled");
      assert.equal((await running.cancel()).cancelled, false, "already done");
      await assert.rejects(a.task(`${queue}#999999`).await({ timeoutMs: 0 }), NotFoundError);
    });

    test("wait: first completed, all completed, with a timeout", async () => {
      const queue = uniq("tasks");
      const tq = a.tasks(queue);
      const h = [await tq.submit("0"), await tq.submit("1"), await tq.submit("2")];
      const none = await tq.wait(h, { mode: "first_completed", timeoutMs: 50 });
      assert.equal(none.done.length, 0);
      assert.equal(none.pending.length, 3);
      const firstDone = tq.wait(h, { mode: "first_completed" });
      const t0 = await worker.tasks(queue).take();
      await t0.complete("r0");
      const first = await firstDone;
      assert.deepEqual(
        first.done.map((o) => o.text),
        ["r0"],
      );
      assert.equal(first.pending.length, 2);
      const all = tq.wait(h.map((x) => x.id));
      for (let i = 0; i < 2; i++) await (await worker.tasks(queue).take()).complete(`r${i + 1}`);
      const everything = await all;
      assert.equal(everything.done.length, 3);
      assert.deepEqual(everything.pending, []);
    });

    test("a group is cancelled together when one task fails, except shielded ones", async () => {
      const queue = uniq("tasks");
      const group = a.tasks(queue).group("batch-1");
      const failing = await group.submit("fails");
      const sibling = await group.submit("sibling");
      const shielded = await group.submit("shielded", { shielded: true });
      const firstException = group.wait({ mode: "first_exception" });
      const t = await worker.tasks(queue).take();
      assert.equal(t.id, failing.id);
      await t.fail({ code: 2, message: "boom" }, { final: true });
      const r = await firstException;
      assert.ok(r.done.some((o) => o.taskId === failing.id && o.state === "failed"));
      assert.equal((await sibling.await()).state, "cancelled");
      const s = await worker.tasks(queue).take({ timeoutMs: 3000 });
      assert.equal(s.id, shielded.id, "the shielded task still runs");
      await s.complete("ok");
      const all = await group.wait();
      assert.equal(all.done.length, 3);
    });

    test("an aborted take takes nothing", async () => {
      const queue = uniq("tasks");
      const ac = new AbortController();
      const take = worker.tasks(queue).take({ signal: ac.signal });
      await eventually(async () => (await a.admin.tryDescribe(queue))?.waiters === 1, 5000, "taker waits");
      ac.abort();
      await assert.rejects(take, CancelledError);
      // The server removes the waiter when it sees the cancel. (A Submit that
      // reached the server before that could be granted to the cancelled taker:
      // stream.test.ts races that and checks the task is given back.)
      await eventually(async () => ((await a.admin.tryDescribe(queue))?.waiters ?? 0) === 0, 5000, "taker gone");
      const h = await a.tasks(queue).submit("later");
      const t = await worker.tasks(queue).take({ timeoutMs: 3000 });
      assert.equal(t.id, h.id);
      assert.equal(t.attempt, 1);
      await t.complete();
    });

    test("work() runs a handler per task, fails on throws, stops on its signal", async () => {
      const queue = uniq("tasks");
      const tq = a.tasks(queue);
      const ok = await Promise.all([1, 2, 3, 4].map((n) => tq.submit(String(n))));
      const bad = await tq.submit("bad");
      const slow = await tq.submit("slow");
      const stop = new AbortController();
      const seen: string[] = [];
      const running = worker.tasks(queue).work(
        async (task, signal) => {
          seen.push(task.text);
          if (task.text === "bad") throw Object.assign(new Error("cannot"), { code: 9 });
          if (task.text === "slow") {
            await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
            return "stopped";
          }
          return `done ${task.text}`;
        },
        { signal: stop.signal, concurrency: 2, ttlMs: 3000, heartbeatIntervalMs: 50 },
      );
      for (const h of ok) assert.equal((await h.result()).toString(), `done ${(await h.await()).text.slice(5)}`);
      const err = await bad.result().catch((e: unknown) => e);
      assert.ok(err instanceof TaskFailedError);
      assert.equal(err.errorCode, 9);
      await eventually(() => seen.includes("slow"), 5000, "slow task running");
      await slow.cancel();
      assert.equal((await slow.await()).state, "cancelled");
      stop.abort();
      await running;
      assert.equal(seen.length, 6);
    });
  });
}
