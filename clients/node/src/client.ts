// BatonClient: one channel and one session to a Baton server, and the
// factories of every primitive.
import { EventEmitter } from "node:events";
import { hostname } from "node:os";

import * as grpc from "@grpc/grpc-js";

import { Admin } from "./admin";
import { checkPlaintextToken, resolveToken, tokenInterceptor } from "./auth";
import { Barrier } from "./barrier";
import { Condition } from "./condition";
import { Core, type SessionOwner, type Transport } from "./core";
import { ClientClosedError, Status, type SessionLostError } from "./errors";
import { BatonEvent } from "./event";
import { Future } from "./future";
import type { DescribeSessionResponse__Output } from "./gen/baton/v1/DescribeSessionResponse";
import type { KeepAliveResponse__Output } from "./gen/baton/v1/KeepAliveResponse";
import type { HealthCheckResponse__Output } from "./gen/grpc/health/v1/HealthCheckResponse";
import { createStubs, type Stubs } from "./grpc";
import { HeldLock, Lock, type AcquireOptions } from "./lock";
import { Queue, type QueueOptions } from "./queue";
import { Semaphore } from "./semaphore";
import { SessionKeeper } from "./session";
import { StreamSession } from "./stream";
import { TaskHandle, TaskQueue } from "./tasks";
import { Timer } from "./timer";
import { tlsChannel, type TlsOptions } from "./tls";
import { fromDuration, type CallOptions } from "./util";

/** The default session TTL (ms), the same in every Baton client. */
export const DEFAULT_SESSION_TTL_MS = 15_000;

export interface BatonClientOptions {
  /** HOST:PORT of the server. Default: $BATON_ADDRESS, else 127.0.0.1:7411. */
  address?: string;
  /**
   * TLS to a batond that serves it (`--tls_cert`, `--tls_key`), mutual TLS with
   * `certFile` + `keyFile` (`--client_ca`); `true`: TLS verified against Node's root
   * CAs; `false` or unset: no TLS. The constructor reads the files: it throws an
   * Error naming a file it cannot read, and a TypeError for a certFile without
   * keyFile (or the reverse). See TlsOptions.
   */
  tls?: TlsOptions | boolean;
  /** Channel credentials made by hand (not together with `tls`). Default: plaintext, unless `tls`. */
  credentials?: grpc.ChannelCredentials;
  /**
   * A bearer token, sent as the metadata `authorization: Bearer <token>` with
   * every call (unary calls and streams, `raw` stubs included). A TypeError if
   * it is empty or contains whitespace (or anything but printable ASCII).
   */
  token?: string;
  /**
   * A file holding the token, read by the constructor (the whitespace around
   * it dropped): an Error naming the file if it cannot be read or is empty.
   * Not together with `token`.
   */
  tokenFile?: string;
  /**
   * With a token and no TLS, the address must be loopback (127.0.0.0/8, ::1,
   * localhost, unix:), or the constructor throws: the token would cross the
   * network in clear. `true` allows it, for a batond started with
   * --allow_plaintext on a network protected otherwise. Default false.
   */
  insecureToken?: boolean;
  /**
   * Session TTL in ms (default 15 000): how long the session outlives a
   * broken connection, i.e. the grace period for reconnecting, and how soon
   * the server frees what a crashed client held.
   */
  sessionTtlMs?: number;
  /**
   * "stream" (the default): one Stream/Connect session stream carries the
   * session and every operation it can (clients/README.md). "unary": a unary
   * call per operation, the session kept by Sessions/KeepAliveStream.
   */
  transport?: Transport;
  /** Shown by Sessions/Describe (default "node:HOST:PID"). */
  label?: string;
  /** Deadline of calls that do not wait (release, set, ack, ...): default 30 000 ms. */
  callTimeoutMs?: number;
  /**
   * How often the session is probed, so that a session ended elsewhere is
   * noticed (default TTL/3, clamped to 100..5000 ms): Sessions/Describe on
   * the session stream, a keep-alive on the unary transport.
   */
  keepAliveIntervalMs?: number;
  /** Extra gRPC channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/** Sessions/Describe of the client's session. */
export interface SessionInfo {
  sessionId: bigint;
  label: string;
  ttlMs: number | undefined;
  /** Undefined while a keep-alive stream holds the session open. */
  expiresInMs: number | undefined;
  ageMs: number | undefined;
  /** Keep-alive streams holding the session open. */
  openStreams: number;
}

/** Events of BatonClient. */
export interface BatonClientEvents {
  /** A session was opened (the first, or a new one after a loss). */
  sessionOpened: [sessionId: bigint];
  /** The session's stream broke and was re-established in time: nothing was lost. */
  sessionReconnected: [sessionId: bigint];
  /**
   * The session-lost notification. The session ended (expired, closed
   * elsewhere, or nothing heard from the server for its TTL): everything it
   * held is released. HeldLock/HeldPermits of it fire their lost signal
   * (`lost` resolves, `signal` aborts); its pending operations reject with
   * SessionLostError. The next call opens a new session.
   */
  sessionLost: [error: SessionLostError];
}

/**
 * A connection to a Baton server with one session, opened on first need and
 * kept alive until close().
 *
 *     const client = new BatonClient("127.0.0.1:7411");
 *     const held = await client.lock("billing/migrate").acquire();
 *     try { await migrate(held.fence); } finally { await held.release(); }
 *     await client.close();
 */
export class BatonClient extends EventEmitter<BatonClientEvents> implements AsyncDisposable {
  /** The server address. */
  readonly address: string;
  /** Admin/List and Admin/Describe. */
  readonly admin: Admin;
  /** The raw gRPC stubs, for anything this API does not cover. */
  readonly raw: Stubs;
  private readonly core: Core;
  private readonly keeper: SessionOwner;
  /** @internal The session stream, on the stream transport. */
  readonly stream: StreamSession | undefined;
  private closed = false;

