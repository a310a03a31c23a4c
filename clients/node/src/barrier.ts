// Barriers: asyncio.Barrier shared between processes.
import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import type { BarrierAbortResponse__Output } from "./gen/baton/v1/BarrierAbortResponse";
import type { BarrierResetResponse__Output } from "./gen/baton/v1/BarrierResetResponse";
import type { BarrierWaitResponse__Output } from "./gen/baton/v1/BarrierWaitResponse";
import { big, toDuration, type CallOptions, type WaitOptions } from "./util";

/**
 * A named barrier that lets `parties` callers through together. Get one with
 * `client.barrier(name, { parties })`; parties is fixed by the first wait
 * (leave it out later to use the declared number).
 */
export class Barrier {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
    /** Parties sent with wait(); 0: as declared. */
    readonly parties: number = 0,
  ) {}

  /**
   * Arrives and waits for the others. Resolves with this caller's arrival
   * index (0 first .. parties-1 for the one that tripped it) and the cycle.
   * Errors: BrokenBarrierError (broken before or while waiting, or reset),
   * TimeoutError and CancelledError (this caller gave up, which breaks the
   * barrier for the others, as in asyncio), SessionLostError.
   */
  async wait(options: WaitOptions = {}): Promise<{ index: number; cycle: bigint }> {
    const res = await this.core.op<BarrierWaitResponse__Output>(
      "barriers.Wait",
      {
        name: this.name,
        parties: this.parties,
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
        sessionId: this.core.currentSession().toString(),
      },
      { signal: options.signal, what: `barrier '${this.name}': wait`, waits: true, timeoutMs: options.timeoutMs },
    );
    return { index: res.index, cycle: big(res.cycle) };
  }

  /** Breaks the barrier: waiters and later waits get BrokenBarrierError until reset(). */
  async abort(options: CallOptions = {}): Promise<{ aborted: number }> {
    const res = await this.core.op<BarrierAbortResponse__Output>(
      "barriers.Abort",
      { name: this.name },
      { signal: options.signal, what: `barrier '${this.name}': abort` },
    );
    return { aborted: res.aborted };
  }

  /** Empties the barrier and unbreaks it; current waiters get BrokenBarrierError. */
  async reset(options: CallOptions = {}): Promise<{ aborted: number }> {
    const res = await this.core.op<BarrierResetResponse__Output>(
      "barriers.Reset",
      { name: this.name },
      { signal: options.signal, what: `barrier '${this.name}': reset` },
    );
    return { aborted: res.aborted };
  }

  /** Admin/Describe: parties, arrived, broken, cycles. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}
