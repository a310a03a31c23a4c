// Timers: loop.call_later / call_at / periodic calls that act on other Baton
// resources.
import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { InvalidArgumentError, Status } from "./errors";
import type { CancelTimerResponse__Output } from "./gen/baton/v1/CancelTimerResponse";
import type { ScheduleTimerResponse__Output } from "./gen/baton/v1/ScheduleTimerResponse";
import type { TimerAction as WireTimerAction } from "./gen/baton/v1/TimerAction";
import { toWireItem, type QueueItemInput } from "./queue";
import { fromDuration, payloadFields, toDuration, toTimestamp, type CallOptions, type Payload } from "./util";

/** What a timer does when it fires: exactly one of these. */
export type TimerAction =
  | { setEvent: string }
  | { clearEvent: string }
  | { put: { queue: string; item: QueueItemInput } }
  | { setFuture: { name: string; value: Payload } }
  | { submitTask: { queue: string; payload?: Payload; maxAttempts?: number } };

export interface ScheduleOptions extends CallOptions {
  /** First firing this many ms from now (give this or `at`). */
  afterMs?: number;
  /** First firing at this wall-clock time (in the past: now). */
  at?: Date | number;
  /** Fire again every this many ms until cancelled (at least 1). */
  everyMs?: number;
  /** Replace a timer of the same name instead of failing. */
  replace?: boolean;
}

function wireAction(a: TimerAction): WireTimerAction {
  if ("setEvent" in a) return { setEvent: { name: a.setEvent } };
  if ("clearEvent" in a) return { clearEvent: { name: a.clearEvent } };
  if ("put" in a) return { put: { queue: a.put.queue, item: toWireItem(a.put.item) } };
  if ("setFuture" in a) {
    const p = payloadFields(a.setFuture.value);
    return {
      setFuture: {
        name: a.setFuture.name,
        ...(p.data ? { value: p.data } : {}),
        ...(p.text !== undefined ? { text: p.text } : {}),
      },
    };
  }
  if ("submitTask" in a) {
    const p = payloadFields(a.submitTask.payload);
    return {
      submitTask: {
        queue: a.submitTask.queue,
        ...(p.data ? { payload: p.data } : {}),
        ...(p.text !== undefined ? { text: p.text } : {}),
        maxAttempts: a.submitTask.maxAttempts ?? 0,
      },
    };
  }
  throw new InvalidArgumentError(
    "a timer action needs one of setEvent, clearEvent, put, setFuture, submitTask",
    Status.INVALID_ARGUMENT,
  );
}

/** A named timer. Get one with `client.timer(name)`. */
export class Timer {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
  ) {}

  /**
   * Schedules the timer: `action` fires after `afterMs` (or at `at`), and
   * every `everyMs` after that if given. Resolves with the time until the
   * first firing. Errors: FailedPreconditionError (a timer of this name
   * exists and `replace` is not set), InvalidArgumentError.
   */
  async schedule(action: TimerAction, options: ScheduleOptions): Promise<{ dueInMs: number | undefined }> {
    const res = await this.core.op<ScheduleTimerResponse__Output>(
      "timers.Schedule",
      {
        name: this.name,
        after: toDuration(options.afterMs, "afterMs"),
        at: options.at === undefined ? null : toTimestamp(options.at),
        every: toDuration(options.everyMs, "everyMs"),
        action: wireAction(action),
        replace: options.replace ?? false,
      },
      { signal: options.signal, what: `timer '${this.name}': schedule` },
    );
    return { dueInMs: fromDuration(res.dueIn) };
  }

  /**
   * Cancels the timer. `cancelled` is false if there was none, or a one-shot
   * timer had fired already; `fired` counts its firings.
   */
  async cancel(options: CallOptions = {}): Promise<{ cancelled: boolean; fired: number }> {
    const res = await this.core.op<CancelTimerResponse__Output>(
      "timers.Cancel",
      { name: this.name },
      { signal: options.signal, what: `timer '${this.name}': cancel` },
    );
    return { cancelled: res.cancelled, fired: Number(res.fired) };
  }

  /** Admin/Describe: due in, period, firings, action. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}
