// The client's session on the unary transport (transport: "unary"; the
// default session stream is stream.ts): opened on first need, kept alive by
// one Sessions/KeepAliveStream, reconnected within its TTL, reported lost
// otherwise.
//
// Timeline of a break: the stream fails (connection reset, server restart,
// or no answer to a probe within probeTimeoutMs). The server starts the TTL
// when it sees the stream end, which is no earlier than our last answered
// probe, so `lastAlive + ttl` is the latest moment until which the session
// may still be alive. Until then the keeper reopens the stream with backoff;
// the first answer says ALIVE (nothing was lost) or NOT_FOUND (lost). Past it,
// the session is reported lost without asking.
//
// Used only on the Node event loop; no locking needed.
import type * as grpc from "@grpc/grpc-js";
import { connectivityState } from "@grpc/grpc-js";

import { BACKOFF } from "./core";
import { BatonError, ClientClosedError, SessionLostError, Status, toBatonError, UnavailableError } from "./errors";
import type { KeepAliveRequest } from "./gen/baton/v1/KeepAliveRequest";
import type { KeepAliveResponse__Output } from "./gen/baton/v1/KeepAliveResponse";
import type { OpenSessionResponse__Output } from "./gen/baton/v1/OpenSessionResponse";
import type { Stubs } from "./grpc";
import { abortedError, big, toDuration, unary, waitingMetadata } from "./util";

export interface SessionKeeperOptions {
  ttlMs: number;
  label: string;
  /** How often a keep-alive probe is sent on the stream. */
  probeIntervalMs: number;
  /** A probe unanswered for this long breaks the stream (then reconnect). */
  probeTimeoutMs: number;
  /** Deadline of the Open and Close calls. */
  callTimeoutMs: number;
}

export interface SessionEvents {
  opened(id: bigint): void;
  reconnected(id: bigint): void;
  lost(err: SessionLostError): void;
}

type State = "none" | "opening" | "alive" | "reconnecting" | "closed";

export class SessionKeeper {
  private state: State = "none";
  private id: bigint | undefined;
  private opening: Promise<bigint> | undefined;
  private stream: grpc.ClientDuplexStream<KeepAliveRequest, KeepAliveResponse__Output> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastAlive = 0;
  private probeSentAt: number | undefined;
  private backoffMs = 0;

  constructor(
    private readonly stubs: Stubs,
    private readonly options: SessionKeeperOptions,
    private readonly events: SessionEvents,
  ) {}

  /** The current session id, if one is open. */
  get current(): bigint | undefined {
    return this.state === "alive" || this.state === "reconnecting" ? this.id : undefined;
  }

  /** True while the keep-alive stream is down and being reopened. */
  get reconnecting(): boolean {
    return this.state === "reconnecting";
  }

