// Locks: asyncio.Lock shared between processes, with fencing tokens.
import { randomUUID } from "node:crypto";

import type { Admin, ResourceDescription } from "./admin";
import type { Core, Holding } from "./core";
import { BatonError, NotHeldError, SessionLostError, Status, TimeoutError } from "./errors";
import { outcomeOf, type GrantOutcome } from "./enums";
import type { AcquireLockRequest } from "./gen/baton/v1/AcquireLockRequest";
import type { AcquireLockResponse__Output } from "./gen/baton/v1/AcquireLockResponse";
import type { RefreshLockResponse__Output } from "./gen/baton/v1/RefreshLockResponse";
import type { ReleaseLockResponse__Output } from "./gen/baton/v1/ReleaseLockResponse";
import { big, fromDuration, toDuration, type CallOptions, type WaitOptions } from "./util";

/** Options of Lock.acquire (and Semaphore.acquire). */
export interface AcquireOptions extends WaitOptions {
  /**
   * Also lease the holding: it is released this many ms after the grant
   * unless refreshed, even while the session lives.
   */
  ttlMs?: number;
  /**
   * Idempotency key (at most 128 bytes). Default: a random UUID, which the
   * client uses to recover a grant whose answer was lost to a cancellation.
   */
  requestId?: string;
}

/** A named lock. Get one with `client.lock(name)`. */
export class Lock {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    /** The lock's name. */
    readonly name: string,
  ) {}

  /**
   * Acquires the lock for this client's session, waiting in line (FIFO).
   * Resolves with the holding; release it with `held.release()` (or
   * `await using held = await lock.acquire()`).
   *
   * Errors: TimeoutError (not granted within timeoutMs), CancelledError (the
   * signal fired), SessionLostError (the session ended while waiting),
   * KindMismatchError, InvalidArgumentError.
   *
   * Cancellation: when the signal fires the wait leaves the line. If the
   * server granted the lock while the cancel was on its way, the client
   * takes the grant back with the request id (lock.proto's recovery) and
   * releases it before the promise rejects: an aborted acquire never leaves
   * the lock held.
   */
  async acquire(options: AcquireOptions = {}): Promise<HeldLock> {
    const sessionId = await this.core.session(options.signal);
    const req: AcquireLockRequest = {
      name: this.name,
      sessionId: sessionId.toString(),
      ttl: toDuration(options.ttlMs, "ttlMs"),
      timeout: toDuration(options.timeoutMs, "timeoutMs"),
      requestId: options.requestId ?? randomUUID(),
    };
    const res = await this.core.acquire<AcquireLockResponse__Output>("locks.Acquire", req, {
      signal: options.signal,
      what: `lock '${this.name}': acquire`,
      timeoutMs: options.timeoutMs,
      rollback: (r) =>
        this.core.op<ReleaseLockResponse__Output>(
          "locks.Release",
          { name: this.name, token: r.token, sessionId: req.sessionId! },
          { what: `lock '${this.name}': release a grant that crossed the cancel` },
        ),
    });
    return new HeldLock(this.core, this, sessionId, req.requestId!, res);
  }

  /** acquire() with `timeoutMs: 0`: the holding, or undefined if the lock is held. */
  async tryAcquire(options: Omit<AcquireOptions, "timeoutMs"> = {}): Promise<HeldLock | undefined> {
    try {
      return await this.acquire({ ...options, timeoutMs: 0 });
    } catch (e) {
      if (e instanceof TimeoutError) return undefined;
      throw e;
    }
  }

  /**
   * Runs `fn` holding the lock and releases it afterwards, whatever happens.
   * If `fn` throws, that error propagates (a failing release is then
   * ignored); if `fn` succeeds, an error of the release propagates (e.g.
   * NotHeldError: the lease ran out, so `fn` ran unprotected at the end).
   */
  async withLock<T>(fn: (held: HeldLock) => Promise<T> | T, options: AcquireOptions = {}): Promise<T> {
    const held = await this.acquire(options);
    let result: T;
    try {
      result = await fn(held);
    } catch (e) {
      await held.release().catch(() => {});
      throw e;
    }
    await held.release();
    return result;
  }

  /**
   * Releases a holding by token, e.g. one acquired by another process with a
   * lease. `sessionId` is the holder's session: default this client's; 0n
   * for a lease-only holder.
   */
  async release(token: bigint, options: CallOptions & { sessionId?: bigint } = {}): Promise<{ handedOff: boolean }> {
    const sessionId = options.sessionId ?? this.core.currentSession();
    const res = await this.core.op<ReleaseLockResponse__Output>(
      "locks.Release",
      { name: this.name, token: token.toString(), sessionId: sessionId.toString() },
      { signal: options.signal, what: `lock '${this.name}': release`, hint: { notHeld: true } },
    );
    return { handedOff: res.handedOff };
  }

  /** Admin/Describe of this lock: holders, waiters, conditions, last token. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }

  /** True if anyone holds the lock now. */
  async locked(options: CallOptions = {}): Promise<boolean> {
    const d = await this.admin.tryDescribe(this.name, options);
    return d !== undefined && d.holders.length > 0;
  }
}

