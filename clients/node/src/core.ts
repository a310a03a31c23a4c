// What every primitive needs from the client: the stubs, the session, and the
// one place where calls are run (deadline policy, session-loss detection).
// Internal: not exported from the package.
import { ClientClosedError, SessionLostError, Status, type ErrorHint } from "./errors";
import type { Stubs } from "./grpc";
import type { SessionKeeper } from "./session";
import { unary, type UnaryStart } from "./util";

/** Something the session owns that must learn when the session is lost. */
export interface Holding {
  readonly sessionId: bigint;
  /** The session was lost: the server released the holding. */
  markLost(err: SessionLostError): void;
  /** The client closed its session, which released the holding. */
  markClosed(): void;
}

export interface CallSpec {
  signal?: AbortSignal | undefined;
  /** Names the call in error messages, e.g. "lock 'a': acquire". */
  what: string;
  hint?: ErrorHint | undefined;
  /**
   * The call may wait (a blocking acquire, get, wait...): its request
   * `timeout` bounds it, so it gets no gRPC deadline, or, when it has a
   * timeout, a backstop deadline of that timeout plus callTimeoutMs. Other
   * calls get callTimeoutMs as their deadline.
   */
  waits?: boolean;
  /** The request's `timeout` in ms, for the backstop deadline. */
  timeoutMs?: number | undefined;
}

export class Core {
  private readonly holdings = new Map<bigint, Set<Holding>>();
  /** Condition waits in progress, by lock name (see Condition.wait). */
  readonly conditionWaits = new Map<string, number>();
  private closed = false;

  constructor(
    readonly stubs: Stubs,
    readonly keeper: SessionKeeper,
    readonly callTimeoutMs: number,
  ) {}

  /** The session id, opening a session if there is none. */
  session(signal?: AbortSignal): Promise<bigint> {
    return this.keeper.ensure(signal);
  }

  /** The session id if a session is open, else 0n (for optional owners). */
  currentSession(): bigint {
    return this.keeper.current ?? 0n;
  }

  /** Runs a unary call; a "session ended" answer reports the session lost. */
  async call<T>(start: UnaryStart<T>, spec: CallSpec): Promise<T> {
    if (this.closed) throw new ClientClosedError(`${spec.what}: the client is closed`, Status.UNAVAILABLE);
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