  constructor(address?: string | BatonClientOptions, options: BatonClientOptions = {}) {
    super();
    if (typeof address === "object") options = address;
    else if (address !== undefined) options = { ...options, address };
    this.address = options.address ?? process.env.BATON_ADDRESS ?? "127.0.0.1:7411";
    const ttlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    const callTimeoutMs = options.callTimeoutMs ?? 30_000;
    const probeIntervalMs = options.keepAliveIntervalMs ?? Math.min(Math.max(ttlMs / 3, 100), 5000);
    const transport = options.transport ?? "stream";
    if (transport !== "stream" && transport !== "unary") {
      throw new TypeError(`transport must be "stream" or "unary", not ${String(transport)}`);
    }
    const wantsTls = options.tls !== undefined && options.tls !== false;
    if (wantsTls && options.credentials !== undefined) {
      throw new TypeError("give tls or credentials, not both (tls builds the credentials)");
    }
    const tls = wantsTls ? tlsChannel(options.tls as TlsOptions | true) : undefined;
    const token = resolveToken(options.token, options.tokenFile);
    const credentials = tls?.credentials ?? options.credentials ?? grpc.credentials.createInsecure();
    if (token !== undefined) {
      checkPlaintextToken(this.address, credentials._isSecure(), options.insecureToken ?? false);
    }
    this.raw = createStubs(
      this.address,
      credentials,
      {
        // The contract's channel keepalive (batond permits pings every 5 s);
        // retry connecting quickly enough to resume the session within its TTL.
        "grpc.keepalive_time_ms": 20_000,
        "grpc.keepalive_timeout_ms": 10_000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": Math.min(Math.max(ttlMs / 4, 100), 2000),
        ...tls?.channelOptions,
        ...options.channelOptions,
      },
      token === undefined ? [] : [tokenInterceptor(token)],
    );
    const sessionOptions = {
      ttlMs,
      label: options.label ?? `node:${hostname()}:${process.pid}`,
      probeIntervalMs,
      probeTimeoutMs: Math.max(probeIntervalMs * 2, Math.min(ttlMs / 2, 5000)),
      callTimeoutMs,
    };
    const events = {
      opened: (id: bigint) => this.emit("sessionOpened", id),
      reconnected: (id: bigint) => this.emit("sessionReconnected", id),
      lost: (err: SessionLostError) => {
        this.core.sessionLost(err);
        this.emit("sessionLost", err);
      },
    };
    this.stream = transport === "stream" ? new StreamSession(this.raw, sessionOptions, events) : undefined;
    this.keeper = this.stream ?? new SessionKeeper(this.raw, sessionOptions, events);
    this.core = new Core(this.raw, this.keeper, callTimeoutMs, this.stream);
    this.admin = new Admin(this.core);
  }

  /** Opens the session now (it is otherwise opened on first need); resolves with its id. */
  connect(options: CallOptions = {}): Promise<bigint> {
    return this.keeper.ensure(options.signal);
  }

  /** The current session's id, if one is open. */
  get sessionId(): bigint | undefined {
    return this.keeper.current;
  }

  /**
   * Diagnostics: the session stream's counters (breaks, writes, operations
   * sent, waits re-sent; undefined on the unary transport) and how
   * cancellations ended (grants rolled back after crossing a cancel,
   * grants recovered by request_id after an unknown outcome).
   */
  get stats(): {
    stream: StreamSession["stats"] | undefined;
    cancels: { rolledBack: number; recovered: number };
  } {
    return { stream: this.stream?.stats, cancels: this.core.cancelStats };
  }

