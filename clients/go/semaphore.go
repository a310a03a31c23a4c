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

// Semaphore is a handle on a Baton semaphore (asyncio.BoundedSemaphore across
// processes, with weighted acquire; FIFO without barging). Safe for
// concurrent use.
type Semaphore struct {
	c        *Client
	name     string
	capacity int64
	h        handleConfig
}

// Semaphore returns a handle on the semaphore name with the given capacity:
// it declares the capacity if the semaphore does not exist yet, and must
// match it otherwise (ErrFailedPrecondition). Capacity 0 means "as
// declared". Holdings are owned as for Mutex.
func (c *Client) Semaphore(name string, capacity int64, opts ...HandleOption) *Semaphore {
	return &Semaphore{c: c, name: name, capacity: capacity, h: newHandleConfig(opts)}
}

// Name is the semaphore's name.
func (s *Semaphore) Name() string { return s.name }

// Acquire waits in line until n permits are free and takes them. Errors and
// cancellation as Mutex.Lock; ErrInvalidArgument for n outside 1..capacity.
func (s *Semaphore) Acquire(ctx context.Context, n int64) (*Permits, error) {
	return s.acquire(ctx, n, false)
}

// TryAcquire takes n permits only if they are free now (and nobody waits
// ahead); otherwise ErrWouldBlock.
func (s *Semaphore) TryAcquire(ctx context.Context, n int64) (*Permits, error) {
	p, err := s.acquire(ctx, n, true)
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return nil, tag(err, ErrWouldBlock)
	}
	return p, err
}