  /** The session id, opening a session first if there is none. */
  async ensure(signal?: AbortSignal): Promise<bigint> {
    if (this.state === "closed") throw new ClientClosedError("the client is closed", Status.UNAVAILABLE);
    const id = this.current;
    if (id !== undefined) return id;
    if (!this.opening) {
      this.state = "opening";
      this.opening = this.open().finally(() => (this.opening = undefined));
    }
    if (!signal) return this.opening;
    // The open goes on for whoever else needs it; only this caller stops waiting.
    return new Promise<bigint>((resolve, reject) => {
      if (signal.aborted) return reject(abortedError(signal, "open session"));
      const onAbort = () => reject(abortedError(signal, "open session"));
      signal.addEventListener("abort", onAbort, { once: true });
      this.opening!.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  private async open(): Promise<bigint> {
    let res;
    try {
      res = await this.openCall();
    } catch (e) {
      if (this.state === "opening") this.state = "none";
      throw e;
    }
    const id = big(res.sessionId);
    if ((this.state as State) === "closed") {
      // Closed while opening: end the new session at once.
      void this.closeRemote(id);
      throw new ClientClosedError("the client is closed", Status.UNAVAILABLE);
    }
    this.id = id;
    this.state = "alive";
    this.lastAlive = Date.now();
    this.backoffMs = 0;
    this.startStream();
    this.startProbes();
    this.events.opened(id);
    return id;
  }

  /**
   * Sessions/Open, waiting up to callTimeoutMs for the channel to connect
   * (wait-for-ready: a server still starting is waited for). If that passes
   * without the channel ever becoming ready, one more attempt without
   * wait-for-ready fails with the reason the connection fails (refused, TLS
   * handshake failed...) as an UnavailableError, rather than a TimeoutError
   * that says nothing about it; should it succeed, the session is open.
   */
  private async openCall(): Promise<OpenSessionResponse__Output> {
    const start = (m: grpc.Metadata, o: grpc.CallOptions, cb: grpc.requestCallback<OpenSessionResponse__Output>) =>
      this.stubs.sessions.Open({ ttl: toDuration(this.options.ttlMs), label: this.options.label }, m, o, cb);
    try {
      return await unary<OpenSessionResponse__Output>(start, {
        deadlineMs: this.options.callTimeoutMs,
        what: "Sessions/Open",
      });
    } catch (e) {
      const channel = this.stubs.sessions.getChannel();
      if (
        !(e instanceof BatonError && e.code === Status.DEADLINE_EXCEEDED) ||
        this.state === "closed" ||
        channel.getConnectivityState(false) === connectivityState.READY
      ) {
        throw e;
      }
      try {
        return await unary<OpenSessionResponse__Output>(start, {
          deadlineMs: Math.min(this.options.callTimeoutMs, 5000),
          waitForReady: false,
          what: "Sessions/Open",
        });
      } catch (e2) {
        if (!(e2 instanceof BatonError) || e2.code !== Status.UNAVAILABLE) throw e2;
        throw new UnavailableError(
          `Sessions/Open: cannot connect to ${channel.getTarget()} within ${this.options.callTimeoutMs} ms: ${e2.message}`,
          Status.UNAVAILABLE,
          { cause: e2 },
        );
      }
    }
  }

  private startStream(): void {
    const id = this.id!;
    const stream = this.stubs.sessions.KeepAliveStream(waitingMetadata());
    this.stream = stream;
    this.probeSentAt = Date.now();
    stream.on("data", (res: KeepAliveResponse__Output) => {
      if (this.stream !== stream) return;
      if (res.state === "SESSION_STATE_NOT_FOUND") {
        this.reportLost(id, `session ${id} ended on the server (expired or closed)`, Status.NOT_FOUND);
        return;
      }
      this.lastAlive = Date.now();
      this.probeSentAt = undefined;
      this.backoffMs = 0;
      if (this.state === "reconnecting") {
        this.state = "alive";
        this.events.reconnected(id);
      }
    });
    const broken = (err?: grpc.ServiceError) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.streamBroke(id, err);
    };
    stream.on("error", broken);
    stream.on("end", () => broken());
    stream.write({ sessionId: id.toString() });
  }

  private startProbes(): void {
    this.stopProbes();
    this.probeTimer = setInterval(() => this.probe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private stopProbes(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private probe(): void {
    const id = this.id;
    if (id === undefined) return;
    const now = Date.now();
    const stream = this.stream;
    const unanswered = this.probeSentAt !== undefined && now - this.probeSentAt > this.options.probeTimeoutMs;
    if (this.state === "reconnecting") {
      if (now >= this.lastAlive + this.options.ttlMs) {
        this.reportLost(
          id,
          `session ${id} lost: no answer from the server within its TTL of ${this.options.ttlMs} ms`,
          Status.ABORTED,
        );
      } else if (stream && unanswered) {
        // The new stream got no answer either: try again.
        this.stream = undefined;
        stream.cancel();
        this.scheduleReconnect(id, undefined);
      }
      return;
    }
    if (this.state !== "alive" || !stream) return;
    if (unanswered) {
      // No answer: the connection is dead or the server stuck. Start over.
      this.stream = undefined;
      stream.cancel();
      this.streamBroke(id, undefined);
      return;
    }
    if (this.probeSentAt === undefined) this.probeSentAt = now;
    stream.write({ sessionId: id.toString() });
  }

  private streamBroke(id: bigint, err: grpc.ServiceError | undefined): void {
    if (this.state === "closed" || this.id !== id) return;
    this.state = "reconnecting";
    this.scheduleReconnect(id, err);
  }

  private scheduleReconnect(id: bigint, err: grpc.ServiceError | undefined): void {
    const deadline = this.lastAlive + this.options.ttlMs;
    const now = Date.now();
    if (now >= deadline) {
      const why = err ? `: ${toBatonError(err).message}` : "";
      this.reportLost(
        id,
        `session ${id} lost: the server was not reachable within its TTL of ${this.options.ttlMs} ms${why}`,
        Status.ABORTED,
      );
      return;
    }
    // The contract's backoff (core.ts BACKOFF).
    this.backoffMs =
      this.backoffMs === 0 ? BACKOFF.initialMs : Math.min(this.backoffMs * BACKOFF.factor, BACKOFF.maxMs);
    const jittered = this.backoffMs * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * Math.random());
    const wait = Math.min(jittered, deadline - now);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== "reconnecting" || this.id !== id) return;
      if (Date.now() >= deadline) return this.scheduleReconnect(id, err);
      this.startStream();
    }, wait);
    this.reconnectTimer.unref();
  }

  /**
   * Marks session `id` lost (if it is the current one): stops keeping it
   * alive and tells the client. The next ensure() opens a new session.
   */
  reportLost(id: bigint, message: string, code: number): void {
    if (this.id !== id || (this.state !== "alive" && this.state !== "reconnecting")) return;
    this.teardown();
    this.state = "none";
    this.id = undefined;
    this.events.lost(new SessionLostError(message, code, id));
  }

  private teardown(): void {
    this.stopProbes();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      stream.cancel();
      stream.on("error", () => {});
    }
  }

  /** Ends the session on the server (releasing all it holds) and stops. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const opening = this.opening;
    const id = this.current;
    this.state = "closed";
    this.teardown();
    this.id = undefined;
    if (id !== undefined) await this.closeRemote(id);
    if (opening) await opening.catch(() => {});
  }

  private async closeRemote(id: bigint): Promise<void> {
    try {
      // Fail fast when disconnected: the session then expires by its TTL.
      await unary((m, o, cb) => this.stubs.sessions.Close({ sessionId: id.toString() }, m, o, cb), {
        deadlineMs: Math.min(this.options.callTimeoutMs, 5000),
        waitForReady: false,
        what: "Sessions/Close",
      });
    } catch {
      // Unreachable or already ended: the session expires by its TTL anyway.
    }
  }
}
