package baton

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// GrantOutcome tells how an acquire was granted.
type GrantOutcome = batonv1.GrantOutcome

const (
	OutcomeImmediate = batonv1.GrantOutcome_GRANT_OUTCOME_IMMEDIATE
	OutcomeAfterWait = batonv1.GrantOutcome_GRANT_OUTCOME_AFTER_WAIT
	OutcomeReplayed  = batonv1.GrantOutcome_GRANT_OUTCOME_REPLAYED
)

// Mutex is a handle on a Baton lock (asyncio.Lock across processes): FIFO
// fair, with a fencing token per grant. It holds no state; Lock returns a
// HeldLock for each grant. Safe for concurrent use.
type Mutex struct {
	c    *Client
	name string
	h    handleConfig
}

// Mutex returns a handle on the lock name. Grants are owned by the client's
// session unless opts say otherwise (WithSession, WithLease, WithoutSession).
func (c *Client) Mutex(name string, opts ...HandleOption) *Mutex {
	return &Mutex{c: c, name: name, h: newHandleConfig(opts)}
}

// Name is the lock's name.
func (m *Mutex) Name() string { return m.name }

// Lock waits in line until the lock is granted, ctx is done (ErrTimeout,
// ErrCanceled) or the owning session ends (ErrSessionLost). Cancelling ctx
// cancels the wait on the server; a grant racing with the cancel is rolled
// back, never leaked.
func (m *Mutex) Lock(ctx context.Context) (*HeldLock, error) { return m.acquire(ctx, false) }

// TryLock takes the lock only if it is free now; otherwise it fails with an
// error matching ErrWouldBlock (and ErrTimeout).
func (m *Mutex) TryLock(ctx context.Context) (*HeldLock, error) {
	h, err := m.acquire(ctx, true)
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return nil, tag(err, ErrWouldBlock)
	}
	return h, err
}

