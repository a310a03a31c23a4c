// The session stream (the default transport): batching, re-sending waits
// after a broken stream, cancellation racing grants, request_id recovery of
// an answer lost on a broken wire, the lost signal, and the consumer's acks
// riding on its next Get. Servers and TCP proxies on 127.0.0.1 (helpers.ts).
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  CancelledError,
  NotHeldError,
  SessionLostError,
  TimeoutError,
  UnavailableError,
  type HeldLock,
} from "baton-client";

import { client, eventually, quiet, sleep, startBatond, stillPending, TcpProxy, uniq, type Server } from "./helpers";

let server: Server;
let observer: BatonClient;

before(async () => {
  server = await startBatond();
  observer = client(server.address, { transport: "unary" });
});

after(async () => {
  await observer?.close();
  await server?.stop();
});

async function holders(name: string): Promise<bigint[]> {
  return ((await observer.admin.tryDescribe(name))?.holders ?? []).map((h) => h.sessionId);
}

describe("Session stream", () => {
  test("the stream is the default; operations of one tick go out in one message", async () => {
    const c = client(server.address);
    try {
      assert.equal(c.transport, "stream");
      await c.connect();
      const before = { ...c.stats.stream! };
      const names = Array.from({ length: 50 }, () => uniq("batch"));
      const res = await Promise.all(names.map((n) => c.event(n).set()));
      assert.equal(res.length, 50);
      const stats = c.stats.stream!;
      assert.equal(stats.opsSent - before.opsSent, 50);
      // One message, or two if a write (a probe) was in flight; a probe may add one more.
      assert.ok(stats.writes - before.writes <= 3, `50 operations in ${stats.writes - before.writes} writes`);
    } finally {
      await c.close();
    }
  });

  test("a wait sent on a broken stream is re-sent with its request_id: the caller sees only the delay", async () => {
    const proxy = await TcpProxy.start(server.address);
    const c = client(proxy.address, { sessionTtlMs: 5000 });
    try {
      const name = uniq("resend");
      const blocker = await observer.lock(name).acquire();
      const waiting = quiet(c.lock(name).acquire());
      await eventually(async () => (await observer.admin.describe(name)).waiters === 1, 5000, "c waits");
      const id = c.sessionId!;
      proxy.cut();
      await eventually(() => c.reconnecting, 5000, "c notices the break");
      // The server cancelled the wait when the stream ended.
      await eventually(async () => (await observer.admin.describe(name)).waiters === 0, 5000, "wait cancelled");
      proxy.restore();
      await eventually(async () => (await observer.admin.describe(name)).waiters === 1, 5000, "wait re-sent");
      assert.ok(c.stats.stream!.resent >= 1);
      assert.equal(await stillPending(waiting), true);
      await blocker.release();
      const held = await waiting;
      assert.equal(held.sessionId, id, "the same session");
      assert.deepEqual(await holders(name), [id]);
      await held.release();
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test("a re-sent wait keeps what is left of its timeout", async () => {
    const proxy = await TcpProxy.start(server.address);
    const c = client(proxy.address, { sessionTtlMs: 5000 });
    try {
      const name = uniq("deadline");
      const blocker = await observer.lock(name).acquire();
      const t0 = Date.now();
      const waiting = quiet(c.lock(name).acquire({ timeoutMs: 2500 }));
      await eventually(async () => (await observer.admin.describe(name)).waiters === 1, 5000, "c waits");
      proxy.cut();
      await sleep(600);
      proxy.restore();
      await assert.rejects(waiting, TimeoutError);
      const took = Date.now() - t0;
      assert.ok(took >= 2400 && took < 3400, `timed out after ${took} ms, not 2500 ms plus the break`);
      await blocker.release();
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test("an operation without a request_id sent on a broken stream fails with UnavailableError", async () => {
    const proxy = await TcpProxy.start(server.address);
    const c = client(proxy.address, { sessionTtlMs: 5000 });
    try {
      const name = uniq("unavail");
      const waiting = quiet(c.event(name).wait());
      await eventually(async () => (await observer.admin.tryDescribe(name))?.waiters === 1, 5000, "c waits");
      proxy.cut();
      await assert.rejects(waiting, UnavailableError);
      proxy.restore();
      // The stream comes back with the same session; later operations work.
      await c.event(name).set();
      assert.equal(await c.event(name).isSet(), true);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test("a cancel racing a grant never leaks the lock (200 rounds)", async (t) => {
    const a = client(server.address);
    const b = client(server.address);
    try {
      const name = uniq("race");
      let granted = 0;
      let cancelled = 0;
      for (let i = 0; i < 200; i++) {
        const held = await a.lock(name).acquire();
        const ac = new AbortController();
        const waiting = quiet(b.lock(name).acquire({ signal: ac.signal }));
        // Let the acquire reach the server on some rounds, not on others.
        if (i % 2 === 1) await sleep(i % 4);
        const release = held.release();
        // Abort before the release reaches the server, about when the grant
        // is made, or after the release was answered (the grant on its way).
        if (i % 4 === 1) await new Promise((r) => setImmediate(r));
        if (i % 4 >= 2) await release;
        if (i % 4 === 3) await new Promise((r) => setImmediate(r));
        ac.abort();
        await release;
        try {
          const got = await waiting;
          granted++;
          await got.release();
        } catch (e) {
          assert.ok(e instanceof CancelledError, `round ${i}: ${String(e)}`);
          cancelled++;
        }
        assert.deepEqual(await holders(name), [], `round ${i}: nobody holds the lock`);
      }
      assert.equal(granted + cancelled, 200);
      t.diagnostic(`granted ${granted}, cancelled ${cancelled}, rolled back ${b.stats.cancels.rolledBack}`);
      assert.ok(cancelled > 0, "some acquires were cancelled");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a cancel racing a put never strands an item (200 rounds)", async (t) => {
    const a = client(server.address);
    const b = client(server.address);
    try {
      const name = uniq("qrace");
      let got = 0;
      for (let i = 0; i < 200; i++) {
        const ac = new AbortController();
        const getting = quiet(b.queue(name).get({ signal: ac.signal }));
        if (i % 2 === 1) await sleep(i % 4);
        const put = a.queue(name).put(`x${i}`);
        if (i % 4 === 1) await new Promise((r) => setImmediate(r));
        if (i % 4 >= 2) await put;
        if (i % 4 === 3) await new Promise((r) => setImmediate(r));
        ac.abort();
        await put;
        try {
          const d = await getting;
          await d.ack();
          got++;
        } catch (e) {
          assert.ok(e instanceof CancelledError, `round ${i}: ${String(e)}`);
          // The item is back in the queue, not in flight: take it here.
          const d = await a.queue(name).get({ timeoutMs: 5000 });
          await d.ack();
        }
        const q = (await observer.admin.tryDescribe(name))?.queue;
        assert.equal(q?.inFlight ?? 0, 0, `round ${i}: nothing in flight`);
        assert.equal(q?.size ?? 0, 0, `round ${i}: nothing left`);
      }
      assert.ok(got < 200, "some gets were cancelled");
      t.diagnostic(`got ${got}, rolled back ${b.stats.cancels.rolledBack}`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a cancel racing a submit never leaves a task running (100 rounds)", async (t) => {
    const a = client(server.address);
    const b = client(server.address);
    try {
      const queue = uniq("trace");
      let taken = 0;
      for (let i = 0; i < 100; i++) {
        const ac = new AbortController();
        const taking = quiet(b.tasks(queue).take({ signal: ac.signal }));
        if (i % 2 === 1) await sleep(i % 4);
        const submit = a.tasks(queue).submit(`t${i}`, { maxAttempts: 5 });
        if (i % 4 === 1) await new Promise((r) => setImmediate(r));
        if (i % 4 >= 2) await submit;
        if (i % 4 === 3) await new Promise((r) => setImmediate(r));
        ac.abort();
        const handle = await submit;
        try {
          const task = await taking;
          taken++;
          await task.complete("done");
        } catch (e) {
          assert.ok(e instanceof CancelledError, `round ${i}: ${String(e)}`);
          // Pending again (given back if it crossed the cancel): run it here.
          const task = await a.tasks(queue).take({ timeoutMs: 5000 });
          assert.equal(task.id, handle.id, `round ${i}: the same task`);
          await task.complete("done");
        }
        const k = (await observer.admin.tryDescribe(queue))?.tasks;
        assert.equal(k?.running ?? 0, 0, `round ${i}: nothing running`);
        assert.equal(k?.pending ?? 0, 0, `round ${i}: nothing pending`);
      }
      t.diagnostic(`taken ${taken}, given back ${b.stats.cancels.rolledBack}`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("request_id recovery: a grant whose answer was lost on a broken wire after a cancel is released", async () => {
    const proxy = await TcpProxy.start(server.address);
    const c = client(proxy.address, { sessionTtlMs: 5000 });
    try {
      const name = uniq("recover");
      const blocker = await observer.lock(name).acquire();
      const ac = new AbortController();
      const waiting = quiet(c.lock(name).acquire({ signal: ac.signal }));
      await eventually(async () => (await observer.admin.describe(name)).waiters === 1, 5000, "c waits");
      const id = c.sessionId!;
      // The grant's answer leaves the server but never reaches the client...
      proxy.holdDownstream();
      await blocker.release();
      await eventually(async () => (await holders(name))[0] === id, 5000, "granted on the server");
      // ...which cancels (too late: the server sent the answer) and loses the
      // connection with the answer in it.
      ac.abort();
      await sleep(50);
      proxy.cut(); // drops the held answer with the connection
      proxy.releaseDownstream();
      proxy.restore();
      await assert.rejects(waiting, CancelledError);
      assert.equal(c.stats.cancels.recovered, 1, "asked again with the request_id and released");
      assert.deepEqual(await holders(name), [], "the lock is free");
      assert.equal(c.sessionId, id, "the same session");
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test("session lost: the lost signal fires, pending operations fail, a new session carries on", async () => {
    const c = client(server.address, { sessionTtlMs: 3000 });
    try {
      const name = uniq("lost");
      const held: HeldLock = await c.lock(name).acquire();
      const blocked = uniq("lost");
      const blocker = await observer.lock(blocked).acquire();
      const waiting = quiet(c.lock(blocked).acquire());
      await eventually(async () => (await observer.admin.describe(blocked)).waiters === 1, 5000, "c waits");
      const lostEvent = once(c, "sessionLost") as Promise<[SessionLostError]>;
      const old = c.sessionId!;
      // Closed from elsewhere: the stream ends or the probe notices.
      await new Promise((resolve, reject) =>
        observer.raw.sessions.Close({ sessionId: old.toString() }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      const [event] = await lostEvent;
      assert.equal(event.sessionId, old);
      const why = await held.lost;
      assert.ok(why instanceof SessionLostError, `lost with ${String(why)}`);
      assert.ok(held.signal.aborted);
      assert.equal(held.held, false);
      await assert.rejects(waiting, SessionLostError);
      await blocker.release();
      const again = await c.lock(name).acquire({ timeoutMs: 5000 });
      assert.notEqual(again.sessionId, old, "a new session");
      assert.deepEqual(await holders(name), [again.sessionId]);
      await again.release();
    } finally {
      await c.close();
    }
  });

  test("a leased holding fires its lost signal when the lease runs out unrefreshed", async () => {
    const c = client(server.address);
    try {
      const name = uniq("lease");
      const held = await c.lock(name).acquire({ ttlMs: 300 });
      const refreshed = await c.lock(uniq("lease")).acquire({ ttlMs: 300 });
      await refreshed.refresh(5000);
      const why = await held.lost;
      assert.ok(why instanceof NotHeldError, `lost with ${String(why)}`);
      assert.ok(held.signal.aborted);
      assert.equal(refreshed.held, true);
      assert.equal(await stillPending(refreshed.lost, 50), true);
      await refreshed.release();
    } finally {
      await c.close();
    }
  });

  test("queue.putMany puts a batch in one Put", async () => {
    const c = client(server.address);
    try {
      const q = c.queue(uniq("many"));
      const items = Array.from({ length: 1000 }, (_, i) => `i${i}`);
      const { itemIds } = await q.putMany(items);
      assert.equal(itemIds.length, 1000);
      assert.equal((await q.describe()).queue?.size, 1000);
      await assert.rejects(q.putMany([...items, "one too many"]), /1\.\.1000/);
      await q.delete();
    } finally {
      await c.close();
    }
  });

  test("consumer: acks ride on the next Get; nothing is left in flight", async () => {
    const c = client(server.address);
    try {
      const name = uniq("consume");
      await observer.queue(name).putMany(Array.from({ length: 100 }, (_, i) => `m${i}`));
      const consumer = c.queue(name).consume({ prefetch: 10 });
      assert.equal(consumer.transport, "stream");
      const seen: string[] = [];
      for await (const d of consumer) {
        seen.push(d.text);
        void d.ack(); // batched: no need to await
        if (seen.length === 100) break;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 100 }, (_, i) => `m${i}`),
      );
      assert.equal(consumer.pendingAcks, 0, "close flushed the acks");
      assert.ok(consumer.stats.gets >= 10 && consumer.stats.gets <= 12, `${consumer.stats.gets} gets`);
      assert.ok(consumer.stats.ridingAcks >= 80, `${consumer.stats.ridingAcks} acks rode on a Get`);
      assert.equal(consumer.stats.ackedByGet, consumer.stats.ridingAcks, "the Gets acknowledged them");
      const q = (await observer.admin.tryDescribe(name))?.queue;
      assert.equal(q?.inFlight ?? 0, 0, "nothing in flight");
      assert.equal(q?.size ?? 0, 0, "nothing queued");
      assert.equal(q?.unfinished ?? 0, 0, "every item acknowledged");
    } finally {
      await c.close();
    }
  });

  test("consumer: acks wait at most 10 ms for a Get, then go out as one Ack", async () => {
    const c = client(server.address);
    try {
      const name = uniq("consume");
      await observer.queue(name).putMany(["a", "b", "c", "d"]);
      const consumer = c.queue(name).consume({ prefetch: 4 });
      const first = await consumer.next();
      const second = await consumer.next();
      // Two acks while items are still buffered: no Get goes out for them.
      const acks = [first!.ack(), second!.ack()];
      assert.equal(consumer.pendingAcks, 2);
      await Promise.all(acks);
      assert.equal(consumer.stats.flushedAcks, 2);
      assert.equal((await observer.admin.describe(name)).queue?.inFlight, 2, "two acknowledged, two in hand");
      await consumer.close();
      const q = (await observer.admin.describe(name)).queue;
      assert.equal(q?.inFlight, 0, "close gave back what was not handed out");
      assert.equal(q?.size, 2);
    } finally {
      await c.close();
    }
  });

  test("consumer: an ack the Get could not apply (the lease ran out) rejects with NotHeldError", async () => {
    const c = client(server.address);
    try {
      const name = uniq("consume");
      await observer.queue(name).put("only");
      const consumer = c.queue(name).consume({ prefetch: 1, ttlMs: 200 });
      const first = (await consumer.next())!;
      await eventually(async () => (await observer.admin.describe(name)).queue?.inFlight === 0, 5000, "lease out");
      const ack = first.ack();
      const again = (await consumer.next())!; // the Get the ack rides on takes the item again
      await assert.rejects(ack, NotHeldError);
      assert.equal(again.text, "only");
      assert.equal(again.deliveryCount, 2);
      assert.equal(consumer.stats.ridingAcks, 1);
      await again.ack();
      await consumer.close();
      assert.equal((await observer.admin.tryDescribe(name))?.queue?.unfinished ?? 0, 0);
    } finally {
      await c.close();
    }
  });
});
