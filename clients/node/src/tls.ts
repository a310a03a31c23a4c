// TLS options of BatonClient: credentials for a batond that serves TLS
// (--tls_cert, --tls_key) or mutual TLS (--client_ca).
import { readFileSync } from "node:fs";

import * as grpc from "@grpc/grpc-js";

/**
 * TLS settings of a client's channel (`new BatonClient({ address, tls: {...} })`).
 * The files are read when the client is made, so that a missing or unreadable
 * file is reported there, naming it, rather than as a failed connection later.
 */
export interface TlsOptions {
  /** PEM file of the CA certificate(s) the server's certificate must chain to. Default: Node's root CAs. */
  caFile?: string;
  /**
   * PEM certificate chain of this client, for a server that requires client
   * certificates (batond --client_ca). Together with `keyFile`.
   */
  certFile?: string;
  /** PEM private key (not encrypted) of `certFile`. */
  keyFile?: string;
  /**
   * The name the server's certificate must carry, when it differs from the host of the
   * address (e.g. an IP address and a certificate for a DNS name). Sent as the channel
   * option `grpc.ssl_target_name_override`.
   */
  serverName?: string;
}

/**
 * The channel credentials and options for `tls` (`true`: TLS verified against
 * Node's root CAs). Throws TypeError for a certFile without keyFile (or the
 * reverse) or an empty serverName, and an Error naming the file when one
 * cannot be read or holds no PEM block.
 */
export function tlsChannel(tls: TlsOptions | true): {
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
} {
  const o: TlsOptions = tls === true ? {} : tls;
  if (typeof o !== "object" || o === null) throw new TypeError("tls must be an object of TlsOptions or true");
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) {
    const [given, missing] = o.keyFile === undefined ? ["certFile", "keyFile"] : ["keyFile", "certFile"];
    throw new TypeError(
      `tls: ${given} without ${missing}: a client certificate needs its private key (give both certFile and keyFile, or neither)`,
    );
  }
  if (o.serverName !== undefined && o.serverName === "") {
    throw new TypeError("tls: serverName is empty (leave it out to verify the address's host)");
  }
  const credentials = grpc.credentials.createSsl(
    readPem(o.caFile, "caFile"),
    readPem(o.keyFile, "keyFile"),
    readPem(o.certFile, "certFile"),
  );
  const channelOptions: grpc.ChannelOptions = {};
  if (o.serverName !== undefined) channelOptions["grpc.ssl_target_name_override"] = o.serverName;
  return { credentials, channelOptions };
}

function readPem(path: string | undefined, what: string): Buffer | null {
  if (path === undefined) return null;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new Error(`tls: cannot read ${what} ${JSON.stringify(path)}: ${(e as Error).message}`, { cause: e });
  }
  if (!data.includes("-----BEGIN ")) {
    throw new Error(`tls: ${what} ${JSON.stringify(path)} holds no PEM block (-----BEGIN ...)`);
  }
  return data;
}
