package baton

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Transport is how a client carries its operations (WithTransport).
type Transport int

const (
	// Stream carries the client's session and every operation it can on one
	// baton.v1.Stream/Connect call (stream.proto), many operations per
	// message each way. The default.
	Stream Transport = iota
	// Unary makes one unary call per operation, and keeps the session alive
	// with Sessions/KeepAliveStream.
	Unary
)

func (t Transport) String() string {
	switch t {
	case Stream:
		return "stream"
	case Unary:
		return "unary"
	}
	return "transport(?)"
}

// WithTransport chooses the transport (default Stream). Calls the stream
// cannot carry go unary on the same connection either way: Sessions/Open,
// KeepAlive and Close, calls for lease-only holdings (WithoutSession),
// Queues/Consume (Queue.Consume), Events/Watch and Admin/SaveSnapshot.
func WithTransport(t Transport) Option { return func(c *config) { c.transport = t } }

// OnSessionLost sets a function called (on a goroutine of its own) when the
// client's own session is lost: the server no longer
// knows it (it expired or was closed from elsewhere), or nothing was heard
// from the server for a whole TTL. Every holding of that session has fired
// its lost signal (HeldLock.Done, Permits.Done) and every operation pending
// in it has ended with ErrSessionLost; the client opens a new session for
// the operations that follow (on the unary transport: at the next use).
// err matches ErrSessionLost. Not called for a session ended by Close or
// Orphan, nor for sessions of NewSession or ResumeSession (see Session.Done).
func OnSessionLost(f func(lost *Session, err error)) Option {
	return func(c *config) { c.onSessionLost = f }
}

// The contract's timings (clients/README.md).
const (
	streamBackoffBase = 100 * time.Millisecond
	streamBackoffMax  = 2 * time.Second
	streamBackoffMul  = 1.6
	// rollbackWait bounds how long a cancelled wait waits for its final
	// outcome (to roll back a grant that crossed the cancel).
	rollbackWait = 10 * time.Second
	// deadlineGrace is how long an operation whose ctx deadline passed
	// waits for the server's own DEADLINE_EXCEEDED before cancelling.
	deadlineGrace = time.Second
)

