package baton

import (
	"context"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Barrier is a handle on a Baton barrier (asyncio.Barrier across processes):
// it lets its waiters through together once `parties` of them have arrived.
type Barrier struct {
	c       *Client
	name    string
	parties int
	h       handleConfig
}

// Barrier returns a handle on the barrier name for the given number of
// parties (declared by the first Wait; 0 means "as declared"; a different
// number is ErrFailedPrecondition). With WithSession, Wait ends with
// ErrSessionLost when that session ends.
func (c *Client) Barrier(name string, parties int, opts ...HandleOption) *Barrier {
	return &Barrier{c: c, name: name, parties: parties, h: newHandleConfig(opts)}
}

// Name is the barrier's name.
func (b *Barrier) Name() string { return b.name }

// BarrierPass is what Wait returns when the barrier trips.
type BarrierPass struct {
	// Index is the arrival order: 0 for the first, parties-1 for the one that
	// tripped the barrier.
	Index int
	// Cycle counts the barrier's trips, from 1.
	Cycle uint64
}

// Wait arrives at the barrier and waits for the other parties. Errors:
// ErrAborted (the barrier is broken, before or while waiting), ErrTimeout
// and ErrCanceled (which break the barrier for the others too, as in
// asyncio).
func (b *Barrier) Wait(ctx context.Context) (BarrierPass, error) {
	sess := b.h.optionalSession()
	req := &batonv1.BarrierWaitRequest{Name: b.name, Parties: uint32(b.parties)}
	if sess != nil {
		req.SessionId = sess.id
	}
	ctx, cancel := sess.bind(ctx)
	defer cancel()
	resp, err := call(ctx, b.c, false, "wait_barrier", req, func(ctx context.Context) (*batonv1.BarrierWaitResponse, error) {
		return b.c.raw.Barriers.Wait(ctx, req)
	})
	if err != nil {
		return BarrierPass{}, wrapErr(ctx, "Barriers.Wait", b.name, err)
	}
	return BarrierPass{Index: int(resp.GetIndex()), Cycle: resp.GetCycle()}, nil
}

// Abort breaks the barrier: current and later waiters get ErrAborted until
// Reset. It returns how many waiters it ended. Idempotent.
func (b *Barrier) Abort(ctx context.Context) (aborted int, err error) {
	req := &batonv1.BarrierAbortRequest{Name: b.name}
	resp, err := call(ctx, b.c, false, "abort_barrier", req, func(ctx context.Context) (*batonv1.BarrierAbortResponse, error) {
		return b.c.raw.Barriers.Abort(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Barriers.Abort", b.name, err)
	}
	return int(resp.GetAborted()), nil
}

// Reset empties the barrier and mends it, ending current waiters with
// ErrAborted; it returns how many it ended.
func (b *Barrier) Reset(ctx context.Context) (aborted int, err error) {
	req := &batonv1.BarrierResetRequest{Name: b.name}
	resp, err := call(ctx, b.c, false, "reset_barrier", req, func(ctx context.Context) (*batonv1.BarrierResetResponse, error) {
		return b.c.raw.Barriers.Reset(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Barriers.Reset", b.name, err)
	}
	return int(resp.GetAborted()), nil
}
