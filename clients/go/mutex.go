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
	resp, err := acquire(ctx, m.c, grant[*batonv1.AcquireLockResponse]{
		field: "acquire_lock", owner: o, req: req, resend: true,
		unary: func(ctx context.Context, r proto.Message) (*batonv1.AcquireLockResponse, error) {
			return m.c.raw.Locks.Acquire(ctx, r.(*batonv1.AcquireLockRequest))
		},
		rollback: func(ctx context.Context, resp *batonv1.AcquireLockResponse) {
			_, _ = m.c.releaseLock(ctx, o, &batonv1.ReleaseLockRequest{Name: m.name, Token: resp.GetToken(), SessionId: o.sessionID()})
		},
	})
	if err != nil {
		return nil, ownedErr(ctx, op, m.name, o, err)
	}
	return newHeldLock(m.c, m.name, o, resp.GetToken(), resp.GetOutcome(), req.RequestId, fromDur(resp.GetExpiresIn())), nil
}

// ownedErr wraps the error of a wait for an owner: one that ended because
// the owner's session ended matches ErrSessionLost.
func ownedErr(ctx context.Context, op, name string, o owner, err error) error {
	err = wrapErr(ctx, op, name, err)
	if o.sess != nil && (status.Code(err) == codes.Aborted || o.sess.lost()) {
		tag(err, ErrSessionLost)
	}
	return err
}

func newHeldLock(c *Client, name string, o owner, token uint64, outcome GrantOutcome, requestID string, expiresIn time.Duration) *HeldLock {
	return &HeldLock{
		c: c, name: name, owner: o, token: token, outcome: outcome, requestID: requestID, expiresIn: expiresIn,
		lost: newLostSignal(o, "Locks.Acquire", name, expiresIn),
	}
}

func (c *Client) releaseLock(ctx context.Context, o owner, req *batonv1.ReleaseLockRequest) (*batonv1.ReleaseLockResponse, error) {
	return call(ctx, c, o.sid == 0, "release_lock", req, func(ctx context.Context) (*batonv1.ReleaseLockResponse, error) {
		return c.raw.Locks.Release(ctx, req)
	})
}

// Held returns a handle on an existing grant of this lock, known by its
// token and owning session id (0 for a lease-only grant): one taken by
// another process, e.g. `baton lock NAME --ttl 60s`, to Unlock or Refresh it.
func (m *Mutex) Held(token, sessionID uint64) *HeldLock {
	return newHeldLock(m.c, m.name, owner{sid: sessionID}, token, 0, "", 0)
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
	lost      *lostSignal

	mu       sync.Mutex
	token    uint64
	released bool
}

// Done is closed when the grant is lost: its session ended (lost or
// closed), its lease ran out unrefreshed (lease-only grants), or the server
// answered that it is not held to a Refresh or Unlock. Err then says why.
// It is not closed by Unlock: a released grant is not lost.
func (l *HeldLock) Done() <-chan struct{} { return l.lost.done() }

// Err is nil until Done is closed, then why the grant was lost (an error
// matching ErrSessionLost or ErrNotHeld).
func (l *HeldLock) Err() error { return l.lost.err() }

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
	_, err := l.c.releaseLock(ctx, l.owner, &batonv1.ReleaseLockRequest{Name: l.name, Token: l.token, SessionId: l.owner.sessionID()})
	if err == nil || status.Code(err) == codes.FailedPrecondition {
		l.released = true
	}
	err = notHeld(wrapErr(ctx, op, l.name, err))
	if err == nil {
		l.lost.released()
	} else {
		l.lost.answered(err)
	}
	return err
}

// Refresh extends the grant's lease to ttl from now and returns the time
// left. Errors: ErrNotHeld.
func (l *HeldLock) Refresh(ctx context.Context, ttl time.Duration) (time.Duration, error) {
	l.mu.Lock()
	token := l.token
	l.mu.Unlock()
	req := &batonv1.RefreshLockRequest{Name: l.name, Token: token, SessionId: l.owner.sessionID(), Ttl: dur(ttl)}
	resp, err := call(ctx, l.c, l.owner.sid == 0, "refresh_lock", req, func(ctx context.Context) (*batonv1.RefreshLockResponse, error) {
		return l.c.raw.Locks.Refresh(ctx, req)
	})
	if err != nil {
		err = notHeld(wrapErr(ctx, "Locks.Refresh", l.name, err))
		l.lost.answered(err)
		return 0, err
	}
	l.lost.extended(fromDur(resp.GetExpiresIn()))
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

// isNotHeldAnswer reports whether the server answered that a holding is not
// held (NOT_FOUND or FAILED_PRECONDITION).
func isNotHeldAnswer(err error) bool {
	c := status.Code(err)
	return c == codes.NotFound || c == codes.FailedPrecondition
}

// notHeld tags a FAILED_PRECONDITION of a release-like call as ErrNotHeld.
func notHeld(err error) error {
	if status.Code(err) == codes.FailedPrecondition {
		return tag(err, ErrNotHeld)
	}
	return err
}
