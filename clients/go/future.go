package baton

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Future is a handle on a Baton future (asyncio.Future across processes): a
// named value set once and awaited by anyone. A done future is kept for its
// retention (WithRetention, else the server's default), then reclaimed.
type Future struct {
	c    *Client
	name string
	h    handleConfig
}

// Future returns a handle on the future name. Options: WithRetention for
// Set, SetError and Cancel; WithSession ties Await to that session.
func (c *Client) Future(name string, opts ...HandleOption) *Future {
	return &Future{c: c, name: name, h: newHandleConfig(opts)}
}

// Name is the future's name.
func (f *Future) Name() string { return f.name }

// Set completes the future with value and wakes every awaiter; it returns
// how many it woke. Errors: ErrFailedPrecondition (already done).
func (f *Future) Set(ctx context.Context, value []byte) (woken int, err error) {
	req := &batonv1.SetResultRequest{Name: f.name, Value: value, Retention: dur(f.h.retention)}
	resp, err := call(ctx, f.c, false, "set_result", req, func(ctx context.Context) (*batonv1.SetResultResponse, error) {
		return f.c.raw.Futures.SetResult(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Futures.SetResult", f.name, err)
	}
	return int(resp.GetWoken()), nil
}

// SetError completes the future with an error; awaiters get it as a
// *RemoteError. Errors: ErrFailedPrecondition (already done).
func (f *Future) SetError(ctx context.Context, code int32, message string) (woken int, err error) {
	req := &batonv1.SetExceptionRequest{Name: f.name, Code: code, Message: message, Retention: dur(f.h.retention)}
	resp, err := call(ctx, f.c, false, "set_exception", req, func(ctx context.Context) (*batonv1.SetResultResponse, error) {
		return f.c.raw.Futures.SetException(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Futures.SetException", f.name, err)
	}
	return int(resp.GetWoken()), nil
}

// Cancel cancels a pending future (awaiters get ErrFutureCancelled). It
// returns false if the future was already done.
func (f *Future) Cancel(ctx context.Context) (bool, error) {
	req := &batonv1.CancelFutureRequest{Name: f.name, Retention: dur(f.h.retention)}
	resp, err := call(ctx, f.c, false, "cancel_future", req, func(ctx context.Context) (*batonv1.CancelFutureResponse, error) {
		return f.c.raw.Futures.Cancel(ctx, req)
	})
	if err != nil {
		return false, wrapErr(ctx, "Futures.Cancel", f.name, err)
	}
	return resp.GetCancelled(), nil
}

// Await waits until the future is done and returns its value. A future
// completed with SetError returns a *RemoteError, a cancelled one
// ErrFutureCancelled; a call that fails returns an *Error (ErrTimeout,
// ErrCanceled, ...).
func (f *Future) Await(ctx context.Context) ([]byte, error) { return f.await(ctx, false) }

// TryAwait returns the outcome if the future is done, else ErrWouldBlock.
func (f *Future) TryAwait(ctx context.Context) ([]byte, error) { return f.await(ctx, true) }

func (f *Future) await(ctx context.Context, try bool) ([]byte, error) {
	sess := f.h.optionalSession()
	req := &batonv1.AwaitFutureRequest{Name: f.name}
	if sess != nil {
		req.SessionId = sess.id
	}
	if try {
		req.Timeout = zeroDur()
	}
	ctx, cancel := sess.bind(ctx)
	defer cancel()
	resp, err := call(ctx, f.c, false, "await_future", req, func(ctx context.Context) (*batonv1.AwaitFutureResponse, error) {
		return f.c.raw.Futures.Await(ctx, req)
	})
	if err != nil {
		err = wrapErr(ctx, "Futures.Await", f.name, err)
		if try && status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
			tag(err, ErrWouldBlock)
		}
		return nil, err
	}
	switch resp.GetState() {
	case batonv1.FutureState_FUTURE_STATE_EXCEPTION:
		return nil, &RemoteError{Code: resp.GetErrorCode(), Message: resp.GetErrorMessage()}
	case batonv1.FutureState_FUTURE_STATE_CANCELLED:
		return nil, ErrFutureCancelled
	}
	value := resp.GetValue()
	if len(value) == 0 && resp.GetText() != "" {
		value = []byte(resp.GetText())
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}
