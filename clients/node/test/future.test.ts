// Futures: set once, awaited by anyone; exceptions and cancellation as data.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  CancelledError,
  FutureCancelledError,
  FutureExceptionError,
  InvalidStateError,
  TimeoutError,
} from "baton-client";

import { client, eventually, quiet, startBatond, stillPending, uniq, type Server } from "./helpers";

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

describe("Future", () => {
  test("awaiters get the value once it is set; it is set only once", async () => {
    const name = uniq("future");
    assert.equal(await a.future(name).done(), false);
    await assert.rejects(a.future(name).await({ timeoutMs: 0 }), TimeoutError);
    const waiting = [b.future(name).result(), a.future(name).await()];
    assert.ok(await stillPending(Promise.all(waiting)));
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 2, 5000, "2 awaiters");
    assert.deepEqual(await a.future(name).setResult("42 rows", { retentionMs: 60_000 }), { woken: 2 });
    const [value, outcome] = await Promise.all(waiting);
    assert.equal((value as Buffer).toString(), "42 rows");
    assert.equal((outcome as { state: string }).state, "result");
    assert.equal(await b.future(name).done(), true);
    await assert.rejects(a.future(name).setResult("again"), InvalidStateError);
    assert.equal(await a.future(name).cancel(), false, "a done future is not cancelled");
    const d = await a.future(name).describe();
    assert.equal(d.futureState, "result");
    assert.ok(d.retainedForMs !== undefined && d.retainedForMs > 50_000);
  });

  test("bytes values", async () => {
    const name = uniq("future");
    await a.future(name).setResult(Uint8Array.from([1, 2, 3]));
    const out = await b.future(name).await();
    assert.deepEqual([...out.value], [1, 2, 3]);
  });

  test("an exception is the outcome; result() throws it", async () => {
    const name = uniq("future");
    const pending = quiet(b.future(name).result());
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 1, 5000, "awaiter");
    await a.future(name).setException({ code: 404, message: "no such report" });
    const err = await pending.catch((e: unknown) => e);
    assert.ok(err instanceof FutureExceptionError);
    assert.equal(err.errorCode, 404);
    assert.equal(err.errorMessage, "no such report");
    const out = await a.future(name).await();
    assert.equal(out.state, "exception");
    assert.deepEqual(out.error, { code: 404, message: "no such report" });
    const other = uniq("future");
    await a.future(other).setException(new Error("plain error"));
    assert.deepEqual((await b.future(other).await()).error, { code: 0, message: "plain error" });
  });

  test("cancel makes it done as cancelled", async () => {
    const name = uniq("future");
    const pending = quiet(b.future(name).result());
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 1, 5000, "awaiter");
    assert.equal(await a.future(name).cancel(), true);
    await assert.rejects(pending, FutureCancelledError);
    assert.equal((await a.future(name).await()).state, "cancelled");
  });

  test("an aborted await ends without changing the future", async () => {
    const name = uniq("future");
    const ac = new AbortController();
    const pending = quiet(b.future(name).await({ signal: ac.signal }));
    await eventually(async () => (await a.admin.tryDescribe(name))?.waiters === 1, 5000, "awaiter");
    ac.abort();
    await assert.rejects(pending, CancelledError);
    await eventually(
      async () => (await a.admin.tryDescribe(name)) === undefined,
      5000,
      "pending, unawaited: reclaimed",
    );
  });
});
