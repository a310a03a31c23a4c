// The session stream: one baton.v1.Stream/Connect call per client carries
// the session and every operation (the default transport; see
// proto/baton/v1/stream.proto and clients/README.md).
//
// - The first message says hello (a new session with its TTL, or resume one
//   by id); the server's first answer is the welcome with the session id.
// - Every operation gets an id chosen here; operations issued in the same
//   event-loop turn, or while a write is in flight, go out together in one
//   StreamRequest. Answers are matched by id.
// - A wait whose AbortSignal fires is cancelled by id. Its answer then is
//   either CANCELLED or the grant that crossed the cancel (`crossed`), which
//   the caller rolls back (Core.acquire).
// - When the stream breaks it is re-opened with the same session id (backoff
//   100 ms, x1.6, +-20 % jitter, at most 2 s) until TTL after the last thing
//   heard from the server. Operations not yet sent wait for the new stream;
//   waits with a request_id that were sent are re-sent with the same
//   request_id and what is left of their timeout; other operations sent on
//   the broken stream end with UnavailableError (outcome unknown).
// - The session is lost when the server answers NOT_FOUND to the resume, a
//   probe (Sessions/Describe, every probe interval) says it is gone, or
//   nothing was heard for a whole TTL: every pending operation ends with
//   SessionLostError, the client is told (SessionEvents.lost), and the next
//   operation opens a new session.
//
// Used only on the Node event loop; no locking needed.
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";

import { BACKOFF, type Outcome, type SessionOwner } from "./core";
import {
  BatonError,
  ClientClosedError,
  SessionLostError,
  Status,
  toBatonError,
  UnavailableError,
  type ErrorHint,
} from "./errors";
import type { OperationResult__Output } from "./gen/baton/v1/OperationResult";
import type { StreamRequest } from "./gen/baton/v1/StreamRequest";
import type { StreamResponse__Output } from "./gen/baton/v1/StreamResponse";
import type { Stubs } from "./grpc";
import type { SessionEvents } from "./session";
import { abortedError, big, fromDuration, toDuration, unary } from "./util";

export interface StreamSessionOptions {
  ttlMs: number;
  label: string;
  /** How often the session is probed (Sessions/Describe on the stream). */
  probeIntervalMs: number;
  /** A probe (or a resume) unanswered for this long breaks the stream. */
  probeTimeoutMs: number;
  /** Deadline of operations that do not wait, and of opening the first stream. */
  callTimeoutMs: number;
}

export interface SendOptions {
  signal?: AbortSignal | undefined;
  /** A wait: cancelled on the server when the signal fires. */
  waits: boolean;
  /** The request's timeout (ms), re-sent as what is left of it. */
  timeoutMs?: number | undefined;
  /** Re-send after a broken stream (a wait with a request_id). */
  resend: boolean;
  what: string;
  hint?: ErrorHint | undefined;
}

interface PendingOp {
  id: number;
  field: string;
  req: object;
  opts: SendOptions;
  resolve: (o: Outcome<unknown>) => void;
  /** The stream generation it was last sent on; undefined while queued. */
  sentGen: number | undefined;
  everSent: boolean;
  /** The caller's signal fired (a cancel was or will be sent). */
  cancelled: boolean;
  /** When the request's timeout ends (absolute ms), for re-sends. */
  deadline: number | undefined;
  backstop: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
}

type State = "none" | "opening" | "open" | "reconnecting" | "closed";

type Call = grpc.ClientDuplexStream<StreamRequest, StreamResponse__Output>;

export class StreamSession implements SessionOwner {
  private state: State = "none";
  private id: bigint | undefined;
  private call: Call | undefined;
  private gen = 0;
  private welcomed = false;
  private attemptStart = 0;
  private readonly ops = new Map<number, PendingOp>();
  private outbox: PendingOp[] = [];
  private cancels: number[] = [];
  private nextId = 1;
  private writing = false;
  private flushScheduled = false;
  private lastHeard = 0;
  private probeSentAt: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private openTimer: NodeJS.Timeout | undefined;
  private backoffMs: number = BACKOFF.initialMs;
  private opening: Promise<bigint> | undefined;
  private openWaiter: { resolve: (id: bigint) => void; reject: (e: unknown) => void } | undefined;
  private lastOpenError: BatonError | undefined;
  private ttlMs: number;
  /**
   * For tests and diagnostics: times the stream broke, StreamRequests written
   * after the hello, operations sent (re-sends included), waits re-sent after
   * a break.
   */
  readonly stats = { breaks: 0, writes: 0, opsSent: 0, resent: 0 };

  constructor(
    private readonly stubs: Stubs,
    private readonly options: StreamSessionOptions,
    private readonly events: SessionEvents,
  ) {
    this.ttlMs = options.ttlMs;
  }

