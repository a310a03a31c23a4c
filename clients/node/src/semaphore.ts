// Semaphores: asyncio.BoundedSemaphore shared between processes, with
// weighted acquire.
import { randomUUID } from "node:crypto";

import type { Admin, ResourceDescription } from "./admin";
import type { Core, Holding } from "./core";
import { NotHeldError, SessionLostError, Status, TimeoutError, type BatonError } from "./errors";
import { outcomeOf, type GrantOutcome } from "./enums";
import type { AcquireSemaphoreRequest } from "./gen/baton/v1/AcquireSemaphoreRequest";
import type { AcquireSemaphoreResponse__Output } from "./gen/baton/v1/AcquireSemaphoreResponse";
import type { DeleteSemaphoreResponse__Output } from "./gen/baton/v1/DeleteSemaphoreResponse";
import type { RefreshSemaphoreResponse__Output } from "./gen/baton/v1/RefreshSemaphoreResponse";
import type { ReleaseSemaphoreResponse__Output } from "./gen/baton/v1/ReleaseSemaphoreResponse";
import type { AcquireOptions } from "./lock";
import { big, fromDuration, toDuration, type CallOptions } from "./util";

export interface SemaphoreAcquireOptions extends AcquireOptions {
  /** Permits to take (default 1), 1..capacity. */
  count?: number;
}

/**
 * A named semaphore. Get one with `client.semaphore(name, { capacity })`; the
 * capacity is declared by the first user and must match afterwards (leave it
 * out to use whatever was declared). The declaration lasts until delete(),
 * also while no permit is held.
 */
export class Semaphore {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    /** The semaphore's name. */
    readonly name: string,
    /** The capacity sent with acquires; 0: as declared. */
    readonly capacity: number = 0,
  ) {}

  /**
   * Takes `count` permits for this client's session, waiting in line (FIFO,
   * no barging). Errors and cancellation as Lock.acquire: an aborted acquire
   * never leaves permits held.
   */
  async acquire(options: SemaphoreAcquireOptions = {}): Promise<HeldPermits> {
    const sessionId = await this.core.session(options.signal);
    const req: AcquireSemaphoreRequest = {
      name: this.name,
      capacity: this.capacity,
      sessionId: sessionId.toString(),
      ttl: toDuration(options.ttlMs, "ttlMs"),
      timeout: toDuration(options.timeoutMs, "timeoutMs"),
      requestId: options.requestId ?? randomUUID(),
    };
    if (options.count !== undefined) req.count = options.count;
    const res = await this.core.acquire<AcquireSemaphoreResponse__Output>("semaphores.Acquire", req, {
      signal: options.signal,
      what: `semaphore '${this.name}': acquire`,
      timeoutMs: options.timeoutMs,
      rollback: (r) =>
        this.core.op<ReleaseSemaphoreResponse__Output>(
          "semaphores.Release",
          { name: this.name, token: r.token, sessionId: req.sessionId! },
          { what: `semaphore '${this.name}': release a grant that crossed the cancel` },
        ),
    });
    return new HeldPermits(this.core, this, sessionId, req.requestId!, res);
  }

  /** acquire() without waiting: the permits, or undefined if too few are free. */
  async tryAcquire(options: Omit<SemaphoreAcquireOptions, "timeoutMs"> = {}): Promise<HeldPermits | undefined> {
    try {
      return await this.acquire({ ...options, timeoutMs: 0 });
    } catch (e) {
      if (e instanceof TimeoutError) return undefined;
      throw e;
    }
  }

  /** Runs `fn` holding the permits, then returns them (as Lock.withLock). */
  async withPermits<T>(fn: (held: HeldPermits) => Promise<T> | T, options: SemaphoreAcquireOptions = {}): Promise<T> {
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

  /** Admin/Describe: capacity, available permits, holders, waiters. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }

  /**
   * Ends the semaphore's declaration, so that the name may be declared again
   * with another capacity; false if there was no such semaphore.
   * FailedPreconditionError while permits are held (release them first);
   * KindMismatchError if the name is another kind.
   */
  async delete(options: CallOptions = {}): Promise<boolean> {
    const res = await this.core.op<DeleteSemaphoreResponse__Output>(
      "semaphores.Delete",
      { name: this.name },
      { signal: options.signal, what: `semaphore '${this.name}': delete` },
    );
    return res.deleted;
  }
}

