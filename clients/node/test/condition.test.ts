// Conditions: wait releases the lock and re-acquires it; notify, notifyAll,
// waitFor, timeouts, and cancellation that never leaves the lock held.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BatonClient, CancelledError, NotHeldError } from "baton-client";

import {
  client,
  eventually,
  sleep,
  startBatond,
  TcpProxy,
  uniq,
  type Server,
  TRANSPORTS,
  useTransport,
} from "./helpers";

let server: Server;
let a: BatonClient;
let b: BatonClient;

before(async () => {
  server = await startBatond();
});

after(async () => {
  await a?.close();
  await b?.close();
  await server?.stop();
});

async function idle(name: string): Promise<boolean> {
  const d = await a.admin.tryDescribe(name);
  return d === undefined || (d.holders.length === 0 && d.waiters === 0);
}

// Every test runs on both transports: the session stream (the default) and unary calls.
for (const transport of TRANSPORTS) {
  describe(transport === "stream" ? "Condition" : "Condition (unary)", () => {
    before(async () => {
      await a?.close();
      await b?.close();
      useTransport(transport);
      a = client(server.address);
      b = client(server.address);
    });

    test("wait releases the lock, notify wakes the waiter, which holds the lock again", async () => {
      const lock = uniq("cond");
      const held = await a.lock(lock).acquire();
      const before = held.token;
      const waiting = a.condition(lock, "ready").wait(held);
      // While a waits, the lock is free for b.
      const other = await b.lock(lock).acquire({ timeoutMs: 5000 });
      const d = await b.admin.describe(lock);
      assert.deepEqual(
        d.conditions.map((c) => [c.condition, c.waiters]),
        [["ready", 1]],
      );
      assert.deepEqual(await b.condition(lock, "ready").notify(other), { woken: 1 });
      await other.release();
      assert.deepEqual(await waiting, { notified: true });
      assert.ok(held.held);
      assert.ok(held.token > before, "a new fencing token after re-acquiring");
      await held.release();
      assert.ok(await idle(lock));
    });

    test("a timed-out wait re-acquires the lock and says so", async () => {
      const lock = uniq("cond");
      const held = await a.lock(lock).acquire();
      const t0 = Date.now();
      assert.deepEqual(await a.condition(lock).wait(held, { timeoutMs: 100 }), { notified: false });
      assert.ok(Date.now() - t0 >= 90);
      assert.ok(held.held);
      assert.equal((await a.admin.describe(lock)).holders[0]!.token, held.token);
      await held.release();
    });

    test("notify needs the lock; a stale token is refused", async () => {
      const lock = uniq("cond");
      const held = await a.lock(lock).acquire();
      const stale = held.token;
      await a.condition(lock).wait(held, { timeoutMs: 10 });
      await assert.rejects(a.lock(lock).release(stale), NotHeldError);
      await held.release();
      await assert.rejects(a.condition(lock).notify(held), NotHeldError, "released holding");
    });

    test("notifyAll wakes everyone; waitFor re-checks its predicate", async () => {
      const lock = uniq("cond");
      let items = 0;
      const consumers = [0, 1, 2].map(async () => {
        const held = await b.lock(lock).acquire();
        try {
          const ok = await b.condition(lock, "items").waitFor(held, () => items > 0, { timeoutMs: 5000 });
          assert.ok(ok);
          items--;
        } finally {
          await held.release();
        }
      });
      await eventually(async () => (await a.admin.tryDescribe(lock))?.conditions[0]?.waiters === 3, 5000, "3 waiting");
      await a.withLock(lock, async (held) => {
        items = 3;
        assert.deepEqual(await a.condition(lock, "items").notifyAll(held), { woken: 3 });
      });
      await Promise.all(consumers);
      assert.equal(items, 0);
      // waitFor with a predicate that never holds gives up after its timeout.
      const held = await a.lock(lock).acquire();
      assert.equal(await a.condition(lock).waitFor(held, () => false, { timeoutMs: 100 }), false);
      assert.ok(held.held);
      await held.release();
    });

    test("an aborted wait ends without the lock, and release() is then a no-op", async () => {
      const lock = uniq("cond");
      const held = await a.lock(lock).acquire();
      const ac = new AbortController();
      const waiting = a.condition(lock).wait(held, { signal: ac.signal });
      await eventually(async () => (await a.admin.tryDescribe(lock))?.conditions[0]?.waiters === 1, 5000, "waiting");
      ac.abort();
      await assert.rejects(waiting, CancelledError);
      assert.equal(held.held, false);
      assert.equal(held.signal.aborted, true);
      assert.deepEqual(await held.release(), { handedOff: false });
      await eventually(() => idle(lock), 3000, "lock idle");
    });

    test("a re-acquire whose answer crossed the cancel is found and released", async () => {
      const proxy = await TcpProxy.start(server.address);
      const c = client(proxy.address);
      try {
        const lock = uniq("cond");
        const held = await c.lock(lock).acquire();
        const ac = new AbortController();
        const waiting = c.condition(lock).wait(held, { signal: ac.signal });
        const other = await a.lock(lock).acquire({ timeoutMs: 5000 });
        proxy.holdDownstream();
        await a.condition(lock).notify(other);
        await other.release();
        await eventually(
          async () => (await a.admin.describe(lock)).holders[0]?.sessionId === c.sessionId,
          5000,
          "c re-acquired",
        );
        ac.abort();
        await sleep(100);
        assert.equal((await a.admin.describe(lock)).holders[0]?.sessionId, c.sessionId, "the server kept the grant");
        proxy.releaseDownstream();
        await assert.rejects(waiting, CancelledError);
        assert.ok(await idle(lock), "the client released the recovered grant");
      } finally {
        await c.close();
        await proxy.close();
      }
    });
  });
}
