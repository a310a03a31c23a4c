package baton

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// QueueOrder is the order of a queue.
type QueueOrder = batonv1.QueueOrder

const (
	// OrderFIFO is asyncio.Queue (the default).
	OrderFIFO = batonv1.QueueOrder_QUEUE_ORDER_FIFO
	// OrderLIFO is asyncio.LifoQueue.
	OrderLIFO = batonv1.QueueOrder_QUEUE_ORDER_LIFO
	// OrderPriority is asyncio.PriorityQueue: lowest Priority first, FIFO
	// among equals.
	OrderPriority = batonv1.QueueOrder_QUEUE_ORDER_PRIORITY
)

// QueueOptions declare a queue (WithQueueOptions). The first Put, Get or
// Consume that carries options declares the queue; later ones must repeat
// them exactly (ErrFailedPrecondition otherwise). Zero fields mean the
// server's defaults.
type QueueOptions struct {
	Order QueueOrder
	// MaxSize is the most items queued at once (not counting in-flight ones).
	MaxSize uint32
	// MaxItemBytes is the largest payload.
	MaxItemBytes uint32
	// MaxDeliveries is the number of deliveries after which an item is
	// dead-lettered instead of redelivered (0: never).
	MaxDeliveries uint32
}

func (o *QueueOptions) pb() *batonv1.QueueOptions {
	if o == nil {
		return nil
	}
	return &batonv1.QueueOptions{Order: o.Order, Maxsize: o.MaxSize, MaxItemBytes: o.MaxItemBytes, MaxDeliveries: o.MaxDeliveries}
}

// Item is something to put into a queue.
type Item struct {
	Data []byte
	// Priority orders a PRIORITY queue: lower first.
	Priority int64
	// Delay makes the item visible to Get only after this long.
	Delay time.Duration
}

// TextItem is an Item with a text payload.
func TextItem(text string) Item { return Item{Data: []byte(text)} }

func (it Item) pb() *batonv1.QueueItem {
	return &batonv1.QueueItem{Data: it.Data, Priority: it.Priority, Delay: dur(it.Delay)}
}

// Queue is a handle on a Baton queue (asyncio.Queue / PriorityQueue /
// LifoQueue across processes, with acknowledgements and redelivery). Items
// got are in flight, owned by the handle's owner (the client's session by
// default; WithLease sets a visibility timeout), until Ack or Nack; if the
// owner goes away first they are delivered again. Safe for concurrent use.
type Queue struct {
	c    *Client
	name string
	h    handleConfig
}

