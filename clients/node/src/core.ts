// What every primitive needs from the client: the session, the transport,
// and the one place where calls are run (deadline policy, session-loss
// detection, cancellation with rollback and recovery).
// Internal: not exported from the package.
import { ClientClosedError, SessionLostError, Status, toBatonError, type BatonError, type ErrorHint } from "./errors";
import type { Stubs } from "./grpc";
import type { StreamSession } from "./stream";
import { abortedError, toDuration, unary, type UnaryStart } from "./util";

/** Something the session owns that must learn when the session is lost. */
export interface Holding {
  readonly sessionId: bigint;
  /** The session was lost: the server released the holding. */
  markLost(err: SessionLostError): void;
  /** The client closed its session, which released the holding. */
  markClosed(): void;
}

/** The owner of the client's session: the session stream, or the unary keeper (session.ts). */
export interface SessionOwner {
  /** The current session id, if one is open. */
  readonly current: bigint | undefined;
  /** True while the connection is down and being re-established. */
  readonly reconnecting: boolean;
  /** The session id, opening a session if there is none. */
  ensure(signal?: AbortSignal): Promise<bigint>;
  /** Reports session `id` lost (if it is the current one). */
  reportLost(id: bigint, message: string, code: number): void;
  /** Ends the session on the server and stops. */
  close(): Promise<void>;
}

/** Backoff of stream re-opens: 100 ms, x1.6 per attempt, +-20 % jitter, at most 2 s. */
export const BACKOFF = { initialMs: 100, factor: 1.6, jitter: 0.2, maxMs: 2000 } as const;
/**
 * How long a recovery (asking again with the same request_id) keeps trying
 * through a broken connection: past a session TTL (15 s by default) and an
 * RPC timeout, the session, and with it the grant, is gone anyway.
 */
const RECOVER_MS = 40_000;

/** Which transport carries the operations. */
export type Transport = "stream" | "unary";

/**
 * Every method the client calls through Core.op, and the field of
 * stream.proto's Operation that carries it on the session stream.
 */
export const METHODS = {
  "sessions.Describe": "describeSession",
  "locks.Acquire": "acquireLock",
  "locks.Release": "releaseLock",
  "locks.Refresh": "refreshLock",
  "semaphores.Acquire": "acquireSemaphore",
  "semaphores.Release": "releaseSemaphore",
  "semaphores.Refresh": "refreshSemaphore",
  "semaphores.Delete": "deleteSemaphore",
  "events.Set": "setEvent",
  "events.Clear": "clearEvent",
  "events.Wait": "waitEvent",
  "conditions.Wait": "waitCondition",
  "conditions.Notify": "notify",
  "conditions.NotifyAll": "notifyAll",
  "barriers.Wait": "waitBarrier",
  "barriers.Abort": "abortBarrier",
  "barriers.Reset": "resetBarrier",
  "queues.Put": "put",
  "queues.Get": "get",
  "queues.Ack": "ack",
  "queues.Nack": "nack",
  "queues.Join": "join",
  "queues.Purge": "purge",
  "queues.Delete": "deleteQueue",
  "futures.SetResult": "setResult",
  "futures.SetException": "setException",
  "futures.Cancel": "cancelFuture",
  "futures.Await": "awaitFuture",
  "tasks.Submit": "submitTask",
  "tasks.Take": "takeTask",
  "tasks.Heartbeat": "taskHeartbeat",
  "tasks.Complete": "completeTask",
  "tasks.Await": "awaitTask",
  "tasks.Cancel": "cancelTask",
  "tasks.Wait": "waitTasks",
  "timers.Schedule": "scheduleTimer",
  "timers.Cancel": "cancelTimer",
  "admin.List": "list",
  "admin.Describe": "describe",
} as const;

export type Method = keyof typeof METHODS;

/**
 * Methods whose `session_id` 0 means "no session" (a lease-only holding):
 * the stream would read 0 as its own session, so these go unary.
 */
const SESSION_SENSITIVE = new Set<Method>([
  "locks.Acquire",
  "locks.Release",
  "locks.Refresh",
  "semaphores.Acquire",
  "semaphores.Release",
  "semaphores.Refresh",
  "conditions.Wait",
  "conditions.Notify",
  "conditions.NotifyAll",
  "queues.Get",
  "tasks.Take",
]);