  get current(): bigint | undefined {
    return this.state === "open" || this.state === "reconnecting" ? this.id : undefined;
  }

  get reconnecting(): boolean {
    return this.state === "reconnecting";
  }

  /** Breaks the current stream as a network failure would (for tests). */
  breakStream(): void {
    const call = this.call;
    if (!call || this.state !== "open") return;
    this.broken(this.gen, undefined);
    call.cancel();
  }

  async ensure(signal?: AbortSignal): Promise<bigint> {
    if (this.state === "closed") throw new ClientClosedError("the client is closed", Status.UNAVAILABLE);
    const id = this.current;
    if (id !== undefined) return id;
    if (!this.opening) {
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

  private open(): Promise<bigint> {
    this.state = "opening";
    this.id = undefined;
    this.lastOpenError = undefined;
    this.backoffMs = BACKOFF.initialMs;
    return new Promise<bigint>((resolve, reject) => {
      this.openWaiter = { resolve, reject };
      this.openTimer = setTimeout(() => {
        this.openTimer = undefined;
        if (this.state !== "opening") return;
        const why = this.lastOpenError ? `: ${this.lastOpenError.message}` : "";
        this.failOpen(
          new UnavailableError(
            `Stream/Connect: cannot open a session on ${this.stubs.stream.getChannel().getTarget()} within ${this.options.callTimeoutMs} ms${why}`,
            Status.UNAVAILABLE,
            { cause: this.lastOpenError },
          ),
        );
      }, this.options.callTimeoutMs);
      this.openTimer.unref();
      this.connect();
    });
  }

  private failOpen(err: BatonError): void {
    if (this.openTimer) clearTimeout(this.openTimer);
    this.openTimer = undefined;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dropCall();
    if (this.state === "opening") this.state = "none";
    const w = this.openWaiter;
    this.openWaiter = undefined;
    this.failAll(err);
    w?.reject(err);
  }

  private connect(): void {
    const gen = ++this.gen;
    this.welcomed = false;
    this.writing = false;
    this.attemptStart = Date.now();
    // No wait-for-ready: while the channel cannot connect the call fails at
    // once with the reason, and the backoff here decides when to retry.
    const call = this.stubs.stream.Connect(new Metadata());
    this.call = call;
    call.on("data", (m: StreamResponse__Output) => this.onData(gen, m));
    call.on("error", (e: grpc.ServiceError) => this.broken(gen, e));
    call.on("end", () => this.broken(gen, undefined));
    const hello =
      this.id !== undefined
        ? { sessionId: this.id.toString() }
        : { ttl: toDuration(this.ttlMs), label: this.options.label };
    call.write({ hello });
  }

  private dropCall(): void {
    const call = this.call;
    this.call = undefined;
    this.gen++;
    if (call) {
      call.on("error", () => {});
      call.cancel();
    }
  }

  private onData(gen: number, m: StreamResponse__Output): void {
    if (gen !== this.gen) return;
    this.lastHeard = Date.now();
    this.probeSentAt = undefined;
    if (m.welcome && !this.welcomed) {
      this.welcomed = true;
      this.backoffMs = BACKOFF.initialMs;
      const ttl = fromDuration(m.welcome.ttl);
      if (ttl !== undefined && ttl > 0) this.ttlMs = ttl;
      if (this.state === "opening") {
        const id = big(m.welcome.sessionId);
        this.id = id;
        this.state = "open";
        if (this.openTimer) clearTimeout(this.openTimer);
        this.openTimer = undefined;
        const w = this.openWaiter;
        this.openWaiter = undefined;
        this.startProbes();
        this.events.opened(id);
        w?.resolve(id);
      } else if (this.state === "reconnecting") {
        this.state = "open";
        this.events.reconnected(this.id!);
      }
      this.flush();
    }
    for (const r of m.results) this.onResult(r);
  }

  private onResult(r: OperationResult__Output): void {
    const op = this.ops.get(Number(r.id));
    if (!op || op.sentGen !== this.gen) return;
    if (r.code === 0) {
      const res = (r as unknown as Record<string, unknown>)[op.field];
      this.finish(op, { ok: true, res, crossed: op.cancelled });
      return;
    }
    let err: BatonError;
    if (op.cancelled && r.code === Status.CANCELLED && op.opts.signal) err = abortedError(op.opts.signal, op.opts.what);
    else err = toBatonError({ code: r.code, details: r.message, message: r.message }, op.opts.hint);
    this.finish(op, { ok: false, err, broken: false });
  }

  /** The stream `gen` ended (error, end, or cut by us). */
  private broken(gen: number, e: grpc.ServiceError | undefined): void {
    if (gen !== this.gen || !this.call) return;
    this.call = undefined;
    this.gen++;
    this.writing = false;
    this.cancels = [];
    const welcomed = this.welcomed;
    const err = e ? toBatonError(e) : undefined;
    // What was sent on the broken stream.
    const requeue: PendingOp[] = [];
    for (const op of this.ops.values()) {
      if (op.sentGen !== gen) continue;
      op.sentGen = undefined;
      if (op.backstop) clearTimeout(op.backstop);
      op.backstop = undefined;
      if (op.cancelled) {
        this.finish(op, { ok: false, err: abortedError(op.opts.signal!, op.opts.what), broken: true });
      } else if (op.opts.resend) {
        requeue.push(op);
      } else {
        this.finish(op, {
          ok: false,
          err: new UnavailableError(
            `${op.opts.what}: the connection to the server broke during the call; it may or may not have taken effect`,
            Status.UNAVAILABLE,
            { cause: err },
          ),
          broken: true,
        });
      }
    }
    this.outbox = [...requeue, ...this.outbox];
    if (this.state === "closed") return;
    if (this.state === "opening") {
      // The first connection of a new session.
      if (err && err.code !== Status.UNAVAILABLE && err.code !== Status.CANCELLED) return this.failOpen(err);
      if (err) this.lastOpenError = err;
      return this.scheduleReconnect();
    }
    if (!welcomed && err && err.code === Status.NOT_FOUND && this.id !== undefined) {
      return this.lost(new SessionLostError(err.message, err.code, this.id, { cause: err }));
    }
    if (this.state === "open") {
      this.stats.breaks++;
      this.state = "reconnecting";
    }
    this.scheduleReconnect();
  }

  private nextBackoff(): number {
    const base = this.backoffMs;
    this.backoffMs = Math.min(base * BACKOFF.factor, BACKOFF.maxMs);
    return base * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * Math.random());
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer) return;
    const wait = this.nextBackoff();
    if (this.state === "reconnecting") {
      const deadline = this.lastHeard + this.ttlMs;
      if (Date.now() >= deadline) return this.lostByTtl();
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === "reconnecting") {
        if (Date.now() >= this.lastHeard + this.ttlMs) return this.lostByTtl();
        this.connect();
      } else if (this.state === "opening") {
        this.connect();
      }
    }, wait);
  }

  private lostByTtl(): void {
    const id = this.id!;
    this.lost(
      new SessionLostError(
        `session ${id} lost: nothing heard from the server within its TTL of ${this.ttlMs} ms`,
        Status.ABORTED,
        id,
      ),
    );
  }

  private startProbes(): void {
    this.stopProbes();
    this.probeSentAt = undefined;
    this.probeTimer = setInterval(() => this.probe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private stopProbes(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private probe(): void {
    const now = Date.now();
    const id = this.id;
    if (id === undefined) return;
    if (this.state === "reconnecting") {
      if (now >= this.lastHeard + this.ttlMs) return this.lostByTtl();
      // A resume that gets no answer: try again.
      if (this.call && !this.welcomed && now - this.attemptStart > this.options.probeTimeoutMs) {
        const gen = this.gen;
        const call = this.call;
        this.broken(gen, undefined);
        call.cancel();
      }
      return;
    }
    if (this.state !== "open") return;
    if (this.probeSentAt !== undefined) {
      if (now - this.probeSentAt > this.options.probeTimeoutMs) {
        // No answer: the connection is dead or the server stuck. Start over.
        this.probeSentAt = undefined;
        this.breakStream();
      }
      return;
    }
    this.probeSentAt = now;
    void this.send<unknown>(
      "describeSession",
      { sessionId: id.toString() },
      { waits: false, resend: false, what: "session probe" },
    ).then((out) => {
      if (!out.ok && out.err instanceof SessionLostError && out.err.sessionId !== undefined) {
        this.reportLost(out.err.sessionId, out.err.message, out.err.code);
      }
    });
  }

  reportLost(id: bigint, message: string, code: number): void {
    if (this.id !== id || (this.state !== "open" && this.state !== "reconnecting")) return;
    this.lost(new SessionLostError(message, code, id));
  }

  private lost(err: SessionLostError): void {
    if (this.state === "closed") return;
    this.stopProbes();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dropCall();
    this.state = "none";
    this.id = undefined;
    this.failAll(err);
    this.events.lost(err);
  }

  private failAll(err: BatonError): void {
    this.outbox = [];
    this.cancels = [];
    for (const op of [...this.ops.values()]) this.finish(op, { ok: false, err, broken: false });
  }

  /** Sends one operation; resolves with how it ended (never rejects). */
  send<T>(field: string, req: object, opts: SendOptions): Promise<Outcome<T>> {
    if (this.state === "closed") {
      return Promise.resolve({
        ok: false,
        err: new ClientClosedError(`${opts.what}: the client is closed`, Status.UNAVAILABLE),
        broken: false,
      });
    }
    const signal = opts.signal;
    if (signal?.aborted) return Promise.resolve({ ok: false, err: abortedError(signal, opts.what), broken: false });
    return new Promise<Outcome<T>>((resolve) => {
      const op: PendingOp = {
        id: this.nextId++,
        field,
        req,
        opts,
        resolve: resolve as (o: Outcome<unknown>) => void,
        sentGen: undefined,
        everSent: false,
        cancelled: false,
        deadline: opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined,
        backstop: undefined,
        onAbort: undefined,
        done: false,
      };
      this.ops.set(op.id, op);
      this.outbox.push(op);
      if (signal) {
        op.onAbort = () => this.abort(op);
        signal.addEventListener("abort", op.onAbort, { once: true });
      }
      if (this.state === "none") {
        // No session yet (an operation that names none): open one.
        this.ensure().catch(() => {});
      }
      this.scheduleFlush();
    });
  }

  private abort(op: PendingOp): void {
    if (op.done) return;
    const err = abortedError(op.opts.signal!, op.opts.what);
    if (op.sentGen === undefined) {
      this.outbox = this.outbox.filter((o) => o !== op);
      // Sent before on a stream that broke: its outcome is unknown.
      this.finish(op, { ok: false, err, broken: op.everSent });
      return;
    }
    if (!op.opts.waits) {
      // Not a wait: it completes on the server; the caller stops waiting.
      this.finish(op, { ok: false, err, broken: false });
      return;
    }
    op.cancelled = true;
    if (op.sentGen === this.gen) {
      this.cancels.push(op.id);
      this.scheduleFlush();
    }
  }

  private finish(op: PendingOp, outcome: Outcome<unknown>): void {
    if (op.done) return;
    op.done = true;
    this.ops.delete(op.id);
    if (op.backstop) clearTimeout(op.backstop);
    if (op.onAbort) op.opts.signal?.removeEventListener("abort", op.onAbort);
    op.resolve(outcome);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Writes what is queued in one StreamRequest, unless a write is in flight. */
  private flush(): void {
    if (this.writing || !this.call || this.state !== "open" || !this.welcomed) return;
    if (this.outbox.length === 0 && this.cancels.length === 0) return;
    const now = Date.now();
    const gen = this.gen;
    const ops: Record<string, unknown>[] = [];
    for (const op of this.outbox) {
      if (op.done) continue;
      if (op.everSent) {
        this.stats.resent++;
        if (op.deadline !== undefined) op.req = { ...op.req, timeout: toDuration(Math.max(0, op.deadline - now)) };
      }
      op.sentGen = gen;
      op.everSent = true;
      ops.push({ id: String(op.id), [op.field]: op.req });
      this.armBackstop(op, now);
    }
    this.outbox = [];
    const cancel = this.cancels.splice(0).map(String);
    if (ops.length === 0 && cancel.length === 0) return;
    this.writing = true;
    this.stats.writes++;
    this.stats.opsSent += ops.length;
    const call = this.call;
    call.write({ ops, cancel } as StreamRequest, () => {
      if (this.gen !== gen) return;
      this.writing = false;
      this.flush();
    });
  }

  /** A deadline for an answer: callTimeoutMs, or for a wait its timeout plus that. */
  private armBackstop(op: PendingOp, now: number): void {
    let ms: number | undefined;
    if (!op.opts.waits) ms = this.options.callTimeoutMs;
    else if (op.deadline !== undefined) ms = Math.max(0, op.deadline - now) + this.options.callTimeoutMs;
    if (ms === undefined) return;
    if (op.backstop) clearTimeout(op.backstop);
    op.backstop = setTimeout(() => {
      if (op.done) return;
      if (op.sentGen === this.gen && op.opts.waits) {
        this.cancels.push(op.id);
        this.scheduleFlush();
      }
      this.finish(op, {
        ok: false,
        err: new UnavailableError(`${op.opts.what}: no answer from the server within ${ms} ms`, Status.UNAVAILABLE),
        broken: true,
      });
    }, ms);
    op.backstop.unref();
  }

  /** Ends the session on the server (releasing all it holds) and the stream. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const id = this.current;
    const opening = this.opening;
    this.state = "closed";
    this.stopProbes();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.openTimer) clearTimeout(this.openTimer);
    this.openTimer = undefined;
    const closedErr = new ClientClosedError("the client was closed during the call", Status.UNAVAILABLE);
    this.failAll(closedErr);
    this.openWaiter?.reject(new ClientClosedError("the client is closed", Status.UNAVAILABLE));
    this.openWaiter = undefined;
    if (id !== undefined) {
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
    this.dropCall();
    if (opening) await opening.catch(() => {});
  }
}
