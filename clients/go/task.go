package baton

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// TaskState is the state of a task.
type TaskState = batonv1.TaskState

const (
	TaskPending   = batonv1.TaskState_TASK_STATE_PENDING
	TaskRunning   = batonv1.TaskState_TASK_STATE_RUNNING
	TaskSucceeded = batonv1.TaskState_TASK_STATE_SUCCEEDED
	TaskFailed    = batonv1.TaskState_TASK_STATE_FAILED
	TaskCancelled = batonv1.TaskState_TASK_STATE_CANCELLED
)

// WaitMode is asyncio.wait's return_when.
type WaitMode = batonv1.WaitMode

const (
	FirstCompleted = batonv1.WaitMode_WAIT_MODE_FIRST_COMPLETED
	FirstException = batonv1.WaitMode_WAIT_MODE_FIRST_EXCEPTION
	AllCompleted   = batonv1.WaitMode_WAIT_MODE_ALL_COMPLETED
)

// TaskQueue is a handle on a Baton work queue of tasks (asyncio's
// create_task across processes): Submit puts work in, workers Take (or run
// Work), anyone Awaits. Tasks taken by this handle run under its owner (the
// client's session by default; WithLease adds a heartbeat lease).
type TaskQueue struct {
	c    *Client
	name string
	h    handleConfig
}

// Tasks returns a handle on the work queue named queue.
func (c *Client) Tasks(queue string, opts ...HandleOption) *TaskQueue {
	return &TaskQueue{c: c, name: queue, h: newHandleConfig(opts)}
}

// Name is the work queue's name.
func (tq *TaskQueue) Name() string { return tq.name }

// SubmitOption configures Submit.
type SubmitOption func(*batonv1.SubmitTaskRequest)

// Delay makes the task pending only after d (loop.call_later).
func Delay(d time.Duration) SubmitOption {
	return func(r *batonv1.SubmitTaskRequest) { r.Delay = dur(d) }
}

// StartAt makes the task pending only from t (loop.call_at).
func StartAt(t time.Time) SubmitOption { return func(r *batonv1.SubmitTaskRequest) { r.At = ts(t) } }

// MaxAttempts sets the attempts before the task fails for good (default 1).
func MaxAttempts(n int) SubmitOption {
	return func(r *batonv1.SubmitTaskRequest) { r.MaxAttempts = uint32(n) }
}

// InGroup puts the task in a group (asyncio.TaskGroup): when one task of the
// group fails, the others are cancelled.
func InGroup(group string) SubmitOption {
	return func(r *batonv1.SubmitTaskRequest) { r.Group = group }
}

// Shielded keeps the task from being cancelled with its group (asyncio.shield).
func Shielded() SubmitOption { return func(r *batonv1.SubmitTaskRequest) { r.Shielded = true } }

// RunTimeout bounds each attempt, from Take to Complete; an attempt that
// overruns is lost like one whose worker died.
func RunTimeout(d time.Duration) SubmitOption {
	return func(r *batonv1.SubmitTaskRequest) { r.RunTimeout = dur(d) }
}

// Submit submits a task with payload and returns it.
func (tq *TaskQueue) Submit(ctx context.Context, payload []byte, opts ...SubmitOption) (*Task, error) {
	req := &batonv1.SubmitTaskRequest{Queue: tq.name, Payload: payload}
	for _, o := range opts {
		o(req)
	}
	resp, err := call(ctx, tq.c, false, "submit_task", req, func(ctx context.Context) (*batonv1.SubmitTaskResponse, error) {
		return tq.c.raw.Tasks.Submit(ctx, req)
	})
	if err != nil {
		return nil, wrapErr(ctx, "Tasks.Submit", tq.name, err)
	}
	return &Task{c: tq.c, id: resp.GetTaskId()}, nil
}

