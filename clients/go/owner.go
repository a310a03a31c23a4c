package baton

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HandleOption configures a handle (c.Mutex, c.Semaphore, c.Queue, ...):
// who owns what it acquires, and per-kind settings.
type HandleOption func(*handleConfig)

type handleConfig struct {
	session   *Session
	noSession bool
	lease     time.Duration
	requestID string
	retention time.Duration
	queue     *QueueOptions
}

func newHandleConfig(opts []HandleOption) handleConfig {
	var h handleConfig
	for _, o := range opts {
		o(&h)
	}
	return h
}

// WithSession makes s own what the handle acquires, instead of the client's
// session. On waits that only optionally take a session (Event.Wait,
// Future.Await, Barrier.Wait) it makes the wait end with ErrSessionLost if s
// ends; without it those waits are not tied to any session.
func WithSession(s *Session) HandleOption { return func(h *handleConfig) { h.session = s } }

// WithLease adds a lease: what the handle acquires is released ttl after the
// grant unless refreshed (HeldLock.Refresh, Permits.Refresh, Job.Heartbeat),
// or, for queue items, redelivered (the visibility timeout). Alone it is in
// addition to the session: released when either ends.
func WithLease(ttl time.Duration) HandleOption { return func(h *handleConfig) { h.lease = ttl } }

// WithoutSession makes the lease (WithLease, required) the only owner: the
// holding survives this client, e.g. a lock taken by a cron job for a run
// that outlives the process.
func WithoutSession() HandleOption { return func(h *handleConfig) { h.noSession = true } }

// WithRequestID sets the idempotency key of Lock and Acquire calls. By
// default every call gets a fresh random key, which the client reuses when it
// retries the call after a dropped connection; set one to recover a grant
// across processes (the same key and owner return the held grant, with
// outcome OutcomeReplayed).
func WithRequestID(id string) HandleOption { return func(h *handleConfig) { h.requestID = id } }

// WithRetention sets how long a done future is kept (Future.Set, SetError,
// Cancel); default: the server's --future_retention_s.
func WithRetention(d time.Duration) HandleOption { return func(h *handleConfig) { h.retention = d } }

// WithQueueOptions declares a queue's order and limits; sent with every Put,
// Get and Consume of the handle (see QueueOptions).
func WithQueueOptions(o QueueOptions) HandleOption {
	return func(h *handleConfig) { h.queue = &o }
}

// owner is who a request acquires for: a session, a lease, or both.
type owner struct {
	sess *Session // nil for a lease-only owner, or a session known by id only
	sid  uint64   // the session's id (0: none)
	ttl  time.Duration
}

func (o owner) sessionID() uint64 { return o.sid }

// resolveOwner picks the owner for an acquiring call, opening the client's
// session if the handle uses it and it is not open yet.
func (c *Client) resolveOwner(ctx context.Context, op, name string, h *handleConfig) (owner, error) {
	if h.noSession {
		if h.lease <= 0 {
			return owner{}, localErr(op, name, ErrInvalidArgument, "WithoutSession needs WithLease")
		}
		return owner{ttl: h.lease}, nil
	}
	s := h.session
	if s == nil {
		var err error
		if s, err = c.Session(ctx); err != nil {
			return owner{}, err
		}
	}
	if s.lost() {
		return owner{}, wrapErr(nil, op, name, s.Err())
	}
	return owner{sess: s, sid: s.id, ttl: h.lease}, nil
}

// optionalSession is the session_id for waits that take one optionally: the
// handle's explicit session, else none.
func (h *handleConfig) optionalSession() *Session { return h.session }

// retryAcquire runs call, an Acquire carrying a fixed request id, until it
// returns something other than UNAVAILABLE: a dropped connection may have
// lost a grant's reply, and the retry with the same request id recovers it
// (GRANT_OUTCOME_REPLAYED) or queues again. Retries stop with ctx, when the
// owning session is lost, or, for a lease-only owner, after one lease TTL
// (by then a lost grant has run out anyway).
func retryAcquire(ctx context.Context, o owner, call func() error) error {
	wait := 20 * time.Millisecond
	windowEnd := time.Now().Add(o.ttl)
	for {
		err := call()
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return err
		}
		if o.sess != nil && o.sess.lost() {
			return err
		}
		if o.sess == nil && time.Now().After(windowEnd) {
			return err
		}
		if !sleepCtx(ctx, wait) {
			return err
		}
		wait = minDur(wait*2, time.Second)
	}
}