// probeInterval is how often the session is probed: TTL/3, clamped to
// 100 ms .. 5 s.
func probeInterval(ttl time.Duration) time.Duration {
	return clampDur(ttl/3, 100*time.Millisecond, 5*time.Second)
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// errStreamBroken ends an operation that was sent on a stream that broke
// before its answer came: its outcome is unknown.
var errStreamBroken = status.Error(codes.Unavailable,
	"the session stream broke during the call; it may or may not have taken effect")

// opFlags say how an operation survives a broken stream and a cancel.
type opFlags struct {
	// resend: a wait that carries a request_id. Sent on a stream that broke,
	// it is sent again on the next one with what is left of its deadline
	// (or, after its ctx ended, with a zero timeout, to learn what it got).
	resend bool
	// outcome: when ctx ends, the caller waits for the operation's final
	// outcome, so that a grant that crossed the cancel can be rolled back.
	outcome bool
	// late receives a grant that came back after do gave up waiting for
	// the outcome of a cancelled operation (rollbackWait), to roll it back.
	late func(*batonv1.OperationResult)
}

type streamOp struct {
	id    uint64
	op    *batonv1.Operation
	req   protoreflect.Message // the request inside op
	sess  *Session             // the session it acts for (nil: none)
	flags opFlags
	// The request's own timeout (nil: none) and the ctx deadline (zero:
	// none): a re-send sends the smaller of the two, counted from now.
	timeout  *durationpb.Duration
	deadline time.Time

	sentOn    uint64 // generation of the stream it is in flight on; 0 while queued
	sentAt    time.Time
	everSent  bool
	cancelled bool // ctx ended after it was sent: cancel, or recover with a zero timeout
	finished  bool
	done      chan struct{}
	res       *batonv1.OperationResult
	err       error
}

// streamConn is the session stream of a client: one Stream/Connect call at
// a time (re-opened after a break), one writer goroutine that sends every
// queued operation and cancellation in one message per write, one reader
// that resolves results by id, and a prober.
type streamConn struct {
	c *Client

	mu       sync.Mutex
	ops      map[uint64]*streamOp // pending: queued or in flight
	queue    []*streamOp          // to send, in order
	cancels  []uint64             // ids to cancel on the current stream
	nextID   uint64
	gen      uint64 // generation of the current stream
	live     bool   // the current stream is welcomed
	sess     *Session
	changed  chan struct{} // closed and replaced when sess, live or openErr change
	openErr  error         // why the runner gave up opening a session
	running  bool
	closing  bool
	breakCur context.CancelFunc // breaks the current stream

	breaks  atomic.Int64 // welcomed streams that broke
	msgs    atomic.Int64 // messages written after the hello
	opsSent atomic.Int64 // operations written

	wake    chan struct{}
	stopCtx context.Context
	stop    context.CancelFunc
	runDone chan struct{}
}

func newStreamConn(c *Client) *streamConn {
	sc := &streamConn{c: c, ops: map[uint64]*streamOp{}, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
	sc.stopCtx, sc.stop = context.WithCancel(context.Background())
	return sc
}

func (sc *streamConn) signal() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// notifyLocked wakes whoever waits for a change of sess, live or openErr.
func (sc *streamConn) notifyLocked() {
	close(sc.changed)
	sc.changed = make(chan struct{})
}

// startLocked starts the runner if it is not running.
func (sc *streamConn) startLocked() {
	if sc.running || sc.closing {
		return
	}
	sc.running = true
	sc.openErr = nil
	sc.runDone = make(chan struct{})
	go sc.run(sc.runDone)
}

// session returns the stream's current session, opening the stream (and
// with it a session) if needed.
func (sc *streamConn) session(ctx context.Context) (*Session, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for {
		if sc.closing {
			return nil, localErr("Stream.Connect", "", ErrClientClosed, "client closed")
		}
		if sc.sess != nil && !sc.sess.lost() {
			return sc.sess, nil
		}
		if sc.openErr != nil && !sc.running {
			err := sc.openErr
			sc.openErr = nil // the next call tries again
			return nil, err
		}
		sc.startLocked()
		ch := sc.changed
		sc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			sc.mu.Lock()
			return nil, wrapErr(ctx, "Stream.Connect", "", ctx.Err())
		}
		sc.mu.Lock()
	}
}

// run keeps a stream open: it re-opens it after a break, with the same
// session while the session may still be alive, else with a new one.
func (sc *streamConn) run(done chan struct{}) {
	defer close(done)
	backoff := streamBackoffBase
	var failingSince time.Time
	for sc.stopCtx.Err() == nil {
		sc.mu.Lock()
		sess := sc.sess
		sc.mu.Unlock()
		resume := sess != nil && !sess.lost()
		if resume && !time.Now().Before(sess.ExpiresAt()) {
			sc.loseSession(sess, localErr("Stream.Connect", "", ErrSessionLost,
				"nothing heard from the server within the session TTL"))
			continue
		}
		var cur *Session
		if resume {
			cur = sess
		}
		welcomed, err := sc.connect(cur)
		if sc.stopCtx.Err() != nil {
			return
		}
		if welcomed {
			backoff, failingSince = streamBackoffBase, time.Time{}
		} else {
			code := status.Code(err)
			if resume && code == codes.NotFound {
				sc.loseSession(sess, tag(wrapErr(nil, "Stream.Connect", "", err), ErrSessionLost))
				continue
			}
			if !resume {
				if failingSince.IsZero() {
					failingSince = time.Now()
				}
				retryable := code == codes.Unavailable || code == codes.Internal || code == codes.Unknown || code == codes.Canceled
				if !retryable || time.Since(failingSince) > openRetryWindow {
					sc.giveUp(wrapErr(nil, "Stream.Connect", "", err))
					return
				}
			}
		}
		select {
		case <-sc.stopCtx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		backoff = min(time.Duration(float64(backoff)*streamBackoffMul), streamBackoffMax)
	}
}

// giveUp stops the runner after a session could not be opened: waiters
// and queued operations fail with err.
func (sc *streamConn) giveUp(err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.running = false
	sc.openErr = err
	for _, o := range sc.ops {
		sc.finishLocked(o, nil, err)
	}
	sc.queue = nil
	sc.notifyLocked()
}

// connect runs one Stream/Connect call until it breaks. sess is the session
// to resume (nil: open a new one).
func (sc *streamConn) connect(sess *Session) (welcomed bool, err error) {
	ctx, cancel := context.WithCancel(sc.stopCtx)
	defer cancel()
	stream, err := sc.c.raw.Stream.Connect(ctx)
	if err != nil {
		return false, err
	}
	hello := &batonv1.StreamHello{SessionId: sess.idOrZero()}
	if sess == nil {
		hello = &batonv1.StreamHello{Ttl: dur(sc.c.cfg.sessionTTL), Label: sc.c.cfg.sessionLabel}
	}
	sent := time.Now()
	// Bound the wait for the welcome: the session's grace period when
	// resuming, the open retry window otherwise.
	limit := openRetryWindow
	if sess != nil {
		limit = time.Until(sess.ExpiresAt())
	}
	timer := time.AfterFunc(limit, cancel)
	if err := stream.Send(&batonv1.StreamRequest{Hello: hello}); err != nil {
		timer.Stop()
		_, rerr := stream.Recv() // the real status
		if rerr != nil {
			return false, rerr
		}
		return false, err
	}
	first, err := stream.Recv()
	timer.Stop()
	if err != nil {
		return false, err
	}
	w := first.GetWelcome()
	if w == nil {
		return false, status.Error(codes.Internal, "the session stream's first answer is not a welcome")
	}

	sc.mu.Lock()
	if sc.closing {
		sc.mu.Unlock()
		return false, status.Error(codes.Canceled, "client closed")
	}
	if sess == nil || sess.id != w.GetSessionId() {
		ttl := fromDur(w.GetTtl())
		if ttl <= 0 {
			ttl = sc.c.cfg.sessionTTL
		}
		sess = sc.c.newStreamSession(sc, w.GetSessionId(), ttl, sc.c.cfg.sessionLabel, sent)
		sc.sess = sess
	} else {
		sess.touch(sent)
	}
	sc.gen++
	gen := sc.gen
	sc.live = true
	sc.breakCur = cancel
	sc.cancels = nil
	sc.notifyLocked()
	sc.mu.Unlock()
	sc.signal()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sc.write(ctx, cancel, stream, gen) }()
	go func() { defer wg.Done(); sc.probe(ctx, cancel, sess) }()
	for {
		resp, rerr := stream.Recv()
		if rerr != nil {
			err = rerr
			break
		}
		sc.answer(resp, sess)
	}
	cancel()
	wg.Wait()
	sc.breaks.Add(1)
	sc.mu.Lock()
	sc.live = false
	sc.breakCur = nil
	sc.breakLocked(gen)
	sc.notifyLocked()
	sc.mu.Unlock()
	return true, err
}

// write sends what is queued, one message per write, until the stream
// ends.
func (sc *streamConn) write(ctx context.Context, breakStream context.CancelFunc, stream batonv1.Stream_ConnectClient, gen uint64) {
	for {
		select {
		case <-ctx.Done():
			sc.signal() // a wake taken here belongs to the next stream
			return
		case <-sc.wake:
		}
		sc.mu.Lock()
		if sc.gen != gen || !sc.live {
			sc.mu.Unlock()
			sc.signal()
			return
		}
		req := &batonv1.StreamRequest{Cancel: sc.cancels}
		sc.cancels = nil
		now := time.Now()
		for _, o := range sc.queue {
			if sc.ops[o.id] != o {
				continue // cancelled before it was sent
			}
			o.sentOn, o.sentAt, o.everSent = gen, now, true
			if o.flags.resend {
				o.applyTimeout(now)
			}
			req.Ops = append(req.Ops, o.op)
		}
		sc.queue = nil
		if len(req.Ops) == 0 && len(req.Cancel) == 0 {
			sc.mu.Unlock()
			continue
		}
		sc.mu.Unlock()
		// The requests do not change while sent: only queued operations
		// (sentOn 0) are modified, and these are in flight.
		sc.msgs.Add(1)
		sc.opsSent.Add(int64(len(req.Ops)))
		if err := stream.Send(req); err != nil {
			breakStream() // the reader sees the break
			return
		}
	}
}

// probe asks for the session every probeInterval: a session closed from
// elsewhere answers NOT_FOUND, which loses it; an unanswered probe breaks
// the stream (which is re-opened).
func (sc *streamConn) probe(ctx context.Context, breakStream context.CancelFunc, sess *Session) {
	every := probeInterval(sess.ttl)
	patience := clampDur(sess.ttl/2, 200*time.Millisecond, 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !time.Now().Before(sess.ExpiresAt()) {
			sc.loseSession(sess, localErr("Sessions.Describe", "", ErrSessionLost,
				"nothing heard from the server within the session TTL"))
			return
		}
		pctx, cancel := context.WithTimeout(ctx, patience)
		op := &batonv1.Operation{Op: &batonv1.Operation_DescribeSession{DescribeSession: &batonv1.DescribeSessionRequest{SessionId: sess.id}}}
		_, err := sc.do(pctx, nil, op, opFlags{})
		timedOut := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case status.Code(err) == codes.NotFound:
			sc.loseSession(sess, tag(wrapErr(nil, "Sessions.Describe", "", err), ErrSessionLost))
			return
		case timedOut:
			breakStream()
			return
		}
	}
}

