// Events: set/clear/wait/isSet and the Watch stream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BatonClient, CancelledError, TimeoutError, type EventChange } from "baton-client";

import { client, eventually, startBatond, stillPending, uniq, type Server } from "./helpers";

let server: Server;
let a: BatonClient;
let b: BatonClient;

before(async () => {
  server = await startBatond();
  a = client(server.address);
  b = client(server.address);
});

after(async () => {
  await a?.close();
  await b?.close();
  await server?.stop();
});

describe("Event", () => {
  test("set wakes every waiter; clear makes later waiters wait", async () => {
    const name = uniq("event");
    assert.equal(await a.event(name).isSet(), false);
    const waiters = [b.event(name).wait(), b.event(name).wait(), a.event(name).wait()];
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 3, 5000, "3 waiters");
    assert.ok(await stillPending(Promise.all(waiters), 50));
    const set = await a.event(name).set();
    assert.deepEqual(set, { wasSet: false, woken: 3 });
    await Promise.all(waiters);
    assert.equal(await b.event(name).isSet(), true);
    await b.event(name).wait({ timeoutMs: 0 });
    assert.deepEqual(await a.event(name).set(), { wasSet: true, woken: 0 }, "idempotent");
    assert.deepEqual(await a.event(name).clear(), { wasSet: true });
    assert.deepEqual(await a.event(name).clear(), { wasSet: false });
    await assert.rejects(b.event(name).wait({ timeoutMs: 50 }), TimeoutError);
  });

  test("an aborted wait leaves the event's line", async () => {
    const name = uniq("event");
    const ac = new AbortController();
    const w = b.event(name).wait({ signal: ac.signal });
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 1, 5000, "waiter");
    ac.abort();
    await assert.rejects(w, CancelledError);
    await eventually(async () => (await a.admin.tryDescribe(name)) === undefined, 5000, "event reclaimed");
  });

  test("watch streams the state, then every change, until the loop ends", async () => {
    const name = uniq("event");
    const seen: EventChange[] = [];
    const watcher = (async () => {
      for await (const change of b.event(name).watch()) {
        seen.push(change);
        if (seen.length === 1) await a.event(name).set();
        else if (seen.length === 2) await a.event(name).clear();
        else break;
      }
    })();
    await watcher;
    assert.deepEqual(
      seen.map((c) => c.isSet),
      [false, true, false],
    );
    assert.deepEqual(
      seen.map((c) => c.sequence),
      [1n, 2n, 3n],
    );
    await eventually(async () => ((await a.admin.tryDescribe(name))?.watchers ?? 0) === 0, 5000, "watcher gone");
  });

  test("a watch stops with CancelledError when its signal fires", async () => {
    const name = uniq("event");
    const ac = new AbortController();
    const states: boolean[] = [];
    const watching = (async () => {
      for await (const c of b.event(name).watch({ signal: ac.signal })) {
        states.push(c.isSet);
        ac.abort();
      }
    })();
    await assert.rejects(watching, CancelledError);
    assert.deepEqual(states, [false]);
  });
});