export interface CallSpec {
  signal?: AbortSignal | undefined;
  /** Names the call in error messages, e.g. "lock 'a': acquire". */
  what: string;
  hint?: ErrorHint | undefined;
  /**
   * The call may wait (a blocking acquire, get, wait...): its request
   * `timeout` bounds it, so it gets no deadline, or, when it has a timeout, a
   * backstop deadline of that timeout plus callTimeoutMs. Other calls get
   * callTimeoutMs as their deadline. On the stream, only waits are cancelled
   * on the server when the signal fires; other operations complete.
   */
  waits?: boolean;
  /** The request's `timeout` in ms, for the backstop deadline. */
  timeoutMs?: number | undefined;
  /**
   * Called when the operation's outcome is unknown: its connection broke
   * after it was sent (or a unary call was cancelled). Runs before the
   * promise rejects; its errors are ignored.
   */
  recover?: (() => Promise<void>) | undefined;
}

export interface AcquireSpec<Res> extends CallSpec {
  /**
   * Undoes a grant the caller will not see (release the lock or permits,
   * Nack the items, give the task back). Required.
   */
  rollback: (res: Res) => Promise<unknown>;
  /**
   * On the unary transport, recover after a cancelled or broken call
   * (default true). Tasks/Take sets false: batond gives back, by request_id,
   * the task a unary Take whose cancellation it processes had taken, and
   * may process it after the retry, so a retry would only burn an attempt.
   */
  recoverOnUnary?: boolean;
}

/** How one stream operation ended (see StreamSession.send). */
export type Outcome<T> =
  | { ok: true; res: T; /** The answer arrived after the caller cancelled it. */ crossed: boolean }
  | { ok: false; err: BatonError; /** Sent on a stream that broke: outcome unknown. */ broken: boolean };

function noop(): void {}

