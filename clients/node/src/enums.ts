// Enum values of the wire (e.g. "GRANT_OUTCOME_AFTER_WAIT") as the short
// lower-case names of the public API ("after_wait"), and back.

/** How a blocking call was granted. */
export type GrantOutcome = "immediate" | "after_wait" | "replayed";

/** The kinds of resource Baton manages. */
export type ResourceKind = "lock" | "semaphore" | "event" | "queue" | "future" | "barrier" | "timer" | "tasks";

/** Queue order: asyncio.Queue, LifoQueue, PriorityQueue (lowest priority first). */
export type QueueOrder = "fifo" | "lifo" | "priority";

/** The state of a future. */
export type FutureState = "pending" | "result" | "exception" | "cancelled";

/** The state of a task. */
export type TaskState = "pending" | "running" | "succeeded" | "failed" | "cancelled";

/** asyncio.wait's return_when. */
export type WaitMode = "first_completed" | "first_exception" | "all_completed";

/** Wire enum name -> API name: strips `prefix` and lower-cases. */
export function fromWire<T extends string>(value: string | number | undefined | null, prefix: string): T | undefined {
  if (typeof value !== "string" || !value.startsWith(prefix)) return undefined;
  const name = value.slice(prefix.length).toLowerCase();
  return name === "unspecified" ? undefined : (name as T);
}

/** API name -> wire enum name. */
export function toWire(value: string | undefined, prefix: string): string | undefined {
  return value === undefined ? undefined : prefix + value.toUpperCase();
}

export function outcomeOf(value: string | number | undefined | null): GrantOutcome {
  return fromWire<GrantOutcome>(value, "GRANT_OUTCOME_") ?? "immediate";
}
