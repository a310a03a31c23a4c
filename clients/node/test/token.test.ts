// Bearer tokens (`token`, `tokenFile`): the `authorization: Bearer <token>`
// metadata on unary calls and streams, the refusal to send a token in clear to
// a non-loopback address, and the errors of token and tokenFile.
//
// The metadata is checked on an in-process fake gRPC server on 127.0.0.1 port
// 0 that records the authorization header of every call and answers just
// enough of the protocol (Stream/Connect, Sessions/Open, KeepAliveStream, Close, Events/Set,
// Events/Watch, Admin/ServerInfo) for a client to work. A handler records the
// header before it answers, and the tests wait on the record itself (a promise
// per method), so there is no sleeping and no polling.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BatonClient, isLoopbackTarget, type BatonClientOptions } from "baton-client";

import { startBatond, uniq, type Server } from "./helpers";

const TOKEN = "tok-3f9a.B_c~d+e/f=";
const BEARER = `Bearer ${TOKEN}`;

/** The package's copy of the protos (scripts/gen.mjs puts it there at build time). */
const PROTO_DIR = process.env.BATON_PROTO_DIR || resolve(__dirname, "..", "proto");

type Handler = (call: any, callback?: any) => void;

/** A gRPC server on 127.0.0.1:0 recording (method, authorization header) of each call. */
class FakeBatond {
  readonly server = new grpc.Server();
  address = "";
  readonly calls: Array<{ method: string; auth: string[] }> = [];
  private readonly waiters = new Map<string, Array<() => void>>();