// Queue returns a handle on the queue name. Options: WithQueueOptions, and
// the owner of got items (WithSession, WithLease, WithoutSession).
func (c *Client) Queue(name string, opts ...HandleOption) *Queue {
	return &Queue{c: c, name: name, h: newHandleConfig(opts)}
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// PutResult is what Put returns.
type PutResult struct {
	// IDs are the items' ids, in the order given.
	IDs []uint64
	// Size is the number of items queued after the put.
	Size int
}

// Put puts items, all or none, waiting while they do not fit under the
// queue's MaxSize. A Put cancelled while waiting puts nothing.
func (q *Queue) Put(ctx context.Context, items ...Item) (PutResult, error) {
	return q.put(ctx, items, false)
}

// MaxPutItems is the most items one Put (or PutMany) may carry.
const MaxPutItems = 1000

// PutMany puts up to MaxPutItems items in one Put, all or none, waiting
// while they do not fit under the queue's MaxSize (Put with a slice).
func (q *Queue) PutMany(ctx context.Context, items []Item) (PutResult, error) {
	if len(items) > MaxPutItems {
		return PutResult{}, localErr("Queues.Put", q.name, ErrInvalidArgument, "more than 1000 items in one Put")
	}
	return q.put(ctx, items, false)
}

// TryPut puts items only if they fit now; otherwise an error matching
// ErrWouldBlock and ErrResourceExhausted (asyncio.QueueFull).
func (q *Queue) TryPut(ctx context.Context, items ...Item) (PutResult, error) {
	return q.put(ctx, items, true)
}

func (q *Queue) put(ctx context.Context, items []Item, try bool) (PutResult, error) {
	req := &batonv1.PutRequest{Name: q.name, Options: q.h.queue.pb()}
	for _, it := range items {
		req.Items = append(req.Items, it.pb())
	}
	if try {
		req.Timeout = zeroDur()
	}
	resp, err := call(ctx, q.c, false, "put", req, func(ctx context.Context) (*batonv1.PutResponse, error) {
		return q.c.raw.Queues.Put(ctx, req)
	})
	if err != nil {
		err = wrapErr(ctx, "Queues.Put", q.name, err)
		if try && status.Code(err) == codes.ResourceExhausted {
			tag(err, &sentinel{code: codes.ResourceExhausted, msg: "queue full", parent: ErrWouldBlock})
		}
		return PutResult{}, err
	}
	return PutResult{IDs: resp.GetItemIds(), Size: int(resp.GetSize())}, nil
}

// Delivery is an item got from a queue. It stays in flight until Ack or Nack.
type Delivery struct {
	q    *Queue
	cons *consumer // the Get-loop consumer that handed it out, if any
	// Receipt identifies this delivery in Ack and Nack.
	Receipt uint64
	ItemID  uint64
	Data    []byte
	// Priority is the item's priority.
	Priority int64
	// DeliveryCount is 1 on the first delivery.
	DeliveryCount int
	// Age is the time since the item was put.
	Age time.Duration
}

// Text is the payload as a string.
func (d *Delivery) Text() string { return string(d.Data) }

// Ack acknowledges the item (asyncio's task_done). Errors: ErrNotHeld (no
// longer in flight: acknowledged already, or redelivered after its lease).
// An item handed out by Consume on the stream transport is acknowledged
// with the consumer's next Get (or an Ack 10 ms later): Ack queues it and
// returns nil, and a receipt no longer in flight is skipped by the server.
func (d *Delivery) Ack(ctx context.Context) error {
	if d.cons != nil && d.cons.queueAck(d.Receipt) {
		return nil
	}
	_, err := d.q.Ack(ctx, d.Receipt)
	return err
}

// Nack returns the item to the head of the queue, visible again after delay.
func (d *Delivery) Nack(ctx context.Context, delay time.Duration) error {
	_, err := d.q.Nack(ctx, delay, d.Receipt)
	return err
}

func (q *Queue) deliveries(items []*batonv1.Delivery) []*Delivery {
	out := make([]*Delivery, 0, len(items))
	for _, it := range items {
		data := it.GetData()
		if len(data) == 0 && it.GetText() != "" && utf8.ValidString(it.GetText()) {
			data = []byte(it.GetText())
		}
		out = append(out, &Delivery{
			q: q, Receipt: it.GetReceipt(), ItemID: it.GetItemId(), Data: data, Priority: it.GetPriority(),
			DeliveryCount: int(it.GetDeliveryCount()), Age: fromDur(it.GetAge()),
		})
	}
	return out
}

// Get takes one item, waiting while the queue is empty. Cancelling ctx
// cancels the wait on the server; an item racing with the cancel goes back
// to the head of the queue, never lost.
func (q *Queue) Get(ctx context.Context) (*Delivery, error) {
	ds, err := q.get(ctx, 1, false, false)
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// GetN takes up to max items (at least one), waiting while the queue is empty.
func (q *Queue) GetN(ctx context.Context, max int) ([]*Delivery, error) {
	return q.get(ctx, max, false, false)
}

// TryGet takes one item if there is one now; otherwise ErrWouldBlock
// (asyncio.QueueEmpty).
func (q *Queue) TryGet(ctx context.Context) (*Delivery, error) {
	ds, err := q.get(ctx, 1, true, false)
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// TryGetN takes up to max items if there are any now; otherwise
// ErrWouldBlock.
func (q *Queue) TryGetN(ctx context.Context, max int) ([]*Delivery, error) {
	return q.get(ctx, max, true, false)
}

// DeadLetters takes up to max items from the dead-letter list (items that
// reached MaxDeliveries); none is an empty result, not an error. They are in
// flight like other items: Ack drops them for good; Nack, or their owner
// going away, returns them to the dead-letter list.
func (q *Queue) DeadLetters(ctx context.Context, max int) ([]*Delivery, error) {
	ds, err := q.get(ctx, max, true, true)
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return nil, nil
	}
	return ds, err
}

func (q *Queue) get(ctx context.Context, max int, try, dead bool) ([]*Delivery, error) {
	resp, err := q.getAcking(ctx, max, try, dead, nil)
	if err != nil {
		return nil, err
	}
	return q.deliveries(resp.GetItems()), nil
}

// getAcking is one Get, acknowledging acks first (GetRequest.ack), with the
// request_id and recovery of every grant: items that crossed a cancel are
// Nacked.
func (q *Queue) getAcking(ctx context.Context, max int, try, dead bool, acks []uint64) (*batonv1.GetResponse, error) {
	const op = "Queues.Get"
	o, err := q.c.resolveOwner(ctx, op, q.name, &q.h)
	if err != nil {
		return nil, err
	}
	if max < 1 {
		max = 1
	}
	ctx, cancel := o.sess.bind(ctx)
	defer cancel()
	req := &batonv1.GetRequest{
		Name: q.name, MaxItems: uint32(max), SessionId: o.sessionID(), Ttl: dur(o.ttl),
		Options: q.h.queue.pb(), DeadLetters: dead, RequestId: newRequestID(), Ack: acks,
	}
	if try {
		req.Timeout = zeroDur()
	}
	resp, err := acquire(ctx, q.c, grant[*batonv1.GetResponse]{
		field: "get", owner: o, req: req, resend: true,
		unary: func(ctx context.Context, r proto.Message) (*batonv1.GetResponse, error) {
			return q.c.raw.Queues.Get(ctx, r.(*batonv1.GetRequest))
		},
		rollback: func(ctx context.Context, resp *batonv1.GetResponse) {
			if receipts := receiptsOf(resp.GetItems()); len(receipts) > 0 {
				_, _ = q.Nack(ctx, 0, receipts...)
			}
		},
	})
	if err != nil {
		err = ownedErr(ctx, op, q.name, o, err)
		if try && status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
			tag(err, ErrWouldBlock)
		}
		return nil, err
	}
	return resp, nil
}

func receiptsOf(items []*batonv1.Delivery) []uint64 {
	out := make([]uint64, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetReceipt())
	}
	return out
}

