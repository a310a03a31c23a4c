// Futures: asyncio.Future shared between processes: a named value set once
// and awaited by anyone.
import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { FutureCancelledError, FutureExceptionError, Status, TimeoutError } from "./errors";
import { fromWire, type FutureState } from "./enums";
import type { AwaitFutureResponse__Output } from "./gen/baton/v1/AwaitFutureResponse";
import type { CancelFutureResponse__Output } from "./gen/baton/v1/CancelFutureResponse";
import type { SetResultResponse__Output } from "./gen/baton/v1/SetResultResponse";
import { payloadBytes, payloadFields, toDuration, type CallOptions, type Payload, type WaitOptions } from "./util";

/** How a future ended: a value, an error set by setException, or cancelled. */
export interface FutureOutcome {
  state: Exclude<FutureState, "pending">;
  /** The value's bytes (empty unless state is "result"). */
  value: Buffer;
  /** The value as text. */
  text: string;
  /** state "exception": what setException set. */
  error: { code: number; message: string } | undefined;
}

export interface RetentionOptions extends CallOptions {
  /** How long the done future is kept (default: the server's, 1 h). */
  retentionMs?: number;
}

function futureValue(value: Payload): { value?: Buffer; text?: string } {
  const p = payloadFields(value);
  return p.data ? { value: p.data } : { text: p.text ?? "" };
}

/** A named future. Get one with `client.future(name)`. */
export class Future {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
  ) {}

  /**
   * Completes the future with a value and wakes every awaiter; resolves with
   * how many. Errors: InvalidStateError (already done), InvalidArgumentError
   * (value too large).
   */
  async setResult(value: Payload, options: RetentionOptions = {}): Promise<{ woken: number }> {
    const res = await this.core.op<SetResultResponse__Output>(
      "futures.SetResult",
      { name: this.name, ...futureValue(value), retention: toDuration(options.retentionMs, "retentionMs") },
      { signal: options.signal, what: `future '${this.name}': setResult` },
    );
    return { woken: res.woken };
  }

  /**
   * Completes the future with an error (an Error's message, or an explicit
   * code and message); awaiters get it as their outcome.
   */
  async setException(
    error: Error | { code?: number; message: string },
    options: RetentionOptions = {},
  ): Promise<{ woken: number }> {
    const code = "code" in error && typeof error.code === "number" ? error.code : 0;
    const res = await this.core.op<SetResultResponse__Output>(
      "futures.SetException",
      { name: this.name, code, message: error.message, retention: toDuration(options.retentionMs, "retentionMs") },
      { signal: options.signal, what: `future '${this.name}': setException` },
    );
    return { woken: res.woken };
  }

  /** Cancels a pending future. False if it was already done (as Future.cancel()). */
  async cancel(options: RetentionOptions = {}): Promise<boolean> {
    const res = await this.core.op<CancelFutureResponse__Output>(
      "futures.Cancel",
      { name: this.name, retention: toDuration(options.retentionMs, "retentionMs") },
      { signal: options.signal, what: `future '${this.name}': cancel` },
    );
    return res.cancelled;
  }

  /**
   * Waits until the future is done; resolves with its outcome, whatever it
   * is (an exception or cancellation is data here). Errors: TimeoutError
   * (`timeoutMs: 0`: still pending), CancelledError (the signal fired).
   */
  async await(options: WaitOptions = {}): Promise<FutureOutcome> {
    const res = await this.core.op<AwaitFutureResponse__Output>(
      "futures.Await",
      {
        name: this.name,
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
        sessionId: this.core.currentSession().toString(),
      },
      { signal: options.signal, what: `future '${this.name}': await`, waits: true, timeoutMs: options.timeoutMs },
    );
    const state = fromWire<FutureState>(res.state, "FUTURE_STATE_") as FutureOutcome["state"];
    return {
      state,
      value: payloadBytes(res.value, res.text),
      text: res.text,
      error: state === "exception" ? { code: res.errorCode, message: res.errorMessage } : undefined,
    };
  }

  /**
   * As asyncio's `await future`: the value's bytes, or throws
   * FutureExceptionError (setException) or FutureCancelledError.
   */
  async result(options: WaitOptions = {}): Promise<Buffer> {
    const out = await this.await(options);
    if (out.state === "exception")
      throw new FutureExceptionError(`future '${this.name}'`, out.error!.code, out.error!.message);
    if (out.state === "cancelled")
      throw new FutureCancelledError(`future '${this.name}' was cancelled`, Status.CANCELLED);
    return out.value;
  }

  /** True if the future is done (a wait with no waiting). */
  async done(options: CallOptions = {}): Promise<boolean> {
    try {
      await this.await({ ...options, timeoutMs: 0 });
      return true;
    } catch (e) {
      if (e instanceof TimeoutError) return false;
      throw e;
    }
  }

  /** Admin/Describe: state and retention. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}
