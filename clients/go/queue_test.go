package baton_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestQueuePriorityOrderAckAndJoin(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n, baton.WithQueueOptions(baton.QueueOptions{Order: baton.OrderPriority, MaxSize: 10}))
	res := must[baton.PutResult](t)(q.Put(ctx,
		baton.Item{Data: []byte("resize"), Priority: 5},
		baton.Item{Data: []byte("refund"), Priority: 1}))
	if len(res.IDs) != 2 || res.Size != 2 {
		t.Fatalf("put %+v", res)
	}
	d := must[*baton.Delivery](t)(q.Get(ctx))
	if d.Text() != "refund" || d.DeliveryCount != 1 || d.Priority != 1 || d.ItemID != res.IDs[1] {
		t.Fatalf("first delivery %+v", d)
	}
	info := must[*baton.ResourceInfo](t)(c.Describe(ctx, n))
	if info.GetQueue().GetInFlight() != 1 || info.GetQueue().GetSize() != 1 {
		t.Fatalf("describe %v", info.GetQueue())
	}
	must[struct{}](t)(struct{}{}, d.Ack(ctx))
	if err := d.Ack(ctx); !errors.Is(err, baton.ErrNotHeld) {
		t.Fatalf("second Ack: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := q.Join(tctx); !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("Join with one unfinished: %v", err)
	}
	joined := make(chan error, 1)
	go func() { joined <- q.Join(ctx) }()
	d2 := must[*baton.Delivery](t)(q.Get(ctx))
	ack := must[baton.AckResult](t)(q.Ack(ctx, d2.Receipt))
	if ack.Acked != 1 || ack.Unfinished != 0 {
		t.Fatalf("ack %+v", ack)
	}
	if err := <-joined; err != nil {
		t.Fatalf("Join: %v", err)
	}
	// While the queue exists, its declared options must be repeated exactly.
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("x")))
	_, err := c.Queue(n, baton.WithQueueOptions(baton.QueueOptions{Order: baton.OrderLIFO})).Put(ctx, baton.TextItem("y"))
	if !errors.Is(err, baton.ErrFailedPrecondition) {
		t.Fatalf("Put with other options: %v", err)
	}
	if purged := must[int](t)(q.Purge(ctx)); purged != 1 {
		t.Fatalf("purged %d", purged)
	}
}

func TestQueueTryGetTryPutAndNack(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n, baton.WithQueueOptions(baton.QueueOptions{MaxSize: 1}), baton.WithLease(30*time.Second))
	if _, err := q.TryGet(ctx); !errors.Is(err, baton.ErrWouldBlock) || !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("TryGet on empty: %v", err)
	}
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("one")))
	_, err := q.TryPut(ctx, baton.TextItem("two"))
	if !errors.Is(err, baton.ErrWouldBlock) || !errors.Is(err, baton.ErrResourceExhausted) {
		t.Fatalf("TryPut on full: %v", err)
	}
	d := must[*baton.Delivery](t)(q.TryGet(ctx))
	nack := must[baton.NackResult](t)(q.Nack(ctx, 0, d.Receipt))
	if nack.Returned != 1 {
		t.Fatalf("nack %+v", nack)
	}
	d = must[*baton.Delivery](t)(q.Get(ctx))
	if d.DeliveryCount != 2 || d.Text() != "one" {
		t.Fatalf("redelivery %+v", d)
	}
	must[struct{}](t)(struct{}{}, d.Ack(ctx))
}

func TestQueueBlockedPutProceedsAfterGet(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	q := c.Queue(name(t, "q"), baton.WithQueueOptions(baton.QueueOptions{MaxSize: 1}))
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("a")))
	put := make(chan error, 1)
	go func() { _, err := q.Put(ctx, baton.TextItem("b")); put <- err }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-put:
		t.Fatalf("Put into a full queue returned: %v", err)
	default:
	}
	d := must[*baton.Delivery](t)(q.Get(ctx))
	if err := <-put; err != nil {
		t.Fatal(err)
	}
	_ = d.Ack(ctx)
	d = must[*baton.Delivery](t)(q.Get(ctx))
	if d.Text() != "b" {
		t.Fatalf("got %q", d.Text())
	}
	_ = d.Ack(ctx)
}