// AckResult is what Ack returns.
type AckResult struct {
	Acked int
	// Unfinished is the number of items neither acknowledged nor
	// dead-lettered (what Join waits for).
	Unfinished uint64
}

// Ack acknowledges items by receipt. The valid receipts are acknowledged even
// when some are not, which makes the call fail with ErrNotHeld.
func (q *Queue) Ack(ctx context.Context, receipts ...uint64) (AckResult, error) {
	req := &batonv1.AckRequest{Name: q.name, Receipts: receipts}
	resp, err := call(ctx, q.c, false, "ack", req, func(ctx context.Context) (*batonv1.AckResponse, error) {
		return q.c.raw.Queues.Ack(ctx, req)
	})
	if err != nil {
		return AckResult{}, notHeld(wrapErr(ctx, "Queues.Ack", q.name, err))
	}
	return AckResult{Acked: int(resp.GetAcked()), Unfinished: resp.GetUnfinished()}, nil
}

// NackResult is what Nack returns.
type NackResult struct {
	Returned int
	// DeadLettered counts the returned items moved to the dead letters
	// because they reached MaxDeliveries.
	DeadLettered int
}

// Nack returns in-flight items to the head of the queue, visible again after
// delay (0: at once). It counts as a delivery for MaxDeliveries.
func (q *Queue) Nack(ctx context.Context, delay time.Duration, receipts ...uint64) (NackResult, error) {
	req := &batonv1.NackRequest{Name: q.name, Receipts: receipts, Delay: dur(delay)}
	resp, err := call(ctx, q.c, false, "nack", req, func(ctx context.Context) (*batonv1.NackResponse, error) {
		return q.c.raw.Queues.Nack(ctx, req)
	})
	if err != nil {
		return NackResult{}, notHeld(wrapErr(ctx, "Queues.Nack", q.name, err))
	}
	return NackResult{Returned: int(resp.GetReturned()), DeadLettered: int(resp.GetDeadLettered())}, nil
}

// Join waits until every item put has been acknowledged or dead-lettered
// (asyncio's join). Returns at once for an unknown or empty queue.
func (q *Queue) Join(ctx context.Context) error {
	req := &batonv1.JoinRequest{Name: q.name}
	_, err := call(ctx, q.c, false, "join", req, func(ctx context.Context) (*batonv1.JoinResponse, error) {
		return q.c.raw.Queues.Join(ctx, req)
	})
	return wrapErr(ctx, "Queues.Join", q.name, err)
}

