// Queues: asyncio.Queue, LifoQueue and PriorityQueue shared between
// processes, with acknowledgements, redelivery and dead letters.
import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { TimeoutError } from "./errors";
import { toWire, type QueueOrder } from "./enums";
import type { AckResponse__Output } from "./gen/baton/v1/AckResponse";
import type { ConsumeResponse__Output } from "./gen/baton/v1/ConsumeResponse";
import type { DeleteQueueResponse__Output } from "./gen/baton/v1/DeleteQueueResponse";
import type { Delivery__Output } from "./gen/baton/v1/Delivery";
import type { GetRequest } from "./gen/baton/v1/GetRequest";
import type { GetResponse__Output } from "./gen/baton/v1/GetResponse";
import type { JoinResponse__Output } from "./gen/baton/v1/JoinResponse";
import type { NackResponse__Output } from "./gen/baton/v1/NackResponse";
import type { PurgeResponse__Output } from "./gen/baton/v1/PurgeResponse";
import type { PutResponse__Output } from "./gen/baton/v1/PutResponse";
import type { QueueItem } from "./gen/baton/v1/QueueItem";
import type { QueueOptions as WireQueueOptions } from "./gen/baton/v1/QueueOptions";
import {
  big,
  fromDuration,
  payloadBytes,
  payloadFields,
  StreamReader,
  waitingMetadata,
  toDuration,
  type CallOptions,
  type Payload,
  type WaitOptions,
} from "./util";

/**
 * A queue's declaration, sent with every put and get so that whichever call
 * comes first declares the queue; later calls must match (or give none).
 */
export interface QueueOptions {
  /** Default "fifo". */
  order?: QueueOrder;
  /** Most items queued at once; 0: the server's limit. */
  maxsize?: number;
  /** Largest payload in bytes; 0: the server's limit. */
  maxItemBytes?: number;
  /** Deliveries after which an item is dead-lettered; 0: never. */
  maxDeliveries?: number;
}

/** An item to put: text, bytes, or the full form. */
export type QueueItemInput =
  | Payload
  | {
      data?: Uint8Array;
      text?: string;
      /** Priority queues: lower first. */
      priority?: number;
      /** Visible to getters only after this many ms. */
      delayMs?: number;
    };

export interface GetOptions extends WaitOptions {
  /**
   * Visibility timeout: an item not acknowledged within this many ms goes
   * back to the queue, even while the session lives. Unset: the item stays in
   * flight until ack/nack or the session ends.
   */
  ttlMs?: number;
}

export interface ConsumeOptions extends CallOptions {
  /** Unacknowledged items the stream may hold (default 16, at most 1000). */
  prefetch?: number;
  /** Visibility timeout of each item, as GetOptions.ttlMs. */
  ttlMs?: number;
}

/**
 * Delay before the items a consume loop received but did not hand out become
 * visible again once the loop ends (see Queue.consume).
 */
export const RETURN_UNREAD_DELAY_MS = 500;

/** Something that names an in-flight item: a Delivery or its receipt. */
export type ReceiptLike = Delivery | bigint;

/** One delivered item, in flight until ack() or nack(). */
export class Delivery {
  /** Pass to ack/nack; new for every delivery of the item. */
  readonly receipt: bigint;
  readonly itemId: bigint;
  /** The payload bytes. */
  readonly data: Buffer;
  /** The payload as text ("" when it is not valid UTF-8). */
  readonly text: string;
  readonly priority: number;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  /** Time since the item was put. */
  readonly ageMs: number;

  /** @internal */
  constructor(
    /** The queue it came from. */
    readonly queue: Queue,
    d: Delivery__Output,
  ) {
    this.receipt = big(d.receipt);
    this.itemId = big(d.itemId);
    this.data = payloadBytes(d.data, d.text);
    this.text = d.text;
    this.priority = Number(d.priority);
    this.deliveryCount = d.deliveryCount;
    this.ageMs = fromDuration(d.age) ?? 0;
  }

  /** Acknowledges the item (task_done): it is finished and gone. */
  ack(options: CallOptions = {}): Promise<{ acked: number; unfinished: number }> {
    return this.queue.ack(this, options);
  }

  /** Gives the item back (at the head, or visible after delayMs). */
  nack(options: CallOptions & { delayMs?: number } = {}): Promise<{ returned: number; deadLettered: number }> {
    return this.queue.nack(this, options);
  }
}

function receipts(r: ReceiptLike | ReceiptLike[]): string[] {
  return (Array.isArray(r) ? r : [r]).map((x) => (x instanceof Delivery ? x.receipt : x).toString());
}

function wireItem(item: QueueItemInput): QueueItem {
  if (typeof item === "string" || item instanceof Uint8Array) return payloadFields(item);
  const out: QueueItem = { priority: item.priority ?? 0, delay: toDuration(item.delayMs, "delayMs") };
  if (item.data !== undefined) out.data = Buffer.from(item.data.buffer, item.data.byteOffset, item.data.byteLength);
  if (item.text !== undefined) out.text = item.text;
  return out;
}