func TestQueueDeadLettersAfterMaxDeliveries(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	q := c.Queue(name(t, "q"), baton.WithQueueOptions(baton.QueueOptions{MaxDeliveries: 2}))
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("poison")))
	d := must[*baton.Delivery](t)(q.Get(ctx))
	if r := must[baton.NackResult](t)(q.Nack(ctx, 0, d.Receipt)); r.DeadLettered != 0 {
		t.Fatalf("first nack %+v", r)
	}
	d = must[*baton.Delivery](t)(q.Get(ctx))
	if r := must[baton.NackResult](t)(q.Nack(ctx, 0, d.Receipt)); r.DeadLettered != 1 {
		t.Fatalf("second nack %+v", r)
	}
	must[struct{}](t)(struct{}{}, q.Join(ctx)) // a dead letter counts as finished
	if _, err := q.TryGet(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("queue not empty: %v", err)
	}
	dead := must[[]*baton.Delivery](t)(q.DeadLetters(ctx, 10))
	if len(dead) != 1 || dead[0].Text() != "poison" {
		t.Fatalf("dead letters %+v", dead)
	}
	must[baton.NackResult](t)(q.Nack(ctx, 0, dead[0].Receipt)) // back to the dead letters
	if purged := must[int](t)(q.PurgeDeadLetters(ctx)); purged != 1 {
		t.Fatalf("purged %d", purged)
	}
	if dead := must[[]*baton.Delivery](t)(q.DeadLetters(ctx, 10)); len(dead) != 0 {
		t.Fatalf("dead letters after purge: %v", dead)
	}
}

func TestQueuePurgeAndDelete(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	q := c.Queue(name(t, "q"))
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("a"), baton.TextItem("b")))
	if n := must[int](t)(q.Purge(ctx)); n != 2 {
		t.Fatalf("purged %d", n)
	}
	getErr := make(chan error, 1)
	go func() { _, err := q.Get(ctx); getErr <- err }()
	eventually(t, 5*time.Second, "a waiting getter", func() bool {
		info, err := c.Describe(ctx, q.Name())
		return err == nil && info.GetQueue().GetWaitingGetters() == 1
	})
	if !must[bool](t)(q.Delete(ctx)) {
		t.Fatal("Delete: no such queue")
	}
	if err := <-getErr; !errors.Is(err, baton.ErrAborted) {
		t.Fatalf("Get on a deleted queue: %v", err)
	}
}

func TestQueueDelayedItemAndLeaseRedelivery(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	q := c.Queue(name(t, "q"), baton.WithLease(200*time.Millisecond), baton.WithoutSession())
	must[baton.PutResult](t)(q.Put(ctx, baton.Item{Data: []byte("later"), Delay: 200 * time.Millisecond}))
	if _, err := q.TryGet(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("delayed item visible at once: %v", err)
	}
	d := must[*baton.Delivery](t)(q.Get(ctx))
	// Not acknowledged within the visibility timeout: delivered again.
	d2 := must[*baton.Delivery](t)(q.Get(ctx))
	if d2.ItemID != d.ItemID || d2.DeliveryCount != 2 {
		t.Fatalf("redelivery %+v after %+v", d2, d)
	}
	if err := d.Ack(ctx); !errors.Is(err, baton.ErrNotHeld) {
		t.Fatalf("Ack of an expired receipt: %v", err)
	}
	must[struct{}](t)(struct{}{}, d2.Ack(ctx))
}

func TestQueueConsumeStreamsWithPrefetch(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n)
	for i := 0; i < 10; i++ {
		must[baton.PutResult](t)(q.Put(ctx, baton.TextItem(fmt.Sprint(i))))
	}
	var got []string
	for d, err := range q.Consume(ctx, 3) {
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			// Three delivered, none acknowledged: the stream holds no more.
			eventually(t, 5*time.Second, "prefetch of 3 in flight", func() bool {
				info, err := c.Describe(ctx, n)
				return err == nil && info.GetQueue().GetInFlight() == 3
			})
			time.Sleep(50 * time.Millisecond)
			if info := must[*baton.ResourceInfo](t)(c.Describe(ctx, n)); info.GetQueue().GetInFlight() != 3 {
				t.Fatalf("in flight %d, prefetch 3", info.GetQueue().GetInFlight())
			}
		}
		got = append(got, d.Text())
		must[struct{}](t)(struct{}{}, d.Ack(ctx))
		if len(got) == 10 {
			break
		}
	}
	for i, s := range got {
		if s != fmt.Sprint(i) {
			t.Fatalf("order %v", got)
		}
	}
	must[struct{}](t)(struct{}{}, q.Join(ctx))
}