/** A granted lock. Release it exactly once; release() again does nothing. */
export class HeldLock implements Holding, AsyncDisposable {
  /** The fencing token of this grant (changes when a condition wait re-acquires). */
  token: bigint;
  /** How the grant came: at once, after waiting, or replayed by request id. */
  readonly outcome: GrantOutcome;
  /** Lease time left at the grant, when leased (ttlMs); undefined otherwise. */
  expiresInMs: number | undefined;
  private state: "held" | "released" | "dropped" | "lost" = "held";
  private lostError: BatonError | undefined;
  private releasing: Promise<{ handedOff: boolean }> | undefined;
  private readonly controller = new AbortController();
  private resolveLost!: (err: BatonError) => void;
  private leaseTimer: NodeJS.Timeout | undefined;
  /**
   * The lost signal: resolves (never rejects) with the reason once the
   * holding is known lost (its session was lost, its lease ran out
   * unrefreshed, the server answered NOT_FOUND / FAILED_PRECONDITION to a
   * refresh or release, or a condition wait failed). Stays pending while
   * held and after a release.
   */
  readonly lost: Promise<BatonError>;

  /** @internal */
  constructor(
    private readonly core: Core,
    /** The lock this holding is of. */
    readonly lock: Lock,
    /** The owning session. */
    readonly sessionId: bigint,
    /** The request id the grant was made under. */
    readonly requestId: string,
    res: AcquireLockResponse__Output,
  ) {
    this.token = big(res.token);
    this.outcome = outcomeOf(res.outcome);
    this.expiresInMs = fromDuration(res.expiresIn);
    this.lost = new Promise<BatonError>((r) => (this.resolveLost = r));
    this.armLease();
    core.track(this);
  }

  /** A leased holding is lost when its lease runs out unrefreshed. */
  private armLease(): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.expiresInMs === undefined || this.state !== "held") return;
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = undefined;
      if (this.state !== "held") return;
      this.lostError = new NotHeldError(
        `lock '${this.name}': the lease ran out unrefreshed`,
        Status.FAILED_PRECONDITION,
      );
      this.finish("lost");
    }, this.expiresInMs);
    this.leaseTimer.unref();
  }

  /** The fencing token: pass it to the storage you protect. Same as `token`. */
  get fence(): bigint {
    return this.token;
  }

  /** The lock's name. */
  get name(): string {
    return this.lock.name;
  }

  /**
   * True until released (also by the client's close), or known lost (session
   * lost, lease ran out, condition wait failed).
   */
  get held(): boolean {
    return this.state === "held";
  }

  /** Aborts when the holding is known lost (its session was lost). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Releases the lock; the oldest waiter gets it. Resolves at once if already
   * released. Errors: NotHeldError (the lease ran out, or it was released by
   * token elsewhere), SessionLostError (the session was lost: the lock was
   * released by the server then).
   */
  release(options: CallOptions = {}): Promise<{ handedOff: boolean }> {
    if (this.state === "released" || this.state === "dropped") return Promise.resolve({ handedOff: false });
    if (this.state === "lost") return Promise.reject(this.lostError);
    if (this.releasing) return this.releasing;
    this.releasing = this.core
      .op<ReleaseLockResponse__Output>(
        "locks.Release",
        { name: this.name, token: this.token.toString(), sessionId: this.sessionId.toString() },
        { signal: options.signal, what: `lock '${this.name}': release`, hint: { notHeld: true } },
      )
      .then(
        (res) => {
          this.finish("released");
          return { handedOff: res.handedOff };
        },
        (e: unknown) => {
          this.releasing = undefined;
          if (e instanceof NotHeldError || e instanceof SessionLostError) {
            this.lostError = e;
            this.finish("lost");
          }
          throw e;
        },
      );
    return this.releasing;
  }

  /** Extends the lease to `ttlMs` from now. Errors as release(). */
  async refresh(ttlMs: number, options: CallOptions = {}): Promise<{ expiresInMs: number | undefined }> {
    if (this.state === "lost") throw this.lostError;
    let res: RefreshLockResponse__Output;
    try {
      res = await this.core.op<RefreshLockResponse__Output>(
        "locks.Refresh",
        {
          name: this.name,
          token: this.token.toString(),
          sessionId: this.sessionId.toString(),
          ttl: toDuration(ttlMs, "ttlMs"),
        },
        { signal: options.signal, what: `lock '${this.name}': refresh`, hint: { notHeld: true } },
      );
    } catch (e) {
      if ((e instanceof NotHeldError || e instanceof SessionLostError) && this.state === "held") {
        this.lostError = e;
        this.finish("lost");
      }
      throw e;
    }
    this.expiresInMs = fromDuration(res.expiresIn);
    this.armLease();
    return { expiresInMs: this.expiresInMs };
  }

  /** For `await using`: release(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal The session was lost: the server released the lock. */
  markLost(err: SessionLostError): void {
    if (this.state !== "held") return;
    this.lostError = err;
    this.finish("lost");
  }

  /** @internal The client's close released the lock. */
  markClosed(): void {
    this.finish("released");
  }

  /** @internal A condition wait ended without the lock, or re-acquired it. */
  setConditionResult(token: bigint | undefined, expiresInMs?: number): void {
    if (token === undefined) {
      this.finish("dropped");
    } else {
      this.token = token;
      this.expiresInMs = expiresInMs;
      this.armLease();
    }
  }

  private finish(state: "released" | "dropped" | "lost"): void {
    if (this.state !== "held") return;
    this.state = state;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    this.core.untrack(this);
    if (state !== "released") {
      const err =
        this.lostError ?? new NotHeldError(`lock '${this.name}' is no longer held`, Status.FAILED_PRECONDITION);
      this.controller.abort(err);
      this.resolveLost(err);
    }
  }
}
