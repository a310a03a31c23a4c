// Tasks: asyncio's create_task / Task.cancel / wait / TaskGroup across
// processes: work submitted to a named work queue, run by workers, awaited by
// anyone.
import { randomUUID } from "node:crypto";

import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { BatonError, CancelledError, SessionLostError, Status, TaskCancelledError, TaskFailedError } from "./errors";
import { fromWire, toWire, type TaskState, type WaitMode } from "./enums";
import type { CancelTaskResponse__Output } from "./gen/baton/v1/CancelTaskResponse";
import type { CompleteTaskRequest } from "./gen/baton/v1/CompleteTaskRequest";
import type { CompleteTaskResponse__Output } from "./gen/baton/v1/CompleteTaskResponse";
import type { SubmitTaskResponse__Output } from "./gen/baton/v1/SubmitTaskResponse";
import type { TakeTaskResponse__Output } from "./gen/baton/v1/TakeTaskResponse";
import type { TaskHeartbeatResponse__Output } from "./gen/baton/v1/TaskHeartbeatResponse";
import type { TaskOutcome__Output } from "./gen/baton/v1/TaskOutcome";
import type { WaitTasksRequest } from "./gen/baton/v1/WaitTasksRequest";
import type { WaitTasksResponse__Output } from "./gen/baton/v1/WaitTasksResponse";
import {
  payloadBytes,
  payloadFields,
  toDuration,
  toTimestamp,
  type CallOptions,
  type Payload,
  type WaitOptions,
} from "./util";

/** How a task ended (or where it is, for a pending or running one). */
export interface TaskOutcome {
  taskId: string;
  state: TaskState;
  /** The result's bytes (state "succeeded"). */
  result: Buffer;
  /** The result as text. */
  text: string;
  /** state "failed": the error of the last attempt. */
  error: { code: number; message: string } | undefined;
  /** Attempts made. */
  attempts: number;
}

export interface SubmitOptions extends CallOptions {
  /** Pending only after this many ms (call_later). */
  delayMs?: number;
  /** Instead of delayMs: pending from this wall-clock time (call_at). */
  at?: Date | number;
  /** Attempts before the task fails for good (default 1). */
  maxAttempts?: number;
  /** Longest one attempt may run, from take to complete; then it is lost and retried. */
  runTimeoutMs?: number;
  /** TaskGroup: tasks of one group are cancelled together when one fails. */
  group?: string;
  /** Not cancelled with its group (asyncio.shield). */
  shielded?: boolean;
}

export interface TaskWaitOptions extends WaitOptions {
  /** Default "all_completed". */
  mode?: WaitMode;
}

export interface TakeOptions extends WaitOptions {
  /** Lease: the task is lost unless heartbeat() or complete() comes within it. */
  ttlMs?: number;
  /**
   * Idempotency key (at most 128 bytes). Default: a random UUID, with which
   * the client re-sends the take after a broken stream and recovers a task
   * whose answer was lost to a cancellation.
   */
  requestId?: string;
}

/** The error a task taken by a cancelled take is given back with (Complete, not final). */
export const GIVE_BACK_ERROR = { code: Status.CANCELLED, message: "take cancelled; task given back" } as const;

export interface WorkerOptions extends CallOptions {
  /** Lease of each taken task, renewed by heartbeats. Unset: the session alone. */
  ttlMs?: number;
  /** Heartbeat period (default ttlMs/3, or 1000 ms without ttlMs). */
  heartbeatIntervalMs?: number;
  /** Tasks run at once (default 1). */
  concurrency?: number;
}

/**
 * Runs one task. Its return value is the task's result; a throw fails the
 * attempt (retried while attempts remain). `signal` aborts when the task is
 * cancelled (learnt from a heartbeat) or its lease is lost.
 */
export type TaskHandler = (task: TakenTask, signal: AbortSignal) => Promise<Payload | void> | Payload | void;

/** A handle on a task by id: `client.task(id)` or what submit() returns. */
export class TaskHandle {
  constructor(
    private readonly core: Core,
    /** "queue#seq": the id carries the work queue. */
    readonly id: string,
  ) {}

  /**
   * Waits until the task is done; resolves with its outcome, whatever it is.
   * Errors: TimeoutError (its state is then unknown; use timeoutMs: 0 to
   * poll), NotFoundError (no such task, or reclaimed), CancelledError.
   */
  async await(options: WaitOptions = {}): Promise<TaskOutcome> {
    const res = await this.core.op<TaskOutcome__Output>(
      "tasks.Await",
      { taskId: this.id, timeout: toDuration(options.timeoutMs, "timeoutMs") },
      { signal: options.signal, what: `task '${this.id}': await`, waits: true, timeoutMs: options.timeoutMs },
    );
    return taskOutcome(res);
  }

  /** The result's bytes, or throws TaskFailedError / TaskCancelledError. */
  async result(options: WaitOptions = {}): Promise<Buffer> {
    const out = await this.await(options);
    if (out.state === "failed")
      throw new TaskFailedError(`task '${this.id}'`, out.error?.code ?? 0, out.error?.message ?? "failed");
    if (out.state === "cancelled") throw new TaskCancelledError(`task '${this.id}' was cancelled`, Status.CANCELLED);
    return out.result;
  }

