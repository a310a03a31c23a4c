// Errors: one class per way a call can end that a caller would handle
// differently. Every error the client throws is a BatonError carrying the gRPC
// status code; subclasses narrow it by meaning (a lock that is not held, a
// lost session, a broken barrier...). Outcomes that are data on the wire (a
// future set with an exception, a failed task) become errors only when asked
// for with result().
import { status as Status, type ServiceError } from "@grpc/grpc-js";

export { Status };

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Status)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v as number, k]),
);

/** Base class of every error thrown by baton-client. */
export class BatonError extends Error {
  /** The gRPC status code (grpc.status), e.g. 4 for DEADLINE_EXCEEDED. */
  readonly code: number;

  constructor(message: string, code: number = Status.UNKNOWN, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The name of `code`, e.g. "DEADLINE_EXCEEDED". */
  get codeName(): string {
    return CODE_NAMES[this.code] ?? `CODE_${this.code}`;
  }
}

/** INVALID_ARGUMENT: a bad name, TTL, timeout, count, page size... */
export class InvalidArgumentError extends BatonError {}

/** NOT_FOUND: an unknown task, or Describe of a resource that does not exist. */
export class NotFoundError extends BatonError {}

/** FAILED_PRECONDITION: the request does not fit the resource's state. */
export class FailedPreconditionError extends BatonError {}

/**
 * FAILED_PRECONDITION on release, refresh, notify, condition wait, ack, nack,
 * heartbeat or complete: the caller does not hold what it names (released
 * already, its lease ran out, the receipt was redelivered, the task attempt
 * was lost).
 */
export class NotHeldError extends FailedPreconditionError {}

/** FAILED_PRECONDITION: the name exists as another kind of resource. */
export class KindMismatchError extends FailedPreconditionError {}

/** FAILED_PRECONDITION: the future is already done (asyncio's InvalidStateError). */
export class InvalidStateError extends FailedPreconditionError {}

/**
 * DEADLINE_EXCEEDED: not granted within `timeoutMs` (with `timeoutMs: 0`: not
 * available right now).
 */
export class TimeoutError extends BatonError {}

/** Queue get with `timeoutMs: 0` on an empty queue (asyncio.QueueEmpty). */
export class QueueEmptyError extends TimeoutError {}

/**
 * CANCELLED: the call was cancelled, normally because its AbortSignal fired
 * (then `cause` is the signal's reason).
 */
export class CancelledError extends BatonError {}

/** Future.result() of a cancelled future (asyncio.CancelledError). */
export class FutureCancelledError extends CancelledError {}

/** TaskHandle.result() of a cancelled task. */
export class TaskCancelledError extends CancelledError {}

/** ABORTED: the server ended the wait (queue deleted, barrier broken, ...). */
export class AbortedError extends BatonError {}

/** ABORTED from a barrier: broken (aborted, reset, or a party gave up). */
export class BrokenBarrierError extends AbortedError {}

/** ABORTED: the queue was deleted while the call waited. */
export class QueueDeletedError extends AbortedError {}

/**
 * The client's session ended (closed, expired, or unreachable for longer than
 * its TTL): everything it held is released. Thrown by calls that used it
 * (ABORTED or NOT_FOUND from the server) and passed to the client's
 * "sessionLost" event. The next call opens a new session.
 */
export class SessionLostError extends BatonError {
  /** The session that ended, when known. */
  readonly sessionId: bigint | undefined;

