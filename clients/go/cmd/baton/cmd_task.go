package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func cmdTask(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton task submit|await|cancel|wait|take|heartbeat|complete|fail|work ...")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "submit":
		return taskSubmit(e, args)
	case "await", "cancel":
		return taskAwaitCancel(e, sub, args)
	case "wait":
		return taskWait(e, args)
	case "take":
		return taskTake(e, args)
	case "heartbeat", "complete", "fail":
		return taskReport(e, sub, args)
	case "work":
		return taskWork(e, args)
	}
	return usageErr("usage: baton task submit|await|cancel|wait|take|heartbeat|complete|fail|work: unknown subcommand %q", sub)
}

func taskSubmit(e *env, args []string) error {
	fs := e.newFlags("task submit")
	group := fs.String("group", "", "task group (cancelled together when one fails)")
	maxAttempts := fs.Int("max-attempts", 0, "attempts before the task fails for good (default 1)")
	delay := fs.Duration("delay", 0, "pending only after this long")
	shielded := fs.Bool("shielded", false, "not cancelled with its group")
	runTimeout := fs.Duration("run-timeout", 0, "longest an attempt may run")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 2, "QUEUE [PAYLOAD]"); err != nil {
		return err
	}
	var payload []byte
	if len(pos) == 2 {
		payload = []byte(pos[1])
	}
	opts := []baton.SubmitOption{baton.MaxAttempts(*maxAttempts), baton.Delay(*delay), baton.RunTimeout(*runTimeout)}
	if *group != "" {
		opts = append(opts, baton.InGroup(*group))
	}
	if *shielded {
		opts = append(opts, baton.Shielded())
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	t, err := c.Tasks(pos[0]).Submit(ctx, payload, opts...)
	if err != nil {
		return err
	}
	e.print(map[string]any{"task_id": t.ID()}, "%s\n", t.ID())
	return nil
}

func taskAwaitCancel(e *env, sub string, args []string) error {
	fs := e.newFlags("task " + sub)
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "ID"); err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	t := c.Task(pos[0])
	if sub == "cancel" {
		ctx, cancel := e.callCtx()
		defer cancel()
		ok, state, err := t.Cancel(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"task_id": t.ID(), "cancelled": ok, "state": stateName(state)}, "cancelled %v (%s)\n", ok, stateName(state))
		if !ok {
			return &exitError{exitConflict, fmt.Sprintf("task %s was already done (%s)", t.ID(), stateName(state))}
		}
		return nil
	}
	ctx, cancel := e.waitCtx()
	defer cancel()
	o, err := t.Outcome(ctx)
	if err != nil {
		return err
	}
	return e.printOutcome("task "+t.ID(), map[string]any{"task_id": t.ID(), "attempts": o.Attempts}, o.Result, o.Err)
}

