package baton

import (
	"context"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Event is a handle on a Baton event (asyncio.Event across processes): a
// flag, initially clear. Safe for concurrent use.
type Event struct {
	c    *Client
	name string
	h    handleConfig
}

// Event returns a handle on the event name. With WithSession, Wait ends with
// ErrSessionLost when that session ends.
func (c *Client) Event(name string, opts ...HandleOption) *Event {
	return &Event{c: c, name: name, h: newHandleConfig(opts)}
}

// Name is the event's name.
func (e *Event) Name() string { return e.name }

// Set sets the flag and wakes every waiter; it returns how many it woke.
// Idempotent.
func (e *Event) Set(ctx context.Context) (woken int, err error) {
	req := &batonv1.SetEventRequest{Name: e.name}
	resp, err := call(ctx, e.c, false, "set_event", req, func(ctx context.Context) (*batonv1.SetEventResponse, error) {
		return e.c.raw.Events.Set(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Events.Set", e.name, err)
	}
	return int(resp.GetWoken()), nil
}

// Clear clears the flag and tells whether it was set. Idempotent.
func (e *Event) Clear(ctx context.Context) (wasSet bool, err error) {
	req := &batonv1.ClearEventRequest{Name: e.name}
	resp, err := call(ctx, e.c, false, "clear_event", req, func(ctx context.Context) (*batonv1.ClearEventResponse, error) {
		return e.c.raw.Events.Clear(ctx, req)
	})
	if err != nil {
		return false, wrapErr(ctx, "Events.Clear", e.name, err)
	}
	return resp.GetPrevious() == batonv1.EventState_EVENT_STATE_SET, nil
}

// Wait returns once the flag is set (at once if it is), or fails when ctx is
// done (ErrTimeout, ErrCanceled).
func (e *Event) Wait(ctx context.Context) error {
	_, err := e.wait(ctx, false)
	return err
}

// IsSet tells whether the flag is set, without waiting.
func (e *Event) IsSet(ctx context.Context) (bool, error) {
	_, err := e.wait(ctx, true)
	if err == nil {
		return true, nil
	}
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return false, nil
	}
	return false, err
}

func (e *Event) wait(ctx context.Context, try bool) (*batonv1.WaitEventResponse, error) {
	sess := e.h.optionalSession()
	req := &batonv1.WaitEventRequest{Name: e.name}
	if sess != nil {
		req.SessionId = sess.id
	}
	if try {
		req.Timeout = zeroDur()
	}
	ctx, cancel := sess.bind(ctx)
	defer cancel()
	resp, err := call(ctx, e.c, false, "wait_event", req, func(ctx context.Context) (*batonv1.WaitEventResponse, error) {
		return e.c.raw.Events.Wait(ctx, req)
	})
	return resp, wrapErr(ctx, "Events.Wait", e.name, err)
}

// EventChange is one state seen by Watch.
type EventChange struct {
	Set bool
	// Sequence counts the changes seen by this watcher, from 1.
	Sequence uint64
}

// Watch streams the event's state: first the current one, then every change
// (a slow reader sees the latest state rather than every intermediate one).
// The iteration ends when the loop breaks, or with one final error (ctx done:
// ErrCanceled / ErrTimeout; server shutdown: ErrUnavailable).
//
//	for ch, err := range ev.Watch(ctx) {
//		if err != nil { return err }
//		fmt.Println(ch.Set)
//	}
func (e *Event) Watch(ctx context.Context) iter.Seq2[EventChange, error] {
	return func(yield func(EventChange, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := e.c.raw.Events.Watch(ctx, &batonv1.WatchEventRequest{Name: e.name})
		if err != nil {
			yield(EventChange{}, wrapErr(ctx, "Events.Watch", e.name, err))
			return
		}
		for {
			ch, err := stream.Recv()
			if err != nil {
				yield(EventChange{}, wrapErr(ctx, "Events.Watch", e.name, err))
				return
			}
			if !yield(EventChange{Set: ch.GetState() == batonv1.EventState_EVENT_STATE_SET, Sequence: ch.GetSequence()}, nil) {
				return
			}
		}
	}
}