/** Waits `ms`; resolves true at once if `signal` fires first. */
function pauseUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class Core {
  private readonly holdings = new Map<bigint, Set<Holding>>();
  /** Condition waits in progress, by lock name (see Condition.wait). */
  readonly conditionWaits = new Map<string, number>();
  private closed = false;
  /** Counters of how cancellations ended, for tests and diagnostics. */
  readonly cancelStats = { rolledBack: 0, recovered: 0 };

  constructor(
    readonly stubs: Stubs,
    readonly keeper: SessionOwner,
    readonly callTimeoutMs: number,
    /** The session stream, when it is the transport. */
    readonly stream: StreamSession | undefined,
  ) {}

  get transport(): Transport {
    return this.stream ? "stream" : "unary";
  }

  /** The session id, opening a session if there is none. */
  session(signal?: AbortSignal): Promise<bigint> {
    return this.keeper.ensure(signal);
  }

  /** The session id if a session is open, else 0n (for optional owners). */
  currentSession(): bigint {
    return this.keeper.current ?? 0n;
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new ClientClosedError(`${what}: the client is closed`, Status.UNAVAILABLE);
  }

  /** Runs a unary call; a "session ended" answer reports the session lost. */
  async call<T>(start: UnaryStart<T>, spec: CallSpec): Promise<T> {
    this.checkOpen(spec.what);
    try {
      const backstop = spec.waits === true;
      return await unary(start, {
        signal: spec.signal,
        deadlineMs: !backstop
          ? this.callTimeoutMs
          : spec.timeoutMs !== undefined
            ? spec.timeoutMs + this.callTimeoutMs
            : undefined,
        backstop,
        what: spec.what,
        hint: spec.hint,
      });
    } catch (e) {
      this.noticeError(e);
      throw e;
    }
  }

  /** The Operation field that carries `method` on the stream, or undefined: unary. */
  private streamField(method: Method, req: object): string | undefined {
    if (!this.stream) return undefined;
    if (SESSION_SENSITIVE.has(method)) {
      const sid = (req as { sessionId?: unknown }).sessionId;
      if (sid === undefined || sid === null || sid === "0" || sid === 0 || sid === 0n) return undefined;
    }
    return METHODS[method];
  }

  private unaryStart<T>(method: Method, req: object): UnaryStart<T> {
    const [service, rpc] = method.split(".") as [keyof Stubs, string];
    const stub = this.stubs[service] as unknown as Record<string, (...a: unknown[]) => unknown>;
    return (m, o, cb) => stub[rpc]!.call(stub, req, m, o, cb) as ReturnType<UnaryStart<T>>;
  }

  /**
   * Runs one operation on the client's transport: the session stream (the
   * default) or a unary call. An answer that crossed a cancel is returned
   * (use acquire() for grants that must be rolled back instead).
   */
  async op<T>(method: Method, req: object, spec: CallSpec): Promise<T> {
    const out = await this.run<T>(method, req, spec, false);
    if (out.ok) return out.res;
    if (out.broken && spec.recover) await spec.recover().catch(noop);
    this.noticeError(out.err);
    throw out.err;
  }

  /**
   * The one acquire-with-recovery: lock and semaphore acquire, queue get,
   * task take, condition wait. No grant is left behind by a cancel:
   *
   *  - a grant whose answer crossed the cancel is rolled back before the
   *    promise rejects with CancelledError;
   *  - when the outcome is unknown (the stream broke after a cancel, a unary
   *    call was cancelled or lost), spec.recover runs, which by default asks
   *    again with the same request_id and a zero timeout and rolls back what
   *    comes back (the request must carry a `requestId`);
   *  - on the stream, a wait whose stream broke is re-sent on the new stream
   *    with the same request_id and what is left of its timeout (stream.ts):
   *    the caller sees only the delay.
   */
  async acquire<T>(method: Method, req: object & { requestId?: string }, spec: AcquireSpec<T>): Promise<T> {
    const recover =
      spec.recover ??
      (req.requestId
        ? async () => {
            // Asked until it answers: batond keeps a grant whose answer may
            // have been read (the reply crossed the cancel or the connection
            // broke), so this is what gives it back. A broken connection is
            // waited out while the session could still hold the grant.
            const giveUpAt = Date.now() + RECOVER_MS;
            let delay = 50;
            for (;;) {
              const out = await this.run<T>(
                method,
                { ...req, timeout: toDuration(0) },
                { what: `${spec.what} (recover)` },
                false,
              );
              if (out.ok) {
                this.cancelStats.recovered++;
                await spec.rollback(out.res);
                return;
              }
              if (out.err.code !== Status.UNAVAILABLE || this.closed || Date.now() + delay > giveUpAt) return;
              await new Promise((resolve) => setTimeout(resolve, delay));
              delay = Math.min(delay * 2, 1000);
            }
          }
        : undefined);
    const resend = req.requestId !== undefined && req.requestId !== "";
    const out = await this.runWait<T>(method, req, { ...spec, waits: true }, resend);
    if (out.ok) {
      if (!out.crossed) return out.res;
      this.cancelStats.rolledBack++;
      await spec.rollback(out.res).catch(noop);
      throw abortedError(spec.signal!, spec.what);
    }
    const err = out.err;
    const onUnary = this.streamField(method, req) === undefined;
    const unknown =
      out.broken ||
      (onUnary &&
        spec.recoverOnUnary !== false &&
        !(err instanceof SessionLostError) &&
        [Status.CANCELLED, Status.UNAVAILABLE, Status.UNKNOWN, Status.INTERNAL].includes(err.code));
    if (unknown && recover) await recover().catch(noop);
    this.noticeError(err);
    throw err;
  }

  /**
   * Runs a wait; never rejects. On the stream, `resend` (the wait has a
   * request_id) lets the stream send it again after a break. On unary calls
   * this does the same: a wait with a request_id that ends UNAVAILABLE (the
   * connection dropped, the node it reached is not the leader: a failover)
   * is sent again after the contract's backoff with what is left of its
   * timeout, until it is answered, its time is up, or its signal fires. The
   * same request_id lets batond replay a grant the lost answer carried, or
   * give the wait back its place in line (its orphan), so it is neither lost
   * nor doubled. Time up while the server is still unreachable: the last
   * try's UnavailableError (as on the stream).
   */
  private async runWait<T>(method: Method, req: object, spec: CallSpec, resend: boolean): Promise<Outcome<T>> {
    const unaryResend = resend && this.streamField(method, req) === undefined;
    const deadline = spec.timeoutMs !== undefined ? Date.now() + spec.timeoutMs : undefined;
    const session = String((req as { sessionId?: unknown }).sessionId ?? "0");
    let unreachableSince: number | undefined;
    let backoffMs = 0;
    for (let attempt = req; ;) {
      const out = await this.run<T>(method, attempt, spec, resend);
      if (
        out.ok ||
        !unaryResend ||
        out.err.code !== Status.UNAVAILABLE ||
        out.err instanceof SessionLostError ||
        this.closed ||
        spec.signal?.aborted ||
        // Its session is gone (lost while the server was unreachable): the
        // wait is over; or a lease-only wait found no server for RECOVER_MS.
        (session !== "0" && String(this.keeper.current ?? "") !== session) ||
        Date.now() - (unreachableSince ??= Date.now()) > RECOVER_MS
      ) {
        return out;
      }
      backoffMs = backoffMs === 0 ? BACKOFF.initialMs : Math.min(backoffMs * BACKOFF.factor, BACKOFF.maxMs);
      const pause = backoffMs * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * Math.random());
      // No time left for another try: the wait ends as the last try did (the
      // caller recovers what it may have been granted).
      if (deadline !== undefined && Date.now() + pause >= deadline) return out;
      const aborted = await pauseUnlessAborted(pause, spec.signal);
      if (aborted || this.closed) return out;
      const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      attempt = left === undefined ? req : { ...req, timeout: toDuration(left) };
      spec = { ...spec, timeoutMs: left };
    }
  }

  /** Runs an operation; never rejects. `resend`: a wait safe to re-send (it has a request_id). */
  private async run<T>(method: Method, req: object, spec: CallSpec, resend: boolean): Promise<Outcome<T>> {
    try {
      this.checkOpen(spec.what);
    } catch (e) {
      return { ok: false, err: e as BatonError, broken: false };
    }
    const field = this.streamField(method, req);
    if (field !== undefined) {
      return this.stream!.send<T>(field, req, {
        signal: spec.signal,
        waits: spec.waits === true,
        timeoutMs: spec.timeoutMs,
        resend,
        what: spec.what,
        hint: spec.hint,
      });
    }
    try {
      const backstop = spec.waits === true;
      const res = await unary(this.unaryStart<T>(method, req), {
        signal: spec.signal,
        deadlineMs: !backstop
          ? this.callTimeoutMs
          : spec.timeoutMs !== undefined
            ? spec.timeoutMs + this.callTimeoutMs
            : undefined,
        backstop,
        what: spec.what,
        hint: spec.hint,
      });
      return { ok: true, res, crossed: false };
    } catch (e) {
      return { ok: false, err: toBatonError(e, spec.hint), broken: false };
    }
  }

  /** Reports the session lost if `e` says it ended. */
  noticeError(e: unknown): void {
    if (e instanceof SessionLostError && e.sessionId !== undefined) {
      this.keeper.reportLost(e.sessionId, e.message, e.code);
    }
  }

  track(h: Holding): void {
    let set = this.holdings.get(h.sessionId);
    if (!set) this.holdings.set(h.sessionId, (set = new Set()));
    set.add(h);
  }

  untrack(h: Holding): void {
    const set = this.holdings.get(h.sessionId);
    if (!set) return;
    set.delete(h);
    if (set.size === 0) this.holdings.delete(h.sessionId);
  }

  /** The holdings this client tracks under `sessionId`. */
  holdingsOf(sessionId: bigint): Holding[] {
    return [...(this.holdings.get(sessionId) ?? [])];
  }

  /** The client closed its session: every holding was released with it. */
  close(): void {
    this.closed = true;
    const all = [...this.holdings.values()].flatMap((set) => [...set]);
    this.holdings.clear();
    for (const h of all) h.markClosed();
  }

  /** Called when a session is lost: every holding under it learns. */
  sessionLost(err: SessionLostError): void {
    if (err.sessionId === undefined) return;
    const set = this.holdings.get(err.sessionId);
    this.holdings.delete(err.sessionId);
    for (const h of set ?? []) h.markLost(err);
  }
}