// answer resolves the results of a message by id.
func (sc *streamConn) answer(resp *batonv1.StreamResponse, sess *Session) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, r := range resp.GetResults() {
		o := sc.ops[r.GetId()]
		if o == nil {
			continue // cancelled, nobody waits
		}
		sess.touch(o.sentAt)
		if r.GetCode() != 0 {
			sc.finishLocked(o, r, status.Error(codes.Code(r.GetCode()), r.GetMessage()))
		} else {
			sc.finishLocked(o, r, nil)
		}
	}
}

// breakLocked deals with the operations in flight on the stream gen, which
// broke: waits with a request_id go back to the queue for the next stream;
// the others end with UNAVAILABLE.
func (sc *streamConn) breakLocked(gen uint64) {
	var requeue []*streamOp
	for _, o := range sc.ops {
		if o.sentOn != gen {
			continue
		}
		o.sentOn = 0
		if o.flags.resend {
			if o.cancelled { // recover: ask with a zero timeout
				o.timeout, o.deadline = zeroDur(), time.Time{}
				setTimeout(o.req, zeroDur())
			}
			requeue = append(requeue, o)
		} else {
			sc.finishLocked(o, nil, errStreamBroken)
		}
	}
	// Oldest first, as they were sent.
	for i := 1; i < len(requeue); i++ {
		for j := i; j > 0 && requeue[j].id < requeue[j-1].id; j-- {
			requeue[j], requeue[j-1] = requeue[j-1], requeue[j]
		}
	}
	sc.queue = append(requeue, sc.queue...)
	sc.cancels = nil
}

