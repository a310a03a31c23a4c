// Queues: orders, put/get nowait, ack/nack and redelivery, dead letters,
// join, purge, delete, visibility timeouts, the Consume stream, and gets
// aborted while puts race them (no item lost).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  CancelledError,
  Delivery,
  FailedPreconditionError,
  NotHeldError,
  QueueDeletedError,
  QueueEmptyError,
  QueueFullError,
  TimeoutError,
} from "baton-client";

import {
  client,
  eventually,
  quiet,
  sleep,
  startBatond,
  stillPending,
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

// Every test runs on both transports: the session stream (the default) and unary calls.
for (const transport of TRANSPORTS) {
  describe(transport === "stream" ? "Queue" : "Queue (unary)", () => {
    before(async () => {
      await a?.close();
      await b?.close();
      useTransport(transport);
      a = client(server.address);
      b = client(server.address);
    });

    test("FIFO, LIFO and priority orders", async () => {
      const fifo = a.queue(uniq("q"));
      await fifo.put(["1", "2", "3"]);
      const lifo = a.queue(uniq("q"), { order: "lifo" });
      await lifo.put(["1", "2", "3"]);
      const prio = a.queue(uniq("q"), { order: "priority" });
      const put = await prio.put([
        { text: "low", priority: 9 },
        { text: "urgent", priority: 1 },
        { text: "mid", priority: 5 },
      ]);
      assert.equal(put.size, 3);
      assert.equal(put.itemIds.length, 3);
      const texts = async (q: typeof fifo) => (await q.getMany(10)).map((d) => d.text);
      assert.deepEqual(await texts(fifo), ["1", "2", "3"]);
      assert.deepEqual(await texts(lifo), ["3", "2", "1"]);
      assert.deepEqual(await texts(prio), ["urgent", "mid", "low"]);
    });

    test("bytes and text payloads; a delivery tells its item id, count and age", async () => {
      const q = a.queue(uniq("q"));
      const { itemIds } = await q.put(Uint8Array.from([0xff, 0x00, 0x01]));
      await q.put("héllo");
      const bin = await q.get();
      assert.ok(bin instanceof Delivery);
      assert.deepEqual([...bin.data], [0xff, 0x00, 0x01]);
      assert.equal(bin.itemId, itemIds[0]);
      assert.equal(bin.deliveryCount, 1);
      assert.ok(bin.ageMs >= 0);
      const txt = await q.get();
      assert.equal(txt.text, "héllo");
      assert.equal(txt.data.toString("utf8"), "héllo");
      await q.ack([bin, txt]);
    });

    test("getNowait on an empty queue, putNowait on a full one, blocking get and put", async () => {
      const name = uniq("q");
      const q = a.queue(name, { maxsize: 2 });
      await assert.rejects(q.getNowait(), QueueEmptyError);
      await assert.rejects(q.get({ timeoutMs: 50 }), TimeoutError);
      await q.put(["a", "b"]);
      await assert.rejects(q.putNowait("c"), QueueFullError);
      await assert.rejects(q.put("c", { timeoutMs: 50 }), TimeoutError);
      const blockedPut = q.put("c");
      assert.ok(await stillPending(blockedPut));
      await (await q.get()).ack();
      await blockedPut;
      const getter = b.queue(name).get();
      const items = await q.getMany(10);
      assert.deepEqual(
        items.map((d) => d.text),
        ["b", "c"],
      );
      assert.ok(await stillPending(getter), "a getter waits on an empty queue");
      await q.put("d");
      assert.equal((await getter).text, "d");
    });

    test("options are declared once", async () => {
      const name = uniq("q");
      await a.queue(name, { order: "lifo", maxsize: 5 }).put("x");
      await assert.rejects(b.queue(name, { order: "fifo" }).put("y"), FailedPreconditionError);
      await b.queue(name).put("y");
      const d = await a.queue(name).describe();
      assert.equal(d.queue?.order, "lifo");
      assert.equal(d.queue?.maxsize, 5);
    });

    test("ack finishes items; nack redelivers them; a stale receipt is refused", async () => {
      const q = a.queue(uniq("q"));
      await q.put(["one", "two"]);
      const first = await q.get();
      const d1 = await q.describe();
      assert.equal(d1.queue?.inFlight, 1);
      assert.equal(d1.queue?.size, 1);
      assert.deepEqual(await first.nack(), { returned: 1, deadLettered: 0 });
      const again = await q.get();
      assert.equal(again.text, "one", "a nacked item goes back to the head");
      assert.equal(again.deliveryCount, 2);
      assert.notEqual(again.receipt, first.receipt);
      await assert.rejects(first.ack(), NotHeldError);
      const { acked, unfinished } = await again.ack();
      assert.equal(acked, 1);
      assert.equal(unfinished, 1);
      const second = await q.get();
      await second.nack({ delayMs: 150 });
      await assert.rejects(q.getNowait(), QueueEmptyError, "invisible while delayed");
      const later = await q.get({ timeoutMs: 3000 });
      assert.equal(later.text, "two");
      await later.ack();
    });

    test("an item not acknowledged within its ttl is redelivered", async () => {
      const q = a.queue(uniq("q"));
      await q.put("job");
      const first = await q.get({ ttlMs: 100 });
      const second = await b.queue(q.name).get({ timeoutMs: 3000 });
      assert.equal(second.text, "job");
      assert.equal(second.deliveryCount, 2);
      await assert.rejects(first.ack(), NotHeldError);
      await second.ack();
    });

    test("dead letters after maxDeliveries", async () => {
      const q = a.queue(uniq("q"), { maxDeliveries: 2 });
      await q.put("poison");
      await (await q.get()).nack();
      const { deadLettered } = await (await q.get()).nack();
      assert.equal(deadLettered, 1);
      await assert.rejects(q.getNowait(), QueueEmptyError);
      assert.equal((await q.describe()).queue?.deadLetters, 1);
      await q.join({ timeoutMs: 1000 }); // a dead letter counts as finished
      const dead = await q.deadLetters();
      assert.deepEqual(
        dead.map((d) => d.text),
        ["poison"],
      );
      await q.nack(dead); // back to the dead letters
      assert.equal(await q.purge({ deadLetters: true }), 1);
      assert.deepEqual(await q.deadLetters(), []);
    });

    test("join waits until every item is acknowledged", async () => {
      const q = a.queue(uniq("q"));
      await q.join({ timeoutMs: 0 }); // nothing unfinished
      await q.put(["a", "b"]);
      await assert.rejects(q.join({ timeoutMs: 50 }), TimeoutError);
      const joined = q.join();
      const [x, y] = await b.queue(q.name).getMany(2);
      await x!.ack();
      assert.ok(await stillPending(joined, 50));
      await y!.ack();
      await joined;
    });

    test("purge drops queued items; delete ends pending calls", async () => {
      const name = uniq("q");
      const q = a.queue(name);
      await q.put(["a", "b", "c"]);
      const inFlight = await q.get();
      assert.equal(await q.purge(), 2);
      assert.equal((await q.describe()).queue?.inFlight, 1);
      await inFlight.ack();
      const getter = quiet(b.queue(name).get());
      await eventually(
        async () => (await a.admin.tryDescribe(name))?.queue?.waitingGetters === 1,
        5000,
        "getter waits",
      );
      assert.equal(await q.delete(), true);
      await assert.rejects(getter, QueueDeletedError);
      assert.equal(await q.delete(), false);
    });

    test("consume pushes items within the prefetch window", async () => {
      const name = uniq("q");
      const q = a.queue(name);
      await q.put(["1", "2", "3", "4", "5"]);
      const got: string[] = [];
      for await (const item of b.queue(name).consume({ prefetch: 2 })) {
        got.push(item.text);
        if (got.length === 1) {
          // Two items are out (this one and one buffered), three wait.
          await eventually(async () => (await q.describe()).queue?.inFlight === 2, 5000, "2 in flight");
          assert.equal((await q.describe()).queue?.size, 3);
        }
        await item.ack();
        if (got.length === 5) break;
      }
      assert.deepEqual(got, ["1", "2", "3", "4", "5"]);
      await eventually(async () => (await a.admin.tryDescribe(name)) === undefined, 5000, "queue reclaimed");
    });

    test("leaving a consume loop gives back the items it did not hand out", async () => {
      const name = uniq("q");
      const q = a.queue(name);
      await q.put(["1", "2", "3"]);
      for await (const item of b.queue(name).consume({ prefetch: 3 })) {
        await eventually(async () => (await q.describe()).queue?.inFlight === 3, 5000, "3 delivered");
        await sleep(100); // let the other two reach the client's buffer
        await item.ack();
        break;
      }
      const d = await q.describe();
      assert.equal(d.queue?.inFlight, 0, "given back at once");
      if (b.transport === "unary") assert.equal(d.queue?.delayed, 2, "visible again after a short delay");
      else assert.equal(d.queue?.size, 2, "visible again at once (no Consume stream to push them to)");
      const back: string[] = [];
      while (back.length < 2) back.push(...(await q.getMany(5, { timeoutMs: 3000 })).map((x) => x.text));
      assert.deepEqual(back, ["2", "3"]);
    });

    test("a consume loop ends with CancelledError when its signal fires", async () => {
      const name = uniq("q");
      const ac = new AbortController();
      let acked = 0;
      const loop = (async () => {
        for await (const item of b.queue(name).consume({ signal: ac.signal })) {
          await item.ack();
          acked++;
        }
      })();
      await eventually(async () => (await a.admin.tryDescribe(name)) !== undefined, 5000, "consumer registered");
      await a.queue(name).put("x");
      await eventually(async () => acked === 1, 5000, "consumed and acked");
      ac.abort();
      await assert.rejects(loop, CancelledError);
    });

    test("gets aborted while puts race them lose no item", async () => {
      const name = uniq("q");
      const consumer = client(server.address);
      const N = 300;
      const received = new Map<string, number>();
      let aborted = 0;
      let producerDone = false;
      const producer = (async () => {
        for (let i = 0; i < N; i++) {
          await a.queue(name).put(`item-${i}`);
          if (i % 3 === 0) await sleep(Math.random() * 2);
        }
        producerDone = true;
      })();
      const consumers = [0, 1].map(async () => {
        while (!producerDone || ((await a.admin.tryDescribe(name))?.queue?.size ?? 0) > 0) {
          const ac = new AbortController();
          const t = setTimeout(() => ac.abort(), Math.random() * 3);
          try {
            const items = await consumer.queue(name).getMany(2, { signal: ac.signal, timeoutMs: 200 });
            for (const d of items) received.set(d.text, (received.get(d.text) ?? 0) + 1);
            await consumer.queue(name).ack(items);
          } catch (e) {
            if (e instanceof CancelledError) aborted++;
            else if (!(e instanceof TimeoutError)) throw e;
          } finally {
            clearTimeout(t);
          }
        }
      });
      await producer;
      await Promise.all(consumers);
      // Items whose answer crossed a cancel stay in flight with the consumer's
      // session; closing it returns them to the queue.
      await consumer.close();
      const drained: string[] = [];
      for (;;) {
        const items = await b
          .queue(name)
          .getMany(100, { timeoutMs: 0 })
          .catch((e: unknown) => {
            if (e instanceof QueueEmptyError) return [];
            throw e;
          });
        if (items.length === 0) break;
        drained.push(...items.map((d) => d.text));
        await b.queue(name).ack(items);
      }
      for (const t of drained) received.set(t, (received.get(t) ?? 0) + 1);
      const missing = [];
      for (let i = 0; i < N; i++) if (!received.has(`item-${i}`)) missing.push(i);
      assert.deepEqual(missing, [], "every item put was received or is still in the queue");
      const twice = [...received].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], "no acknowledged item is delivered again");
      assert.ok(aborted > 0, "some gets were aborted");
      assert.equal(await a.admin.tryDescribe(name), undefined, "the queue is empty and reclaimed");
    });
  });
}