func (m *Mutex) acquire(ctx context.Context, try bool) (*HeldLock, error) {
	const op = "Locks.Acquire"
	o, err := m.c.resolveOwner(ctx, op, m.name, &m.h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := o.sess.bind(ctx)
	defer cancel()
	req := &batonv1.AcquireLockRequest{Name: m.name, SessionId: o.sessionID(), Ttl: dur(o.ttl), RequestId: m.h.requestID}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	if try {
		req.Timeout = zeroDur()
	}
	var resp *batonv1.AcquireLockResponse
	err = retryAcquire(ctx, o, func() error {
		var e error
		resp, e = m.c.raw.Locks.Acquire(ctx, req)
		return e
	})
	if err != nil {
		if ctx.Err() != nil {
			m.rollBack(ctx, o, req)
		}
		err = wrapErr(ctx, op, m.name, err)
		if o.sess != nil && (status.Code(err) == codes.Aborted || o.sess.lost()) {
			tag(err, ErrSessionLost)
		}
		return nil, err
	}
	return &HeldLock{
		c: m.c, name: m.name, owner: o, token: resp.GetToken(), outcome: resp.GetOutcome(),
		requestID: req.RequestId, expiresIn: fromDur(resp.GetExpiresIn()),
	}, nil
}

// rollBack releases a grant whose reply the client gave up on. When ctx ends
// while Acquire is under way, the server rolls the grant back if it notices
// before the reply leaves; if the reply was already on the wire, gRPC drops
// it and the grant stands, owned by us. lock.proto's recovery: retry with the
// same request_id and a zero timeout; REPLAYED returns that grant. Any grant
// the retry returns (the replayed one, or a fresh one if the lock was free)
// is released at once. If the session is gone there is nothing to do.
func (m *Mutex) rollBack(ctx context.Context, o owner, req *batonv1.AcquireLockRequest) {
	if o.sess != nil && o.sess.lost() {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	retry := proto.Clone(req).(*batonv1.AcquireLockRequest)
	retry.Timeout = zeroDur()
	resp, err := m.c.raw.Locks.Acquire(rctx, retry)
	if err != nil {
		return
	}
	_, _ = m.c.raw.Locks.Release(rctx, &batonv1.ReleaseLockRequest{Name: m.name, Token: resp.GetToken(), SessionId: o.sessionID()})
}

// Held returns a handle on an existing grant of this lock, known by its
// token and owning session id (0 for a lease-only grant): one taken by
// another process, e.g. `baton lock NAME --ttl 60s`, to Unlock or Refresh it.
func (m *Mutex) Held(token, sessionID uint64) *HeldLock {
	return &HeldLock{c: m.c, name: m.name, owner: owner{sid: sessionID}, token: token}
}

// Cond returns the condition cond bound to this lock (see Condition).
func (m *Mutex) Cond(cond string) *Condition {
	return &Condition{c: m.c, lock: m.name, name: cond}
}

// HeldLock is one grant of a lock. Its methods are safe for concurrent use.
type HeldLock struct {
	c         *Client
	name      string
	owner     owner
	outcome   GrantOutcome
	requestID string
	expiresIn time.Duration

	mu       sync.Mutex
	token    uint64
	released bool
}

// Name is the lock's name.
func (l *HeldLock) Name() string { return l.name }

// Fence is the grant's fencing token: strictly greater than every token the
// server handed out before. Pass it to the storage the lock protects so that
// it can reject a stale holder. Condition.Wait re-acquires the lock and
// changes it.
func (l *HeldLock) Fence() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

// Outcome tells whether the grant was immediate, after waiting, or a replay.
func (l *HeldLock) Outcome() GrantOutcome { return l.outcome }

// RequestID is the idempotency key the grant was made with.
func (l *HeldLock) RequestID() string { return l.requestID }

// ExpiresIn is the lease time left at the grant (0 without a lease).
func (l *HeldLock) ExpiresIn() time.Duration { return l.expiresIn }

// Session is the owning session (nil for a lease-only grant, or one made by
// Held).
func (l *HeldLock) Session() *Session { return l.owner.sess }

// Unlock releases the lock; the oldest waiter gets it. If ctx is already done
// (a common case in a defer), Unlock still tries for up to 5 s. Errors:
// ErrNotHeld (released already, or lost with its session or lease).
func (l *HeldLock) Unlock(ctx context.Context) error {
	const op = "Locks.Release"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return localErr(op, l.name, ErrNotHeld, "already released by this handle")
	}
	ctx, cancel := releaseCtx(ctx)
	defer cancel()
	_, err := l.c.raw.Locks.Release(ctx, &batonv1.ReleaseLockRequest{Name: l.name, Token: l.token, SessionId: l.owner.sessionID()})
	if err == nil || status.Code(err) == codes.FailedPrecondition {
		l.released = true
	}
	return notHeld(wrapErr(ctx, op, l.name, err))
}

// Refresh extends the grant's lease to ttl from now and returns the time
// left. Errors: ErrNotHeld.
func (l *HeldLock) Refresh(ctx context.Context, ttl time.Duration) (time.Duration, error) {
	l.mu.Lock()
	token := l.token
	l.mu.Unlock()
	resp, err := l.c.raw.Locks.Refresh(ctx, &batonv1.RefreshLockRequest{Name: l.name, Token: token, SessionId: l.owner.sessionID(), Ttl: dur(ttl)})
	if err != nil {
		return 0, notHeld(wrapErr(ctx, "Locks.Refresh", l.name, err))
	}
	return fromDur(resp.GetExpiresIn()), nil
}

// releaseCtx gives a release a live context: a release must not be skipped
// because the caller's ctx ended (e.g. `defer held.Unlock(ctx)` after ctx was
// cancelled), or the holding would stay until its session or lease ends.
func releaseCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// notHeld tags a FAILED_PRECONDITION of a release-like call as ErrNotHeld.
func notHeld(err error) error {
	if status.Code(err) == codes.FailedPrecondition {
		return tag(err, ErrNotHeld)
	}
	return err
}