  /** The authorization headers of every call of `method` so far. */
  authOf(method: string): string[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.auth);
  }

  /** Resolves once `method` has been called (at once if it has). */
  called(method: string): Promise<void> {
    if (this.calls.some((c) => c.method === method)) return Promise.resolve();
    return new Promise((ok) => this.waiters.set(method, [...(this.waiters.get(method) ?? []), ok]));
  }

  private record(method: string, call: { metadata: grpc.Metadata }): void {
    this.calls.push({ method, auth: call.metadata.get("authorization").map(String) });
    for (const ok of this.waiters.get(method) ?? []) ok();
    this.waiters.delete(method);
  }

  async start(): Promise<string> {
    const definition = protoLoader.loadSync(
      ["baton/v1/session.proto", "baton/v1/event.proto", "baton/v1/admin.proto", "baton/v1/stream.proto"].map((f) =>
        join(PROTO_DIR, f),
      ),
      { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] },
    );
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const v1 = pkg.baton.v1;
    const ttl = { seconds: "30", nanos: 0 };
    const r =
      (method: string, h: Handler): Handler =>
      (call, callback) => {
        this.record(method, call);
        h(call, callback);
      };
    this.server.addService(v1.Sessions.service, {
      Open: r("Sessions/Open", (_call, cb) => cb(null, { sessionId: "8", ttl })),
      KeepAliveStream: r("Sessions/KeepAliveStream", (call) => {
        call.on("data", (req: { sessionId: string }) =>
          call.write({ sessionId: req.sessionId, state: "SESSION_STATE_ALIVE", expiresIn: ttl }),
        );
        call.on("end", () => call.end());
        call.on("error", () => {});
      }),
      Close: r("Sessions/Close", (_call, cb) => cb(null, {})),
    });
    this.server.addService(v1.Stream.service, {
      // The session stream: a welcome to the hello, Events/Set and
      // Sessions/Describe answered.
      Connect: r("Stream/Connect", (call) => {
        call.on("data", (req: { hello: unknown; ops: Array<Record<string, unknown>> }) => {
          if (req.hello) call.write({ welcome: { sessionId: "8", ttl, resumed: false } });
          const results = req.ops.map((op) =>
            op.setEvent
              ? { id: op.id, code: 0, setEvent: { previous: "EVENT_STATE_CLEAR", woken: 0 } }
              : op.describeSession
                ? { id: op.id, code: 0, describeSession: { sessionId: "8", label: "fake", ttl } }
                : { id: op.id, code: 12, message: "not in the fake" },
          );
          if (results.length > 0) call.write({ results });
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      }),
    });
    this.server.addService(v1.Events.service, {
      Set: r("Events/Set", (_call, cb) => cb(null, { previous: "EVENT_STATE_CLEAR", woken: 0 })),
      Watch: r("Events/Watch", (call) => {
        call.on("error", () => {});
        call.write({ state: "EVENT_STATE_SET", sequence: "1" }); // then open until cancelled
      }),
    });
    this.server.addService(v1.Admin.service, {
      ServerInfo: r("Admin/ServerInfo", (_call, cb) => cb(null, { version: "fake" })),
    });
    const port = await new Promise<number>((ok, fail) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? fail(err) : ok(p),
      ),
    );
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

/** Admin/ServerInfo on the raw stub (unary). */
function serverInfo(c: BatonClient): Promise<{ version: string }> {
  return new Promise((ok, fail) => c.raw.admin.ServerInfo({}, (err, res) => (err ? fail(err) : ok(res!))));
}

/** A unary call through the client's API, a server stream, a raw unary call. */
async function exercise(c: BatonClient): Promise<void> {
  assert.deepEqual(await c.event("e").set(), { wasSet: false, woken: 0 });
  for await (const change of c.event("e").watch()) {
    assert.equal(change.isSet, true);
    break; // cancels the stream
  }
  assert.equal((await serverInfo(c)).version, "fake");
}

describe("bearer token on the wire", () => {
  let fake: FakeBatond;
  let dir: string;
  before(async () => {
    fake = new FakeBatond();
    await fake.start();
    dir = mkdtempSync(join(tmpdir(), "baton-node-token-"));
  });
  after(() => {
    fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client of the fake server that probes rarely (the probes are not under test). */
  const fakeClient = (options: BatonClientOptions) =>
    new BatonClient({ address: fake.address, keepAliveIntervalMs: 60_000, callTimeoutMs: 10_000, ...options });

  test("token: every call carries authorization: Bearer <token>, streams included", async () => {
    fake.calls.length = 0;
    const c = fakeClient({ token: TOKEN });
    try {
      await c.connect(); // Stream/Connect: the session stream
      await exercise(c); // Events/Set on the stream, Events/Watch, Admin/ServerInfo
    } finally {
      await c.close(); // Sessions/Close
    }
    for (const method of ["Stream/Connect", "Events/Watch", "Admin/ServerInfo", "Sessions/Close"]) {
      assert.deepEqual(fake.authOf(method), [[BEARER]], method);
    }
  });

  test("token, unary transport: every call carries it, the keep-alive stream included", async () => {
    fake.calls.length = 0;
    const c = fakeClient({ token: TOKEN, transport: "unary" });
    try {
      await c.connect(); // Sessions/Open, then the keep-alive stream
      await fake.called("Sessions/KeepAliveStream");
      await exercise(c);
    } finally {
      await c.close(); // Sessions/Close
    }
    for (const method of [
      "Sessions/Open",
      "Sessions/KeepAliveStream",
      "Events/Set",
      "Events/Watch",
      "Admin/ServerInfo",
      "Sessions/Close",
    ]) {
      assert.deepEqual(fake.authOf(method), [[BEARER]], method);
    }
  });

  test("no token: no authorization header", async () => {
    fake.calls.length = 0;
    const c = fakeClient({});
    try {
      await c.connect();
      await exercise(c);
    } finally {
      await c.close();
    }
    assert.ok(fake.calls.length >= 4);
    assert.deepEqual(
      fake.calls.filter((x) => x.auth.length > 0),
      [],
    );
  });

  test("tokenFile: read once, whitespace around the token dropped", async () => {
    fake.calls.length = 0;
    const path = join(dir, "token");
    writeFileSync(path, `\n  ${TOKEN}\r\n`);
    const c = fakeClient({ tokenFile: path });
    try {
      await exercise(c);
    } finally {
      await c.close();
    }
    assert.deepEqual(fake.authOf("Events/Watch"), [[BEARER]]);
    assert.deepEqual(fake.authOf("Admin/ServerInfo"), [[BEARER]]);
  });

  test("a call's own authorization metadata is kept, not doubled", async () => {
    fake.calls.length = 0;
    const c = fakeClient({ token: TOKEN });
    try {
      const md = new grpc.Metadata();
      md.set("authorization", "Bearer other");
      await new Promise((ok, fail) => c.raw.admin.ServerInfo({}, md, (err, res) => (err ? fail(err) : ok(res))));
      const plain = new grpc.Metadata();
      await new Promise((ok, fail) => c.raw.admin.ServerInfo({}, plain, (err, res) => (err ? fail(err) : ok(res))));
      assert.deepEqual(plain.get("authorization"), [], "the caller's Metadata is not modified");
    } finally {
      await c.close();
    }
    assert.deepEqual(fake.authOf("Admin/ServerInfo"), [["Bearer other"], [BEARER]]);
  });
});

describe("token and tokenFile errors", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "baton-node-token-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a missing tokenFile: an Error naming it", () => {
    const path = join(dir, "no-such-token");
    assert.throws(() => new BatonClient({ address: "127.0.0.1:1", tokenFile: path }), {
      message: /tokenFile: cannot read ".*no-such-token": ENOENT/,
    });
  });

  test("an unreadable tokenFile (a directory): an Error naming it", () => {
    assert.throws(() => new BatonClient({ address: "127.0.0.1:1", tokenFile: dir }), {
      message: new RegExp(`tokenFile: cannot read "${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`),
    });
  });

  for (const content of ["", "\n", "  \t\r\n"]) {
    test(`an empty tokenFile (${JSON.stringify(content)}): an Error naming it`, () => {
      const path = join(dir, "empty-token");
      writeFileSync(path, content);
      assert.throws(() => new BatonClient({ address: "127.0.0.1:1", tokenFile: path }), {
        message: /tokenFile ".*empty-token" is empty/,
      });
    });
  }

  test("a tokenFile holding two words: a TypeError naming it, without the token", () => {
    const path = join(dir, "two-words");
    writeFileSync(path, "secret1 secret2\n");
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tokenFile: path }),
      (e: Error) => e instanceof TypeError && /two-words.*whitespace/.test(e.message) && !/secret1/.test(e.message),
    );
  });

  for (const token of ["", "a b", "ab\n", "\tab", "a\u00a0b", "caf\u00e9", "a\u0000b"]) {
    test(`token ${JSON.stringify(token)} is rejected with a TypeError`, () => {
      assert.throws(() => new BatonClient({ address: "127.0.0.1:1", token }), TypeError);
    });
  }

  test("token and tokenFile together: a TypeError", () => {
    assert.throws(() => new BatonClient({ address: "127.0.0.1:1", token: TOKEN, tokenFile: join(dir, "t") }), {
      name: "TypeError",
      message: /not both/,
    });
  });
});

