package baton

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// onStream reports whether an operation goes on the session stream: on the
// stream transport, unless it acts for a lease-only owner (session 0, which
// on the stream would mean the stream's session).
func (c *Client) onStream(leaseOnly bool) bool { return c.stream != nil && !leaseOnly }

// call runs one operation: on the session stream, in the Operation field
// named field, or else as the unary call unary. Errors are returned as they
// came (callers wrap them).
func call[Resp proto.Message](ctx context.Context, c *Client, leaseOnly bool, field string, req proto.Message, unary func(context.Context) (Resp, error)) (Resp, error) {
	if !c.onStream(leaseOnly) {
		return unary(ctx)
	}
	res, err := c.stream.do(ctx, nil, operation(field, req), opFlags{})
	if err != nil {
		var zero Resp
		return zero, err
	}
	return resultOf(res, field).(Resp), nil
}

// grant is a wait that grants something the caller must give back if
// nobody receives it: a lock or permits, queue items, a task, the lock
// re-acquired by a condition wait.
type grant[Resp proto.Message] struct {
	field string // the Operation field
	owner owner
	req   proto.Message
	// resend: req carries a request_id, so that asking again with it (after
	// a broken stream or connection, or to learn what a cancelled wait got)
	// returns the same grant (GRANT_OUTCOME_REPLAYED) instead of a new one.
	resend bool
	unary  func(ctx context.Context, req proto.Message) (Resp, error)
	// rollback gives back a grant that crossed a cancel.
	rollback func(ctx context.Context, resp Resp)
}

// acquire is the one acquire-with-recovery of the client (clients/README.md,
// "Cancellation"): it runs g's wait and returns its grant; if ctx ends, the
// wait is cancelled on the server by id (stream) or by cancelling the call
// (unary), and a grant that crossed the cancel is rolled back: the one that
// came back on the stream, or, when its answer may have been lost (a broken
// stream, a cancelled unary call), the one that asking again with the same
// request_id and a zero timeout returns. A broken stream re-sends the wait
// with what is left of its deadline; a unary wait is retried while the
// connection is UNAVAILABLE. Nothing granted is ever left stuck by a
// cancel.
func acquire[Resp proto.Message](ctx context.Context, c *Client, g grant[Resp]) (Resp, error) {
	var zero Resp
	if c.onStream(g.owner.sid == 0) {
		var undo func(*batonv1.OperationResult)
		if g.rollback != nil {
			undo = func(res *batonv1.OperationResult) {
				rctx, cancel := detached(ctx)
				defer cancel()
				g.rollback(rctx, resultOf(res, g.field).(Resp))
			}
		}
		res, err := c.stream.do(ctx, g.owner.sess, operation(g.field, g.req), opFlags{resend: g.resend, outcome: true, late: undo})
		if err == nil {
			return resultOf(res, g.field).(Resp), nil
		}
		if res != nil && undo != nil {
			undo(res)
		}
		return zero, err
	}
	var resp Resp
	attempt := func() error {
		var e error
		resp, e = g.unary(ctx, g.req)
		return e
	}
	var err error
	if g.resend {
		err = retryAcquire(ctx, g.owner, attempt)
	} else {
		err = attempt()
	}
	if err == nil {
		return resp, nil
	}
	if outcomeUnknown(ctx, g.req, err) && g.resend && g.rollback != nil && !(g.owner.sess != nil && g.owner.sess.lost()) {
		recoverGrant(ctx, g)
	}
	return zero, err
}

// outcomeUnknown reports whether a wait that failed with err may have been
// granted all the same: ctx ended (a cancel, or its deadline), or batond's
// gRPC deadline ended the call (DEADLINE_EXCEEDED) while a grant's answer
// was on its way. That deadline can fire a little before ctx's (gRPC's
// clock there is coarse and read on arrival; seen: a 0-4 ms wait answered
// "Deadline Exceeded" with ctx still live), so ctx.Err alone misses it.
// batond's own answer to a wait that timed out in line is a
// DEADLINE_EXCEEDED too, with nothing granted: asking again then costs one
// call and finds nothing. A try (zero timeout) is never granted late.
func outcomeUnknown(ctx context.Context, req proto.Message, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	if status.Code(err) != codes.DeadlineExceeded {
		return false
	}
	if t := getTimeout(req.ProtoReflect()); t != nil {
		return t.AsDuration() > 0
	}
	return true
}

// recoverGrant asks again with g's request_id and a zero timeout, and gives
// back what comes back. batond keeps a grant whose answer may have been read
// (the reply crossed the cancel, or the connection broke), so this is what
// gives it back: a broken connection (UNAVAILABLE) is waited out, for as long
// as the session could still hold the grant (recoverFor).
func recoverGrant[Resp proto.Message](ctx context.Context, g grant[Resp]) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoverFor)
	defer cancel()
	retry := proto.Clone(g.req)
	setTimeout(retry.ProtoReflect(), zeroDur())
	delay := 50 * time.Millisecond
	for {
		r, e := g.unary(rctx, retry)
		if e == nil {
			g.rollback(rctx, r)
			return
		}
		if status.Code(e) != codes.Unavailable {
			return
		}
		select {
		case <-rctx.Done():
			return
		case <-time.After(delay):
		}
		delay = minDur(2*delay, time.Second)
	}
}

// recoverFor bounds recoverGrant: past a session TTL (15 s by default) and an
// RPC timeout, the session, and with it the grant, is gone anyway.
const recoverFor = 40 * time.Second

// detached is a context for cleanup after ctx ended: ctx's values, not its
// end, and at most 5 s.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}
