package baton_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

// waiters is the number of waiters the server reports on name n.
func waiters(ctx context.Context, c *baton.Client, n string) int {
	info, err := c.Describe(ctx, n)
	if err != nil {
		return -1
	}
	return int(info.GetWaiters())
}

// A wait with a request_id sent on a stream that breaks is sent again on the
// next stream, in the same session: the caller sees only the delay. Other
// operations in flight on the broken stream end with ErrUnavailable.
func TestStreamResendsWaitAfterBreak(t *testing.T) {
	ctx := ctxT(t)
	p := newProxy(t, addr)
	c := dialAddr(t, p.Addr(), suite.Options()...)
	other := dial(t)
	n, ev := name(t, "lock"), name(t, "event")
	held := must[*baton.HeldLock](t)(other.Mutex(n).Lock(ctx))
	sess := must[*baton.Session](t)(c.Session(ctx))

	type result struct {
		h   *baton.HeldLock
		err error
	}
	lockDone := make(chan result, 1)
	go func() {
		h, err := c.Mutex(n).Lock(ctx)
		lockDone <- result{h, err}
	}()
	evDone := make(chan error, 1)
	go func() { evDone <- c.Event(ev).Wait(ctx) }()
	eventually(t, 10*time.Second, "both waits pending on the server", func() bool {
		return waiters(ctx, other, n) == 1 && waiters(ctx, other, ev) == 1
	})

	breaks := baton.StreamBreaks(c)
	p.Cut()
	select {
	case err := <-evDone:
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("event wait on the broken stream: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event wait sent on the broken stream did not end")
	}
	if baton.StreamBreaks(c) == breaks {
		t.Fatal("the stream did not break")
	}
	// The lock wait is re-sent on the new stream: it waits again.
	eventually(t, 10*time.Second, "the lock wait re-sent", func() bool {
		return waiters(ctx, other, n) == 1
	})
	select {
	case r := <-lockDone:
		t.Fatalf("lock wait ended after the break: %v", r.err)
	default:
	}
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	var r result
	select {
	case r = <-lockDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the re-sent lock wait was not granted")
	}
	if r.err != nil {
		t.Fatalf("lock wait across a break: %v", r.err)
	}
	if r.h.Session() != sess || sess.Err() != nil {
		t.Fatalf("the session changed across a break: %v (%v)", r.h.Session().ID(), sess.Err())
	}
	must[struct{}](t)(struct{}{}, r.h.Unlock(ctx))
}

// A wait re-sent after a break keeps what is left of its deadline, not its
// whole timeout.
func TestStreamResentWaitKeepsItsDeadline(t *testing.T) {
	ctx := ctxT(t)
	p := newProxy(t, addr)
	c := dialAddr(t, p.Addr(), suite.Options()...)
	other := dial(t)
	n := name(t, "sem")
	held := must[*baton.Permits](t)(other.Semaphore(n, 1).Acquire(ctx, 1))
	defer held.Release(ctx)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Semaphore(n, 1).Acquire(wctx, 1)
		done <- err
	}()
	eventually(t, 5*time.Second, "the acquire pending", func() bool { return waiters(ctx, other, n) == 1 })
	p.Cut()
	err := <-done
	if !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("acquire: %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("acquire with a 3 s deadline ended after %v", el)
	}
	eventually(t, 5*time.Second, "no waiter left", func() bool { return waiters(ctx, other, n) == 0 })
}

