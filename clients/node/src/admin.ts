// Admin: inspection of every resource (Admin/List, Admin/Describe).
import type { Core } from "./core";
import { NotFoundError } from "./errors";
import { fromWire, toWire, type FutureState, type QueueOrder, type ResourceKind } from "./enums";
import type { DescribeResponse__Output } from "./gen/baton/v1/DescribeResponse";
import type { ListResponse__Output } from "./gen/baton/v1/ListResponse";
import { big, fromDuration, type CallOptions } from "./util";

/** One live resource in a listing. */
export interface ResourceSummary {
  name: string;
  kind: ResourceKind;
  holders: number;
  waiters: number;
}

/** One holding of a lock or semaphore (or a running task of a work queue). */
export interface HolderInfo {
  token: bigint;
  /** 0n when owned by a lease only. */
  sessionId: bigint;
  /** Permits held (1 for a lock). */
  count: number;
  heldForMs: number | undefined;
  /** Lease time left; undefined when owned by a session only. */
  expiresInMs: number | undefined;
  /** The request id of the grant (for a running task: the task id). */
  requestId: string;
}

export interface ConditionInfo {
  /** "" for the unnamed condition. */
  condition: string;
  waiters: number;
  /** Notified waiters now in the lock's line to re-acquire it. */
  reacquiring: number;
}

export interface QueueInfo {
  order: QueueOrder | undefined;
  maxsize: number;
  maxDeliveries: number;
  /** Items ready to get. */
  size: number;
  /** Items not visible yet. */
  delayed: number;
  /** Got, not acknowledged. */
  inFlight: number;
  deadLetters: number;
  /** What join() waits for. */
  unfinished: number;
  oldestItemAgeMs: number | undefined;
  waitingGetters: number;
  waitingPutters: number;
  waitingJoiners: number;
  totalPut: number;
  totalAcked: number;
}

export interface BarrierInfo {
  parties: number;
  arrived: number;
  broken: boolean;
  cycles: number;
}

export interface TimerInfo {
  /** Undefined for a one-shot timer that has fired. */
  dueInMs: number | undefined;
  /** Undefined for a one-shot timer. */
  everyMs: number | undefined;
  fired: number;
  sinceFiredMs: number | undefined;
  /** What it does, e.g. "set_event cache-warm". */
  action: string;
}

export interface TasksInfo {
  pending: number;
  running: number;
  done: number;
}

/** Admin/Describe of one resource; the fields of other kinds are empty. */
export interface ResourceDescription {
  name: string;
  kind: ResourceKind;
  holders: HolderInfo[];
  waiters: number;
  oldestWaitMs: number | undefined;
  /** Semaphores. */
  capacity: number;
  available: number;
  /** Events. */
  eventSet: boolean;
  watchers: number;
  /** Locks and semaphores: newest fencing token among current holders. */
  lastToken: bigint;
  /** Locks: waiters on each condition. */
  conditions: ConditionInfo[];
  queue: QueueInfo | undefined;
  futureState: FutureState | undefined;
  retainedForMs: number | undefined;
  barrier: BarrierInfo | undefined;
  timer: TimerInfo | undefined;
  tasks: TasksInfo | undefined;
}

export interface ListOptions extends CallOptions {
  kind?: ResourceKind;
  /** Only names starting with this. */
  prefix?: string;
  /** At most this many per page (default 100, at most 1000). */
  pageSize?: number;
  /** From a previous page's nextPageToken. */
  pageToken?: string;
}

/** Operator's view. Get it as `client.admin`. */
export class Admin {
  /** @internal */
  constructor(private readonly core: Core) {}

