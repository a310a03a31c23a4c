// Sessions: one per client, kept alive by the keep-alive stream beyond its
// TTL, resumed after a broken connection within the TTL, reported lost
// otherwise (event, holdings marked lost, waits failing with
// SessionLostError), and closed with the client.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";

import { BatonClient, NotFoundError, SessionLostError, UnavailableError } from "baton-client";

import {
  client,
  eventually,
  quiet,
  sleep,
  startBatond,
  TcpProxy,
  uniq,
  type Server,
  TRANSPORTS,
  useTransport,
} from "./helpers";

let server: Server;
let observer: BatonClient;

before(async () => {
  server = await startBatond();
});

after(async () => {
  await observer?.close();
  await server?.stop();
});

async function holderSession(name: string): Promise<bigint | undefined> {
  return (await observer.admin.tryDescribe(name))?.holders[0]?.sessionId;
}

// Every test runs on both transports: the session stream (the default) and unary calls.
for (const transport of TRANSPORTS) {
  describe(transport === "stream" ? "Session" : "Session (unary)", () => {
    before(async () => {
      await observer?.close();
      useTransport(transport);
      observer = client(server.address);
    });

    test("opened on first need, once, and kept alive past its TTL", async () => {
      const c = client(server.address, { sessionTtlMs: 1000, label: "ttl-test" });
      try {
        const opened: bigint[] = [];
        c.on("sessionOpened", (id) => opened.push(id));
        assert.equal(c.sessionId, undefined);
        const [held, other] = await Promise.all([c.lock(uniq("s")).acquire(), c.lock(uniq("s")).acquire()]);
        assert.equal(opened.length, 1, "one session for concurrent first calls");
        assert.equal(held.sessionId, other.sessionId);
        const info = await c.describeSession();
        assert.equal(info.label, "ttl-test");
        assert.equal(info.ttlMs, 1000);
        assert.equal(info.openStreams, 1);
        assert.equal(info.expiresInMs, undefined, "held open by the keep-alive stream");
        await sleep(2500);
        assert.equal(await holderSession(held.name), c.sessionId, "still held after 2.5 TTLs");
        assert.equal((await c.keepAlive()).expiresInMs, undefined, "no expiry while the stream is open");
        await held.release();
        await other.release();
      } finally {
        await c.close();
      }
    });

    test("close ends the session: what it held is free at once", async () => {
      const c = client(server.address);
      const name = uniq("s");
      const held = await c.lock(name).acquire();
      const id = c.sessionId!;
      await c.close();
      assert.equal(await observer.admin.tryDescribe(name), undefined);
      await assert.rejects(
        new Promise((resolve, reject) =>
          observer.raw.sessions.Describe({ sessionId: id.toString() }, (e, r) => (e ? reject(e) : resolve(r))),
        ),
        (e: { code: number }) => e.code === 5,
      );
      assert.equal(held.held, false, "released with the session");
    });

    test("await using closes the client", async () => {
      const name = uniq("s");
      {
        await using c = client(server.address);
        await c.lock(name).acquire();
        assert.ok(await holderSession(name));
      }
      assert.equal(await observer.admin.tryDescribe(name), undefined);
    });

    test("a session ended elsewhere: waits fail, the loss is reported, a new session follows", async () => {
      const c = client(server.address);
      try {
        const name = uniq("s");
        const blocker = await observer.lock(name).acquire();
        const held = await c.lock(uniq("s")).acquire();
        const waiting = quiet(c.lock(name).acquire());
        await eventually(async () => (await observer.admin.describe(name)).waiters === 1, 5000, "c waits");
        const lost = once(c, "sessionLost") as Promise<[SessionLostError]>;
        const old = c.sessionId!;
        await new Promise((resolve, reject) =>
          observer.raw.sessions.Close({ sessionId: old.toString() }, (e, r) => (e ? reject(e) : resolve(r))),
        );
        const err = await waiting.catch((e: unknown) => e);
        assert.ok(err instanceof SessionLostError, `got ${String(err)}`);
        assert.equal(err.sessionId, old);
        const [event] = await lost;
        assert.equal(event.sessionId, old);
        assert.equal(await held.lost, event, "the lost signal carries the reason");
        assert.equal(held.held, false);
        assert.ok(held.signal.aborted);
        await assert.rejects(held.release(), SessionLostError);
        await blocker.release();
        const again = await c.lock(name).acquire({ timeoutMs: 5000 });
        assert.notEqual(again.sessionId, old, "a new session");
        await again.release();
      } finally {
        await c.close();
      }
    });

    test("a broken connection is resumed within the TTL: nothing is lost", async () => {
      const proxy = await TcpProxy.start(server.address);
      const c = client(proxy.address, { sessionTtlMs: 4000 });
      try {
        const name = uniq("s");
        const held = await c.lock(name).acquire();
        const id = c.sessionId!;
        let lost = false;
        c.on("sessionLost", () => (lost = true));
        const reconnected = once(c, "sessionReconnected");
        proxy.cut();
        await eventually(() => c.reconnecting, 5000, "client notices the break");
        await sleep(800);
        // The server counts the TTL down meanwhile.
        const info = await new Promise<{ expiresIn: unknown; openStreams: number }>((resolve, reject) =>
          observer.raw.sessions.Describe({ sessionId: id.toString() }, (e, r) => (e ? reject(e) : resolve(r!))),
        );
        assert.equal(info.openStreams, 0);
        assert.ok(info.expiresIn, "expiring");
        proxy.restore();
        await reconnected;
        assert.equal(lost, false);
        assert.equal(c.sessionId, id);
        assert.equal(await holderSession(name), id, "still held");
        assert.ok(held.held);
        assert.deepEqual(await held.release(), { handedOff: false });
      } finally {
        await c.close();
        await proxy.close();
      }
    });

    test("unreachable for longer than the TTL: the session is lost and its lock freed", async () => {
      const proxy = await TcpProxy.start(server.address);
      const c = client(proxy.address, { sessionTtlMs: 1000 });
      try {
        const name = uniq("s");
        const held = await c.lock(name).acquire();
        const id = c.sessionId!;
        const lost = once(c, "sessionLost") as Promise<[SessionLostError]>;
        proxy.cut();
        const t0 = Date.now();
        const [err] = await lost;
        const took = Date.now() - t0;
        assert.equal(err.sessionId, id);
        assert.ok(took < 4000, `reported within a few TTLs (${took} ms)`);
        assert.equal(held.held, false);
        assert.ok(held.signal.aborted);
        assert.equal(c.sessionId, undefined);
        // The server expired it too: the lock is free for others.
        await eventually(async () => (await observer.admin.tryDescribe(name)) === undefined, 5000, "lock freed");
        await assert.rejects(
          new Promise((resolve, reject) =>
            observer.raw.sessions.Describe({ sessionId: id.toString() }, (e, r) => (e ? reject(e) : resolve(r))),
          ),
          (e: { code: number }) => e.code === 5,
        );
        proxy.restore();
        const again = await c.lock(name).acquire({ timeoutMs: 5000 });
        assert.notEqual(again.sessionId, id);
        await again.release();
      } finally {
        await c.close();
        await proxy.close();
      }
    });

    test("a server restart loses the session; the client reports it and carries on", async () => {
      const own = await startBatond();
      const proxy = await TcpProxy.start(own.address);
      const c = client(proxy.address, { sessionTtlMs: 3000 });
      let second: Server | undefined;
      try {
        await c.lock(uniq("s")).acquire();
        const id = c.sessionId!;
        const lost = once(c, "sessionLost") as Promise<[SessionLostError]>;
        await own.stop();
        second = await startBatond();
        // Point the proxy at the new server: same address for the client.
        proxy.retarget(second.address);
        const [err] = await lost;
        assert.equal(err.sessionId, id);
        const fresh = await c.lock(uniq("s")).acquire({ timeoutMs: 5000 });
        assert.notEqual(fresh.sessionId, id);
      } finally {
        await c.close();
        await proxy.close();
        await second?.stop();
      }
    });

    test("calls wait for a reconnecting channel; an unanswered wait fails as UnavailableError", async () => {
      const proxy = await TcpProxy.start(server.address);
      const c = client(proxy.address, { callTimeoutMs: 1500 });
      try {
        const name = uniq("s");
        await c.connect();
        proxy.cut();
        await eventually(() => c.reconnecting, 5000, "client notices the break");
        const setting = c.event(name).set();
        await sleep(300);
        proxy.restore();
        assert.deepEqual(await setting, { wasSet: false, woken: 0 }, "the call went through once reconnected");
        await c.event(name).clear();

        const blocker = await observer.lock(name).acquire();
        proxy.holdDownstream();
        const t0 = Date.now();
        const err = await c
          .lock(name)
          .acquire({ timeoutMs: 100 })
          .catch((e: unknown) => e);
        assert.ok(err instanceof UnavailableError, `got ${String(err)}`);
        assert.ok(Date.now() - t0 >= 1500, "after the request timeout plus callTimeoutMs");
        proxy.releaseDownstream();
        await blocker.release();
        assert.equal(await observer.admin.tryDescribe(name), undefined);
      } finally {
        await c.close();
        await proxy.close();
      }
    });

    test("NotFoundError is not mistaken for a lost session", async () => {
      const c = client(server.address);
      try {
        await c.connect();
        const lostEvents: unknown[] = [];
        c.on("sessionLost", (e) => lostEvents.push(e));
        await assert.rejects(c.admin.describe(uniq("none")), NotFoundError);
        assert.deepEqual(lostEvents, []);
        assert.ok(c.sessionId);
      } finally {
        await c.close();
      }
    });
  });
}