describe("a token is never sent in clear to another machine", () => {
  const notLoopback = [
    "10.0.0.5:7411",
    "batond.example.com:7411",
    "dns:///batond.example.com:7411",
    "dns://8.8.8.8/batond.example.com:7411",
    "[2001:db8::1]:7411",
    "[::ffff:10.0.0.1]:7411",
    "0.0.0.0:7411",
    "localhost.example.com:7411",
    "ipv4:127.0.0.1:7411,10.0.0.1:7411",
  ];
  const loopback = [
    "127.0.0.1:7411",
    "127.3.2.1:7411",
    "localhost:7411",
    "LOCALHOST:7411",
    "[::1]:7411",
    "[0:0:0:0:0:0:0:1]:7411",
    "[::ffff:127.0.0.1]:7411",
    "::1",
    "unix:/tmp/batond.sock",
    "unix:///tmp/batond.sock",
    "unix-abstract:batond",
    "dns:///localhost:7411",
    "dns:127.0.0.1:7411",
    "ipv4:127.0.0.1:7411,127.0.0.2:7411",
    "ipv6:[::1]:7411",
  ];

  for (const address of notLoopback) {
    test(`plaintext to ${address} with a token is refused`, () => {
      assert.equal(isLoopbackTarget(address), false);
      assert.throws(
        () => new BatonClient({ address, token: TOKEN }),
        (e: Error) => /refusing to send the token in clear/.test(e.message) && !e.message.includes(TOKEN),
      );
      // Without a token, plaintext is the caller's (and the server's) business.
      void new BatonClient({ address }).close();
    });
  }

  for (const address of loopback) {
    test(`plaintext to ${address} with a token is allowed`, async () => {
      assert.equal(isLoopbackTarget(address), true);
      await new BatonClient({ address, token: TOKEN }).close();
    });
  }

  test("insecureToken, tls and secure credentials allow a non-loopback address", async () => {
    const address = "10.0.0.5:7411";
    await new BatonClient({ address, token: TOKEN, insecureToken: true }).close();
    await new BatonClient({ address, token: TOKEN, tls: true }).close();
    await new BatonClient({ address, token: TOKEN, credentials: grpc.credentials.createSsl() }).close();
    assert.throws(
      () => new BatonClient({ address, token: TOKEN, credentials: grpc.credentials.createInsecure() }),
      /refusing to send the token in clear/,
    );
  });
});

describe("token against the real batond", () => {
  let server: Server;
  before(async () => {
    // Plaintext without token checks also under BATON_TEST_SECURE=1: auth.test.ts tests a policy.
    server = await startBatond(["--durability", "none"], { plain: true });
  });
  after(async () => {
    await server?.stop();
  });

  test("a client with a token locks and watches (a batond without token checks ignores the header)", async () => {
    const c = new BatonClient({ address: server.address, token: TOKEN, sessionTtlMs: 5000 });
    try {
      const held = await c.lock(uniq("token")).acquire({ timeoutMs: 10_000 });
      assert.ok(held.fence > 0n);
      await held.release();
      const ev = c.event(uniq("token"));
      await ev.set();
      for await (const change of ev.watch()) {
        assert.equal(change.isSet, true);
        break;
      }
    } finally {
      await c.close();
    }
  });
});
