// Conversions between the wire shapes (durations, 64-bit integers as strings,
// bytes) and the public API (milliseconds, bigint, Buffer), and the two ways
// of running a call: a unary call as a promise, a server stream as an
// iterator. Both cancel the gRPC call when the caller's AbortSignal fires.
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";

import { CancelledError, InvalidArgumentError, Status, toBatonError, UnavailableError, type ErrorHint } from "./errors";
import type { Duration, Duration__Output } from "./gen/google/protobuf/Duration";
import type { Timestamp } from "./gen/google/protobuf/Timestamp";

/** Options every call takes. */
export interface CallOptions {
  /**
   * Cancels the call when aborted: the promise rejects with CancelledError
   * (its `cause` is the signal's reason) and the server ends the operation
   * (a wait leaves the line; a grant racing the cancel is rolled back). If
   * the answer had already arrived, the call resolves normally.
   */
  signal?: AbortSignal;
}

/** Options of a call that may wait. */
export interface WaitOptions extends CallOptions {
  /**
   * Longest wait in milliseconds; then TimeoutError (DEADLINE_EXCEEDED).
   * 0: try once without waiting. Unset: wait until granted or aborted.
   * Sent as the request's `timeout`, so the server decides, atomically.
   */
  timeoutMs?: number;
}

/** Milliseconds -> google.protobuf.Duration; undefined -> unset. */
export function toDuration(ms: number | undefined, what = "duration"): Duration | null {
  if (ms === undefined) return null;
  if (!Number.isFinite(ms) || ms < 0)
    throw new InvalidArgumentError(`${what} must be a finite number of ms >= 0, not ${ms}`, Status.INVALID_ARGUMENT);
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole - seconds * 1000) * 1_000_000 + Math.round((ms - whole) * 1_000_000);
  return { seconds: String(seconds), nanos };
}

/** google.protobuf.Duration -> milliseconds; unset -> undefined. */
export function fromDuration(d: Duration__Output | null | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + d.nanos / 1_000_000;
}

/** Date or epoch milliseconds -> google.protobuf.Timestamp. */
export function toTimestamp(at: Date | number): Timestamp {
  const ms = typeof at === "number" ? at : at.getTime();
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`bad time ${String(at)}`, Status.INVALID_ARGUMENT);
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1_000_000) };
}

/** A uint64 as the loader gives it ("17") -> 17n. */
export function big(s: string | number | undefined | null): bigint {
  return s === undefined || s === null || s === "" ? 0n : BigInt(s);
}

/** A payload given by the caller: text, or bytes. */
export type Payload = string | Uint8Array;

/** Splits a payload into the `data`/`text` pair of the wire messages. */
export function payloadFields(p: Payload | undefined): { data?: Buffer; text?: string } {
  if (p === undefined) return {};
  if (typeof p === "string") return { text: p };
  return { data: Buffer.from(p.buffer, p.byteOffset, p.byteLength) };
}

/** The payload of a wire message: its bytes, or its text as UTF-8 bytes. */
export function payloadBytes(data: Buffer | undefined, text: string | undefined): Buffer {
  if (data && data.length > 0) return data;
  return Buffer.from(text ?? "", "utf8");
}

export function abortedError(signal: AbortSignal, what: string): CancelledError {
  return new CancelledError(`${what}: aborted`, Status.CANCELLED, { cause: signal.reason });
}

/** Starts a unary call with the given metadata, gRPC call options and callback. */
export type UnaryStart<T> = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<T>,
) => grpc.ClientUnaryCall;

/** Metadata of a call that waits for the channel to connect (see UnaryOptions). */
export function waitingMetadata(waitForReady = true): grpc.Metadata {
  return new Metadata({ waitForReady });
}

export interface UnaryOptions {
  signal?: AbortSignal | undefined;
  /** gRPC deadline in ms from now; unset: none. */
  deadlineMs?: number | undefined;
  /**
   * The deadline is only a backstop for a server that does not answer (the
   * request's own `timeout` should end the call first): when it passes, the
   * call fails with UnavailableError rather than TimeoutError.
   */
  backstop?: boolean | undefined;
  /**
   * Wait for the channel to be connected instead of failing at once while it
   * reconnects (default true; the deadline or signal still ends the wait).
   */
  waitForReady?: boolean | undefined;
  /** Names the call in error messages. */
  what: string;
  hint?: ErrorHint | undefined;
}

/**
 * Runs a unary call as a promise. An aborted signal cancels the call; the
 * promise then rejects with CancelledError unless the answer had already
 * arrived.
 */
export function unary<T>(start: UnaryStart<T>, o: UnaryOptions): Promise<T> {
  const { signal } = o;
  if (signal?.aborted) return Promise.reject(abortedError(signal, o.what));
  return new Promise<T>((resolve, reject) => {
    const options: grpc.CallOptions = {};
    if (o.deadlineMs !== undefined) options.deadline = Date.now() + o.deadlineMs;
    let onAbort: (() => void) | undefined;
    let call: grpc.ClientUnaryCall;
    try {
      call = start(waitingMetadata(o.waitForReady ?? true), options, (err, value) => {
        if (onAbort) signal!.removeEventListener("abort", onAbort);
        if (err) {
          if (err.code === Status.CANCELLED && signal?.aborted) reject(abortedError(signal, o.what));
          else if (
            err.code === Status.DEADLINE_EXCEEDED &&
            o.backstop &&
            typeof options.deadline === "number" &&
            Date.now() >= options.deadline - 1
          ) {
            reject(
              new UnavailableError(
                `${o.what}: no answer from the server within ${o.deadlineMs} ms`,
                Status.UNAVAILABLE,
                { cause: err },
              ),
            );
          } else reject(toBatonError(err, o.hint));
        } else {
          resolve(value as T);
        }
      });
    } catch (e) {
      // E.g. the channel was closed.
      reject(toBatonError(e));
      return;
    }
    if (signal) {
      onAbort = () => call.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
    }
  });
}

/**
 * Reads a server stream message by message. Messages arrive into a buffer
 * (the server bounds them: Watch coalesces, Consume has its prefetch window);
 * next() takes one, close() cancels the call and returns what was not read.
 */
export class StreamReader<T> {
  private readonly buffer: T[] = [];
  private ended = false;
  private error: grpc.ServiceError | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onAbort: () => void;

  constructor(
    private readonly call: grpc.ClientReadableStream<T>,
    private readonly signal: AbortSignal | undefined,
    private readonly what: string,
    private readonly hint?: ErrorHint,
  ) {
    call.on("data", (m: T) => {
      this.buffer.push(m);
      this.notify();
    });
    call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      this.ended = true;
      this.notify();
    });
    call.on("end", () => {
      this.ended = true;
      this.notify();
    });
    this.onAbort = () => call.cancel();
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next message; undefined when the stream ended normally. */
  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      if (this.buffer.length > 0) return this.buffer.shift();
      if (this.ended) {
        this.detach();
        if (!this.error) return undefined;
        if (this.error.code === Status.CANCELLED && this.signal?.aborted) throw abortedError(this.signal, this.what);
        throw toBatonError(this.error, this.hint);
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Cancels the stream; returns the messages received but not read. */
  close(): T[] {
    if (!this.closed) {
      this.closed = true;
      this.detach();
      if (!this.ended) this.call.cancel();
      this.notify();
    }
    return this.buffer.splice(0);
  }

  private detach(): void {
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

/** Sleeps `ms`, or less if the signal fires (then rejects with CancelledError). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedError(signal, "sleep"));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(abortedError(signal!, "sleep"));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