// Purge removes every queued (not in-flight) item and returns how many.
func (q *Queue) Purge(ctx context.Context) (int, error) { return q.purge(ctx, false) }

// PurgeDeadLetters removes the dead letters and returns how many.
func (q *Queue) PurgeDeadLetters(ctx context.Context) (int, error) { return q.purge(ctx, true) }

func (q *Queue) purge(ctx context.Context, dead bool) (int, error) {
	req := &batonv1.PurgeRequest{Name: q.name, DeadLetters: dead}
	resp, err := call(ctx, q.c, false, "purge", req, func(ctx context.Context) (*batonv1.PurgeResponse, error) {
		return q.c.raw.Queues.Purge(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Queues.Purge", q.name, err)
	}
	return int(resp.GetPurged()), nil
}

// Delete drops the queue with its items, in-flight items and dead letters;
// pending Puts, Gets, Joins and Consumes end with ErrAborted. It reports
// whether the queue existed.
func (q *Queue) Delete(ctx context.Context) (bool, error) {
	req := &batonv1.DeleteQueueRequest{Name: q.name}
	resp, err := call(ctx, q.c, false, "delete_queue", req, func(ctx context.Context) (*batonv1.DeleteQueueResponse, error) {
		return q.c.raw.Queues.Delete(ctx, req)
	})
	if err != nil {
		return false, wrapErr(ctx, "Queues.Delete", q.name, err)
	}
	return resp.GetDeleted(), nil
}

// Consume is the queue's consumer: it hands out items one by one until
// the loop breaks, or ends with one final error (ctx done, ErrSessionLost,
// ErrAborted when the queue is deleted, ErrUnavailable). Ack or Nack each
// item. prefetch (0: 16, at most 1000) bounds the items the consumer holds
// unacknowledged.
//
// On the stream transport the consumer loops Get(max_items=prefetch) and
// hands out what each Get returned; Delivery.Ack queues the ack, which rides
// on the consumer's next Get (GetRequest.ack), or goes out with other
// waiting acks as one Ack if no Get follows within 10 ms. Breaking the loop
// closes the consumer: it sends the acks still queued and Nacks the items
// it got but had not handed out. On the unary transport the consumer reads
// Queues/Consume: the server pushes items while fewer than prefetch of
// those it sent are unacknowledged; each Ack is a call of its own, and
// items already pushed when the loop breaks stay in flight, owned as for
// Get.
//
//	for d, err := range q.Consume(ctx, 16) {
//		if err != nil { return err }
//		handle(d.Data)
//		d.Ack(ctx)
//	}
func (q *Queue) Consume(ctx context.Context, prefetch int) iter.Seq2[*Delivery, error] {
	if q.c.stream == nil {
		return q.consumeStream(ctx, prefetch)
	}
	return q.consumeGets(ctx, prefetch)
}

// consumeStream reads Queues/Consume (the unary transport's consumer).
func (q *Queue) consumeStream(ctx context.Context, prefetch int) iter.Seq2[*Delivery, error] {
	return func(yield func(*Delivery, error) bool) {
		const op = "Queues.Consume"
		o, err := q.c.resolveOwner(ctx, op, q.name, &q.h)
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := o.sess.bind(ctx)
		defer cancel()
		stream, err := q.c.raw.Queues.Consume(ctx, &batonv1.ConsumeRequest{
			Name: q.name, SessionId: o.sessionID(), Ttl: dur(o.ttl), Prefetch: uint32(max(prefetch, 0)), Options: q.h.queue.pb(),
		})
		if err != nil {
			yield(nil, wrapErr(ctx, op, q.name, err))
			return
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				err = wrapErr(ctx, op, q.name, err)
				if o.sess != nil && o.sess.lost() {
					tag(err, ErrSessionLost)
				}
				yield(nil, err)
				return
			}
			for _, d := range q.deliveries(resp.GetItems()) {
				if !yield(d, nil) {
					return
				}
			}
		}
	}
}

// consumeGets is the stream transport's consumer: a loop of Gets that carry
// the acks of the items handed out before.
func (q *Queue) consumeGets(ctx context.Context, prefetch int) iter.Seq2[*Delivery, error] {
	return func(yield func(*Delivery, error) bool) {
		if prefetch <= 0 {
			prefetch = 16
		}
		prefetch = min(prefetch, 1000)
		cons := &consumer{q: q}
		if h := consumerHook; h != nil {
			h(cons)
		}
		var buf []*Delivery
		defer func() { cons.close(ctx, buf) }()
		for {
			if len(buf) == 0 {
				acks := cons.take()
				resp, err := q.getAcking(ctx, prefetch, false, false, acks)
				if err != nil {
					cons.requeue(acks) // Ack them at close: an unsent Get applied none
					yield(nil, err)
					return
				}
				cons.applied(ctx, acks, resp)
				buf = q.deliveries(resp.GetItems())
				for _, d := range buf {
					d.cons = cons
				}
			}
			if err := ctx.Err(); err != nil {
				yield(nil, wrapErr(ctx, "Queues.Get", q.name, err))
				return
			}
			d := buf[0]
			buf = buf[1:]
			if !yield(d, nil) {
				return
			}
		}
	}
}

// ackDelay is how long a consumer's ack waits for a Get to ride on before
// it goes out as an Ack.
const ackDelay = 10 * time.Millisecond

// consumerHook, when set (by tests), is given every consumer made.
var consumerHook func(*consumer)

// consumer holds the acks of a Get-loop consumer until its next Get.
type consumer struct {
	q *Queue

	mu     sync.Mutex
	acks   []uint64
	timer  *time.Timer
	closed bool
	wg     sync.WaitGroup // armed timers and flushes under way

	// Counters: acks that rode on a Get, acks sent by Ack (after ackDelay,
	// or at close), and Gets whose acks the server ignored (a batond older
	// than GetRequest.ack), which were then sent by Ack.
	rode, flushed, ignored atomic.Int64
}

// queueAck queues an ack for the next Get; false once the consumer is
// closed (the caller then acks by itself).
func (c *consumer) queueAck(receipt uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.acks = append(c.acks, receipt)
	if c.timer == nil {
		c.wg.Add(1)
		var t *time.Timer
		t = time.AfterFunc(ackDelay, func() {
			defer c.wg.Done()
			c.mu.Lock()
			if c.timer == t {
				c.timer = nil
			}
			c.mu.Unlock()
			c.flush()
		})
		c.timer = t
	}
	return true
}

// take returns the queued acks, for a Get to carry.
func (c *consumer) take() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		if c.timer.Stop() {
			c.wg.Done()
		}
		c.timer = nil
	}
	acks := c.acks
	c.acks = nil
	return acks
}