// Cancelled Takes racing with Submits never leave a task running unseen:
// every task is taken and completed exactly once, or given back and taken
// later.
func TestCancelledTakesNeverStrandTasks(t *testing.T) {
	ctx := ctxT(t)
	submitter, worker, checker := dial(t), dial(t), dial(t)
	n := name(t, "tasks")
	rng := rand.New(rand.NewSource(3))
	taken, cancelled := 0, 0
	// The Take ends (deadline or cancel) within window µs; the task is
	// submitted 0-3 ms after the Take starts. On a loaded machine a Submit
	// can take longer than any window, and every Take ends first: the window
	// widens until both outcomes happen (and narrows if none is cancelled).
	window := 3000
	for i := 0; i < 200 || ((taken == 0 || cancelled == 0) && i < 1000); i++ {
		if i%40 == 39 && taken == 0 {
			window = min(2*window, 500_000)
		} else if i%40 == 39 && cancelled == 0 {
			window = max(window/2, 200)
		}
		var wctx context.Context
		var cancel context.CancelFunc
		if i%2 == 0 {
			wctx, cancel = context.WithTimeout(ctx, time.Duration(rng.Intn(window))*time.Microsecond)
		} else {
			wctx, cancel = context.WithCancel(ctx)
			time.AfterFunc(time.Duration(rng.Intn(window))*time.Microsecond, cancel)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		var job *baton.Job
		var err error
		go func() {
			defer wg.Done()
			job, err = worker.Tasks(n).Take(wctx)
		}()
		time.Sleep(time.Duration(rng.Intn(3000)) * time.Microsecond)
		task := must[*baton.Task](t)(submitter.Tasks(n).Submit(ctx, []byte(fmt.Sprint(i)), baton.MaxAttempts(10)))
		wg.Wait()
		cancel()
		switch {
		case err == nil:
			taken++
			if job.TaskID != task.ID() {
				t.Fatalf("iteration %d: took %s, submitted %s", i, job.TaskID, task.ID())
			}
		case errors.Is(err, baton.ErrTimeout) || errors.Is(err, baton.ErrCanceled):
			cancelled++
			// Pending again (never taken, or given back): take it now.
			job = must[*baton.Job](t)(checker.Tasks(n).Take(ctx))
		default:
			t.Fatalf("iteration %d: unexpected error %v", i, err)
		}
		if _, err := job.Complete(ctx, nil); err != nil {
			t.Fatalf("iteration %d: complete: %v", i, err)
		}
		out := must[*baton.TaskOutcome](t)(task.Outcome(ctx))
		if out.State != baton.TaskSucceeded {
			t.Fatalf("iteration %d: task %v", i, out.State)
		}
	}
	t.Logf("taken %d, cancelled %d (window %d µs)", taken, cancelled, window)
	if taken == 0 || cancelled == 0 {
		t.Fatalf("taken %d, cancelled %d: the race was not exercised", taken, cancelled)
	}
}

// Session loss on the stream transport: the holdings fire their lost
// signal, pending waits end with ErrSessionLost, OnSessionLost is told, and
// the client goes on with a new session.
func TestStreamSessionLossFiresLostSignalAndReopens(t *testing.T) {
	ctx := ctxT(t)
	testSessionLoss(t, ctx)
}

// TestUnarySessionLossFiresLostSignal is the same on the unary transport,
// where the new session is opened at the next use.
func TestUnarySessionLossFiresLostSignal(t *testing.T) {
	ctx := ctxT(t)
	transportOpts = []baton.Option{baton.WithTransport(baton.Unary)}
	t.Cleanup(func() { transportOpts = nil })
	testSessionLoss(t, ctx)
}

func testSessionLoss(t *testing.T, ctx context.Context) {
	var lostCalls atomic.Int32
	lostCh := make(chan uint64, 1)
	c := dial(t, baton.OnSessionLost(func(s *baton.Session, err error) {
		if errors.Is(err, baton.ErrSessionLost) && lostCalls.Add(1) == 1 {
			lostCh <- s.ID()
		}
	}))
	other := dial(t)
	n, m := name(t, "lock"), name(t, "sem")
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	permits := must[*baton.Permits](t)(c.Semaphore(m, 2).Acquire(ctx, 1))
	blocker := must[*baton.HeldLock](t)(other.Mutex(m + "-x").Lock(ctx))
	waitErr := make(chan error, 1)
	go func() {
		_, err := c.Mutex(m + "-x").Lock(ctx)
		waitErr <- err
	}()
	eventually(t, 5*time.Second, "the wait pending", func() bool { return waiters(ctx, other, m+"-x") == 1 })
	select {
	case <-held.Done():
		t.Fatal("lost signal fired early")
	default:
	}
	old := held.Session()
	// Another process ends the session: the client's probe learns it.
	must[struct{}](t)(struct{}{}, other.CloseSession(ctx, old.ID()))
	for _, d := range []<-chan struct{}{held.Done(), permits.Done()} {
		select {
		case <-d:
		case <-time.After(10 * time.Second):
			t.Fatal("lost signal not fired within 10 s")
		}
	}
	if !errors.Is(held.Err(), baton.ErrSessionLost) || !errors.Is(permits.Err(), baton.ErrSessionLost) {
		t.Fatalf("lost reasons: %v, %v", held.Err(), permits.Err())
	}
	select {
	case err := <-waitErr:
		if !errors.Is(err, baton.ErrSessionLost) {
			t.Fatalf("pending wait: %v, want ErrSessionLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending wait did not end")
	}
	select {
	case id := <-lostCh:
		if id != old.ID() {
			t.Fatalf("OnSessionLost for %d, lost %d", id, old.ID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnSessionLost not called")
	}
	// The client goes on with a new session.
	h2 := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	if h2.Session() == old || h2.Session().ID() == old.ID() {
		t.Fatal("no new session after the loss")
	}
	select {
	case <-h2.Done():
		t.Fatalf("new holding lost: %v", h2.Err())
	default:
	}
	must[struct{}](t)(struct{}{}, h2.Unlock(ctx))
	must[struct{}](t)(struct{}{}, blocker.Unlock(ctx))
	if lostCalls.Load() != 1 {
		t.Fatalf("OnSessionLost called %d times", lostCalls.Load())
	}
}

// A lease-only holding's lost signal fires when its lease runs out
// unrefreshed; Refresh moves it; Unlock never fires it.
func TestLeaseOnlyLostSignal(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	m := c.Mutex(name(t, "lock"), baton.WithLease(300*time.Millisecond), baton.WithoutSession())
	h := must[*baton.HeldLock](t)(m.Lock(ctx))
	must[time.Duration](t)(h.Refresh(ctx, 2*time.Second))
	select {
	case <-h.Done():
		t.Fatal("lost after a refresh")
	case <-time.After(600 * time.Millisecond): // past the first lease
	}
	must[struct{}](t)(struct{}{}, h.Unlock(ctx))
	h2 := must[*baton.HeldLock](t)(m.Lock(ctx))
	select {
	case <-h2.Done():
		if !errors.Is(h2.Err(), baton.ErrNotHeld) {
			t.Fatalf("Err = %v", h2.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lease ran out, no lost signal")
	}
	select {
	case <-h.Done():
		t.Fatal("a released holding fired its lost signal")
	default:
	}
}

// A request_id recovers a grant: the same id and owner return the held
// grant (OutcomeReplayed) instead of waiting again, on either transport.
func TestRequestIDRecoversGrant(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "lock")
	s := must[*baton.Session](t)(c.Session(ctx))
	first := must[*baton.HeldLock](t)(c.Mutex(n, baton.WithRequestID("recover-me")).Lock(ctx))
	again := must[*baton.HeldLock](t)(c.Mutex(n, baton.WithSession(s), baton.WithRequestID("recover-me")).TryLock(ctx))
	if again.Outcome() != baton.OutcomeReplayed || again.Fence() != first.Fence() {
		t.Fatalf("replay: outcome %v fence %d, first fence %d", again.Outcome(), again.Fence(), first.Fence())
	}
	if _, err := c.Mutex(n).TryLock(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("another request id: %v", err)
	}
	must[struct{}](t)(struct{}{}, first.Unlock(ctx))
}

// The consumer's acks ride on its next Get: after the loop, nothing stays
// in flight, and (on a batond that knows GetRequest.ack) most acks went
// with a Get rather than by Ack.
func TestConsumerAcksRideOnGet(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n)
	const items = 100
	batch := make([]baton.Item, items)
	for i := range batch {
		batch[i] = baton.TextItem(fmt.Sprint(i))
	}
	must[baton.PutResult](t)(q.PutMany(ctx, batch))
	var stats func() baton.ConsumerStats
	stop := baton.WatchConsumers(func(s func() baton.ConsumerStats) { stats = s })
	defer stop()
	got := 0
	for d, err := range q.Consume(ctx, 8) {
		if err != nil {
			t.Fatal(err)
		}
		if d.Text() != fmt.Sprint(got) {
			t.Fatalf("item %d: %q", got, d.Text())
		}
		got++
		must[struct{}](t)(struct{}{}, d.Ack(ctx))
		if got == items {
			break
		}
	}
	eventually(t, 5*time.Second, "nothing in flight, nothing queued", func() bool {
		return queueDrained(ctx, c, n)
	})
	must[struct{}](t)(struct{}{}, q.Join(ctx))
	if stats == nil {
		t.Fatal("no Get-loop consumer on the stream transport")
	}
	st := stats()
	t.Logf("consumer: %+v", st)
	if st.IgnoredGets > 0 {
		t.Fatalf("the server ignored the acks on %d Gets (a batond without GetRequest.ack)", st.IgnoredGets)
	}
	if st.Rode+st.Flushed != items || st.Rode < items/2 {
		t.Fatalf("acks: %d rode on Gets, %d by Ack; want %d, most on Gets", st.Rode, st.Flushed, items)
	}
}

// queueDrained reports whether queue n has nothing queued and nothing in
// flight (an empty queue may be gone: NOT_FOUND).
func queueDrained(ctx context.Context, c *baton.Client, n string) bool {
	info, err := c.Describe(ctx, n)
	if errors.Is(err, baton.ErrNotFound) {
		return true
	}
	return err == nil && info.GetQueue().GetInFlight() == 0 && info.GetQueue().GetSize() == 0
}

// Closing the consumer Nacks the items it got but had not handed out, and
// sends the acks still waiting.
func TestConsumerCloseNacksUndeliveredAndFlushesAcks(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n)
	must[baton.PutResult](t)(q.PutMany(ctx, []baton.Item{baton.TextItem("a"), baton.TextItem("b"), baton.TextItem("c")}))
	for d, err := range q.Consume(ctx, 3) {
		if err != nil {
			t.Fatal(err)
		}
		must[struct{}](t)(struct{}{}, d.Ack(ctx))
		break // b and c were prefetched, not handed out
	}
	eventually(t, 5*time.Second, "a acked, b and c back in the queue", func() bool {
		info, err := c.Describe(ctx, n)
		return err == nil && info.GetQueue().GetInFlight() == 0 && info.GetQueue().GetSize() == 2
	})
	d := must[*baton.Delivery](t)(q.TryGet(ctx))
	if d.Text() != "b" {
		t.Fatalf("next item %q, want b", d.Text())
	}
}

// A consumer waiting on an empty queue ends with ErrAborted when the queue
// is deleted.
func TestConsumerEndsWhenQueueDeletedWhileWaiting(t *testing.T) {
	ctx := ctxT(t)
	c, other := dial(t), dial(t)
	n := name(t, "q")
	q := c.Queue(n)
	must[baton.PutResult](t)(q.Put(ctx, baton.TextItem("x")))
	var last error
	got := 0
	for d, err := range q.Consume(ctx, 0) {
		if err != nil {
			last = err
			break
		}
		got++
		must[struct{}](t)(struct{}{}, d.Ack(ctx))
		go func() {
			// Delete once the consumer's next Get waits (bounded by ctx).
			for ctx.Err() == nil && waiters(ctx, other, n) < 1 {
				time.Sleep(10 * time.Millisecond)
			}
			_, _ = other.Queue(n).Delete(ctx)
		}()
	}
	if got != 1 || !errors.Is(last, baton.ErrAborted) {
		t.Fatalf("consumed %d, ended with %v", got, last)
	}
}

func TestPutManyRefusesMoreThanMaxPutItems(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	_, err := c.Queue(name(t, "q")).PutMany(ctx, make([]baton.Item, baton.MaxPutItems+1))
	if !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("PutMany of %d: %v", baton.MaxPutItems+1, err)
	}
}

// dropProxy forwards TCP connections to target, and can drop (discard)
// what the server sends while forwarding what the client sends: an answer
// lost on the wire.
type dropProxy struct {
	ln   net.Listener
	drop atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 && !p.drop.Load() {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *dropProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection, then forwards again.
func (p *dropProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.drop.Store(false)
}

// A grant whose answer is lost on a stream that then breaks is recovered by
// the re-sent wait with the same request_id: the caller gets the grant
// (OutcomeReplayed), and nothing is left held by nobody.
func TestStreamRecoversGrantLostOnTheWire(t *testing.T) {
	ctx := ctxT(t)
	p := newDropProxy(t, addr)
	c := dialAddr(t, p.Addr(), suite.Options()...)
	other := dial(t)
	n := name(t, "lock")
	sess := must[*baton.Session](t)(c.Session(ctx))
	held := must[*baton.HeldLock](t)(other.Mutex(n).Lock(ctx))
	type result struct {
		h   *baton.HeldLock
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, err := c.Mutex(n).Lock(ctx)
		done <- result{h, err}
	}()
	eventually(t, 10*time.Second, "the wait pending", func() bool { return waiters(ctx, other, n) == 1 })
	p.drop.Store(true)
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	// The server granted the lock to c's session; the answer is dropped.
	var token uint64
	eventually(t, 10*time.Second, "the lock granted to the waiting session", func() bool {
		info, err := other.Describe(ctx, n)
		if err != nil || len(info.GetHolders()) != 1 || info.GetHolders()[0].GetSessionId() != sess.ID() {
			return false
		}
		token = info.GetLastToken()
		return true
	})
	select {
	case r := <-done:
		t.Fatalf("Lock returned although its answer was dropped: %v", r.err)
	default:
	}
	p.Cut()
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Lock not recovered after the break")
	}
	if r.err != nil {
		t.Fatalf("Lock across a lost answer: %v", r.err)
	}
	if r.h.Outcome() != baton.OutcomeReplayed || r.h.Fence() != token {
		t.Fatalf("outcome %v fence %d, want REPLAYED and %d", r.h.Outcome(), r.h.Fence(), token)
	}
	must[struct{}](t)(struct{}{}, r.h.Unlock(ctx))
	if !waitFree(ctx, other, n) {
		t.Fatal("lock still held after Unlock")
	}
}

// An ack that no Get carries within 10 ms goes out as an Ack: a consumer
// that holds on to its next item does not keep the previous one in flight.
func TestConsumerFlushesAcksWithoutAGet(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	q := c.Queue(n)
	must[baton.PutResult](t)(q.PutMany(ctx, []baton.Item{baton.TextItem("a"), baton.TextItem("b")}))
	var stats func() baton.ConsumerStats
	stop := baton.WatchConsumers(func(s func() baton.ConsumerStats) { stats = s })
	defer stop()
	got := 0
	for d, err := range q.Consume(ctx, 2) {
		if err != nil {
			t.Fatal(err)
		}
		got++
		must[struct{}](t)(struct{}{}, d.Ack(ctx))
		if got == 1 {
			// Both items arrived with the first Get; b is still in the
			// consumer's hands, so no Get follows: a's ack must go alone.
			eventually(t, 5*time.Second, "a's ack flushed, b in flight", func() bool {
				info, err := c.Describe(ctx, n)
				return err == nil && info.GetQueue().GetInFlight() == 1
			})
			if st := stats(); st.Flushed != 1 || st.Rode != 0 {
				t.Fatalf("consumer %+v, want one ack flushed", st)
			}
		}
		if got == 2 {
			break
		}
	}
	eventually(t, 5*time.Second, "queue drained", func() bool { return queueDrained(ctx, c, n) })
}

// Operations issued while a write is in flight go out together in the next
// message.
func TestStreamBatchesOperations(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "q")
	must[*baton.Session](t)(c.Session(ctx))
	m0, o0 := baton.StreamWrites(c)
	const puts = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < puts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := c.Queue(n).Put(ctx, baton.TextItem("x")); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	m1, o1 := baton.StreamWrites(c)
	msgs, ops := m1-m0, o1-o0
	t.Logf("%d operations in %d messages", ops, msgs)
	if ops < puts || msgs >= ops {
		t.Fatalf("%d operations in %d messages: not batched", ops, msgs)
	}
	info := must[*baton.ResourceInfo](t)(c.Describe(ctx, n))
	if info.GetQueue().GetSize() != puts {
		t.Fatalf("queue size %d, want %d", info.GetQueue().GetSize(), puts)
	}
}