/** Granted permits: one holding with its own token. */
export class HeldPermits implements Holding, AsyncDisposable {
  readonly token: bigint;
  /** Permits still held by this holding. */
  count: number;
  /** Permits free right after the grant. */
  readonly available: number;
  readonly outcome: GrantOutcome;
  expiresInMs: number | undefined;
  private state: "held" | "released" | "lost" = "held";
  private lostError: BatonError | undefined;
  private readonly controller = new AbortController();
  private resolveLost!: (err: BatonError) => void;
  private leaseTimer: NodeJS.Timeout | undefined;
  /**
   * The lost signal: resolves (never rejects) with the reason once the
   * permits are known lost (session lost, lease ran out unrefreshed, the
   * server answered NOT_FOUND / FAILED_PRECONDITION to a refresh or release).
   */
  readonly lost: Promise<BatonError>;

  /** @internal */
  constructor(
    private readonly core: Core,
    readonly semaphore: Semaphore,
    readonly sessionId: bigint,
    readonly requestId: string,
    res: AcquireSemaphoreResponse__Output,
  ) {
    this.token = big(res.token);
    this.count = Number(res.count);
    this.available = Number(res.available);
    this.outcome = outcomeOf(res.outcome);
    this.expiresInMs = fromDuration(res.expiresIn);
    this.lost = new Promise<BatonError>((r) => (this.resolveLost = r));
    this.armLease();
    core.track(this);
  }

  /** Leased permits are lost when their lease runs out unrefreshed. */
  private armLease(): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.expiresInMs === undefined || this.state !== "held") return;
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = undefined;
      this.finish(
        "lost",
        new NotHeldError(`semaphore '${this.name}': the lease ran out unrefreshed`, Status.FAILED_PRECONDITION),
      );
    }, this.expiresInMs);
    this.leaseTimer.unref();
  }

  get name(): string {
    return this.semaphore.name;
  }

  get held(): boolean {
    return this.state === "held";
  }

  /** Aborts when the holding is known lost (its session was lost). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Returns `count` permits (default: all still held). Resolves at once when
   * everything was returned already (then `available` is undefined).
   * Errors as HeldLock.release().
   */
  async release(
    count?: number,
    options: CallOptions = {},
  ): Promise<{ available: number | undefined; remaining: number }> {
    if (this.state === "released") return { available: undefined, remaining: 0 };
    if (this.state === "lost") throw this.lostError;
    let res: ReleaseSemaphoreResponse__Output;
    try {
      res = await this.core.op<ReleaseSemaphoreResponse__Output>(
        "semaphores.Release",
        {
          name: this.name,
          token: this.token.toString(),
          sessionId: this.sessionId.toString(),
          ...(count !== undefined ? { count } : {}),
        },
        { signal: options.signal, what: `semaphore '${this.name}': release`, hint: { notHeld: true } },
      );
    } catch (e) {
      if (e instanceof NotHeldError && count === undefined) this.finish("lost", e);
      if (e instanceof SessionLostError) this.finish("lost", e);
      throw e;
    }
    this.count = Number(res.remaining);
    if (this.count === 0) this.finish("released");
    return { available: Number(res.available), remaining: this.count };
  }

  /** Extends the holding's lease to `ttlMs` from now. */
  async refresh(ttlMs: number, options: CallOptions = {}): Promise<{ expiresInMs: number | undefined }> {
    if (this.state === "lost") throw this.lostError;
    let res: RefreshSemaphoreResponse__Output;
    try {
      res = await this.core.op<RefreshSemaphoreResponse__Output>(
        "semaphores.Refresh",
        {
          name: this.name,
          token: this.token.toString(),
          sessionId: this.sessionId.toString(),
          ttl: toDuration(ttlMs, "ttlMs"),
        },
        { signal: options.signal, what: `semaphore '${this.name}': refresh`, hint: { notHeld: true } },
      );
    } catch (e) {
      if (e instanceof NotHeldError || e instanceof SessionLostError) this.finish("lost", e);
      throw e;
    }
    this.expiresInMs = fromDuration(res.expiresIn);
    this.armLease();
    return { expiresInMs: this.expiresInMs };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal */
  markLost(err: SessionLostError): void {
    this.finish("lost", err);
  }

  /** @internal The client's close released the permits. */
  markClosed(): void {
    this.finish("released");
  }

  private finish(state: "released" | "lost", err?: BatonError): void {
    if (this.state !== "held") return;
    this.state = state;
    this.lostError = err;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    this.core.untrack(this);
    if (state === "lost") {
      this.controller.abort(err);
      this.resolveLost(err!);
    }
  }
}
