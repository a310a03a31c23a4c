// Semaphores: capacity, weighted FIFO acquire, partial release, leases, and
// cancellation that never leaves permits held.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  CancelledError,
  FailedPreconditionError,
  HeldPermits,
  InvalidArgumentError,
  NotFoundError,
  NotHeldError,
  TimeoutError,
} from "baton-client";

import {
  client,
  eventually,
  sleep,
  startBatond,
  stillPending,
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
  describe(transport === "stream" ? "Semaphore" : "Semaphore (unary)", () => {
    before(async () => {
      await a?.close();
      await b?.close();
      useTransport(transport);
      a = client(server.address);
      b = client(server.address);
    });

    test("weighted acquire within the capacity, then waiting for room", async () => {
      const name = uniq("sem");
      const two = await a.semaphore(name, { capacity: 3 }).acquire({ count: 2 });
      assert.equal(two.count, 2);
      assert.equal(two.available, 1);
      const d = await two.semaphore.describe();
      assert.equal(d.capacity, 3);
      assert.equal(d.available, 1);
      assert.equal(await b.semaphore(name).tryAcquire({ count: 2 }), undefined, "2 do not fit");
      const waiting = b.semaphore(name).acquire({ count: 2 });
      assert.ok(await stillPending(waiting));
      const { available, remaining } = await two.release(1);
      assert.equal(remaining, 1);
      assert.equal(two.count, 1);
      assert.ok(available === 0, "the waiter took the freed permits");
      const got = await waiting;
      assert.equal(got.count, 2);
      assert.equal(got.outcome, "after_wait");
      await two.release();
      await got.release();
      assert.ok(await idle(name));
    });

    test("no barging: a large request at the head is not starved by small ones", async () => {
      const name = uniq("sem");
      const one = await a.semaphore(name, { capacity: 2 }).acquire();
      const big = b.semaphore(name).acquire({ count: 2 });
      await eventually(async () => (await a.admin.describe(name)).waiters === 1, 5000, "big waits");
      const small = b.semaphore(name).acquire({ count: 1 });
      assert.ok(await stillPending(small), "the small request waits behind the big one although 1 permit is free");
      await one.release();
      const bigHeld = await big;
      await bigHeld.release();
      await (await small).release();
    });

    test("capacity is declared once; counts are checked", async () => {
      const name = uniq("sem");
      const held = await a.semaphore(name, { capacity: 2 }).acquire();
      await assert.rejects(b.semaphore(name, { capacity: 5 }).acquire({ timeoutMs: 0 }), FailedPreconditionError);
      await assert.rejects(b.semaphore(name).acquire({ count: 3, timeoutMs: 0 }), InvalidArgumentError);
      await assert.rejects(held.release(2), FailedPreconditionError, "cannot return more than held");
      await held.release();
      await assert.rejects(
        b.semaphore(uniq("sem")).acquire({ timeoutMs: 0 }),
        InvalidArgumentError,
        "capacity required on first use",
      );
    });

    test("delete: refused while held, then ends the declaration", async () => {
      const name = uniq("sem");
      const sem = a.semaphore(name, { capacity: 2 });
      const held = await sem.acquire();
      await assert.rejects(
        sem.delete(),
        (e: unknown) => e instanceof FailedPreconditionError && !(e instanceof NotHeldError),
        "refused while permits are held",
      );
      await held.release();
      assert.equal(await sem.delete(), true);
      await assert.rejects(a.admin.describe(name), NotFoundError);
      assert.equal(await sem.delete(), false, "nothing left to delete");
      const again = b.semaphore(name, { capacity: 3 });
      const three = await again.acquire({ count: 3 });
      assert.equal(three.count, 3);
      assert.equal(three.available, 0);
      await three.release();
      assert.equal(await again.delete(), true);
    });

    test("timeouts, withPermits, await using", async () => {
      const name = uniq("sem");
      const sem = a.semaphore(name, { capacity: 1 });
      await sem.withPermits(async () => {
        await assert.rejects(b.semaphore(name).acquire({ timeoutMs: 100 }), TimeoutError);
      });
      {
        await using p = await sem.acquire();
        assert.ok(p instanceof HeldPermits && p.held);
      }
      assert.ok(await idle(name));
    });

    test("a lease runs out; refresh extends it", async () => {
      const name = uniq("sem");
      const leased = await a.semaphore(name, { capacity: 1 }).acquire({ ttlMs: 200 });
      const refreshed = await leased.refresh(300);
      assert.ok(refreshed.expiresInMs !== undefined && refreshed.expiresInMs > 200);
      const next = await b.semaphore(name).acquire({ timeoutMs: 3000 });
      await assert.rejects(leased.release(), NotHeldError);
      await next.release();
    });

    test("aborting a waiter; cancellation racing grants never leaves permits held", async () => {
      const name = uniq("sem");
      const sem = a.semaphore(name, { capacity: 2 });
      let granted = 0;
      let cancelled = 0;
      const deadline = Date.now() + 6000;
      for (let i = 0; i < 200 && Date.now() < deadline; i++) {
        const held = await sem.acquire({ count: 2 });
        const ac = new AbortController();
        const attempt = b
          .semaphore(name)
          .acquire({ signal: ac.signal, count: 1 + (i % 2) })
          .then(
            (h) => h,
            (e: unknown) => e,
          );
        setTimeout(() => void held.release(), Math.random() * 3);
        setTimeout(() => ac.abort(), Math.random() * 4);
        const r = await attempt;
        if (r instanceof HeldPermits) {
          granted++;
          await r.release();
        } else {
          assert.ok(r instanceof CancelledError, `expected CancelledError, got ${String(r)}`);
          cancelled++;
        }
        await eventually(() => !held.held, 2000, "holder released");
        await eventually(() => idle(name), 3000, `iteration ${i}: semaphore idle`);
      }
      assert.ok(granted > 0 && cancelled > 0, `both outcomes happen (granted ${granted}, cancelled ${cancelled})`);
    });

    test("permits whose grant crossed the cancel are recovered", async () => {
      const proxy = await TcpProxy.start(server.address);
      const c = client(proxy.address);
      try {
        const name = uniq("sem");
        await c.connect();
        const held = await a.semaphore(name, { capacity: 2 }).acquire({ count: 2 });
        const ac = new AbortController();
        const attempt = c.semaphore(name).acquire({ signal: ac.signal, count: 2, requestId: "crossing" });
        await eventually(async () => (await a.admin.describe(name)).waiters === 1, 5000, "c waits");
        proxy.holdDownstream();
        await held.release();
        await eventually(
          async () => (await a.admin.describe(name)).holders[0]?.requestId === "crossing",
          5000,
          "grant to c",
        );
        ac.abort();
        await sleep(100);
        assert.equal((await a.admin.describe(name)).holders[0]?.requestId, "crossing");
        proxy.releaseDownstream();
        await assert.rejects(attempt, CancelledError);
        assert.ok(await idle(name));
      } finally {
        await c.close();
        await proxy.close();
      }
    });
  });
}
