// Test helpers: a real batond on 127.0.0.1 port 0, a TCP proxy that can cut
// or hold the connection between a client and the server, unique names, and
// polling.
//
// With BATON_TEST_SECURE=1 (test.sh's second run), startBatond() starts batond
// with TLS and a policy (secureSetup(): a CA and a server certificate for
// IP:127.0.0.1 and DNS:localhost made by the openssl CLI, one principal
// `suite` granted `admin *` with a random token), and client() gives every
// client TLS (that CA, server name localhost) and the token. The TCP proxy
// passes the TLS bytes through unchanged.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { BatonClient, type BatonClientOptions, type TlsOptions, type Transport } from "baton-client";

const DEFAULT_BATOND = resolve(__dirname, "..", "..", "..", "build", "service", "batond");

export interface Server {
  address: string;
  /** SIGTERM (SIGKILL after 5 s), and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, and wait for the exit: a crash. */
  kill(): Promise<void>;
}

/** The batond the tests start: $BATOND, else this repository's build. */
export function batondPath(): string {
  return process.env.BATOND || DEFAULT_BATOND;
}

/** BATON_TEST_SECURE=1: the tests' batond serves TLS and checks a token. */
export const SECURE = !["", "0"].includes(process.env.BATON_TEST_SECURE ?? "");

/** A CA and server certificate, a tokens file and a policy file in `dir`. */
export interface Secure {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  tokensFile: string;
  policyFile: string;
  /** principal -> bearer token */
  tokens: Record<string, string>;
  /** batond flags: --tls_cert, --tls_key, --auth_policy, --auth_tokens. */
  serverArgs: string[];
  /** TLS options of a client: the CA, server name localhost. */
  tls: TlsOptions;
  /** Client options: TLS and the token of `principal` (none if null). */
  clientOptions(principal: string | null): BatonClientOptions;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Makes, in a new temporary directory removed when the process exits, a CA and
 * a server certificate for IP:127.0.0.1 and DNS:localhost (openssl CLI), a
 * tokens file with a random token per principal of `grants`, and a policy of
 * `roles` ([role, access, ...prefixes]) and `grants` (principal -> roles).
 */
export function makeSecure(roles: string[][], grants: Record<string, string[]>): Secure {
  const dir = mkdtempSync(join(tmpdir(), "baton-node-test-secure-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const openssl = (...args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
  openssl(
    "req", "-x509", ...EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=baton secure test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ); // prettier-ignore
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  openssl("req", ...EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl(
    "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
  ); // prettier-ignore
  const tokens: Record<string, string> = {};
  for (const principal of Object.keys(grants)) tokens[principal] = randomBytes(24).toString("base64url");
  const file = (name: string) => join(dir, name);
  const sha256 = (t: string) => createHash("sha256").update(t).digest("hex");
  writeFileSync(
    file("tokens"),
    Object.entries(tokens)
      .map(([p, t]) => `${p} ${sha256(t)}\n`)
      .join(""),
    { mode: 0o600 },
  );
  writeFileSync(
    file("policy"),
    roles.map(([role, access, ...prefixes]) => `role ${role} ${access} ${prefixes.join(" ")}\n`).join("") +
      Object.entries(grants)
        .map(([p, rs]) => `grant ${p} ${rs.join(" ")}\n`)
        .join(""),
  );
  chmodSync(file("server.key"), 0o600);
  const tls: TlsOptions = { caFile: file("ca.pem"), serverName: "localhost" };
  return {
    dir,
    caFile: file("ca.pem"),
    certFile: file("server.pem"),
    keyFile: file("server.key"),
    tokensFile: file("tokens"),
    policyFile: file("policy"),
    tokens,
    serverArgs: [
      "--tls_cert", file("server.pem"), "--tls_key", file("server.key"),
      "--auth_policy", file("policy"), "--auth_tokens", file("tokens"),
    ], // prettier-ignore
    tls,
    clientOptions(principal) {
      if (principal === null) return { tls };
      const token = tokens[principal];
      if (token === undefined) throw new Error(`no token for principal ${principal}`);
      return { tls, token };
    },
  };
}

let suiteSecure: Secure | undefined;

/** The BATON_TEST_SECURE setup, made once per test process: principal `suite`, admin on every name. */
export function secureSetup(): Secure {
  suiteSecure ??= makeSecure([["everything", "admin", "*"]], { suite: ["everything"] });
  return suiteSecure;
}

/** True if batond flags already choose TLS or a policy. */
function namesOwnSecurity(args: string[]): boolean {
  return args.some((a) => /^--?(tls_cert|auth_policy)(=|$)/.test(a));
}

/** True if batond flags choose their own --data_dir or say --durability=none. */
function namesOwnDataDir(args: string[]): boolean {
  return args.some((arg, i) => {
    if (!arg.startsWith("-")) return false;
    const flag = arg.replace(/^-+/, "");
    const eq = flag.indexOf("=");
    const name = eq < 0 ? flag : flag.slice(0, eq);
    const value = eq < 0 ? args[i + 1] : flag.slice(eq + 1); // "--flag value" or "--flag=value"
    return name === "data_dir" || (name === "durability" && value === "none");
  });
}

/**
 * Starts batond on a free port; stop() sends SIGTERM (SIGKILL after 5 s).
 * Unless `extraArgs` name their own --data_dir or say --durability=none, the
 * server gets a fresh temporary data directory, removed once it has exited.
 * Under BATON_TEST_SECURE=1 it serves TLS and checks the `suite` token
 * (secureSetup()), unless `extraArgs` set --tls_cert or --auth_policy
 * themselves or `options.plain` asks for plaintext without tokens.
 */
export async function startBatond(extraArgs: string[] = [], options: { plain?: boolean } = {}): Promise<Server> {
  if (SECURE && !options.plain && !namesOwnSecurity(extraArgs)) {
    extraArgs = [...extraArgs, ...secureSetup().serverArgs];
  }
  const bin = batondPath();
  if (!existsSync(bin)) throw new Error(`batond not found at ${bin} (set BATOND)`);
  const dataDir = namesOwnDataDir(extraArgs) ? undefined : mkdtempSync(join(tmpdir(), "baton-node-test-data-"));
  const removeDataDir = () => {
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  const dataArgs = dataDir === undefined ? [] : ["--data_dir", dataDir];
  const child: ChildProcess = spawn(bin, ["--listen", "127.0.0.1:0", ...dataArgs, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A test process that dies must not leave its server (or its data) behind.
  const killOnExit = () => {
    child.kill("SIGKILL");
    try {
      removeDataDir();
    } catch {
      // Best effort: the server may still be on its way out.
    }
  };
  process.once("exit", killOnExit);
  child.once("exit", () => {
    process.removeListener("exit", killOnExit);
    removeDataDir();
  });
  child.once("error", removeDataDir); // never started: no "exit"
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const address = await new Promise<string>((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`batond did not start: ${stderr}`)), 10_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`batond exited with ${code}: ${stderr}`));
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      fail(new Error(`cannot run ${bin}: ${err.message}`));
    });
  });
  return {
    address,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(kill);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** A unique resource name under `prefix`. */
export function uniq(prefix: string): string {
  return `nodetest/${prefix}/${randomUUID().slice(0, 8)}`;
}

/**
 * A client with a short session TTL, for tests; under BATON_TEST_SECURE=1 with
 * TLS and the `suite` token (unless `options` give their own).
 */
export function client(address: string, options: BatonClientOptions = {}): BatonClient {
  const secure = SECURE ? secureSetup().clientOptions("suite") : {};
  return new BatonClient({ address, sessionTtlMs: 5000, transport: currentTransport, ...secure, ...options });
}

/** The transports the key suites run on: the session stream (the default), then unary calls. */
export const TRANSPORTS = ["stream", "unary"] as const;

let currentTransport: Transport = "stream";

/** Sets the transport of the clients client() makes from now on. */
export function useTransport(t: Transport): void {
  currentTransport = t;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true; fails after `timeoutMs`. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
  what: string | (() => string) = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(10);
  }
}

/** Resolves `true` if `p` is still pending after `ms`. */
export async function stillPending(p: Promise<unknown>, ms = 100): Promise<boolean> {
  const marker = Symbol("pending");
  const r = await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    sleep(ms).then(() => marker),
  ]);
  return r === marker;
}