// Wait is asyncio.wait over tasks of this work queue: it waits until the
// first is done (FirstCompleted), the first fails (FirstException) or all
// are done (AllCompleted), or until ctx is done (then ErrTimeout /
// ErrCanceled; use WaitTimeout to get what is done so far instead).
func (tq *TaskQueue) Wait(ctx context.Context, mode WaitMode, tasks ...*Task) (done []*TaskOutcome, pending []*Task, err error) {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.id
	}
	return tq.c.waitTasks(ctx, &batonv1.WaitTasksRequest{TaskIds: ids, Mode: mode})
}

// WaitTimeout is Wait with a limit d: when it runs out, it returns what is
// done so far and the rest as pending, with no error.
func (tq *TaskQueue) WaitTimeout(ctx context.Context, mode WaitMode, d time.Duration, tasks ...*Task) (done []*TaskOutcome, pending []*Task, err error) {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.id
	}
	if d <= 0 {
		return tq.c.waitTasks(ctx, &batonv1.WaitTasksRequest{TaskIds: ids, Mode: mode, Timeout: zeroDur()})
	}
	return tq.c.waitTasks(ctx, &batonv1.WaitTasksRequest{TaskIds: ids, Mode: mode, Timeout: dur(d)})
}

// WaitTasks is Wait for task ids (of one work queue), e.g. from another
// process. A zero timeout means no limit but ctx.
func (c *Client) WaitTasks(ctx context.Context, mode WaitMode, timeout time.Duration, ids ...string) (done []*TaskOutcome, pending []*Task, err error) {
	return c.waitTasks(ctx, &batonv1.WaitTasksRequest{TaskIds: ids, Mode: mode, Timeout: dur(timeout)})
}

func (c *Client) waitTasks(ctx context.Context, req *batonv1.WaitTasksRequest) ([]*TaskOutcome, []*Task, error) {
	resp, err := call(ctx, c, false, "wait_tasks", req, func(ctx context.Context) (*batonv1.WaitTasksResponse, error) {
		return c.raw.Tasks.Wait(ctx, req)
	})
	if err != nil {
		name := req.Group
		if name == "" {
			name = strings.Join(req.TaskIds, ",")
		}
		return nil, nil, wrapErr(ctx, "Tasks.Wait", name, err)
	}
	done := make([]*TaskOutcome, 0, len(resp.GetDone()))
	for _, o := range resp.GetDone() {
		done = append(done, outcomeOf(o))
	}
	pending := make([]*Task, 0, len(resp.GetPending()))
	for _, id := range resp.GetPending() {
		pending = append(pending, &Task{c: c, id: id})
	}
	return done, pending, nil
}

// TaskGroup is a group of tasks in one work queue (asyncio.TaskGroup): when
// one fails, the others (unless Shielded) are cancelled.
type TaskGroup struct {
	tq   *TaskQueue
	name string
}

// Group returns a handle on the group name of this work queue.
func (tq *TaskQueue) Group(name string) *TaskGroup { return &TaskGroup{tq: tq, name: name} }

// Name is the group's name.
func (g *TaskGroup) Name() string { return g.name }

// Submit submits a task in the group.
func (g *TaskGroup) Submit(ctx context.Context, payload []byte, opts ...SubmitOption) (*Task, error) {
	return g.tq.Submit(ctx, payload, append(opts, InGroup(g.name))...)
}

// Wait waits for the group's tasks as TaskQueue.Wait does (AllCompleted:
// `async with TaskGroup()` leaving). Errors: ErrNotFound for a group with no
// task.
func (g *TaskGroup) Wait(ctx context.Context, mode WaitMode) (done []*TaskOutcome, pending []*Task, err error) {
	return g.tq.c.waitTasks(ctx, &batonv1.WaitTasksRequest{Queue: g.tq.name, Group: g.name, Mode: mode})
}

