// Conditions: asyncio.Condition shared between processes, bound to a Baton
// lock.
import type { Admin } from "./admin";
import type { Core } from "./core";
import { InvalidArgumentError, KindMismatchError, NotHeldError, SessionLostError, Status } from "./errors";
import type { ConditionWaitResponse__Output } from "./gen/baton/v1/ConditionWaitResponse";
import type { NotifyResponse__Output } from "./gen/baton/v1/NotifyResponse";
import type { ReleaseLockResponse__Output } from "./gen/baton/v1/ReleaseLockResponse";
import { HeldLock, type Lock } from "./lock";
import { big, fromDuration, toDuration, type CallOptions, type WaitOptions } from "./util";

export interface ConditionWaitOptions extends WaitOptions {
  /**
   * Lease of the re-acquired lock, if the holding was leased (default: the
   * holding's own lease length).
   */
  ttlMs?: number;
}

/**
 * A condition bound to a lock: `client.condition(lockName, conditionName?)`.
 * Every call needs the lock held (a HeldLock of that lock).
 */
export class Condition {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    /** The lock the condition is bound to. */
    readonly lock: Lock,
    /** The condition's name under the lock ("" for the unnamed one). */
    readonly name: string = "",
  ) {}

  /**
   * Releases the lock, waits for a notify, re-acquires the lock (in the
   * lock's FIFO line) and resolves with the lock held again: `held.token` is
   * then the new fencing token. `notified` is false when `timeoutMs` ran out
   * (asyncio would raise; the lock is re-acquired either way).
   *
   * If the wait fails (CancelledError, SessionLostError, ...) the caller no
   * longer holds the lock: `held.held` becomes false and `held.release()`
   * does nothing. A grant that raced the cancellation is found and released.
   */
  async wait(held: HeldLock, options: ConditionWaitOptions = {}): Promise<{ notified: boolean }> {
    this.check(held);
    const lockName = this.lock.name;
    const original = held.token;
    const req = {
      lock: lockName,
      condition: this.name,
      token: original.toString(),
      sessionId: held.sessionId.toString(),
      ttl: toDuration(options.ttlMs, "ttlMs"),
      timeout: toDuration(options.timeoutMs, "timeoutMs"),
    };
    const waits = this.core.conditionWaits;
    waits.set(lockName, (waits.get(lockName) ?? 0) + 1);
    let res: ConditionWaitResponse__Output;
    try {
      res = await this.core.acquire<ConditionWaitResponse__Output>("conditions.Wait", req, {
        signal: options.signal,
        what: `condition '${lockName}/${this.name}': wait`,
        // The re-acquire crossed the cancel: release the lock it gave.
        rollback: (r) =>
          this.core.op<ReleaseLockResponse__Output>(
            "locks.Release",
            { name: lockName, token: r.token, sessionId: req.sessionId },
            { what: `lock '${lockName}': release a condition grant that crossed the cancel` },
          ),
        // Outcome unknown (no request id on condition waits): look for the grant.
        recover: () => this.recover(held, original),
      });
    } catch (e) {
      const left = (waits.get(lockName) ?? 1) - 1;
      if (left > 0) waits.set(lockName, left);
      else waits.delete(lockName);
      if (e instanceof InvalidArgumentError || e instanceof KindMismatchError) throw e; // never parked
      if (e instanceof SessionLostError) held.markLost(e);
      else held.setConditionResult(undefined);
      throw e;
    }
    const left = (waits.get(lockName) ?? 1) - 1;
    if (left > 0) waits.set(lockName, left);
    else waits.delete(lockName);
    held.setConditionResult(big(res.token), fromDuration(res.expiresIn));
    return { notified: res.outcome === "CONDITION_OUTCOME_NOTIFIED" };
  }

  /**
   * asyncio's wait_for: waits until `predicate()` is true, re-checking after
   * every wake-up, for at most `timeoutMs` in total. Resolves with the last
   * value of the predicate (false: the time ran out).
   */
  async waitFor(
    held: HeldLock,
    predicate: () => boolean | Promise<boolean>,
    options: ConditionWaitOptions = {},
  ): Promise<boolean> {
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    for (;;) {
      if (await predicate()) return true;
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return false;
      await this.wait(held, { ...options, ...(left !== undefined ? { timeoutMs: left } : {}) });
    }
  }

  /** Wakes up to `n` waiters (default 1), oldest first. Needs the lock. */
  async notify(held: HeldLock, n = 1, options: CallOptions = {}): Promise<{ woken: number }> {
    this.check(held);
    const res = await this.core.op<NotifyResponse__Output>(
      "conditions.Notify",
      {
        lock: this.lock.name,
        condition: this.name,
        token: held.token.toString(),
        sessionId: held.sessionId.toString(),
        n,
      },
      { signal: options.signal, what: `condition '${this.lock.name}/${this.name}': notify`, hint: { notHeld: true } },
    );
    return { woken: res.woken };
  }

  /** Wakes every waiter. Needs the lock. */
  async notifyAll(held: HeldLock, options: CallOptions = {}): Promise<{ woken: number }> {
    this.check(held);
    const res = await this.core.op<NotifyResponse__Output>(
      "conditions.NotifyAll",
      {
        lock: this.lock.name,
        condition: this.name,
        token: held.token.toString(),
        sessionId: held.sessionId.toString(),
      },
      {
        signal: options.signal,
        what: `condition '${this.lock.name}/${this.name}': notifyAll`,
        hint: { notHeld: true },
      },
    );
    return { woken: res.woken };
  }

  private check(held: HeldLock): void {
    if (!(held instanceof HeldLock) || held.name !== this.lock.name) {
      throw new InvalidArgumentError(
        `condition '${this.lock.name}/${this.name}' needs a holding of lock '${this.lock.name}'`,
        Status.INVALID_ARGUMENT,
      );
    }
    if (!held.held) {
      throw new NotHeldError(
        `lock '${this.lock.name}' is not held by this holding any more`,
        Status.FAILED_PRECONDITION,
      );
    }
  }

  /**
   * After a failed wait whose re-acquire may have been granted with its
   * answer lost: a holder of the lock under our session with no request id
   * (condition re-acquires carry none; this client's acquires always carry
   * one) and a newer token that no HeldLock of this client knows is that
   * grant, so release it. Skipped while another condition wait of this client
   * on the same lock is in progress (the grant might be its own).
   */
  private async recover(held: HeldLock, original: bigint): Promise<void> {
    const lockName = this.lock.name;
    // Our own wait is still counted while this runs.
    if ((this.core.conditionWaits.get(lockName) ?? 0) > 1) return;
    try {
      const d = await this.admin.tryDescribe(lockName);
      const known = new Set(
        this.core
          .holdingsOf(held.sessionId)
          .filter((h): h is HeldLock => h instanceof HeldLock && h.name === lockName)
          .map((h) => h.token),
      );
      for (const h of d?.holders ?? []) {
        if (h.sessionId !== held.sessionId || h.requestId !== "" || h.token <= original || known.has(h.token)) continue;
        await this.core.op<ReleaseLockResponse__Output>(
          "locks.Release",
          { name: lockName, token: h.token.toString(), sessionId: held.sessionId.toString() },
          { what: `lock '${lockName}': release recovered condition grant` },
        );
      }
    } catch {
      // Best effort: the session still ends the holding.
    }
  }
}