/** @internal Exported for timers' put action. */
export function toWireItem(item: QueueItemInput): QueueItem {
  return wireItem(item);
}

/** A named queue. Get one with `client.queue(name, options?)`. */
export class Queue {
  private readonly wireOptions: WireQueueOptions | null;

  constructor(
    private readonly core: Core,
    private readonly admin: Admin,
    readonly name: string,
    /** The declaration sent with puts and gets; undefined: as declared. */
    readonly options?: QueueOptions,
  ) {
    this.wireOptions = options
      ? {
          order: toWire(options.order, "QUEUE_ORDER_") as never,
          maxsize: options.maxsize ?? 0,
          maxItemBytes: options.maxItemBytes ?? 0,
          maxDeliveries: options.maxDeliveries ?? 0,
        }
      : null;
  }

  /**
   * Puts one item or a batch (an array), all or none, waiting while the
   * queue has no room for the whole batch. Errors: TimeoutError (no room in
   * time), QueueFullError (`timeoutMs: 0` and no room: put_nowait),
   * QueueDeletedError, InvalidArgumentError, FailedPreconditionError
   * (options differ from the declared ones).
   */
  async put(
    items: QueueItemInput | QueueItemInput[],
    options: WaitOptions = {},
  ): Promise<{ itemIds: bigint[]; size: number }> {
    const list = Array.isArray(items) ? items : [items];
    const res = await this.core.call<PutResponse__Output>(
      (m, o, cb) =>
        this.core.stubs.queues.Put(
          {
            name: this.name,
            items: list.map(wireItem),
            options: this.wireOptions,
            timeout: toDuration(options.timeoutMs, "timeoutMs"),
          },
          m,
          o,
          cb,
        ),
      {
        signal: options.signal,
        what: `queue '${this.name}': put`,
        waits: true,
        timeoutMs: options.timeoutMs,
        hint: { queueFull: options.timeoutMs === 0 },
      },
    );
    return { itemIds: res.itemIds.map(big), size: res.size };
  }

  /** put() without waiting: QueueFullError if there is no room. */
  putNowait(items: QueueItemInput | QueueItemInput[], options: CallOptions = {}) {
    return this.put(items, { ...options, timeoutMs: 0 });
  }

  /**
   * Takes one item, waiting while the queue is empty. It stays in flight,
   * owned by this client's session (and `ttlMs`), until ack() or nack().
   * Errors: TimeoutError, QueueEmptyError (`timeoutMs: 0` on an empty
   * queue), CancelledError, SessionLostError, QueueDeletedError.
   *
   * Cancellation: an aborted get takes nothing; the server returns items
   * whose answer it could not deliver. An answer that crossed the cancel on
   * the wire leaves its items in flight under the session: they come back
   * when the session ends or their `ttlMs` runs out.
   */
  async get(options: GetOptions = {}): Promise<Delivery> {
    const [d] = await this.getMany(1, options);
    return d!;
  }

  /** Takes up to `maxItems` items (at least one), as get(). */
  async getMany(maxItems: number, options: GetOptions = {}): Promise<Delivery[]> {
    const sessionId = await this.core.session(options.signal);
    return this.rawGet(
      {
        name: this.name,
        maxItems,
        sessionId: sessionId.toString(),
        ttl: toDuration(options.ttlMs, "ttlMs"),
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
        options: this.wireOptions,
      },
      options.signal,
      options.timeoutMs,
    );
  }

  /** get() without waiting: QueueEmptyError if the queue is empty. */
  getNowait(options: Omit<GetOptions, "timeoutMs"> = {}): Promise<Delivery> {
    return this.get({ ...options, timeoutMs: 0 });
  }

  /**
   * Reads up to `maxItems` dead letters (items that reached maxDeliveries).
   * They are in flight like any delivery: ack() drops them for good, nack()
   * puts them back in the dead-letter list. Never waits: [] if there are none.
   */
  async deadLetters(maxItems = 1000, options: CallOptions & { ttlMs?: number } = {}): Promise<Delivery[]> {
    const sessionId = await this.core.session(options.signal);
    try {
      return await this.rawGet(
        {
          name: this.name,
          maxItems,
          sessionId: sessionId.toString(),
          ttl: toDuration(options.ttlMs, "ttlMs"),
          deadLetters: true,
        },
        options.signal,
        0,
      );
    } catch (e) {
      if (e instanceof TimeoutError) return [];
      throw e;
    }
  }

