package baton

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Condition is a handle on a Baton condition (asyncio.Condition across
// processes), bound to a lock: Wait needs the lock held (a HeldLock of that
// lock), releases it while waiting, and holds it again when it returns
// without error. Made by Mutex.Cond or Client.Condition.
type Condition struct {
	c    *Client
	lock string
	name string
}

// Condition returns a handle on the condition cond ("" for the unnamed one)
// of the lock named lock.
func (c *Client) Condition(lock, cond string) *Condition {
	return &Condition{c: c, lock: lock, name: cond}
}

// Wait releases held, waits for a Notify, and re-acquires the lock (its new
// fencing token is then held.Fence()). If Wait fails (ctx done: ErrTimeout
// or ErrCanceled, the session ended, ErrNotHeld when held is not the current
// holding), the lock is NOT held any more and held is marked released: the
// server never leaks it, and a caller that cannot tell how the call ended
// recovers by its session or lease ending.
func (cv *Condition) Wait(ctx context.Context, held *HeldLock) error {
	_, err := cv.wait(ctx, held, 0)
	return err
}

// WaitTimeout is Wait with a limit d on the wait for a notify: when it runs
// out, the lock is re-acquired and WaitTimeout returns notified=false with
// no error (the caller holds the lock again). ctx bounds the whole call, the
// re-acquire included, with the consequences described at Wait.
func (cv *Condition) WaitTimeout(ctx context.Context, held *HeldLock, d time.Duration) (notified bool, err error) {
	if d <= 0 {
		d = time.Nanosecond // a zero duration would mean "no limit" to dur
	}
	return cv.wait(ctx, held, d)
}

// WaitUntil waits until pred returns true, re-checking it after every
// wake-up with the lock held (asyncio's wait_for).
func (cv *Condition) WaitUntil(ctx context.Context, held *HeldLock, pred func() bool) error {
	for !pred() {
		if err := cv.Wait(ctx, held); err != nil {
			return err
		}
	}
	return nil
}

func (cv *Condition) wait(ctx context.Context, held *HeldLock, d time.Duration) (bool, error) {
	const op = "Conditions.Wait"
	held.mu.Lock()
	defer held.mu.Unlock()
	if held.released {
		return false, localErr(op, cv.lock, ErrNotHeld, "the lock was released by this handle")
	}
	ctx, cancel := held.owner.sess.bind(ctx)
	defer cancel()
	o := held.owner
	req := &batonv1.ConditionWaitRequest{
		Lock: cv.lock, Condition: cv.name, Token: held.token,
		SessionId: o.sessionID(), Ttl: dur(o.ttl), Timeout: dur(d),
	}
	// The re-acquire is a grant like Lock's: one that crosses a cancel is
	// released. (ConditionWaitRequest has no request_id: a wait whose
	// answer was lost on a broken stream cannot be asked again; the server
	// rolls back what it had not sent, and the session or lease recovers
	// the rest.)
	resp, err := acquire(ctx, cv.c, grant[*batonv1.ConditionWaitResponse]{
		field: "wait_condition", owner: o, req: req,
		unary: func(ctx context.Context, r proto.Message) (*batonv1.ConditionWaitResponse, error) {
			return cv.c.raw.Conditions.Wait(ctx, r.(*batonv1.ConditionWaitRequest))
		},
		rollback: func(ctx context.Context, resp *batonv1.ConditionWaitResponse) {
			_, _ = cv.c.releaseLock(ctx, o, &batonv1.ReleaseLockRequest{Name: cv.lock, Token: resp.GetToken(), SessionId: o.sessionID()})
		},
	})
	if err != nil {
		held.released = true
		err = notHeld(wrapErr(ctx, op, cv.lock, err))
		if o.sess != nil && (status.Code(err) == codes.Aborted || o.sess.lost()) {
			tag(err, ErrSessionLost)
		}
		if isNotHeldAnswer(err) {
			held.lost.lose(err)
		} else {
			held.lost.released()
		}
		return false, err
	}
	held.token = resp.GetToken()
	return resp.GetOutcome() == batonv1.ConditionOutcome_CONDITION_OUTCOME_NOTIFIED, nil
}

// Notify wakes up to n waiters (n <= 0 means 1), oldest first, and returns
// how many it woke. The caller must hold the lock (ErrNotHeld otherwise).
func (cv *Condition) Notify(ctx context.Context, held *HeldLock, n int) (woken int, err error) {
	if n < 0 {
		n = 0
	}
	return cv.notify(ctx, held, uint32(n), false)
}

// NotifyAll wakes every waiter. The caller must hold the lock.
func (cv *Condition) NotifyAll(ctx context.Context, held *HeldLock) (woken int, err error) {
	return cv.notify(ctx, held, 0, true)
}

func (cv *Condition) notify(ctx context.Context, held *HeldLock, n uint32, all bool) (int, error) {
	req := &batonv1.NotifyRequest{Lock: cv.lock, Condition: cv.name, Token: held.Fence(), SessionId: held.owner.sessionID(), N: n}
	var resp *batonv1.NotifyResponse
	var err error
	op := "Conditions.Notify"
	leaseOnly := held.owner.sid == 0
	if all {
		op = "Conditions.NotifyAll"
		resp, err = call(ctx, cv.c, leaseOnly, "notify_all", req, func(ctx context.Context) (*batonv1.NotifyResponse, error) {
			return cv.c.raw.Conditions.NotifyAll(ctx, req)
		})
	} else {
		resp, err = call(ctx, cv.c, leaseOnly, "notify", req, func(ctx context.Context) (*batonv1.NotifyResponse, error) {
			return cv.c.raw.Conditions.Notify(ctx, req)
		})
	}
	if err != nil {
		return 0, notHeld(wrapErr(ctx, op, cv.lock, err))
	}
	return int(resp.GetWoken()), nil
}