// WaitTimeout is Wait with a limit d, as TaskQueue.WaitTimeout.
func (g *TaskGroup) WaitTimeout(ctx context.Context, mode WaitMode, d time.Duration) (done []*TaskOutcome, pending []*Task, err error) {
	t := dur(d)
	if d <= 0 {
		t = zeroDur()
	}
	return g.tq.c.waitTasks(ctx, &batonv1.WaitTasksRequest{Queue: g.tq.name, Group: g.name, Mode: mode, Timeout: t})
}

// Task is a handle on one task, by id ("queue#17").
type Task struct {
	c  *Client
	id string
}

// Task returns a handle on the task id.
func (c *Client) Task(id string) *Task { return &Task{c: c, id: id} }

// ID is the task's id.
func (t *Task) ID() string { return t.id }

// TaskOutcome is the outcome of a done task.
type TaskOutcome struct {
	TaskID string
	State  TaskState
	// Result is the task's result (TaskSucceeded).
	Result []byte
	// Err is a *RemoteError (TaskFailed) or ErrTaskCancelled
	// (TaskCancelled); nil on success.
	Err      error
	Attempts int
}

func outcomeOf(o *batonv1.TaskOutcome) *TaskOutcome {
	out := &TaskOutcome{TaskID: o.GetTaskId(), State: o.GetState(), Result: o.GetResult(), Attempts: int(o.GetAttempts())}
	if len(out.Result) == 0 && o.GetText() != "" {
		out.Result = []byte(o.GetText())
	}
	switch o.GetState() {
	case TaskFailed:
		out.Err = &RemoteError{Code: o.GetError().GetCode(), Message: o.GetError().GetMessage()}
	case TaskCancelled:
		out.Err = ErrTaskCancelled
	}
	return out
}

// Await waits until the task is done and returns its result; a failed task
// returns a *RemoteError, a cancelled one ErrTaskCancelled. Errors of the
// call itself: ErrNotFound (unknown or reclaimed task), ErrTimeout,
// ErrCanceled.
func (t *Task) Await(ctx context.Context) ([]byte, error) {
	o, err := t.Outcome(ctx)
	if err != nil {
		return nil, err
	}
	return o.Result, o.Err
}

// Outcome waits until the task is done and returns its whole outcome.
func (t *Task) Outcome(ctx context.Context) (*TaskOutcome, error) {
	req := &batonv1.AwaitTaskRequest{TaskId: t.id}
	resp, err := call(ctx, t.c, false, "await_task", req, func(ctx context.Context) (*batonv1.TaskOutcome, error) {
		return t.c.raw.Tasks.Await(ctx, req)
	})
	if err != nil {
		return nil, wrapErr(ctx, "Tasks.Await", t.id, err)
	}
	return outcomeOf(resp), nil
}

// Cancel cancels the task: a pending one at once, a running one at its
// worker's next Heartbeat or Complete. It returns false if the task was
// already done, and the task's state.
func (t *Task) Cancel(ctx context.Context) (bool, TaskState, error) {
	req := &batonv1.CancelTaskRequest{TaskId: t.id}
	resp, err := call(ctx, t.c, false, "cancel_task", req, func(ctx context.Context) (*batonv1.CancelTaskResponse, error) {
		return t.c.raw.Tasks.Cancel(ctx, req)
	})
	if err != nil {
		return false, 0, wrapErr(ctx, "Tasks.Cancel", t.id, err)
	}
	return resp.GetCancelled(), resp.GetState(), nil
}

// Job is a task taken by a worker. Report its end with Complete or Fail, and
// call Heartbeat meanwhile when it runs under a lease.
type Job struct {
	tq      *TaskQueue
	TaskID  string
	Payload []byte
	// Attempt is 1 for the first attempt.
	Attempt int
}

// Job returns a handle on attempt of the task id, taken by another process
// (e.g. `baton task take`), to Heartbeat, Complete or Fail it.
func (tq *TaskQueue) Job(id string, attempt int) *Job {
	return &Job{tq: tq, TaskID: id, Attempt: attempt}
}