func (c *consumer) requeue(acks []uint64) {
	c.mu.Lock()
	c.acks = append(acks, c.acks...)
	c.mu.Unlock()
}

// flush sends the queued acks as one Ack.
func (c *consumer) flush() {
	c.mu.Lock()
	acks := c.acks
	c.acks = nil
	c.mu.Unlock()
	if len(acks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.flushed.Add(int64(len(acks)))
	_, _ = c.q.Ack(ctx, acks...)
}

// applied checks the acks a Get carried: a server that ignored them (no
// acked, no ack_failed) predates GetRequest.ack, and they are sent by Ack.
func (c *consumer) applied(ctx context.Context, acks []uint64, resp *batonv1.GetResponse) {
	if len(acks) == 0 {
		return
	}
	if resp.GetAcked() == 0 && len(resp.GetAckFailed()) == 0 {
		c.ignored.Add(1)
		c.flushed.Add(int64(len(acks)))
		actx, cancel := detached(ctx)
		_, _ = c.q.Ack(actx, acks...)
		cancel()
		return
	}
	c.rode.Add(int64(resp.GetAcked()))
}

// close sends the queued acks and Nacks the items not handed out.
func (c *consumer) close(ctx context.Context, undelivered []*Delivery) {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		if c.timer.Stop() {
			c.wg.Done()
		}
		c.timer = nil
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.flush()
	if len(undelivered) > 0 {
		receipts := make([]uint64, 0, len(undelivered))
		for _, d := range undelivered {
			receipts = append(receipts, d.Receipt)
		}
		nctx, cancel := detached(ctx)
		_, _ = c.q.Nack(nctx, 0, receipts...)
		cancel()
	}
}
