// Queues: asyncio.Queue, LifoQueue and PriorityQueue shared between
// processes, with acknowledgements, redelivery and dead letters.
import { randomUUID } from "node:crypto";

import type { Admin, ResourceDescription } from "./admin";
import type { Core } from "./core";
import { InvalidArgumentError, NotHeldError, Status, TimeoutError } from "./errors";
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
   * Idempotency key (at most 128 bytes). Default: a random UUID, with which
   * the client re-sends the get after a broken stream and recovers items
   * whose answer was lost to a cancellation (they are given back).
   */
  requestId?: string;
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

/** Most items in one Put (putMany) or Get. */
export const MAX_BATCH = 1000;

/** How long a consumer's acks wait for its next Get before going out as one Ack. */
export const ACK_FLUSH_MS = 10;

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
    /** The consumer that handed it out, whose acks ride on its next Get. */
    private readonly consumer?: Consumer,
  ) {
    this.receipt = big(d.receipt);
    this.itemId = big(d.itemId);
    this.data = payloadBytes(d.data, d.text);
    this.text = d.text;
    this.priority = Number(d.priority);
    this.deliveryCount = d.deliveryCount;
    this.ageMs = fromDuration(d.age) ?? 0;
  }

  /**
   * Acknowledges the item (task_done): it is finished and gone. An item
   * from a stream-transport consumer is acknowledged in a batch (see
   * Consumer.ack): no need to await it in the loop.
   */
  ack(options: CallOptions = {}): Promise<{ acked: number; unfinished: number }> {
    if (this.consumer) return this.consumer.ack(this);
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
    const res = await this.core.op<PutResponse__Output>(
      "queues.Put",
      {
        name: this.name,
        items: list.map(wireItem),
        options: this.wireOptions,
        timeout: toDuration(options.timeoutMs, "timeoutMs"),
      },
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

  /**
   * Puts a batch of up to MAX_BATCH (1000) items in one Put, all or none:
   * the batched put. Resolves with their ids in order. As put(); an empty
   * batch or one of more than 1000 items is an InvalidArgumentError.
   */
  async putMany(items: QueueItemInput[], options: WaitOptions = {}): Promise<{ itemIds: bigint[]; size: number }> {
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH) {
      throw new InvalidArgumentError(
        `queue '${this.name}': putMany takes 1..${MAX_BATCH} items, not ${Array.isArray(items) ? items.length : typeof items}`,
        Status.INVALID_ARGUMENT,
      );
    }
    return this.put(items, options);
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
        requestId: options.requestId ?? randomUUID(),
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
          requestId: randomUUID(),
        },
        options.signal,
        0,
      );
    } catch (e) {
      if (e instanceof TimeoutError) return [];
      throw e;
    }
  }

  /** @internal One Get; items that crossed a cancel are given back (Nack). */
  async rawGet(req: GetRequest, signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<Delivery[]> {
    const res = await this.rawGetResponse(req, signal, timeoutMs);
    return res.items.map((d) => new Delivery(this, d));
  }

  /** @internal */
  rawGetResponse(
    req: GetRequest,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<GetResponse__Output> {
    return this.core.acquire<GetResponse__Output>("queues.Get", req, {
      signal,
      what: `queue '${this.name}': get`,
      timeoutMs,
      hint: { queueEmpty: timeoutMs === 0 },
      rollback: async (r) => {
        if (r.items.length > 0) {
          await this.core.op<NackResponse__Output>(
            "queues.Nack",
            { name: this.name, receipts: r.items.map((d) => d.receipt) },
            { what: `queue '${this.name}': give back items that crossed the cancel` },
          );
        }
      },
    });
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
    const res = await this.core.op<AckResponse__Output>(
      "queues.Ack",
      { name: this.name, receipts: receipts(items) },
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
    const res = await this.core.op<NackResponse__Output>(
      "queues.Nack",
      { name: this.name, receipts: receipts(items), delay: toDuration(options.delayMs, "delayMs") },
      { signal: options.signal, what: `queue '${this.name}': nack`, hint: { notHeld: true } },
    );
    return { returned: res.returned, deadLettered: res.deadLettered };
  }

  /** Waits until every item put has been acknowledged or dead-lettered. */
  async join(options: WaitOptions = {}): Promise<void> {
    await this.core.op<JoinResponse__Output>(
      "queues.Join",
      { name: this.name, timeout: toDuration(options.timeoutMs, "timeoutMs") },
      { signal: options.signal, what: `queue '${this.name}': join`, waits: true, timeoutMs: options.timeoutMs },
    );
  }

  /** Drops every queued (not in-flight) item, or the dead letters. Resolves with how many. */
  async purge(options: CallOptions & { deadLetters?: boolean } = {}): Promise<number> {
    const res = await this.core.op<PurgeResponse__Output>(
      "queues.Purge",
      { name: this.name, deadLetters: options.deadLetters ?? false },
      { signal: options.signal, what: `queue '${this.name}': purge` },
    );
    return res.purged;
  }

  /** Deletes the queue and everything in it; pending calls get QueueDeletedError. */
  async delete(options: CallOptions = {}): Promise<boolean> {
    const res = await this.core.op<DeleteQueueResponse__Output>(
      "queues.Delete",
      { name: this.name },
      { signal: options.signal, what: `queue '${this.name}': delete` },
    );
    return res.deleted;
  }

  /**
   * A consumer: hands out items one by one; ack (or nack) each.
   *
   *     for await (const item of queue.consume({ prefetch: 16 })) {
   *       await handle(item.text);
   *       void item.ack(); // batched: rides on the consumer's next Get
   *     }
   *
   * On the stream transport it loops Get(max_items = prefetch) with the
   * acks of the items handed out so far riding on the next Get (acks that
   * wait 10 ms for it go out as one Ack). On the unary transport it reads
   * Queues/Consume. Leaving the loop (break, return, throw), close() or
   * `await using` flushes the acks and gives back the items not handed out.
   * The signal stops the loop with CancelledError. Ends with
   * SessionLostError or QueueDeletedError when the server ends it.
   */
  consume(options: ConsumeOptions = {}): Consumer {
    return new Consumer(this, this.core, options);
  }

  /** @internal The wire declaration. */
  get declaration(): WireQueueOptions | null {
    return this.wireOptions;
  }

  /** Admin/Describe: sizes, in flight, dead letters, waiters, totals. */
  describe(options: CallOptions = {}): Promise<ResourceDescription> {
    return this.admin.describe(this.name, options);
  }
}

interface PendingAck {
  receipt: string;
  resolve: (r: { acked: number; unfinished: number }) => void;
  reject: (e: unknown) => void;
}

/**
 * A queue consumer (`queue.consume()`): an async iterable of deliveries, and
 * AsyncDisposable. See Queue.consume.
 */
export class Consumer implements AsyncIterable<Delivery>, AsyncDisposable {
  private buffer: Delivery[] = [];
  private acks: PendingAck[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private flushing = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Aborts the Get in flight (close, or the caller's signal). */
  private readonly controller = new AbortController();
  private reader: StreamReader<ConsumeResponse__Output> | undefined;
  private readonly prefetch: number;
  private readonly onAbort: () => void;
  /**
   * For tests and diagnostics: Gets sent, acks that rode on them, of those
   * how many the Gets acknowledged, and acks sent as a plain Ack.
   */
  readonly stats = { gets: 0, ridingAcks: 0, ackedByGet: 0, flushedAcks: 0 };

  /** @internal */
  constructor(
    /** The queue consumed. */
    readonly queue: Queue,
    private readonly core: Core,
    private readonly options: ConsumeOptions,
  ) {
    this.prefetch = Math.min(Math.max(options.prefetch ?? 16, 1), MAX_BATCH);
    this.onAbort = () => this.controller.abort(options.signal!.reason);
    if (options.signal?.aborted) this.controller.abort(options.signal.reason);
    else options.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** The transport this consumer reads with. */
  get transport(): "stream" | "unary" {
    return this.core.transport;
  }

  /** Acks queued, not yet sent. */
  get pendingAcks(): number {
    return this.acks.length;
  }

  [Symbol.asyncIterator](): AsyncIterator<Delivery> {
    return {
      next: async () => {
        try {
          const d = await this.next();
          if (d === undefined) {
            await this.close();
            return { done: true, value: undefined };
          }
          return { done: false, value: d };
        } catch (e) {
          await this.close();
          throw e;
        }
      },
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** The next item, waiting for one; undefined once closed. */
  async next(): Promise<Delivery | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      const d = this.buffer.shift();
      if (d) return d;
      if (this.core.transport === "stream") await this.getMore();
      else if (!(await this.readMore())) return undefined;
    }
  }

  /** One Get with the queued acks riding on it. */
  private async getMore(): Promise<void> {
    const signal = this.controller.signal;
    const sessionId = await this.core.session(signal);
    let riding = this.takeAcks();
    this.stats.gets++;
    this.stats.ridingAcks += riding.length;
    const req: GetRequest = {
      name: this.queue.name,
      maxItems: this.prefetch,
      sessionId: sessionId.toString(),
      ttl: toDuration(this.options.ttlMs, "ttlMs"),
      options: this.queue.declaration,
      requestId: randomUUID(),
      ack: riding.map((a) => a.receipt),
    };
    let res: GetResponse__Output;
    try {
      res = await this.queue.rawGetResponse(req, signal, undefined);
    } catch (e) {
      // The acks were applied if the Get reached the server, but an error
      // reply does not say how they went: Ack them again (harmless for those
      // applied already).
      if (riding.length > 0) this.sendAck(riding, true);
      if (this.closed && signal.aborted) return;
      throw e;
    }
    const failed = new Set(res.ackFailed.map(String));
    this.stats.ackedByGet += res.acked;
    if (riding.length > 0 && res.acked + failed.size < riding.length) {
      // A server that does not read GetRequest.ack (older than the field):
      // send them as a plain Ack.
      this.sendAck(
        riding.filter((a) => !failed.has(a.receipt)),
        true,
      );
      riding = riding.filter((a) => failed.has(a.receipt));
    }
    for (const a of riding) {
      if (failed.has(a.receipt)) {
        a.reject(
          new NotHeldError(
            `queue '${this.queue.name}': receipt ${a.receipt} was not in flight any more (acknowledged already, or its lease ran out)`,
            Status.FAILED_PRECONDITION,
          ),
        );
      } else a.resolve({ acked: 1, unfinished: -1 });
    }
    const items = res.items.map((d) => new Delivery(this.queue, d, this));
    if (this.closed) {
      if (items.length > 0) await this.queue.nack(items).catch(() => {});
      return;
    }
    this.buffer.push(...items);
  }

  /** Unary transport: the next message of Queues/Consume; false when it ended. */
  private async readMore(): Promise<boolean> {
    if (!this.reader) {
      const sessionId = await this.core.session(this.controller.signal);
      if (this.closed) return false;
      const call = this.core.stubs.queues.Consume(
        {
          name: this.queue.name,
          sessionId: sessionId.toString(),
          ttl: toDuration(this.options.ttlMs, "ttlMs"),
          prefetch: this.options.prefetch ?? 0,
          options: this.queue.declaration,
        },
        waitingMetadata(),
      );
      this.reader = new StreamReader<ConsumeResponse__Output>(
        call,
        this.controller.signal,
        `queue '${this.queue.name}': consume`,
      );
    }
    let m: ConsumeResponse__Output | undefined;
    try {
      m = await this.reader.next();
    } catch (e) {
      if (this.closed) return false;
      this.core.noticeError(e);
      throw e;
    }
    if (m === undefined) return false;
    this.buffer.push(...m.items.map((d) => new Delivery(this.queue, d, this)));
    return true;
  }

  /**
   * Acknowledges a delivery of this consumer. On the stream transport the ack
   * is queued: it rides on the consumer's next Get, or goes out in one Ack
   * with the others after 10 ms (ACK_FLUSH_MS) if no Get goes out first.
   * Resolves once the server applied it (`unfinished` is -1 when it rode on
   * a Get, which does not count them); NotHeldError if the item was not in
   * flight any more. Awaiting is optional: close() waits for every ack.
   */
  ack(d: Delivery): Promise<{ acked: number; unfinished: number }> {
    if (this.core.transport !== "stream") {
      const p = this.queue.ack(d);
      const tracked = p.then(
        () => {},
        () => {},
      );
      this.flushing.add(tracked);
      void tracked.then(() => this.flushing.delete(tracked));
      return p;
    }
    const p = new Promise<{ acked: number; unfinished: number }>((resolve, reject) => {
      this.acks.push({ receipt: d.receipt.toString(), resolve, reject });
    });
    // Never an unhandled rejection for a caller that does not await it.
    p.catch(() => {});
    if (this.closing) this.flushAcks();
    else if (!this.ackTimer) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = undefined;
        this.flushAcks();
      }, ACK_FLUSH_MS);
    }
    return p;
  }

  private takeAcks(): PendingAck[] {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    return this.acks.splice(0, MAX_BATCH);
  }

  /** Sends the queued acks as one Ack. */
  private flushAcks(): void {
    while (this.acks.length > 0) this.sendAck(this.takeAcks(), false);
  }

  private sendAck(acks: PendingAck[], again: boolean): void {
    this.stats.flushedAcks += acks.length;
    const p = this.core
      .op<AckResponse__Output>(
        "queues.Ack",
        { name: this.queue.name, receipts: acks.map((a) => a.receipt) },
        { what: `queue '${this.queue.name}': ack`, hint: { notHeld: true } },
      )
      .then(
        (res) => {
          for (const a of acks) a.resolve({ acked: 1, unfinished: Number(res.unfinished) });
        },
        (e: unknown) => {
          // After a Get that failed, "not in flight" may mean that Get acked it.
          if (again && e instanceof NotHeldError) for (const a of acks) a.resolve({ acked: 1, unfinished: -1 });
          else for (const a of acks) a.reject(e);
        },
      );
    this.flushing.add(p);
    void p.then(() => this.flushing.delete(p));
  }

  /**
   * Stops: ends the Get (or Consume stream) in flight, sends the queued acks
   * and waits for them, and gives back (Nack) the items received but not
   * handed out. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.options.signal?.removeEventListener("abort", this.onAbort);
    this.controller.abort(new Error("consumer closed"));
    const unread = this.buffer.splice(0);
    if (this.reader) {
      for (const m of this.reader.close()) unread.push(...m.items.map((d) => new Delivery(this.queue, d)));
    }
    this.flushAcks();
    while (this.flushing.size > 0) await Promise.all([...this.flushing]);
    if (unread.length > 0) {
      // Unary: given back with a short delay, because the server may not have
      // seen the Consume stream's end yet and could push them to it again.
      const delayMs = this.reader ? RETURN_UNREAD_DELAY_MS : undefined;
      await this.queue.nack(unread, delayMs !== undefined ? { delayMs } : {}).catch(() => {});
    }
  }

  /** For `await using`: close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