  /** One page of live resources in name order. */
  async list(options: ListOptions = {}): Promise<{ resources: ResourceSummary[]; nextPageToken: string | undefined }> {
    const res = await this.core.op<ListResponse__Output>(
      "admin.List",
      {
        kind: toWire(options.kind, "RESOURCE_KIND_") as never,
        prefix: options.prefix ?? "",
        pageSize: options.pageSize ?? 0,
        pageToken: options.pageToken ?? "",
      },
      { signal: options.signal, what: "admin: list" },
    );
    return {
      resources: res.resources.map((r) => ({
        name: r.name,
        kind: fromWire<ResourceKind>(r.kind, "RESOURCE_KIND_")!,
        holders: r.holders,
        waiters: r.waiters,
      })),
      nextPageToken: res.nextPageToken || undefined,
    };
  }

  /** Every live resource matching the filter, page after page. */
  async *listAll(options: Omit<ListOptions, "pageToken"> = {}): AsyncGenerator<ResourceSummary> {
    let pageToken: string | undefined;
    do {
      const page = await this.list({ ...options, ...(pageToken ? { pageToken } : {}) });
      yield* page.resources;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** Describes one resource. Errors: NotFoundError (no such resource, or reclaimed). */
  async describe(name: string, options: CallOptions = {}): Promise<ResourceDescription> {
    const d = await this.core.op<DescribeResponse__Output>(
      "admin.Describe",
      { name },
      { signal: options.signal, what: `admin: describe '${name}'` },
    );
    return describeFromWire(d);
  }

  /** describe(), or undefined when the resource does not exist. */
  async tryDescribe(name: string, options: CallOptions = {}): Promise<ResourceDescription | undefined> {
    try {
      return await this.describe(name, options);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }
}

function describeFromWire(d: DescribeResponse__Output): ResourceDescription {
  const q = d.queue;
  const b = d.barrier;
  const t = d.timer;
  const k = d.tasks;
  return {
    name: d.name,
    kind: fromWire<ResourceKind>(d.kind, "RESOURCE_KIND_")!,
    holders: d.holders.map((h) => ({
      token: big(h.token),
      sessionId: big(h.sessionId),
      count: Number(h.count),
      heldForMs: fromDuration(h.heldFor),
      expiresInMs: fromDuration(h.expiresIn),
      requestId: h.requestId,
    })),
    waiters: d.waiters,
    oldestWaitMs: fromDuration(d.oldestWait),
    capacity: Number(d.capacity),
    available: Number(d.available),
    eventSet: d.eventState === "EVENT_STATE_SET",
    watchers: d.watchers,
    lastToken: big(d.lastToken),
    conditions: d.conditions.map((c) => ({ condition: c.condition, waiters: c.waiters, reacquiring: c.reacquiring })),
    queue: q
      ? {
          order: fromWire<QueueOrder>(q.order, "QUEUE_ORDER_"),
          maxsize: q.maxsize,
          maxDeliveries: q.maxDeliveries,
          size: Number(q.size),
          delayed: Number(q.delayed),
          inFlight: Number(q.inFlight),
          deadLetters: Number(q.deadLetters),
          unfinished: Number(q.unfinished),
          oldestItemAgeMs: fromDuration(q.oldestItemAge),
          waitingGetters: q.waitingGetters,
          waitingPutters: q.waitingPutters,
          waitingJoiners: q.waitingJoiners,
          totalPut: Number(q.totalPut),
          totalAcked: Number(q.totalAcked),
        }
      : undefined,
    futureState: fromWire<FutureState>(d.futureState, "FUTURE_STATE_"),
    retainedForMs: fromDuration(d.retainedFor),
    barrier: b ? { parties: b.parties, arrived: b.arrived, broken: b.broken, cycles: Number(b.cycles) } : undefined,
    timer: t
      ? {
          dueInMs: fromDuration(t.dueIn),
          everyMs: fromDuration(t.every),
          fired: Number(t.fired),
          sinceFiredMs: fromDuration(t.sinceFired),
          action: t.action,
        }
      : undefined,
    tasks: k ? { pending: Number(k.pending), running: Number(k.running), done: Number(k.done) } : undefined,
  };
}