// Take takes the oldest pending task, waiting while there is none. It runs
// under the handle's owner. Cancelling ctx cancels the wait on the server;
// a task racing with the cancel goes back to pending, its attempt not
// counted.
func (tq *TaskQueue) Take(ctx context.Context) (*Job, error) { return tq.take(ctx, false) }

// TryTake takes a pending task if there is one now; otherwise ErrWouldBlock.
func (tq *TaskQueue) TryTake(ctx context.Context) (*Job, error) { return tq.take(ctx, true) }

func (tq *TaskQueue) take(ctx context.Context, try bool) (*Job, error) {
	const op = "Tasks.Take"
	o, err := tq.c.resolveOwner(ctx, op, tq.name, &tq.h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := o.sess.bind(ctx)
	defer cancel()
	req := &batonv1.TakeTaskRequest{Queue: tq.name, SessionId: o.sessionID(), Ttl: dur(o.ttl), RequestId: newRequestID()}
	if try {
		req.Timeout = zeroDur()
	}
	resp, err := acquire(ctx, tq.c, grant[*batonv1.TakeTaskResponse]{
		field: "take_task", owner: o, req: req, resend: true,
		unary: func(ctx context.Context, r proto.Message) (*batonv1.TakeTaskResponse, error) {
			return tq.c.raw.Tasks.Take(ctx, r.(*batonv1.TakeTaskRequest))
		},
		// Give the task back untried (CompleteTaskRequest.give_back): the
		// attempt does not count.
		rollback: func(ctx context.Context, resp *batonv1.TakeTaskResponse) {
			job := &Job{tq: tq, TaskID: resp.GetTaskId(), Attempt: int(resp.GetAttempt())}
			_, _ = job.GiveBack(ctx)
		},
	})
	if err != nil {
		err = ownedErr(ctx, op, tq.name, o, err)
		if try && status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
			tag(err, ErrWouldBlock)
		}
		return nil, err
	}
	payload := resp.GetPayload()
	if len(payload) == 0 && resp.GetText() != "" {
		payload = []byte(resp.GetText())
	}
	return &Job{tq: tq, TaskID: resp.GetTaskId(), Payload: payload, Attempt: int(resp.GetAttempt())}, nil
}

// Heartbeat renews the attempt's lease and reports whether the task was
// cancelled (then stop and Complete or Fail it; it is recorded as
// cancelled). Errors: ErrNotHeld (the attempt was lost: retried elsewhere,
// or done).
func (j *Job) Heartbeat(ctx context.Context) (cancelled bool, err error) {
	req := &batonv1.TaskHeartbeatRequest{TaskId: j.TaskID, Attempt: uint32(j.Attempt)}
	resp, err := call(ctx, j.tq.c, false, "task_heartbeat", req, func(ctx context.Context) (*batonv1.TaskHeartbeatResponse, error) {
		return j.tq.c.raw.Tasks.Heartbeat(ctx, req)
	})
	if err != nil {
		return false, notHeld(wrapErr(ctx, "Tasks.Heartbeat", j.TaskID, err))
	}
	return resp.GetCancelled(), nil
}

// Complete finishes the task with result and returns its state
// (TaskSucceeded, or TaskCancelled if it had been cancelled). Errors:
// ErrNotHeld (the attempt was lost).
func (j *Job) Complete(ctx context.Context, result []byte) (TaskState, error) {
	return j.complete(ctx, &batonv1.CompleteTaskRequest{TaskId: j.TaskID, Attempt: uint32(j.Attempt), Result: result})
}

// Fail fails the attempt with an error; the task is retried while attempts
// remain, unless final. It returns the task's state (TaskPending when it
// will be retried, TaskFailed, or TaskCancelled).
func (j *Job) Fail(ctx context.Context, code int32, message string, final bool) (TaskState, error) {
	return j.complete(ctx, &batonv1.CompleteTaskRequest{
		TaskId: j.TaskID, Attempt: uint32(j.Attempt), Error: &batonv1.TaskError{Code: code, Message: message}, Final: final,
	})
}

