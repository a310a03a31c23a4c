package linearizability

// The clients: each a baton.Dial of its own to every node (starting with a
// different node, so that some talk to followers that relay and some to the
// leader; every other client on the unary transport), recording every call
// with its call and return times.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync/atomic"
	"time"

	baton "github.com/baton/baton/clients/go"
)

type env struct {
	clk   clock
	stop  chan struct{} // closed: finish the operation under way and return
	tally *errTally
	// Every round the clients move to new resources (names ending in
	// /ROUND): objects of their own, each checked as a partition of its
	// own, which keeps porcupine's work (and memory, quadratic in a
	// history's length) bounded on a long soak.
	roundLen time.Duration
	maxRound atomic.Int64
}

// round is the current round (0 before the workload starts).
func (e *env) round() int {
	r := int(time.Duration(e.clk.now()) / e.roundLen)
	for {
		m := e.maxRound.Load()
		if int64(r) <= m || e.maxRound.CompareAndSwap(m, int64(r)) {
			return r
		}
	}
}

func roundName(base string, round int) string { return fmt.Sprintf("%s/%d", base, round) }

func (e *env) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

type worker struct {
	idx       int    // client id within its history (porcupine's ClientId)
	name      string // e.g. "lock/c0"
	transport baton.Transport
	c         *baton.Client
	rng       *rand.Rand
	recs      []record

	sessionsLost atomic.Int64
	lostErr      atomic.Value // string: the last session loss
	stuck        int          // releases still unknown after every retry
	acksFailed   int          // acks refused (not in flight) at the first attempt
	acksRetried  int          // acks refused after an attempt of unknown outcome
	acksUnknown  int          // acks whose outcome stayed unknown
	redelivered  int          // items got with a delivery count > 1
}

func dialWorker(ctx context.Context, cl *cluster, global, idx int, kind string) (*worker, error) {
	w := &worker{idx: idx, name: fmt.Sprintf("%s/c%d", kind, idx), rng: rand.New(rand.NewSource(time.Now().UnixNano() + int64(global)))}
	w.transport = baton.Stream
	if global%2 == 1 {
		w.transport = baton.Unary
	}
	c, err := baton.Dial(ctx, cl.addrs(global%len(cl.nodes)),
		baton.WithTransport(w.transport),
		baton.WithDialTimeout(20*time.Second),
		baton.WithSessionLabel("linearizability:"+w.name),
		baton.OnSessionLost(func(_ *baton.Session, err error) {
			w.sessionsLost.Add(1)
			w.lostErr.Store(err.Error())
		}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.name, err)
	}
	w.c = c
	return w, nil
}

func (w *worker) sleep(maxMs int) {
	if maxMs > 0 {
		time.Sleep(time.Duration(w.rng.Intn(maxMs*1000)) * time.Microsecond)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// acquireOnce makes one acquire: half of them zero-timeout (Try*), half
// blocking with a deadline of 0.2-0.8 s. It returns the token (0 if none),
// the release function of the grant, and records the call.
func (w *worker) acquireOnce(e *env, key int, try func(context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error),
	wait func(context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error)) (uint64, func(context.Context) error) {
	isTry := w.rng.Intn(2) == 0
	kind := kAcquire
	var ctx context.Context
	var cancel context.CancelFunc
	if isTry {
		kind = kTryAcquire
		// Long enough that it never ends on the client's side: the answer
		// (grant or would-block) is the server's.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	} else {
		ctx, cancel = context.WithTimeout(context.Background(), time.Duration(200+w.rng.Intn(600))*time.Millisecond)
	}
	f := wait
	if isTry {
		f = try
	}
	call := e.clk.now()
	token, outcome, release, err := f(ctx)
	ret := e.clk.now()
	cancel()
	st := classifyAcquire(err, isTry, e.tally, w.name+" acquire")
	r := record{key: key, in: opInput{kind: kind, client: w.idx}, out: opOutput{st: st}, call: call, ret: ret, err: errText(err),
		replayed: outcome == baton.OutcomeReplayed, waited: outcome == baton.OutcomeAfterWait}
	if st == stOK {
		r.out.val = token
	}
	w.recs = append(w.recs, r)
	if st != stOK {
		return 0, nil
	}
	return token, release
}

// releaseUntilKnown releases a grant, again while the outcome is unknown
// (each attempt recorded): a grant left held would stall the others.
func (w *worker) releaseUntilKnown(e *env, key int, token uint64, release func(context.Context) error) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		call := e.clk.now()
		err := release(ctx)
		ret := e.clk.now()
		cancel()
		st := classifyRelease(err, e.tally, w.name+" release")
		w.recs = append(w.recs, record{key: key, in: opInput{kind: kRelease, client: w.idx, arg: token}, out: opOutput{st: st}, call: call, ret: ret, err: errText(err)})
		if st != stMaybe {
			return
		}
		if attempt >= 10 {
			w.stuck++
			return
		}
		time.Sleep(time.Duration(min(50*(attempt+1), 500)) * time.Millisecond)
	}
}