func (sc *streamConn) finishLocked(o *streamOp, res *batonv1.OperationResult, err error) {
	if o.finished {
		return
	}
	if sc.ops[o.id] == o {
		delete(sc.ops, o.id)
	}
	o.finished, o.res, o.err = true, res, err
	close(o.done)
}

// loseSession ends sess as lost: its pending operations fail with err, its
// holdings fire their lost signal, the current stream is dropped and the
// runner opens a new session; OnSessionLost is told.
func (sc *streamConn) loseSession(sess *Session, err error) {
	if !sc.endSession(sess, err) {
		return
	}
	if f := sc.c.cfg.onSessionLost; f != nil {
		go f(sess, err)
	}
}

// endSession ends sess (lost, closed, orphaned) with cause; false if it had
// ended already.
func (sc *streamConn) endSession(sess *Session, cause error) bool {
	sc.mu.Lock()
	if sess.lost() {
		sc.mu.Unlock()
		return false
	}
	for _, o := range sc.ops {
		if o.sess == sess {
			sc.finishLocked(o, nil, cause)
		}
	}
	var brk context.CancelFunc
	if sc.sess == sess {
		brk = sc.breakCur
	}
	sc.notifyLocked()
	sc.mu.Unlock()
	sess.loseWith(cause)
	if brk != nil {
		brk()
	}
	return true
}

// do sends one operation and waits for its result. It returns the result
// (code 0) or the error it ended with. When ctx ends first, an operation
// not yet sent is dropped, one in flight is cancelled on the server; with
// flags.outcome, do waits for its final outcome and returns a grant that
// crossed the cancel along with ctx's error, for the caller to roll back.
func (sc *streamConn) do(ctx context.Context, sess *Session, op *batonv1.Operation, flags opFlags) (*batonv1.OperationResult, error) {
	o := &streamOp{op: op, sess: sess, flags: flags, done: make(chan struct{})}
	o.req = innerRequest(op)
	if o.req != nil {
		o.timeout = getTimeout(o.req)
		if d, ok := ctx.Deadline(); ok {
			o.deadline = d
			o.applyTimeout(time.Now())
		}
	}
	sc.mu.Lock()
	if sc.closing {
		sc.mu.Unlock()
		return nil, ErrClientClosed
	}
	if sess != nil && sess.lost() {
		sc.mu.Unlock()
		return nil, sess.Err()
	}
	if ctx.Err() != nil {
		sc.mu.Unlock()
		return nil, ctx.Err()
	}
	sc.startLocked()
	sc.nextID++
	o.id = sc.nextID
	op.Id = o.id
	sc.ops[o.id] = o
	sc.queue = append(sc.queue, o)
	sc.mu.Unlock()
	sc.signal()

	select {
	case <-o.done:
		return o.res, o.err
	case <-ctx.Done():
	}
	sc.mu.Lock()
	sent := o.everSent
	sc.mu.Unlock()
	if sent && !o.deadline.IsZero() && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The request's timeout is the deadline: the server times the wait
		// out by itself at about this moment. Wait a little for that
		// answer, so that the outcome is the server's, as on the unary
		// transport (a barrier breaks on a timeout, not on a cancel).
		t := time.NewTimer(deadlineGrace)
		select {
		case <-o.done:
			t.Stop()
			return o.res, o.err
		case <-t.C:
		}
	}
	ctxErr := ctx.Err()
	sc.mu.Lock()
	if o.finished {
		sc.mu.Unlock()
		return o.res, o.err
	}
	if !o.everSent {
		sc.finishLocked(o, nil, ctxErr)
		sc.mu.Unlock()
		return nil, ctx.Err()
	}
	o.cancelled = true
	if o.sentOn != 0 && o.sentOn == sc.gen && sc.live {
		sc.cancels = append(sc.cancels, o.id)
	} else if o.sentOn == 0 && o.flags.resend {
		o.timeout, o.deadline = zeroDur(), time.Time{} // recover: ask with a zero timeout
		setTimeout(o.req, zeroDur())
	}
	sc.mu.Unlock()
	sc.signal()
	if !flags.outcome {
		return nil, ctx.Err()
	}
	t := time.NewTimer(rollbackWait)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
	case <-sc.stopCtx.Done():
	}
	sc.mu.Lock()
	finished := o.finished
	sc.mu.Unlock()
	if !finished {
		// No outcome yet (the stream is down): the caller goes on, the
		// operation stays pending, and a grant that comes back later is
		// handed to flags.late.
		if late := flags.late; late != nil {
			go func() {
				<-o.done
				if o.res != nil && o.res.GetCode() == 0 {
					late(o.res)
				}
			}()
		}
		return nil, ctxErr
	}
	if o.res != nil && o.res.GetCode() == 0 {
		return o.res, ctxErr
	}
	return nil, ctxErr
}