// GiveBack returns the task untried: the attempt does not count, and the task
// goes back to the head of the pending tasks (for a worker that cannot run it
// now). A task whose cancel was asked for ends cancelled instead.
func (j *Job) GiveBack(ctx context.Context) (TaskState, error) {
	return j.complete(ctx, &batonv1.CompleteTaskRequest{
		TaskId: j.TaskID, Attempt: uint32(j.Attempt), GiveBack: true,
	})
}

func (j *Job) complete(ctx context.Context, req *batonv1.CompleteTaskRequest) (TaskState, error) {
	ctx, cancel := releaseCtx(ctx)
	defer cancel()
	resp, err := call(ctx, j.tq.c, false, "complete_task", req, func(ctx context.Context) (*batonv1.CompleteTaskResponse, error) {
		return j.tq.c.raw.Tasks.Complete(ctx, req)
	})
	if err != nil {
		return 0, notHeld(wrapErr(ctx, "Tasks.Complete", j.TaskID, err))
	}
	return resp.GetState(), nil
}

// Permanent marks a handler error as final for Work: the task fails without
// further attempts.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// WorkOptions tune Work.
type WorkOptions struct {
	// HeartbeatEvery is how often a running task is heartbeaten (renewing its
	// lease and learning of cancellation). Default: a third of the handle's
	// lease, or 1 s without a lease.
	HeartbeatEvery time.Duration
}

// Handler runs one task. Its ctx is cancelled when the task is cancelled or
// its attempt is lost. A nil error completes the task with the result; an
// error fails the attempt (code and message from a *RemoteError in the
// chain, else code 2 and err.Error()); wrap it with Permanent to fail the
// task for good.
type Handler func(ctx context.Context, job *Job) ([]byte, error)

// Work is a worker loop: it takes tasks one at a time, runs handler on each
// while heartbeating, and completes or fails them, until ctx is done (it
// then returns ctx's error) or a call fails for another reason than a lost
// attempt. Run several Work loops for concurrency.
func (tq *TaskQueue) Work(ctx context.Context, handler Handler, opts WorkOptions) error {
	every := opts.HeartbeatEvery
	if every <= 0 {
		every = time.Second
		if tq.h.lease > 0 {
			every = clampDur(tq.h.lease/3, 10*time.Millisecond, time.Minute)
		}
	}
	for {
		job, err := tq.Take(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if err := tq.runJob(ctx, job, handler, every); err != nil {
			return err
		}
	}
}

func (tq *TaskQueue) runJob(ctx context.Context, job *Job, handler Handler, every time.Duration) error {
	jobCtx, cancelJob := context.WithCancel(ctx)
	defer cancelJob()
	var wg sync.WaitGroup
	wg.Add(1)
	stopBeat := make(chan struct{})
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stopBeat:
				return
			case <-t.C:
				cancelled, err := job.Heartbeat(jobCtx)
				if cancelled || errors.Is(err, ErrNotHeld) {
					cancelJob()
					return
				}
			}
		}
	}()
	result, herr := runHandler(jobCtx, job, handler)
	close(stopBeat)
	wg.Wait()
	var err error
	if herr == nil {
		_, err = job.Complete(ctx, result)
	} else {
		code, msg := int32(codes.Unknown), herr.Error()
		var re *RemoteError
		if errors.As(herr, &re) {
			code, msg = re.Code, re.Message
		}
		var pe *permanentError
		_, err = job.Fail(ctx, code, msg, errors.As(herr, &pe))
	}
	if errors.Is(err, ErrNotHeld) {
		return nil // the attempt was lost; the task is retried or done elsewhere
	}
	return err
}

// runHandler runs handler and turns a panic into a task failure.
func runHandler(ctx context.Context, job *Job, handler Handler) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return handler(ctx, job)
}