func (w *worker) lockLoop(e *env, base string) {
	var m *baton.Mutex
	get := func(try bool) func(context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error) {
		return func(ctx context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error) {
			var h *baton.HeldLock
			var err error
			if try {
				h, err = m.TryLock(ctx)
			} else {
				h, err = m.Lock(ctx)
			}
			if err != nil || h == nil {
				return 0, 0, nil, err
			}
			return h.Fence(), h.Outcome(), h.Unlock, nil
		}
	}
	for !e.stopped() {
		key := e.round()
		m = w.c.Mutex(roundName(base, key))
		if token, release := w.acquireOnce(e, key, get(true), get(false)); release != nil {
			w.sleep(5)
			w.releaseUntilKnown(e, key, token, release)
		}
		w.sleep(10)
	}
}

func (w *worker) semLoop(e *env, base string) {
	var s *baton.Semaphore
	get := func(try bool) func(context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error) {
		return func(ctx context.Context) (uint64, baton.GrantOutcome, func(context.Context) error, error) {
			var p *baton.Permits
			var err error
			if try {
				p, err = s.TryAcquire(ctx, 1)
			} else {
				p, err = s.Acquire(ctx, 1)
			}
			if err != nil || p == nil {
				return 0, 0, nil, err
			}
			return p.Token(), p.Outcome(), p.Release, nil
		}
	}
	for !e.stopped() {
		key := e.round()
		s = w.c.Semaphore(roundName(base, key), semCapacity)
		if token, release := w.acquireOnce(e, key, get(true), get(false)); release != nil {
			w.sleep(8)
			w.releaseUntilKnown(e, key, token, release)
		}
		w.sleep(10)
	}
}

// queueValue names the n-th item a client puts (client idx, n from 1).
func queueValue(idx, n int) uint64 { return uint64(idx+1)<<32 | uint64(n) }

func (w *worker) put(e *env, key int, q *baton.Queue, v uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	call := e.clk.now()
	_, err := q.Put(ctx, baton.Item{Data: []byte(strconv.FormatUint(v, 10))})
	ret := e.clk.now()
	cancel()
	st := classifyPut(err, e.tally, w.name+" put")
	w.recs = append(w.recs, record{key: key, in: opInput{kind: kPut, client: w.idx, arg: v}, out: opOutput{st: st}, call: call, ret: ret, err: errText(err)})
}