func stateName(s baton.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

func taskWait(e *env, args []string) error {
	fs := e.newFlags("task wait")
	mode := fs.String("mode", "all-completed", "first-completed, first-exception or all-completed")
	queue := fs.String("queue", "", "with --group: the work queue")
	group := fs.String("group", "", "wait for the tasks of this group instead of IDs")
	wait := fs.Duration("wait", 0, "return what is done after this long (exit 0) instead of waiting on")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	var m baton.WaitMode
	switch *mode {
	case "first-completed":
		m = baton.FirstCompleted
	case "first-exception":
		m = baton.FirstException
	case "all-completed":
		m = baton.AllCompleted
	default:
		return usageErr("--mode must be first-completed, first-exception or all-completed, not %q", *mode)
	}
	if (*group == "") == (len(pos) == 0) || (*group != "" && *queue == "") {
		return usageErr("usage: baton task wait ID... | baton task wait --queue Q --group G")
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.waitCtx()
	defer cancel()
	var done []*baton.TaskOutcome
	var pending []*baton.Task
	if *group != "" {
		g := c.Tasks(*queue).Group(*group)
		if *wait > 0 {
			done, pending, err = g.WaitTimeout(ctx, m, *wait)
		} else {
			done, pending, err = g.Wait(ctx, m)
		}
	} else {
		done, pending, err = c.WaitTasks(ctx, m, *wait, pos...)
	}
	if err != nil {
		return err
	}
	doneJSON := make([]map[string]any, len(done))
	for i, o := range done {
		d := map[string]any{"task_id": o.TaskID, "state": stateName(o.State), "attempts": o.Attempts}
		var re *baton.RemoteError
		if errors.As(o.Err, &re) {
			d["error_code"], d["error_message"] = re.Code, re.Message
		} else if o.Err == nil {
			d["text"] = string(o.Result)
		}
		doneJSON[i] = d
	}
	pendingIDs := make([]string, len(pending))
	for i, t := range pending {
		pendingIDs[i] = t.ID()
	}
	if e.g.json {
		e.print(map[string]any{"done": doneJSON, "pending": pendingIDs}, "")
		return nil
	}
	for _, o := range done {
		fmt.Fprintf(e.stdout, "%s\t%s\n", o.TaskID, stateName(o.State))
	}
	for _, id := range pendingIDs {
		fmt.Fprintf(e.stdout, "%s\tpending\n", id)
	}
	return nil
}

func taskTake(e *env, args []string) error {
	fs := e.newFlags("task take")
	visibility := fs.Duration("visibility", time.Minute, "lease on the task: lost unless heartbeaten or completed within it")
	try := fs.Bool("try", false, "do not wait: fail (exit 3) if no task is pending")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "QUEUE [--visibility D] [--try]"); err != nil {
		return err
	}
	owner, err := e.getOwner(*visibility)
	if err != nil {
		return err
	}
	tq := e.client.Tasks(pos[0], owner...)
	var j *baton.Job
	if *try {
		ctx, cancel := e.callCtx()
		defer cancel()
		j, err = tq.TryTake(ctx)
	} else {
		ctx, cancel := e.waitCtx()
		defer cancel()
		j, err = tq.Take(ctx)
	}
	if err != nil {
		return err
	}
	e.print(map[string]any{"task_id": j.TaskID, "attempt": j.Attempt, "text": string(j.Payload)},
		"%s\t%d\t%s\n", j.TaskID, j.Attempt, j.Payload)
	return nil
}

// jobOf makes a Job handle for a task taken by another process.
func jobOf(c *baton.Client, id string, attempt int) *baton.Job {
	return c.Tasks(queueOf(id)).Job(id, attempt)
}

// queueOf is the work queue of a task id ("queue#17").
func queueOf(id string) string {
	if i := strings.LastIndexByte(id, '#'); i >= 0 {
		return id[:i]
	}
	return id
}

func taskReport(e *env, sub string, args []string) error {
	fs := e.newFlags("task " + sub)
	attempt := fs.Int("attempt", 0, "the attempt, as printed by 'task take'")
	code := fs.Int("code", int(2), "fail: error code")
	msg := fs.String("message", "", "fail: error message")
	final := fs.Bool("final", false, "fail: no further attempts")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	max := 1
	if sub == "complete" {
		max = 2
	}
	if err := need(fs, pos, 1, max, "ID --attempt N ..."); err != nil {
		return err
	}
	if *attempt <= 0 {
		return usageErr("--attempt is required")
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	j := jobOf(c, pos[0], *attempt)
	switch sub {
	case "heartbeat":
		cancelled, err := j.Heartbeat(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"task_id": j.TaskID, "cancelled": cancelled}, "cancelled %v\n", cancelled)
		return nil
	case "complete":
		var result []byte
		if len(pos) == 2 {
			result = []byte(pos[1])
		}
		state, err := j.Complete(ctx, result)
		if err != nil {
			return err
		}
		e.print(map[string]any{"task_id": j.TaskID, "state": stateName(state)}, "%s\n", stateName(state))
		return nil
	}
	state, err := j.Fail(ctx, int32(*code), *msg, *final)
	if err != nil {
		return err
	}
	e.print(map[string]any{"task_id": j.TaskID, "state": stateName(state)}, "%s\n", stateName(state))
	return nil
}

// taskWork runs CMD for each task: the payload on its stdin, its stdout as
// the result; a non-zero exit fails the attempt with the exit code and the
// last line of its stderr.
func taskWork(e *env, args []string) error {
	fs := e.newFlags("task work")
	count := fs.Int("count", 0, "stop after this many tasks (default: until interrupted)")
	visibility := fs.Duration("visibility", 0, "lease on each task, renewed by heartbeats (default: the session only)")
	pos, cmd, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "QUEUE [--count N] -- CMD [ARGS...]"); err != nil {
		return err
	}
	if len(cmd) == 0 {
		return usageErr("usage: baton task work QUEUE -- CMD [ARGS...]: no command")
	}
	opts, err := e.ownerOpts(*visibility, false)
	if err != nil {
		return err
	}
	workCtx, stop := context.WithCancel(e.ctx)
	defer stop()
	if e.g.timeout > 0 {
		workCtx, stop = context.WithTimeout(workCtx, e.g.timeout)
		defer stop()
	}
	n := 0
	handler := func(ctx context.Context, j *baton.Job) ([]byte, error) {
		child := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
		child.Cancel = func() error { return child.Process.Signal(syscall.SIGTERM) }
		child.WaitDelay = 10 * time.Second
		child.Stdin = bytes.NewReader(j.Payload)
		var out, errOut bytes.Buffer
		child.Stdout = &out
		child.Stderr = &tee{&errOut, e.stderr}
		child.Env = append(os.Environ(), envVar("BATON_TASK_ID", j.TaskID), envVar("BATON_TASK_ATTEMPT", j.Attempt),
			envVar("BATON_TASK_QUEUE", pos[0]), envVar("BATON_ADDR", e.g.addr))
		runErr := child.Run()
		n++
		if *count > 0 && n >= *count {
			stop() // Work completes this task, then returns
		}
		state, code := "succeeded", 0
		defer func() {
			e.print(map[string]any{"task_id": j.TaskID, "attempt": j.Attempt, "state": state, "exit_code": code},
				"%s\t%s\n", j.TaskID, state)
		}()
		if runErr != nil {
			state = "failed"
			var ee *exec.ExitError
			if !errors.As(runErr, &ee) {
				code = 127
				return nil, &baton.RemoteError{Code: int32(code), Message: runErr.Error()}
			}
			code = ee.ExitCode()
			last := strings.TrimSpace(errOut.String())
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			if last == "" {
				last = runErr.Error()
			}
			return nil, &baton.RemoteError{Code: int32(code), Message: last}
		}
		return out.Bytes(), nil
	}
	err = e.client.Tasks(pos[0], opts...).Work(workCtx, handler, baton.WorkOptions{})
	if workCtx.Err() != nil && e.ctx.Err() == nil {
		return nil // --count reached or --timeout passed
	}
	return err
}

// tee writes to a buffer and a stream.
type tee struct {
	buf *bytes.Buffer
	w   interface{ Write([]byte) (int, error) }
}

func (t *tee) Write(p []byte) (int, error) {
	t.buf.Write(p)
	return t.w.Write(p)
}
