package baton

import (
	"context"
	"sync"
	"time"
)

// lostSignal is the lost signal of a holding (a lock grant or permits): it
// fires once, with the reason, when the holding is lost: its session ended,
// its lease ran out unrefreshed (lease-only holdings, whose expiry the client
// knows), or the server answered that it is not held (NOT_FOUND or
// FAILED_PRECONDITION to a refresh or release). A release by the holder is
// not a loss: the signal then never fires.
type lostSignal struct {
	ctx  context.Context
	fire context.CancelCauseFunc

	mu       sync.Mutex
	stopSess func() bool
	lease    *time.Timer
	ended    bool
}

func newLostSignal(o owner, op, name string, expiresIn time.Duration) *lostSignal {
	ls := &lostSignal{}
	ls.ctx, ls.fire = context.WithCancelCause(context.Background())
	// The callbacks may run at once (a session already lost, a short
	// lease): they take mu, which is held until both are set.
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if s := o.sess; s != nil {
		ls.stopSess = context.AfterFunc(s.lostCtx, func() { ls.lose(wrapErr(nil, op, name, s.Err())) })
	}
	if o.sid == 0 && expiresIn > 0 {
		ls.lease = time.AfterFunc(expiresIn, func() {
			ls.lose(localErr(op, name, ErrNotHeld, "the lease ran out unrefreshed"))
		})
	}
	return ls
}

// lose fires the signal with err (once).
func (ls *lostSignal) lose(err error) {
	ls.mu.Lock()
	if ls.ended {
		ls.mu.Unlock()
		return
	}
	ls.ended = true
	ls.stopLocked()
	ls.mu.Unlock()
	ls.fire(err)
}

// released ends the signal without firing it.
func (ls *lostSignal) released() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.ended = true
	ls.stopLocked()
}

func (ls *lostSignal) stopLocked() {
	if ls.stopSess != nil {
		ls.stopSess()
	}
	if ls.lease != nil {
		ls.lease.Stop()
	}
}

// extended moves a lease-only holding's expiry to d from now.
func (ls *lostSignal) extended(d time.Duration) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lease != nil && !ls.ended {
		ls.lease.Reset(d)
	}
}

// answered fires the signal if err says the holding is not held.
func (ls *lostSignal) answered(err error) {
	if isNotHeldAnswer(err) {
		ls.lose(err)
	}
}

func (ls *lostSignal) done() <-chan struct{} { return ls.ctx.Done() }

func (ls *lostSignal) err() error {
	if ls.ctx.Err() == nil {
		return nil
	}
	return context.Cause(ls.ctx)
}