  constructor(message: string, code: number, sessionId?: bigint, options?: { cause?: unknown }) {
    super(message, code, options);
    this.sessionId = sessionId;
  }
}

/** RESOURCE_EXHAUSTED: a server limit (names, sessions, waiters, bytes). */
export class ResourceExhaustedError extends BatonError {}

/** Queue put with `timeoutMs: 0` on a full queue (asyncio.QueueFull). */
export class QueueFullError extends ResourceExhaustedError {}

/** UNAVAILABLE: the server is unreachable or shutting down. */
export class UnavailableError extends BatonError {}

/**
 * UNAUTHENTICATED: the server checks principals and the call has none it knows
 * (no token, a token not in its tokens file, a malformed header). Opening the
 * session fails with it too.
 */
export class UnauthenticatedError extends BatonError {}

/**
 * PERMISSION_DENIED: the principal is known but its roles do not give the access
 * the call needs (read, write, admin) on a name it names, or the session it
 * names is another principal's. The message names both.
 */
export class PermissionDeniedError extends BatonError {}

/** The client was closed; no more calls can be made with it. */
export class ClientClosedError extends BatonError {}

/**
 * An error set by another process as the outcome of a future or task:
 * `errorCode` and `errorMessage` are what it set. `code` is UNKNOWN.
 */
export class RemoteError extends BatonError {
  readonly errorCode: number;
  readonly errorMessage: string;

  constructor(what: string, errorCode: number, errorMessage: string) {
    super(`${what}: ${errorMessage} (code ${errorCode})`, Status.UNKNOWN);
    this.errorCode = errorCode;
    this.errorMessage = errorMessage;
  }
}

/** Future.result() of a future completed with setException. */
export class FutureExceptionError extends RemoteError {}

/** TaskHandle.result() of a failed task. */
export class TaskFailedError extends RemoteError {}

/**
 * How to read an error of one particular call, where the same gRPC code means
 * something more specific.
 */
export interface ErrorHint {
  /** FAILED_PRECONDITION means "not held" (release, refresh, ack...). */
  notHeld?: boolean;
  /** DEADLINE_EXCEEDED means "queue empty" (get with timeout 0). */
  queueEmpty?: boolean;
  /** RESOURCE_EXHAUSTED means "queue full" (put with timeout 0). */
  queueFull?: boolean;
}

const SESSION_ENDED = /^session (\d+) (ended|not found)/;

/** Converts a gRPC ServiceError (or anything thrown) into a BatonError. */
export function toBatonError(err: unknown, hint: ErrorHint = {}): BatonError {
  if (err instanceof BatonError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code !== "number") {
    return new BatonError(String((err as Error)?.message ?? err), Status.UNKNOWN, { cause: err });
  }
  const code = e.code;
  const message = e.details || e.message || CODE_NAMES[code] || "error";
  const opts = { cause: err };
  const session = SESSION_ENDED.exec(message);
  switch (code) {
    case Status.INVALID_ARGUMENT:
      return new InvalidArgumentError(message, code, opts);
    case Status.NOT_FOUND:
      if (session) return new SessionLostError(message, code, BigInt(session[1]!), opts);
      return new NotFoundError(message, code, opts);
    case Status.FAILED_PRECONDITION:
      if (/' is an? \w+, not an? \w+/.test(message)) return new KindMismatchError(message, code, opts);
      if (/is already done/.test(message)) return new InvalidStateError(message, code, opts);
      if (hint.notHeld || /not held|is held by session|not in flight|nothing in flight|is not running/.test(message)) {
        return new NotHeldError(message, code, opts);
      }
      return new FailedPreconditionError(message, code, opts);
    case Status.DEADLINE_EXCEEDED:
      if (hint.queueEmpty) return new QueueEmptyError(message, code, opts);
      return new TimeoutError(message, code, opts);
    case Status.CANCELLED:
      return new CancelledError(message, code, opts);
    case Status.ABORTED:
      if (session) return new SessionLostError(message, code, BigInt(session[1]!), opts);
      if (/^barrier /.test(message)) return new BrokenBarrierError(message, code, opts);
      if (/^queue .* was deleted/.test(message)) return new QueueDeletedError(message, code, opts);
      return new AbortedError(message, code, opts);
    case Status.RESOURCE_EXHAUSTED:
      if (hint.queueFull) return new QueueFullError(message, code, opts);
      return new ResourceExhaustedError(message, code, opts);
    case Status.UNAVAILABLE:
      return new UnavailableError(message, code, opts);
    case Status.UNAUTHENTICATED:
      return new UnauthenticatedError(message, code, opts);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(message, code, opts);
    default:
      return new BatonError(message, code, opts);
  }
}
