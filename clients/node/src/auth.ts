// Bearer tokens of BatonClient (`token`, `tokenFile`): reading and checking
// them, the rule that a token never crosses the network in clear, and the
// call interceptor that sends `authorization: Bearer <token>` on every call.
//
// The token travels in a grpc-js client interceptor given to every stub, so
// that each call (unary calls, Sessions/KeepAliveStream, server streams such
// as Events/Watch and Queues/Consume, and calls on `client.raw`) carries it.
// Not credentials.createFromMetadataGenerator: grpc-js composes call
// credentials with secure channel credentials only, and a token to a batond on
// loopback may well go over plaintext.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

import * as grpc from "@grpc/grpc-js";

const AUTHORIZATION = "authorization";

/** Throws a TypeError (naming `where`, never the token) unless `token` can be sent as a bearer token. */
function checkToken(token: unknown, where: string): string {
  if (typeof token !== "string") throw new TypeError(`${where} must be a string`);
  if (token === "") throw new TypeError(`${where} is empty`);
  if (/\s/.test(token)) throw new TypeError(`${where} contains whitespace; a bearer token is one word`);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError(`${where} contains characters other than printable ASCII, which a gRPC header cannot carry`);
  }
  return token;
}

/**
 * The token from `token`, or read now from the file `tokenFile` with the
 * whitespace around it (a trailing newline) removed; undefined when neither is
 * given. Throws a TypeError for both given or a bad token (empty, whitespace
 * or non-printable characters inside), and an Error naming the file when it
 * cannot be read or is empty.
 */
export function resolveToken(token: string | undefined, tokenFile: string | undefined): string | undefined {
  if (token !== undefined && tokenFile !== undefined) throw new TypeError("give token or tokenFile, not both");
  if (token !== undefined) return checkToken(token, "token");
  if (tokenFile === undefined) return undefined;
  let data: string;
  try {
    data = readFileSync(tokenFile, "latin1");
  } catch (e) {
    throw new Error(`tokenFile: cannot read ${JSON.stringify(tokenFile)}: ${(e as Error).message}`, { cause: e });
  }
  const text = data.trim();
  if (text === "") throw new Error(`tokenFile ${JSON.stringify(tokenFile)} is empty`);
  return checkToken(text, `the token in tokenFile ${JSON.stringify(tokenFile)}`);
}

function hostIsLoopback(host: string): boolean {
  let h = host.trim();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  h = h.split("%")[0]!; // an IPv6 zone
  if (h.toLowerCase().replace(/\.$/, "") === "localhost") return true;
  switch (isIP(h)) {
    case 4:
      return h.split(".")[0] === "127";
    case 6: {
      const lower = h.toLowerCase();
      // IPv4-mapped (::ffff:127.0.0.1): loopback if its IPv4 address is.
      const mapped = /^(.*):(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
      if (mapped) {
        const prefix = expandIPv6(`${mapped[1]}:0:0`);
        return (
          prefix !== undefined &&
          prefix.slice(0, 5).every((g) => g === 0) &&
          prefix[5] === 0xffff &&
          mapped[2]!.split(".")[0] === "127"
        );
      }
      // ::1 in any spelling (0:0:0:0:0:0:0:1 ...).
      const groups = expandIPv6(lower);
      return groups !== undefined && groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1;
    }
    default:
      return false; // a name: not resolved here, so it does not count
  }
}

/** The eight 16-bit groups of an IPv6 address without an embedded IPv4 part. */
function expandIPv6(addr: string): number[] | undefined {
  if (addr.includes(".")) return undefined;
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const parse = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const a = parse(head);
  const b = parse(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - a.length - b.length).fill(0);
  const all = [...a, ...fill, ...b];
  return all.length === 8 ? all : undefined;
}

/** host, host:port, [v6]:port or a bare IPv6 address. */
function addressIsLoopback(address: string): boolean {
  const a = address.trim();
  if (a === "") return false;
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    return end > 0 && hostIsLoopback(a.slice(0, end + 1));
  }
  const colons = a.split(":").length - 1;
  if (colons > 1) return hostIsLoopback(a); // a bare IPv6 address, no port
  return hostIsLoopback(colons === 1 ? a.slice(0, a.lastIndexOf(":")) : a);
}

/**
 * True if the gRPC target names this machine only: a unix socket (unix:,
 * unix-abstract:), or hosts that are 127.0.0.0/8, ::1 or localhost (also as
 * dns:[//authority/]host:port, or ipv4:/ipv6: lists, every address of which
 * must be loopback). Names are not resolved.
 */
export function isLoopbackTarget(target: string): boolean {
  let t = target.trim();
  const lower = t.toLowerCase();
  if (lower.startsWith("unix:") || lower.startsWith("unix-abstract:")) return true;
  if (lower.startsWith("ipv4:") || lower.startsWith("ipv6:")) {
    return t
      .slice(5)
      .split(",")
      .every((a) => addressIsLoopback(a));
  }
  if (lower.startsWith("dns:")) {
    t = t.slice(4);
    if (t.startsWith("//")) {
      const slash = t.indexOf("/", 2);
      t = slash < 0 ? "" : t.slice(slash + 1); // dns://authority/host:port
    }
  }
  return addressIsLoopback(t);
}

/**
 * Throws an Error if a token would cross the network in clear: plaintext
 * credentials, a target that is not loopback, and no `insecureToken`.
 */
export function checkPlaintextToken(target: string, secure: boolean, insecureToken: boolean): void {
  if (secure || insecureToken || isLoopbackTarget(target)) return;
  throw new Error(
    `refusing to send the token in clear to ${JSON.stringify(target)}, which is not a loopback address ` +
      "(127.0.0.0/8, ::1, localhost, unix:): give tls (or secure credentials), or insecureToken: true " +
      "if the network is trusted (a batond started with --allow_plaintext)",
  );
}

/**
 * A grpc-js client interceptor that adds `authorization: Bearer <token>` to the
 * metadata of every call it sees (a call that brings its own authorization keeps it).
 */
export function tokenInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get(AUTHORIZATION).length > 0) {
          next(metadata, listener);
          return;
        }
        // A copy: the caller's Metadata object may be reused for other calls.
        const md = metadata.clone();
        md.set(AUTHORIZATION, value);
        next(md, listener);
      },
    });
}
