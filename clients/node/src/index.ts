// baton-client: the Node.js client of Baton. See README.md for the API map.
export {
  BatonClient,
  DEFAULT_SESSION_TTL_MS,
  type BatonClientEvents,
  type BatonClientOptions,
  type SessionInfo,
} from "./client";
export { BACKOFF, type Transport } from "./core";
export {
  Admin,
  type BarrierInfo,
  type ConditionInfo,
  type HolderInfo,
  type ListOptions,
  type QueueInfo,
  type ResourceDescription,
  type ResourceSummary,
  type TasksInfo,
  type TimerInfo,
} from "./admin";
export { isLoopbackTarget } from "./auth";
export { Barrier } from "./barrier";
export { Condition, type ConditionWaitOptions } from "./condition";
export type { FutureState, GrantOutcome, QueueOrder, ResourceKind, TaskState, WaitMode } from "./enums";
export {
  AbortedError,
  BatonError,
  BrokenBarrierError,
  CancelledError,
  ClientClosedError,
  FailedPreconditionError,
  FutureCancelledError,
  FutureExceptionError,
  InvalidArgumentError,
  InvalidStateError,
  KindMismatchError,
  NotFoundError,
  NotHeldError,
  PermissionDeniedError,
  QueueDeletedError,
  QueueEmptyError,
  QueueFullError,
  RemoteError,
  ResourceExhaustedError,
  SessionLostError,
  Status,
  TaskCancelledError,
  TaskFailedError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors";
export { BatonEvent, type EventChange } from "./event";
export { Future, type FutureOutcome, type RetentionOptions } from "./future";
export type { Stubs } from "./grpc";
export { HeldLock, Lock, type AcquireOptions } from "./lock";
export {
  ACK_FLUSH_MS,
  Consumer,
  MAX_BATCH,
  Delivery,
  Queue,
  RETURN_UNREAD_DELAY_MS,
  type ConsumeOptions,
  type GetOptions,
  type QueueItemInput,
  type QueueOptions,
  type ReceiptLike,
} from "./queue";
export { HeldPermits, Semaphore, type SemaphoreAcquireOptions } from "./semaphore";
export {
  TakenTask,
  TaskGroup,
  TaskHandle,
  TaskQueue,
  type SubmitOptions,
  type TakeOptions,
  type TaskHandler,
  type TaskOutcome,
  type TaskWaitOptions,
  type WorkerOptions,
} from "./tasks";
export { Timer, type ScheduleOptions, type TimerAction } from "./timer";
export type { TlsOptions } from "./tls";
export type { CallOptions, Payload, WaitOptions } from "./util";
