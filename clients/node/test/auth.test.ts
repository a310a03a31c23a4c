// Principals enforced through the client, against a batond of its own (TLS,
// --auth_policy, --auth_tokens), whatever BATON_TEST_SECURE says:
//
//     role rw  write ro/ rw/       grant writer rw
//     role ro  read  ro/           grant reader ro
//
// No token: opening the session rejects with UnauthenticatedError; an unknown
// token too. `reader` may open a session and describe names under ro/, but a
// lock acquire there (write access) rejects with PermissionDeniedError, and so
// does anything outside ro/; `writer` acquires.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  BatonClient,
  BatonError,
  PermissionDeniedError,
  Status,
  UnauthenticatedError,
  type BatonClientOptions,
} from "baton-client";

import { makeSecure, startBatond, uniq, type Secure, type Server } from "./helpers";

let auth: Secure;
let server: Server;

before(async () => {
  auth = makeSecure(
    [
      ["rw", "write", "ro/", "rw/"],
      ["ro", "read", "ro/"],
    ],
    { writer: ["rw"], reader: ["ro"] },
  );
  server = await startBatond(["--durability", "none", ...auth.serverArgs]);
});

after(async () => {
  await server?.stop();
});

/** A client of the policy server; closed by the caller. */
function connect(options: BatonClientOptions): BatonClient {
  return new BatonClient({ address: server.address, sessionTtlMs: 5000, callTimeoutMs: 10_000, ...options });
}

/** Runs `fn` with a client, closing it afterwards. */
async function withClient(options: BatonClientOptions, fn: (c: BatonClient) => Promise<void>): Promise<void> {
  const c = connect(options);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

describe("principals through the client", () => {
  test("no token: UnauthenticatedError", async () => {
    await withClient(auth.clientOptions(null), async (c) => {
      const err = await c.connect().then(
        () => assert.fail("connected without a token"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UnauthenticatedError, `got ${String(err)}`);
      assert.ok(err instanceof BatonError);
      assert.equal(err.code, Status.UNAUTHENTICATED);
      assert.equal(err.codeName, "UNAUTHENTICATED");
    });
  });

  test("an unknown token: UnauthenticatedError", async () => {
    await withClient({ ...auth.clientOptions(null), token: "not-a-known-token" }, async (c) => {
      await assert.rejects(c.lock(uniq("ro")).acquire({ timeoutMs: 0 }), UnauthenticatedError);
    });
  });

  test("read access on a prefix: acquiring a lock there is PermissionDeniedError", async () => {
    await withClient(auth.clientOptions("reader"), async (c) => {
      const name = `ro/${uniq("lock")}`;
      const err = await c
        .lock(name)
        .acquire({ timeoutMs: 0 })
        .then(
          () => assert.fail("a reader acquired a lock"),
          (e: unknown) => e,
        );
      assert.ok(err instanceof PermissionDeniedError, `got ${String(err)}`);
      assert.equal(err.code, Status.PERMISSION_DENIED);
      assert.match(err.message, /ro\//);
      // Reading is what it may do there: a lock nobody declared describes as absent.
      assert.equal(await c.admin.tryDescribe(name), undefined);
      // Outside its prefix, not even that; the session survives denied calls.
      await assert.rejects(c.admin.tryDescribe(`rw/${uniq("lock")}`), PermissionDeniedError);
      await assert.rejects(c.lock(`rw/${uniq("lock")}`).acquire({ timeoutMs: 0 }), PermissionDeniedError);
    });
  });

  test("write access: the writer acquires where the reader may not, not outside its prefixes", async () => {
    await withClient(auth.clientOptions("writer"), async (c) => {
      const held = await c.lock(`ro/${uniq("lock")}`).acquire({ timeoutMs: 10_000 });
      assert.ok(held.fence > 0n);
      await held.release();
      await assert.rejects(c.lock(`other/${uniq("lock")}`).acquire({ timeoutMs: 0 }), PermissionDeniedError);
    });
  });
});