  /** The transport: "stream" (the session stream, default) or "unary". */
  get transport(): Transport {
    return this.core.transport;
  }

  /** True while the session's stream is down and being re-established. */
  get reconnecting(): boolean {
    return this.keeper.reconnecting;
  }

  /** Sessions/Describe of this client's session (opening it if needed). */
  async describeSession(options: CallOptions = {}): Promise<SessionInfo> {
    const id = await this.keeper.ensure(options.signal);
    const d = await this.core.op<DescribeSessionResponse__Output>(
      "sessions.Describe",
      { sessionId: id.toString() },
      { signal: options.signal, what: "Sessions/Describe" },
    );
    return {
      sessionId: id,
      label: d.label,
      ttlMs: fromDuration(d.ttl),
      expiresInMs: fromDuration(d.expiresIn),
      ageMs: fromDuration(d.age),
      openStreams: d.openStreams,
    };
  }

  /** One unary Sessions/KeepAlive (the stream already keeps the session alive). */
  async keepAlive(options: CallOptions = {}): Promise<{ expiresInMs: number | undefined }> {
    const id = await this.keeper.ensure(options.signal);
    const res = await this.core.call<KeepAliveResponse__Output>(
      (m, o, cb) => this.raw.sessions.KeepAlive({ sessionId: id.toString() }, m, o, cb),
      { signal: options.signal, what: "Sessions/KeepAlive" },
    );
    return { expiresInMs: fromDuration(res.expiresIn) };
  }

  /** grpc.health.v1.Health/Check of the server: "SERVING" when up. */
  async health(options: CallOptions = {}): Promise<string> {
    const res = await this.core.call<HealthCheckResponse__Output>(
      (m, o, cb) => this.raw.health.Check({ service: "" }, m, o, cb),
      { signal: options.signal, what: "health check" },
    );
    return String(res.status);
  }

  /**
   * Closes the session (the server releases everything it holds and ends its
   * waits) and the channel. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.keeper.close();
    this.core.close();
    // Not this.raw.sessions.close(): that is the Sessions/Close rpc.
    this.raw.sessions.getChannel().close();
  }

  /** For `await using client = new BatonClient(...)`: close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private check(): void {
    if (this.closed) throw new ClientClosedError("the client is closed", Status.UNAVAILABLE);
  }

  /** The lock `name`. */
  lock(name: string): Lock {
    this.check();
    return new Lock(this.core, this.admin, name);
  }

  /** Acquires lock `name`, runs `fn`, releases the lock (see Lock.withLock). */
  withLock<T>(name: string, fn: (held: HeldLock) => Promise<T> | T, options: AcquireOptions = {}): Promise<T> {
    return this.lock(name).withLock(fn, options);
  }

  /** The semaphore `name`; `capacity` declares it (required on first use). */
  semaphore(name: string, options: { capacity?: number } = {}): Semaphore {
    this.check();
    return new Semaphore(this.core, this.admin, name, options.capacity ?? 0);
  }

  /** The event `name`. */
  event(name: string): BatonEvent {
    this.check();
    return new BatonEvent(this.core, this.admin, name);
  }

  /** The condition `name` ("" by default) bound to lock `lock`. */
  condition(lock: string, name = ""): Condition {
    this.check();
    return new Condition(this.core, this.admin, new Lock(this.core, this.admin, lock), name);
  }

  /** The barrier `name`; `parties` declares it (required on first use). */
  barrier(name: string, options: { parties?: number } = {}): Barrier {
    this.check();
    return new Barrier(this.core, this.admin, name, options.parties ?? 0);
  }

  /** The queue `name`; `options` declare it (order, maxsize, maxDeliveries...). */
  queue(name: string, options?: QueueOptions): Queue {
    this.check();
    return new Queue(this.core, this.admin, name, options);
  }

  /** The future `name`. */
  future(name: string): Future {
    this.check();
    return new Future(this.core, this.admin, name);
  }

  /** The work queue of tasks `queue`. */
  tasks(queue: string): TaskQueue {
    this.check();
    return new TaskQueue(this.core, this.admin, queue);
  }

  /** A handle on task `id` (e.g. "thumbnails#17"), to await or cancel it. */
  task(id: string): TaskHandle {
    this.check();
    return new TaskHandle(this.core, id);
  }

  /** The timer `name`. */
  timer(name: string): Timer {
    this.check();
    return new Timer(this.core, this.admin, name);
  }
}