  /**
   * Cancels the task: a pending one at once, a running one at its worker's
   * next heartbeat or complete. `cancelled` is false if it was already done.
   */
  async cancel(options: CallOptions = {}): Promise<{ cancelled: boolean; state: TaskState }> {
    const res = await this.core.op<CancelTaskResponse__Output>(
      "tasks.Cancel",
      { taskId: this.id },
      { signal: options.signal, what: `task '${this.id}': cancel` },
    );
    return { cancelled: res.cancelled, state: fromWire<TaskState>(res.state, "TASK_STATE_")! };
  }
}

/** A task taken by this worker: run it, heartbeat, then complete or fail it. */
export class TakenTask {
  readonly id: string;
  /** The payload's bytes. */
  readonly payload: Buffer;
  /** The payload as text. */
  readonly text: string;
  /** 1 for the first attempt. */
  readonly attempt: number;

  /** @internal */
  constructor(
    private readonly core: Core,
    res: TakeTaskResponse__Output,
  ) {
    this.id = res.taskId;
    this.payload = payloadBytes(res.payload, res.text);
    this.text = res.text;
    this.attempt = res.attempt;
  }

  /**
   * Renews the lease; `cancelled` tells that the task was cancelled (stop,
   * and complete it: any outcome is recorded as cancelled). Errors:
   * NotHeldError (this attempt was lost and retried, or the task is done).
   */
  async heartbeat(options: CallOptions = {}): Promise<{ cancelled: boolean }> {
    const res = await this.core.op<TaskHeartbeatResponse__Output>(
      "tasks.Heartbeat",
      { taskId: this.id, attempt: this.attempt },
      { signal: options.signal, what: `task '${this.id}': heartbeat`, hint: { notHeld: true } },
    );
    return { cancelled: res.cancelled };
  }

  /** Finishes the task with a result. Errors: NotHeldError (attempt lost). */
  complete(result?: Payload, options: CallOptions = {}): Promise<{ state: TaskState; cancelled: boolean }> {
    const p = payloadFields(result);
    return this.finish(
      { ...(p.data ? { result: p.data } : {}), ...(p.text !== undefined ? { text: p.text } : {}) },
      options,
    );
  }

  /**
   * Fails this attempt with an error; retried while attempts remain unless
   * `final`. An Error's `code` is used when it is a number.
   */
  fail(
    error: Error | { code?: number; message: string },
    options: CallOptions & { final?: boolean } = {},
  ): Promise<{ state: TaskState; cancelled: boolean }> {
    const code = "code" in error && typeof error.code === "number" ? error.code : 0;
    return this.finish({ error: { code, message: error.message }, final: options.final ?? false }, options);
  }

  private async finish(fields: Partial<CompleteTaskRequest>, options: CallOptions) {
    const res = await this.core.op<CompleteTaskResponse__Output>(
      "tasks.Complete",
      { taskId: this.id, attempt: this.attempt, ...fields },
      { signal: options.signal, what: `task '${this.id}': complete`, hint: { notHeld: true } },
    );
    return { state: fromWire<TaskState>(res.state, "TASK_STATE_")!, cancelled: res.cancelled };
  }

  /**
   * Runs `handler` on this task with heartbeats every `intervalMs`, then
   * completes it with the handler's result or fails it with its error.
   */
  async run(handler: TaskHandler, intervalMs: number): Promise<void> {
    const ac = new AbortController();
    const beat = setInterval(() => {
      this.heartbeat().then(
        ({ cancelled }) => {
          if (cancelled) ac.abort(new TaskCancelledError(`task '${this.id}' was cancelled`, Status.CANCELLED));
        },
        (e: unknown) => ac.abort(e),
      );
    }, intervalMs);
    let result: Payload | void;
    try {
      result = await handler(this, ac.signal);
    } catch (e) {
      clearInterval(beat);
      const err = e instanceof Error ? e : new Error(String(e));
      await this.fail(err).catch(() => {});
      return;
    }
    clearInterval(beat);
    await this.complete(result ?? undefined).catch(() => {});
  }
}

function taskOutcome(t: TaskOutcome__Output): TaskOutcome {
  const state = fromWire<TaskState>(t.state, "TASK_STATE_")!;
  return {
    taskId: t.taskId,
    state,
    result: payloadBytes(t.result, t.text),
    text: t.text,
    error: t.error && state === "failed" ? { code: t.error.code, message: t.error.message } : undefined,
    attempts: t.attempts,
  };
}

