// Events: asyncio.Event shared between processes, plus a stream of changes.
import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { TimeoutError } from "./errors";
import type { ClearEventResponse__Output } from "./gen/baton/v1/ClearEventResponse";
import type { EventChange__Output } from "./gen/baton/v1/EventChange";
import type { SetEventResponse__Output } from "./gen/baton/v1/SetEventResponse";
import type { WaitEventResponse__Output } from "./gen/baton/v1/WaitEventResponse";
import { big, StreamReader, toDuration, waitingMetadata, type CallOptions, type WaitOptions } from "./util";

/** One state seen by Event.watch(). */
export interface EventChange {
  isSet: boolean;
  /** Counts the changes this watcher saw, from 1. */
  sequence: bigint;
}

/** A named event (a flag, initially clear). Get one with `client.event(name)`. */
export class BatonEvent {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
  ) {}

  /** Sets the flag and wakes every waiter. `wasSet`: the state before. */
  async set(options: CallOptions = {}): Promise<{ wasSet: boolean; woken: number }> {
    const res = await this.core.op<SetEventResponse__Output>(
      "events.Set",
      { name: this.name },
      { signal: options.signal, what: `event '${this.name}': set` },
    );
    return { wasSet: res.previous === "EVENT_STATE_SET", woken: res.woken };
  }

  /** Clears the flag. `wasSet`: the state before. */
  async clear(options: CallOptions = {}): Promise<{ wasSet: boolean }> {
    const res = await this.core.op<ClearEventResponse__Output>(
      "events.Clear",
      { name: this.name },
      { signal: options.signal, what: `event '${this.name}': clear` },
    );
    return { wasSet: res.previous === "EVENT_STATE_SET" };
  }

  /**
   * Resolves once the flag is set (at once if it is). Errors: TimeoutError,
   * CancelledError, SessionLostError (the wait is tied to the client's
   * session when one is open).
   */
  async wait(options: WaitOptions = {}): Promise<void> {
    await this.core.op<WaitEventResponse__Output>(
      "events.Wait",
      {
        name: this.name,
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
        sessionId: this.core.currentSession().toString(),
      },
      { signal: options.signal, what: `event '${this.name}': wait`, waits: true, timeoutMs: options.timeoutMs },
    );
  }

  /** True if the flag is set now (a wait with no waiting). */
  async isSet(options: CallOptions = {}): Promise<boolean> {
    try {
      await this.wait({ ...options, timeoutMs: 0 });
      return true;
    } catch (e) {
      if (e instanceof TimeoutError) return false;
      throw e;
    }
  }

  /**
   * The event's state now, then every change, until the loop is left (break)
   * or the signal fires (CancelledError). A slow reader sees the latest
   * state rather than every change in between.
   */
  async *watch(options: CallOptions = {}): AsyncGenerator<EventChange> {
    const call = this.core.stubs.events.Watch({ name: this.name }, waitingMetadata());
    const reader = new StreamReader<EventChange__Output>(call, options.signal, `event '${this.name}': watch`);
    try {
      for (;;) {
        const m = await reader.next();
        if (m === undefined) return;
        yield { isSet: m.state === "EVENT_STATE_SET", sequence: big(m.sequence) };
      }
    } finally {
      reader.close();
    }
  }

  /** Admin/Describe: state, waiters, watchers. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}