// On the unary transport the consumer reads Queues/Consume, which ends when
// the queue is deleted even between deliveries. (The stream transport's
// Get-loop consumer cannot see a deletion between two Gets, since a Get
// creates the queue again: see TestConsumerEndsWhenQueueDeletedWhileWaiting.)
func TestQueueConsumeEndsWhenQueueDeleted(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t, baton.WithTransport(baton.Unary))
	q := c.Queue(name(t, "q"))
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("x")))
	var last error
	n := 0
	for d, err := range q.Consume(ctx, 0) {
		if err != nil {
			last = err
			break
		}
		n++
		_ = d
		must[bool](t)(q.Delete(ctx))
	}
	if n != 1 || !errors.Is(last, baton.ErrAborted) {
		t.Fatalf("consumed %d, ended with %v", n, last)
	}
}

// Cancelled Gets racing with Puts never lose an item: every item put is
// eventually received exactly once. A Get whose reply the server could not
// deliver puts its items back; one whose reply gRPC dropped on the client
// leaves them in flight until their lease (here 1 s) runs out, and then they
// are delivered again.
func TestCancelledGetsNeverLoseItems(t *testing.T) {
	ctx := ctxT(t)
	producer, consumer := dial(t), dial(t)
	n := name(t, "q")
	const items = 200
	q := consumer.Queue(n, baton.WithLease(time.Second))
	var mu sync.Mutex
	seen := map[string]int{}
	record := func(d *baton.Delivery) {
		mu.Lock()
		seen[d.Text()]++
		mu.Unlock()
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack %s: %v", d.Text(), err)
		}
	}
	var wg sync.WaitGroup
	cancelled := 0
	var cmu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 150; i++ {
				var gctx context.Context
				var cancel context.CancelFunc
				if i%2 == 0 {
					gctx, cancel = context.WithTimeout(ctx, time.Duration(rng.Intn(3000))*time.Microsecond)
				} else {
					gctx, cancel = context.WithCancel(ctx)
					time.AfterFunc(time.Duration(rng.Intn(3000))*time.Microsecond, cancel)
				}
				d, err := q.Get(gctx)
				cancel()
				if err != nil {
					if !errors.Is(err, baton.ErrTimeout) && !errors.Is(err, baton.ErrCanceled) {
						t.Errorf("get: %v", err)
						return
					}
					cmu.Lock()
					cancelled++
					cmu.Unlock()
					continue
				}
				record(d)
			}
		}(g)
	}
	pq := producer.Queue(n)
	for i := 0; i < items; i++ {
		must[baton.PutResult](t)(pq.Put(ctx, baton.TextItem(fmt.Sprint(i))))
		time.Sleep(time.Duration(rand.Intn(1500)) * time.Microsecond)
	}
	wg.Wait()
	// Drain what is left, including items whose Get reply was dropped.
	for {
		mu.Lock()
		total := len(seen)
		mu.Unlock()
		if total == items {
			break
		}
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		d, err := q.Get(gctx)
		cancel()
		if err != nil {
			info, _ := producer.Describe(ctx, n)
			t.Fatalf("received %d of %d items; queue: %v (%v)", total, items, info.GetQueue(), err)
		}
		record(d)
	}
	for k, v := range seen {
		if v != 1 {
			t.Fatalf("item %s received %d times", k, v)
		}
	}
	t.Logf("%d Gets cancelled", cancelled)
	if cancelled == 0 {
		t.Fatal("no Get was cancelled: the race was not exercised")
	}
	must[struct{}](t)(struct{}{}, pq.Join(ctx))
}