/** A named work queue of tasks. Get one with `client.tasks(queue)`. */
export class TaskQueue {
  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
  ) {}

  /** Submits a task (create_task); resolves with a handle to await or cancel it. */
  async submit(payload?: Payload, options: SubmitOptions = {}): Promise<TaskHandle> {
    const p = payloadFields(payload);
    const res = await this.core.op<SubmitTaskResponse__Output>(
      "tasks.Submit",
      {
        queue: this.name,
        ...(p.data ? { payload: p.data } : {}),
        ...(p.text !== undefined ? { text: p.text } : {}),
        delay: toDuration(options.delayMs, "delayMs"),
        at: options.at === undefined ? null : toTimestamp(options.at),
        maxAttempts: options.maxAttempts ?? 0,
        runTimeout: toDuration(options.runTimeoutMs, "runTimeoutMs"),
        group: options.group ?? "",
        shielded: options.shielded ?? false,
      },
      { signal: options.signal, what: `tasks '${this.name}': submit` },
    );
    return new TaskHandle(this.core, res.taskId);
  }

  /**
   * Takes the oldest pending task, waiting while there is none. It runs under
   * this client's session (and `ttlMs`, renewed by heartbeat()). Errors:
   * TimeoutError, CancelledError, SessionLostError.
   */
  async take(options: TakeOptions = {}): Promise<TakenTask> {
    const sessionId = await this.core.session(options.signal);
    const req = {
      queue: this.name,
      sessionId: sessionId.toString(),
      ttl: toDuration(options.ttlMs, "ttlMs"),
      timeout: toDuration(options.timeoutMs, "timeoutMs"),
      requestId: options.requestId ?? randomUUID(),
    };
    const res = await this.core.acquire<TakeTaskResponse__Output>("tasks.Take", req, {
      signal: options.signal,
      what: `tasks '${this.name}': take`,
      timeoutMs: options.timeoutMs,
      recoverOnUnary: false,
      // A task whose answer crossed the cancel goes back untried
      // (CompleteTaskRequest.giveBack): the attempt does not count.
      rollback: (r) =>
        this.core.op<CompleteTaskResponse__Output>(
          "tasks.Complete",
          { taskId: r.taskId, attempt: r.attempt, giveBack: true },
          { what: `task '${r.taskId}': give back a take that crossed the cancel` },
        ),
    });
    return new TakenTask(this.core, res);
  }

  /**
   * asyncio.wait over tasks of this work queue: resolves when the first is
   * done ("first_completed"), the first fails ("first_exception") or all are
   * done ("all_completed", the default), or when timeoutMs passes, with what
   * is done so far.
   */
  wait(
    tasks: Array<TaskHandle | string>,
    options: TaskWaitOptions = {},
  ): Promise<{ done: TaskOutcome[]; pending: string[] }> {
    return this.rawWait({ taskIds: tasks.map((t) => (typeof t === "string" ? t : t.id)) }, options);
  }

  /** A TaskGroup: tasks submitted through it are cancelled together when one fails. */
  group(name: string): TaskGroup {
    return new TaskGroup(this, name);
  }

  /** @internal */
  async rawWait(
    which: Pick<WaitTasksRequest, "taskIds" | "queue" | "group">,
    options: TaskWaitOptions,
  ): Promise<{ done: TaskOutcome[]; pending: string[] }> {
    const res = await this.core.op<WaitTasksResponse__Output>(
      "tasks.Wait",
      {
        ...which,
        mode: toWire(options.mode, "WAIT_MODE_") as never,
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
      },
      { signal: options.signal, what: `tasks '${this.name}': wait`, waits: true, timeoutMs: options.timeoutMs },
    );
    return { done: res.done.map(taskOutcome), pending: res.pending };
  }

  /**
   * Runs a worker: takes tasks and runs `handler` on each (see TaskHandler),
   * `concurrency` at a time, until `signal` fires; then resolves once the
   * tasks in hand are finished. A lost session is replaced and the worker
   * goes on.
   */
  async work(handler: TaskHandler, options: WorkerOptions = {}): Promise<void> {
    const interval =
      options.heartbeatIntervalMs ?? (options.ttlMs !== undefined ? Math.max(options.ttlMs / 3, 10) : 1000);
    const loop = async (): Promise<void> => {
      for (;;) {
        let task: TakenTask;
        try {
          task = await this.take({
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
          });
        } catch (e) {
          if (options.signal?.aborted && e instanceof CancelledError) return;
          if (e instanceof SessionLostError || (e instanceof BatonError && e.code === Status.UNAVAILABLE)) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          throw e;
        }
        await task.run(handler, interval);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, loop));
  }

  /** Admin/Describe of the work queue: pending, running, done. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}

/** asyncio.TaskGroup over one work queue: `client.tasks(q).group(name)`. */
export class TaskGroup {
  constructor(
    readonly tasks: TaskQueue,
    readonly name: string,
  ) {}

  /** Submits a task into the group. */
  submit(payload?: Payload, options: Omit<SubmitOptions, "group"> = {}): Promise<TaskHandle> {
    return this.tasks.submit(payload, { ...options, group: this.name });
  }

  /** Waits on every task of the group (as TaskQueue.wait). */
  wait(options: TaskWaitOptions = {}): Promise<{ done: TaskOutcome[]; pending: string[] }> {
    return this.tasks.rawWait({ queue: this.tasks.name, group: this.name }, options);
  }
}
