// TLS and mutual TLS against a real batond serving them (--tls_cert,
// --tls_key, --client_ca), with certificates made by the openssl CLI for this
// run: a CA, a server certificate for IP:127.0.0.1 and DNS:localhost, a client
// certificate, and a CA and client certificate the server does not trust.
//
// A client that cannot connect fails with UnavailableError once callTimeoutMs
// (short here) has passed without the channel becoming ready; each failure is
// checked to come within a bound.
//
// Under BATON_TEST_SECURE=1 these tests keep their own servers (the plaintext
// one stays plaintext): what they test is the TLS handshake itself.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import * as grpc from "@grpc/grpc-js";
import { BatonClient, UnavailableError, type BatonClientOptions, type TlsOptions } from "baton-client";

import { startBatond, uniq, type Server } from "./helpers";

/** callTimeoutMs of clients that must fail: how long they wait for the channel. */
const CONNECT_MS = 1500;
/** Longest a failing connect may take: CONNECT_MS, one more try, and slack for a loaded machine. */
const FAIL_WITHIN_MS = CONNECT_MS + 8000;

/** Without the openssl CLI there are no certificates: the suites are skipped, saying why. */
const skip = spawnSync("openssl", ["version"]).status === 0 ? false : "the openssl CLI is needed to make certificates";

let dir: string;
let tlsServer: Server;
let mtlsServer: Server;
let plainServer: Server;

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(name: string): void {
  openssl(
    "req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2",
    "-subj", `/CN=baton test ${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ); // prettier-ignore
}

function makeCert(name: string, ca: string, cn: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl("req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
  openssl(
    "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial",
    "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`,
  ); // prettier-ignore
}

const file = (name: string) => join(dir, name);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "baton-node-tls-"));
  makeCa("ca");
  makeCa("other-ca");
  makeCert("server", "ca", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  makeCert("client", "ca", "baton-test-client", "extendedKeyUsage=clientAuth\n");
  makeCert("other-client", "other-ca", "baton-test-other-client", "extendedKeyUsage=clientAuth\n");
  const tlsArgs = ["--durability", "none", "--tls_cert", file("server.pem"), "--tls_key", file("server.key")];
  tlsServer = await startBatond(tlsArgs);
  mtlsServer = await startBatond([...tlsArgs, "--client_ca", file("ca.pem")]);
  plainServer = await startBatond(["--durability", "none"], { plain: true });
});

after(async () => {
  await tlsServer?.stop();
  await mtlsServer?.stop();
  await plainServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Connects, acquires and releases a lock, re-acquires it with no wait (so it was free), closes. */
async function lockRoundTrip(address: string, options: BatonClientOptions): Promise<void> {
  const c = new BatonClient({ address, sessionTtlMs: 5000, ...options });
  try {
    const name = uniq("tls");
    const held = await c.lock(name).acquire({ timeoutMs: 10_000 });
    assert.ok(held.fence > 0n);
    await held.release();
    const again = await c.lock(name).acquire({ timeoutMs: 0 });
    assert.ok(again.fence > held.fence);
    await again.release();
  } finally {
    await c.close();
  }
}

/** Opening a session fails with UnavailableError, within FAIL_WITHIN_MS. */
async function connectFails(address: string, options: BatonClientOptions): Promise<UnavailableError> {
  const c = new BatonClient({ address, sessionTtlMs: 5000, callTimeoutMs: CONNECT_MS, ...options });
  const t0 = Date.now();
  try {
    const err = await c.connect().then(
      () => assert.fail("connected"),
      (e: unknown) => e,
    );
    const took = Date.now() - t0;
    assert.ok(err instanceof UnavailableError, `got ${String(err)}`);
    assert.ok(took < FAIL_WITHIN_MS, `took ${took} ms`);
    return err;
  } finally {
    await c.close();
  }
}

const caOnly = (): TlsOptions => ({ caFile: file("ca.pem") });

describe("TLS", { skip }, () => {
  test("a client trusting the CA connects and locks", async () => {
    await lockRoundTrip(tlsServer.address, { tls: caOnly() });
  });

  test("serverName overrides the host the certificate is checked against", async () => {
    await lockRoundTrip(tlsServer.address, { tls: { ...caOnly(), serverName: "localhost" } });
    const err = await connectFails(tlsServer.address, { tls: { ...caOnly(), serverName: "not-this-server.example" } });
    assert.match(err.message, /not-this-server\.example/);
  });

  test("a plaintext client fails with UnavailableError", async () => {
    await connectFails(tlsServer.address, {});
  });

  test("a client trusting another CA fails with UnavailableError", async () => {
    const err = await connectFails(tlsServer.address, { tls: { caFile: file("other-ca.pem") } });
    assert.match(err.message, /certificate/);
  });

  test("tls: true (Node's root CAs) does not trust a private CA", async () => {
    await connectFails(tlsServer.address, { tls: true });
  });

  test("a TLS client against a plaintext server fails with UnavailableError", async () => {
    await connectFails(plainServer.address, { tls: caOnly() });
  });
});

describe("mutual TLS", { skip }, () => {
  test("a client with its certificate connects and locks", async () => {
    await lockRoundTrip(mtlsServer.address, {
      tls: { caFile: file("ca.pem"), certFile: file("client.pem"), keyFile: file("client.key") },
    });
  });

  test("a client without a certificate fails with UnavailableError", async () => {
    await connectFails(mtlsServer.address, { tls: caOnly() });
  });

  test("a client with a certificate of another CA fails with UnavailableError", async () => {
    await connectFails(mtlsServer.address, {
      tls: { caFile: file("ca.pem"), certFile: file("other-client.pem"), keyFile: file("other-client.key") },
    });
  });
});

describe("TLS options", { skip }, () => {
  test("certFile without keyFile, or the reverse, is a TypeError", () => {
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: { ...caOnly(), certFile: file("client.pem") } }),
      (e: unknown) => e instanceof TypeError && /certFile without keyFile/.test(e.message),
    );
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: { keyFile: file("client.key") } }),
      (e: unknown) => e instanceof TypeError && /keyFile without certFile/.test(e.message),
    );
  });

  test("a file that cannot be read is an error naming it", () => {
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: { caFile: file("no-such-ca.pem") } }),
      /caFile ".*no-such-ca\.pem".*ENOENT/,
    );
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: { certFile: file("client.pem"), keyFile: file("nokey") } }),
      /keyFile ".*nokey"/,
    );
    if (process.getuid?.() !== 0) {
      // root reads anything
      copyFileSync(file("ca.pem"), file("locked.pem"));
      chmodSync(file("locked.pem"), 0);
      assert.throws(
        () => new BatonClient({ address: "127.0.0.1:1", tls: { caFile: file("locked.pem") } }),
        /locked\.pem/,
      );
    }
    writeFileSync(file("not.pem"), "hello\n");
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: { caFile: file("not.pem") } }),
      /not\.pem" holds no PEM block/,
    );
  });

  test("tls and credentials together is a TypeError; tls: false is plaintext", async () => {
    assert.throws(
      () => new BatonClient({ address: "127.0.0.1:1", tls: true, credentials: grpc.credentials.createInsecure() }),
      TypeError,
    );
    await lockRoundTrip(plainServer.address, { tls: false });
  });
});