// applyTimeout sets the request's timeout to the smaller of its own and
// what is left of the deadline.
func (o *streamOp) applyTimeout(now time.Time) {
	if o.req == nil || o.deadline.IsZero() {
		return
	}
	left := max(o.deadline.Sub(now), 0)
	if o.timeout != nil && o.timeout.AsDuration() <= left {
		setTimeout(o.req, o.timeout)
		return
	}
	setTimeout(o.req, durationpb.New(left))
}

// close ends the stream for good: the session is closed on the server
// (releasing what it holds), pending operations fail with ErrClientClosed.
func (sc *streamConn) close(ctx context.Context) error {
	sc.mu.Lock()
	if sc.closing {
		sc.mu.Unlock()
		return nil
	}
	sc.closing = true
	sess := sc.sess
	for _, o := range sc.ops {
		sc.finishLocked(o, nil, ErrClientClosed)
	}
	sc.queue = nil
	done := sc.runDone
	sc.notifyLocked()
	sc.mu.Unlock()
	var err error
	if sess != nil && !sess.lost() {
		sess.loseWith(ErrSessionClosed)
		_, err = sc.c.raw.Sessions.Close(ctx, &batonv1.CloseSessionRequest{SessionId: sess.id})
		err = wrapErr(ctx, "Sessions.Close", "", err)
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
	}
	sc.stop()
	if done != nil {
		<-done
	}
	return err
}

// innerRequest is the request message inside op's oneof.
func innerRequest(op *batonv1.Operation) protoreflect.Message {
	m := op.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("op")
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Mutable(fd).Message()
}

var durationName = (&durationpb.Duration{}).ProtoReflect().Descriptor().FullName()

func timeoutField(m protoreflect.Message) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName("timeout")
	if fd == nil || fd.Message() == nil || fd.Message().FullName() != durationName {
		return nil
	}
	return fd
}

func getTimeout(m protoreflect.Message) *durationpb.Duration {
	fd := timeoutField(m)
	if fd == nil || !m.Has(fd) {
		return nil
	}
	return proto.Clone(m.Get(fd).Message().Interface()).(*durationpb.Duration)
}

func setTimeout(m protoreflect.Message, d *durationpb.Duration) {
	if m == nil {
		return
	}
	if fd := timeoutField(m); fd != nil {
		m.Set(fd, protoreflect.ValueOfMessage(proto.Clone(d).ProtoReflect()))
	}
}

// operation wraps req in the Operation field named field.
func operation(field string, req proto.Message) *batonv1.Operation {
	op := &batonv1.Operation{}
	m := op.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	m.Set(fd, protoreflect.ValueOfMessage(req.ProtoReflect()))
	return op
}

// resultOf is the response in the OperationResult field named field.
func resultOf(res *batonv1.OperationResult, field string) proto.Message {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if !m.Has(fd) {
		return m.Mutable(fd).Message().Interface() // an empty response
	}
	return m.Get(fd).Message().Interface()
}