func (s *Semaphore) acquire(ctx context.Context, n int64, try bool) (*Permits, error) {
	const op = "Semaphores.Acquire"
	o, err := s.c.resolveOwner(ctx, op, s.name, &s.h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := o.sess.bind(ctx)
	defer cancel()
	req := &batonv1.AcquireSemaphoreRequest{
		Name: s.name, Capacity: s.capacity, Count: &n,
		SessionId: o.sessionID(), Ttl: dur(o.ttl), RequestId: s.h.requestID,
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	if try {
		req.Timeout = zeroDur()
	}
	resp, err := acquire(ctx, s.c, grant[*batonv1.AcquireSemaphoreResponse]{
		field: "acquire_semaphore", owner: o, req: req, resend: true,
		unary: func(ctx context.Context, r proto.Message) (*batonv1.AcquireSemaphoreResponse, error) {
			return s.c.raw.Semaphores.Acquire(ctx, r.(*batonv1.AcquireSemaphoreRequest))
		},
		rollback: func(ctx context.Context, resp *batonv1.AcquireSemaphoreResponse) {
			_, _ = s.c.releaseSemaphore(ctx, o, &batonv1.ReleaseSemaphoreRequest{Name: s.name, Token: resp.GetToken(), SessionId: o.sessionID()})
		},
	})
	if err != nil {
		return nil, ownedErr(ctx, op, s.name, o, err)
	}
	return newPermits(s.c, s.name, o, resp.GetToken(), resp.GetCount(), resp.GetAvailable(), resp.GetOutcome(), fromDur(resp.GetExpiresIn())), nil
}

func newPermits(c *Client, name string, o owner, token uint64, count, available int64, outcome GrantOutcome, expiresIn time.Duration) *Permits {
	return &Permits{
		c: c, name: name, owner: o, token: token, count: count, available: available, outcome: outcome, expiresIn: expiresIn,
		lost: newLostSignal(o, "Semaphores.Acquire", name, expiresIn),
	}
}

func (c *Client) releaseSemaphore(ctx context.Context, o owner, req *batonv1.ReleaseSemaphoreRequest) (*batonv1.ReleaseSemaphoreResponse, error) {
	return call(ctx, c, o.sid == 0, "release_semaphore", req, func(ctx context.Context) (*batonv1.ReleaseSemaphoreResponse, error) {
		return c.raw.Semaphores.Release(ctx, req)
	})
}

// Delete ends the semaphore's declaration, so that the name may be declared
// again with another capacity (the declaration lasts until then, also while
// no permit is held). It reports whether the semaphore existed. Errors:
// ErrFailedPrecondition while permits are held (release them first) or when
// the name is another kind.
func (s *Semaphore) Delete(ctx context.Context) (bool, error) {
	req := &batonv1.DeleteSemaphoreRequest{Name: s.name}
	resp, err := call(ctx, s.c, false, "delete_semaphore", req, func(ctx context.Context) (*batonv1.DeleteSemaphoreResponse, error) {
		return s.c.raw.Semaphores.Delete(ctx, req)
	})
	if err != nil {
		return false, wrapErr(ctx, "Semaphores.Delete", s.name, err)
	}
	return resp.GetDeleted(), nil
}

// Held returns a handle on an existing holding of this semaphore, known by
// its token and owning session id (0 for a lease-only holding): one taken by
// another process, to Release or Refresh it. Its Count is unknown (0) until
// a ReleaseN reports what remains.
func (s *Semaphore) Held(token, sessionID uint64) *Permits {
	return newPermits(s.c, s.name, owner{sid: sessionID}, token, 0, 0, 0, 0)
}

// Permits is one holding of a semaphore. Its methods are safe for concurrent
// use.
type Permits struct {
	c         *Client
	name      string
	owner     owner
	token     uint64
	available int64
	outcome   GrantOutcome
	expiresIn time.Duration
	lost      *lostSignal

	mu    sync.Mutex
	count int64
}

// Done is closed when the holding is lost, as HeldLock.Done; Err then says
// why. Releasing every permit is not a loss.
func (p *Permits) Done() <-chan struct{} { return p.lost.done() }

// Err is nil until Done is closed, then why the holding was lost.
func (p *Permits) Err() error { return p.lost.err() }

// Token identifies the holding (strictly increasing, like a fencing token).
func (p *Permits) Token() uint64 { return p.token }

// Count is the number of permits still held by this holding.
func (p *Permits) Count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// Available is the number of permits that were free right after the grant.
func (p *Permits) Available() int64 { return p.available }

// Outcome tells whether the grant was immediate, after waiting, or a replay.
func (p *Permits) Outcome() GrantOutcome { return p.outcome }

// Session is the owning session (nil for a lease-only holding, or one made by
// Held).
func (p *Permits) Session() *Session { return p.owner.sess }

// ExpiresIn is the lease time left at the grant (0 without a lease).
func (p *Permits) ExpiresIn() time.Duration { return p.expiresIn }

// Release returns every permit of the holding (tries for up to 5 s if ctx is
// already done, as HeldLock.Unlock). Errors: ErrNotHeld.
func (p *Permits) Release(ctx context.Context) error {
	_, err := p.release(ctx, nil)
	return err
}

// ReleaseN returns n of the holding's permits and reports how many it still
// holds. Errors: ErrNotHeld (also for n larger than held),
// ErrInvalidArgument.
func (p *Permits) ReleaseN(ctx context.Context, n int64) (remaining int64, err error) {
	return p.release(ctx, &n)
}

func (p *Permits) release(ctx context.Context, n *int64) (int64, error) {
	const op = "Semaphores.Release"
	ctx, cancel := releaseCtx(ctx)
	defer cancel()
	resp, err := p.c.releaseSemaphore(ctx, p.owner, &batonv1.ReleaseSemaphoreRequest{Name: p.name, Token: p.token, SessionId: p.owner.sessionID(), Count: n})
	if err != nil {
		err = notHeld(wrapErr(ctx, op, p.name, err))
		p.lost.answered(err)
		return 0, err
	}
	if resp.GetRemaining() == 0 {
		p.lost.released()
	}
	p.mu.Lock()
	p.count = resp.GetRemaining()
	p.mu.Unlock()
	return resp.GetRemaining(), nil
}

// Refresh extends the holding's lease to ttl from now. Errors: ErrNotHeld.
func (p *Permits) Refresh(ctx context.Context, ttl time.Duration) (time.Duration, error) {
	req := &batonv1.RefreshSemaphoreRequest{Name: p.name, Token: p.token, SessionId: p.owner.sessionID(), Ttl: dur(ttl)}
	resp, err := call(ctx, p.c, p.owner.sid == 0, "refresh_semaphore", req, func(ctx context.Context) (*batonv1.RefreshSemaphoreResponse, error) {
		return p.c.raw.Semaphores.Refresh(ctx, req)
	})
	if err != nil {
		err = notHeld(wrapErr(ctx, "Semaphores.Refresh", p.name, err))
		p.lost.answered(err)
		return 0, err
	}
	p.lost.extended(fromDur(resp.GetExpiresIn()))
	return fromDur(resp.GetExpiresIn()), nil
}