  private async rawGet(
    req: GetRequest,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<Delivery[]> {
    const res = await this.core.call<GetResponse__Output>((m, o, cb) => this.core.stubs.queues.Get(req, m, o, cb), {
      signal,
      what: `queue '${this.name}': get`,
      waits: true,
      timeoutMs,
      hint: { queueEmpty: timeoutMs === 0 },
    });
    return res.items.map((d) => new Delivery(this, d));
  }

  /**
   * Acknowledges items (asyncio's task_done). `unfinished`: items neither
   * acknowledged nor dead-lettered. Errors: NotHeldError (a receipt no longer
   * in flight: acknowledged already, or redelivered after its lease); the
   * valid receipts are acknowledged anyway.
   */
  async ack(
    items: ReceiptLike | ReceiptLike[],
    options: CallOptions = {},
  ): Promise<{ acked: number; unfinished: number }> {
    const res = await this.core.call<AckResponse__Output>(
      (m, o, cb) => this.core.stubs.queues.Ack({ name: this.name, receipts: receipts(items) }, m, o, cb),
      { signal: options.signal, what: `queue '${this.name}': ack`, hint: { notHeld: true } },
    );
    return { acked: res.acked, unfinished: Number(res.unfinished) };
  }

  /**
   * Returns in-flight items to the head of the queue (or visible after
   * `delayMs`). Counts as a delivery for maxDeliveries: `deadLettered` tells
   * how many moved to the dead letters instead.
   */
  async nack(
    items: ReceiptLike | ReceiptLike[],
    options: CallOptions & { delayMs?: number } = {},
  ): Promise<{ returned: number; deadLettered: number }> {
    const res = await this.core.call<NackResponse__Output>(
      (m, o, cb) =>
        this.core.stubs.queues.Nack(
          { name: this.name, receipts: receipts(items), delay: toDuration(options.delayMs, "delayMs") },
          m,
          o,
          cb,
        ),
      { signal: options.signal, what: `queue '${this.name}': nack`, hint: { notHeld: true } },
    );
    return { returned: res.returned, deadLettered: res.deadLettered };
  }

  /** Waits until every item put has been acknowledged or dead-lettered. */
  async join(options: WaitOptions = {}): Promise<void> {
    await this.core.call<JoinResponse__Output>(
      (m, o, cb) =>
        this.core.stubs.queues.Join({ name: this.name, timeout: toDuration(options.timeoutMs, "timeoutMs") }, m, o, cb),
      { signal: options.signal, what: `queue '${this.name}': join`, waits: true, timeoutMs: options.timeoutMs },
    );
  }

  /** Drops every queued (not in-flight) item, or the dead letters. Resolves with how many. */
  async purge(options: CallOptions & { deadLetters?: boolean } = {}): Promise<number> {
    const res = await this.core.call<PurgeResponse__Output>(
      (m, o, cb) =>
        this.core.stubs.queues.Purge({ name: this.name, deadLetters: options.deadLetters ?? false }, m, o, cb),
      { signal: options.signal, what: `queue '${this.name}': purge` },
    );
    return res.purged;
  }

  /** Deletes the queue and everything in it; pending calls get QueueDeletedError. */
  async delete(options: CallOptions = {}): Promise<boolean> {
    const res = await this.core.call<DeleteQueueResponse__Output>(
      (m, o, cb) => this.core.stubs.queues.Delete({ name: this.name }, m, o, cb),
      { signal: options.signal, what: `queue '${this.name}': delete` },
    );
    return res.deleted;
  }

  /**
   * Streams items (Queues/Consume): the server pushes items while fewer than
   * `prefetch` of them are unacknowledged, so ack (or nack) each one:
   *
   *     for await (const item of queue.consume({ prefetch: 8 })) {
   *       await handle(item.text);
   *       await item.ack();
   *     }
   *
   * Leaving the loop (break, return, throw) stops the stream; items received
   * but not yet handed to the loop are given back (nack, visible again after
   * RETURN_UNREAD_DELAY_MS). Items still on the
   * wire at that moment stay in flight under the session until it ends or
   * their `ttlMs` runs out (give `ttlMs` for prompt redelivery). The signal
   * stops the loop with CancelledError. Ends with SessionLostError or
   * QueueDeletedError when the server ends the stream.
   */
  async *consume(options: ConsumeOptions = {}): AsyncGenerator<Delivery, void, undefined> {
    const sessionId = await this.core.session(options.signal);
    const call = this.core.stubs.queues.Consume(
      {
        name: this.name,
        sessionId: sessionId.toString(),
        ttl: toDuration(options.ttlMs, "ttlMs"),
        prefetch: options.prefetch ?? 0,
        options: this.wireOptions,
      },
      waitingMetadata(),
    );
    const reader = new StreamReader<ConsumeResponse__Output>(call, options.signal, `queue '${this.name}': consume`);
    let pending: Delivery[] = [];
    try {
      for (;;) {
        while (pending.length > 0) yield pending.shift()!;
        let m: ConsumeResponse__Output | undefined;
        try {
          m = await reader.next();
        } catch (e) {
          this.core.noticeError(e);
          throw e;
        }
        if (m === undefined) return;
        pending = m.items.map((d) => new Delivery(this, d));
      }
    } finally {
      const unread = [...pending, ...reader.close().flatMap((m) => m.items.map((d) => new Delivery(this, d)))];
      // Given back with a short delay: the server may not have seen the
      // stream's cancellation yet, and an item visible at once could be
      // pushed to this dead stream again, where it would stay in flight.
      if (unread.length > 0) await this.nack(unread, { delayMs: RETURN_UNREAD_DELAY_MS }).catch(() => {});
    }
  }

  /** Admin/Describe: sizes, in flight, dead letters, waiters, totals. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}
