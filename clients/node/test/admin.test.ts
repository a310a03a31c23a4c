// Admin: listing by prefix and kind, paging, describing; errors and client
// lifecycle.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  ClientClosedError,
  InvalidArgumentError,
  NotFoundError,
  Status,
  type ResourceSummary,
} from "baton-client";

import { client, startBatond, uniq, type Server } from "./helpers";

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

describe("Admin", () => {
  test("list by prefix and kind, page by page", async () => {
    const prefix = `${uniq("admin")}/`;
    const held = await a.lock(`${prefix}l1`).acquire();
    const held2 = await a.lock(`${prefix}l2`).acquire();
    const permits = await a.semaphore(`${prefix}s1`, { capacity: 3 }).acquire();
    await a.event(`${prefix}e1`).set();
    await a.queue(`${prefix}q1`).put("x");
    const all = await a.admin.list({ prefix });
    assert.deepEqual(
      all.resources.map((r) => [r.name.slice(prefix.length), r.kind]),
      [
        ["e1", "event"],
        ["l1", "lock"],
        ["l2", "lock"],
        ["q1", "queue"],
        ["s1", "semaphore"],
      ],
    );
    assert.equal(all.nextPageToken, undefined);
    const locks = await a.admin.list({ prefix, kind: "lock" });
    assert.deepEqual(
      locks.resources.map((r) => r.holders),
      [1, 1],
    );
    const page = await a.admin.list({ prefix, pageSize: 2 });
    assert.equal(page.resources.length, 2);
    assert.ok(page.nextPageToken);
    const paged: ResourceSummary[] = [];
    for await (const r of a.admin.listAll({ prefix, pageSize: 2 })) paged.push(r);
    assert.deepEqual(paged, all.resources);
    const d = await a.admin.describe(`${prefix}s1`);
    assert.equal(d.kind, "semaphore");
    assert.equal(d.capacity, 3);
    assert.equal(d.available, 2);
    assert.equal(d.holders[0]!.token, permits.token);
    assert.equal(d.lastToken, permits.token);
    await held.release();
    await held2.release();
    await permits.release();
    await a.event(`${prefix}e1`).clear();
    await a.queue(`${prefix}q1`).purge();
    // Everything is reclaimed but the semaphore: its declaration (capacity)
    // lasts until Semaphores/Delete.
    assert.deepEqual((await a.admin.list({ prefix })).resources, [
      { name: `${prefix}s1`, kind: "semaphore", holders: 0, waiters: 0 },
    ]);
  });

  test("describe of an unknown name; bad arguments", async () => {
    await assert.rejects(a.admin.describe(uniq("nothing")), NotFoundError);
    assert.equal(await a.admin.tryDescribe(uniq("nothing")), undefined);
    const err = await a
      .lock("not a name")
      .acquire({ timeoutMs: 0 })
      .catch((e: unknown) => e);
    assert.ok(err instanceof InvalidArgumentError);
    assert.equal(err.code, Status.INVALID_ARGUMENT);
    assert.equal(err.codeName, "INVALID_ARGUMENT");
    await assert.rejects(a.admin.list({ pageSize: 5000 }), InvalidArgumentError);
    await assert.rejects(a.lock(uniq("l")).acquire({ timeoutMs: -1 }), InvalidArgumentError);
  });

  test("health; close releases what the client held; a closed client refuses calls", async () => {
    const c = client(server.address);
    assert.equal(await c.health(), "SERVING");
    const name = uniq("lock");
    const lock = c.lock(name);
    const held = await lock.acquire();
    await c.close();
    await c.close();
    assert.equal(held.held, false);
    assert.deepEqual(await held.release(), { handedOff: false }, "released by the close already");
    assert.equal(await a.admin.tryDescribe(name), undefined);
    assert.throws(() => c.lock("x"), ClientClosedError);
    await assert.rejects(lock.acquire(), ClientClosedError);
    await assert.rejects(lock.describe(), ClientClosedError);
  });
});
