// Barriers: parties released together, broken by a party that gives up,
// abort and reset.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BatonClient, BrokenBarrierError, CancelledError, FailedPreconditionError, TimeoutError } from "baton-client";

import { client, eventually, quiet, startBatond, uniq, type Server } from "./helpers";

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

describe("Barrier", () => {
  test("releases the parties together, with arrival indices, cycle after cycle", async () => {
    const name = uniq("barrier");
    for (let round = 0; round < 2; round++) {
      const arrivals = [a.barrier(name, { parties: 3 }).wait(), b.barrier(name, { parties: 3 }).wait()];
      await eventually(async () => (await a.admin.tryDescribe(name))?.barrier?.arrived === 2, 5000, "2 arrived");
      assert.equal((await a.admin.describe(name)).barrier?.parties, 3);
      await assert.rejects(a.barrier(name, { parties: 4 }).wait({ timeoutMs: 0 }), FailedPreconditionError);
      arrivals.push(b.barrier(name).wait());
      const results = await Promise.all(arrivals);
      assert.deepEqual(results.map((r) => r.index).sort(), [0, 1, 2]);
      assert.ok(
        results.every((r) => r.cycle === results[0]!.cycle && r.cycle >= 1n),
        "one trip, one cycle",
      );
    }
  });

  test("a party that times out breaks the barrier for the others until reset", async () => {
    const name = uniq("barrier");
    const patient = quiet(b.barrier(name, { parties: 3 }).wait());
    await eventually(async () => (await a.admin.tryDescribe(name))?.barrier?.arrived === 1, 5000, "1 arrived");
    await assert.rejects(a.barrier(name, { parties: 3 }).wait({ timeoutMs: 50 }), TimeoutError);
    await assert.rejects(patient, BrokenBarrierError);
    const d = await a.admin.describe(name);
    assert.equal(d.barrier?.broken, true);
    await assert.rejects(a.barrier(name).wait(), BrokenBarrierError, "stays broken");
    await a.barrier(name).reset();
    // Reset and idle: reclaimed, so the parties may be declared anew.
    assert.equal(await a.admin.tryDescribe(name), undefined);
    const again = [a.barrier(name, { parties: 2 }).wait(), b.barrier(name, { parties: 2 }).wait()];
    assert.equal((await Promise.all(again)).length, 2);
  });

  test("abort ends waiters; a cancelled party breaks the barrier too", async () => {
    const name = uniq("barrier");
    const w = quiet(b.barrier(name, { parties: 2 }).wait());
    await eventually(async () => (await a.admin.tryDescribe(name))?.barrier?.arrived === 1, 5000, "1 arrived");
    assert.deepEqual(await a.barrier(name).abort(), { aborted: 1 });
    await assert.rejects(w, BrokenBarrierError);
    await a.barrier(name).reset();
    const ac = new AbortController();
    const cancelled = quiet(a.barrier(name, { parties: 2 }).wait({ signal: ac.signal }));
    await eventually(async () => (await a.admin.tryDescribe(name))?.barrier?.arrived === 1, 5000, "1 arrived");
    ac.abort();
    await assert.rejects(cancelled, CancelledError);
    await eventually(async () => (await a.admin.tryDescribe(name))?.barrier?.broken === true, 5000, "broken");
    await a.barrier(name).reset();
  });
});