// get takes one item if there is one (TryGet) and acknowledges it; false
// when the queue was (certainly) empty.
func (w *worker) get(e *env, key int, q *baton.Queue) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	call := e.clk.now()
	d, err := q.TryGet(ctx)
	ret := e.clk.now()
	cancel()
	st := classifyAcquire(err, true, e.tally, w.name+" get")
	r := record{key: key, in: opInput{kind: kGet, client: w.idx}, out: opOutput{st: st}, call: call, ret: ret, err: errText(err)}
	var perr error
	if st == stOK {
		r.out.val, perr = strconv.ParseUint(d.Text(), 10, 64)
		if perr != nil {
			perr = fmt.Errorf("%s: item %q is not one of the test's", w.name, d.Text())
		}
		if d.DeliveryCount > 1 {
			w.redelivered++
		}
	}
	w.recs = append(w.recs, r)
	if st != stOK {
		return st != stRefused, nil
	}
	for attempt := 0; ; attempt++ {
		actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.Ack(actx)
		acancel()
		if err == nil {
			break
		}
		if errors.Is(err, baton.ErrNotHeld) {
			if attempt == 0 {
				w.acksFailed++
				e.tally.add(w.name+" ack of "+valueName(r.out.val), err, false)
			} else {
				w.acksRetried++ // the earlier attempt was applied
			}
			break
		}
		e.tally.add(w.name+" ack of "+valueName(r.out.val), err, unknownCode(err))
		if attempt >= 4 {
			w.acksUnknown++
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true, perr
}

func (w *worker) queueLoop(e *env, base string) error {
	n := 0
	var firstErr error
	for !e.stopped() {
		key := e.round()
		q := w.c.Queue(roundName(base, key))
		// Fewer puts than gets: the queue stays short, so that the order of
		// concurrent puts is soon revealed by the gets (porcupine's search
		// grows with the puts whose order is still open).
		if w.rng.Intn(5) < 2 {
			n++
			w.put(e, key, q, queueValue(w.idx, n))
		} else if _, err := w.get(e, key, q); err != nil && firstErr == nil {
			firstErr = err
		}
		w.sleep(10)
	}
	return firstErr
}

// drain gets until the queue of round key is certainly empty; it gives up
// after 20 gets in a row of unknown outcome.
func (w *worker) drain(e *env, base string, key int) error {
	q := w.c.Queue(roundName(base, key))
	unknown := 0
	for k := 0; k < 100000; k++ {
		more, err := w.get(e, key, q)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		if last := w.recs[len(w.recs)-1]; last.out.st == stMaybe {
			if unknown++; unknown >= 20 {
				return fmt.Errorf("20 gets in a row of unknown outcome, the last: %s", last.err)
			}
		} else {
			unknown = 0
		}
	}
	return fmt.Errorf("the queue did not drain")
}

// --- faults ---

type failover struct {
	killed, newLeader int   // node indexes
	killAt, leaderAt  int64 // clock times: SIGKILL sent, a new leader serving
	restartAt         int64 // the killed node answering again
}

// faultLoop kills the leader with SIGKILL every `every`, waits for the new
// leader, restarts the killed node on its data directory after `pause`.
// It returns with every node running.
func faultLoop(e *env, cl *cluster, every, pause time.Duration) ([]failover, error) {
	var out []failover
	next := time.Now().Add(every / 2)
	for {
		select {
		case <-e.stop:
			return out, nil
		case <-time.After(time.Until(next)):
		}
		lead, err := cl.leader(20 * time.Second)
		if err != nil {
			return out, err
		}
		f := failover{killed: lead, killAt: e.clk.now()}
		next = time.Now().Add(every)
		cl.kill(lead)
		f.newLeader, err = cl.leader(20 * time.Second)
		f.leaderAt = e.clk.now()
		if err != nil {
			if serr := cl.start(lead); serr != nil {
				return out, fmt.Errorf("%v; restarting node %d: %v", err, lead+1, serr)
			}
			return out, fmt.Errorf("after killing node %d: %v", lead+1, err)
		}
		time.Sleep(pause)
		if err := cl.start(lead); err != nil {
			return out, err
		}
		f.restartAt = e.clk.now()
		out = append(out, f)
		// Give the restarted node a moment to catch up before the next kill.
		if earliest := time.Now().Add(time.Second); next.Before(earliest) {
			next = earliest
		}
	}
}