/**
 * A TCP proxy in front of the server. cut() drops every connection and
 * refuses new ones until restore(); holdDownstream() keeps what the server
 * sends from reaching the client (the server's writes still succeed) until
 * releaseDownstream().
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; held: Buffer[] }>();
  private refusing = false;
  private holding = false;
  address = "";

  private constructor(private target: string) {
    this.server = net.createServer((clientSock) => this.accept(clientSock));
  }

  static async start(target: string): Promise<TcpProxy> {
    const p = new TcpProxy(target);
    await new Promise<void>((r) => p.server.listen(0, "127.0.0.1", () => r()));
    p.address = `127.0.0.1:${(p.server.address() as net.AddressInfo).port}`;
    return p;
  }

  private accept(clientSock: net.Socket): void {
    if (this.refusing) {
      clientSock.destroy();
      return;
    }
    const [host, port] = [
      this.target.slice(0, this.target.lastIndexOf(":")),
      Number(this.target.slice(this.target.lastIndexOf(":") + 1)),
    ];
    const upstream = net.connect(port, host);
    const pair = { client: clientSock, upstream, held: [] as Buffer[] };
    this.pairs.add(pair);
    clientSock.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (this.holding) pair.held.push(d);
      else clientSock.write(d);
    });
    const drop = () => {
      clientSock.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    clientSock.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  }

  /** Sends new connections to another server. */
  retarget(address: string): void {
    this.target = address;
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.refusing = true;
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.refusing = false;
  }

  holdDownstream(): void {
    this.holding = true;
  }

  releaseDownstream(): void {
    this.holding = false;
    for (const p of this.pairs) {
      for (const d of p.held.splice(0)) p.client.write(d);
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * Marks `p` as handled so that a rejection that comes while the test awaits
 * something else is not reported as unhandled; assert on `p` later.
 */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
