// Timers: one-shot and periodic actions on events, queues, futures and tasks.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BatonClient, FailedPreconditionError, InvalidArgumentError, type TimerAction } from "baton-client";

import { client, eventually, startBatond, uniq, type Server } from "./helpers";

let server: Server;
let a: BatonClient;

before(async () => {
  server = await startBatond();
  a = client(server.address);
});

after(async () => {
  await a?.close();
  await server?.stop();
});

describe("Timer", () => {
  test("a one-shot timer sets an event after its delay, then stays visible", async () => {
    const name = uniq("timer");
    const event = uniq("event");
    const t0 = Date.now();
    const { dueInMs } = await a.timer(name).schedule({ setEvent: event }, { afterMs: 150 });
    assert.ok(dueInMs !== undefined && dueInMs <= 150 && dueInMs > 100);
    await a.event(event).wait({ timeoutMs: 5000 });
    assert.ok(Date.now() - t0 >= 140);
    const d = await a.timer(name).describe();
    assert.equal(d.timer?.action, `set_event ${event}`);
    assert.equal(d.timer?.fired, 1);
    assert.deepEqual(await a.timer(name).cancel(), { cancelled: false, fired: 1 });
  });

  test("a periodic timer puts items until cancelled; names are unique unless replaced", async () => {
    const name = uniq("timer");
    const queue = uniq("q");
    const action: TimerAction = { put: { queue, item: { text: "beat", priority: 0 } } };
    await a.timer(name).schedule(action, { afterMs: 10, everyMs: 50 });
    await assert.rejects(a.timer(name).schedule(action, { afterMs: 10 }), FailedPreconditionError);
    const beats = await a.queue(queue).getMany(1, { timeoutMs: 5000 });
    beats.push(...(await a.queue(queue).getMany(1, { timeoutMs: 5000 })));
    assert.deepEqual(
      beats.map((d) => d.text),
      ["beat", "beat"],
    );
    await a.queue(queue).ack(beats);
    const d = await a.admin.describe(name);
    assert.equal(d.timer?.everyMs, 50);
    const { cancelled, fired } = await a.timer(name).cancel();
    assert.equal(cancelled, true);
    assert.ok(fired >= 2);
    await a.timer(name).schedule({ clearEvent: uniq("event") }, { afterMs: 60_000 });
    await a.timer(name).schedule({ clearEvent: uniq("event") }, { afterMs: 60_000, replace: true });
    assert.equal((await a.timer(name).cancel()).cancelled, true);
    await a.queue(queue).purge();
  });

  test("timers set futures, clear events and submit tasks, at a wall-clock time too", async () => {
    const future = uniq("future");
    await a
      .timer(uniq("timer"))
      .schedule({ setFuture: { name: future, value: "from a timer" } }, { at: new Date(Date.now() + 50) });
    assert.equal((await a.future(future).result({ timeoutMs: 5000 })).toString(), "from a timer");

    const event = uniq("event");
    await a.event(event).set();
    await a.timer(uniq("timer")).schedule({ clearEvent: event }, { afterMs: 20 });
    await eventually(async () => !(await a.event(event).isSet()), 5000, "event cleared");

    const tasks = uniq("tasks");
    await a
      .timer(uniq("timer"))
      .schedule({ submitTask: { queue: tasks, payload: "scheduled", maxAttempts: 2 } }, { afterMs: 20 });
    const t = await a.tasks(tasks).take({ timeoutMs: 5000 });
    assert.equal(t.text, "scheduled");
    await t.complete();
  });

  test("bad schedules are refused", async () => {
    await assert.rejects(a.timer(uniq("timer")).schedule({ setEvent: uniq("e") }, {}), InvalidArgumentError);
    await assert.rejects(
      a.timer(uniq("timer")).schedule({ setEvent: uniq("e") }, { afterMs: 10, at: Date.now() }),
      InvalidArgumentError,
    );
    await assert.rejects(a.timer(uniq("timer")).schedule({} as TimerAction, { afterMs: 10 }), InvalidArgumentError);
  });
});
