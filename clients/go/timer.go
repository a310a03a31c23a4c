package baton

import (
	"context"
	"time"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Timer is a handle on a Baton timer (loop.call_later / call_at / periodic
// calls across processes): it fires an action on another Baton resource.
// Timers live in the server's memory: they do not survive its restart.
type Timer struct {
	c    *Client
	name string
}

// Timer returns a handle on the timer name.
func (c *Client) Timer(name string) *Timer { return &Timer{c: c, name: name} }

// Name is the timer's name.
func (t *Timer) Name() string { return t.name }

// TimerAction is what a timer does when it fires.
type TimerAction struct{ pb *batonv1.TimerAction }

// SetEventAction sets the event name.
func SetEventAction(name string) TimerAction {
	return TimerAction{&batonv1.TimerAction{Action: &batonv1.TimerAction_SetEvent{SetEvent: &batonv1.SetEventAction{Name: name}}}}
}

// ClearEventAction clears the event name.
func ClearEventAction(name string) TimerAction {
	return TimerAction{&batonv1.TimerAction{Action: &batonv1.TimerAction_ClearEvent{ClearEvent: &batonv1.ClearEventAction{Name: name}}}}
}

// PutAction puts item into queue (waiting for room in a full queue).
func PutAction(queue string, item Item) TimerAction {
	return TimerAction{&batonv1.TimerAction{Action: &batonv1.TimerAction_Put{Put: &batonv1.PutAction{Queue: queue, Item: item.pb()}}}}
}

// SetFutureAction completes the future name with value.
func SetFutureAction(name string, value []byte) TimerAction {
	return TimerAction{&batonv1.TimerAction{Action: &batonv1.TimerAction_SetFuture{SetFuture: &batonv1.SetFutureAction{Name: name, Value: value}}}}
}

// SubmitTaskAction submits a task to the work queue (maxAttempts 0 means 1).
func SubmitTaskAction(queue string, payload []byte, maxAttempts int) TimerAction {
	return TimerAction{&batonv1.TimerAction{Action: &batonv1.TimerAction_SubmitTask{SubmitTask: &batonv1.SubmitTaskAction{
		Queue: queue, Payload: payload, MaxAttempts: uint32(maxAttempts),
	}}}}
}

// TimerOption configures a schedule.
type TimerOption func(*batonv1.ScheduleTimerRequest)

// Replace replaces a timer of the same name instead of failing with
// ErrFailedPrecondition.
func Replace() TimerOption { return func(r *batonv1.ScheduleTimerRequest) { r.Replace = true } }

// FirstAfter sets when a periodic timer (Every) first fires (default: after
// one period).
func FirstAfter(d time.Duration) TimerOption {
	return func(r *batonv1.ScheduleTimerRequest) { r.After, r.At = durOrZero(d), nil }
}

// FirstAt sets the wall-clock time a periodic timer (Every) first fires.
func FirstAt(t time.Time) TimerOption {
	return func(r *batonv1.ScheduleTimerRequest) { r.At, r.After = ts(t), nil }
}

func durOrZero(d time.Duration) *durationPB {
	if d <= 0 {
		return zeroDur()
	}
	return dur(d)
}

// After schedules the action once, d from now, and returns the time until it
// fires.
func (t *Timer) After(ctx context.Context, d time.Duration, action TimerAction, opts ...TimerOption) (time.Duration, error) {
	return t.schedule(ctx, &batonv1.ScheduleTimerRequest{Name: t.name, After: durOrZero(d), Action: action.pb}, opts)
}

// At schedules the action once at the wall-clock time at (in the past: now).
func (t *Timer) At(ctx context.Context, at time.Time, action TimerAction, opts ...TimerOption) (time.Duration, error) {
	return t.schedule(ctx, &batonv1.ScheduleTimerRequest{Name: t.name, At: ts(at), Action: action.pb}, opts)
}

// Every schedules the action every period until Cancel, first one period
// from now (or as FirstAfter / FirstAt say).
func (t *Timer) Every(ctx context.Context, period time.Duration, action TimerAction, opts ...TimerOption) (time.Duration, error) {
	return t.schedule(ctx, &batonv1.ScheduleTimerRequest{Name: t.name, After: durOrZero(period), Every: dur(period), Action: action.pb}, opts)
}

func (t *Timer) schedule(ctx context.Context, req *batonv1.ScheduleTimerRequest, opts []TimerOption) (time.Duration, error) {
	for _, o := range opts {
		o(req)
	}
	resp, err := call(ctx, t.c, false, "schedule_timer", req, func(ctx context.Context) (*batonv1.ScheduleTimerResponse, error) {
		return t.c.raw.Timers.Schedule(ctx, req)
	})
	if err != nil {
		return 0, wrapErr(ctx, "Timers.Schedule", t.name, err)
	}
	return fromDur(resp.GetDueIn()), nil
}

// Cancel cancels the timer. It returns false if there was no such timer or a
// one-shot timer had already fired, and how many times it fired.
func (t *Timer) Cancel(ctx context.Context) (cancelled bool, fired uint64, err error) {
	req := &batonv1.CancelTimerRequest{Name: t.name}
	resp, err := call(ctx, t.c, false, "cancel_timer", req, func(ctx context.Context) (*batonv1.CancelTimerResponse, error) {
		return t.c.raw.Timers.Cancel(ctx, req)
	})
	if err != nil {
		return false, 0, wrapErr(ctx, "Timers.Cancel", t.name, err)
	}
	return resp.GetCancelled(), resp.GetFired(), nil
}
