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
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

func taskCmd(e *env) *cobra.Command {
	return group("task", "Tasks: submit, await, cancel, wait for; work on them",
		`Tasks are asyncio's create_task across processes: 'task submit' puts a task with a
payload on a work queue and prints its id (QUEUE#N); workers take it ('task work', or
by hand with 'task take' and 'task complete'); anyone can await it, cancel it or wait
for several. A failed attempt is retried while --max-attempts allow.`,
		`  ID=$(baton task submit thumbnails photo.png --max-attempts 3)
  baton task work thumbnails -- ./make-thumbnail.sh &
  baton task await "$ID"`,
		taskSubmitCmd(e), taskAwaitCmd(e), taskCancelCmd(e), taskWaitCmd(e), taskTakeCmd(e),
		taskReportCmd(e, "heartbeat"), taskReportCmd(e, "complete"), taskReportCmd(e, "fail"), taskWorkCmd(e))
}

func taskSubmitCmd(e *env) *cobra.Command {
	var group string
	var maxAttempts int
	var delay, runTimeout time.Duration
	var shielded bool
	cmd := leaf("submit QUEUE [PAYLOAD] [--group G] [--max-attempts N] [--delay D] [--shielded] [--run-timeout D]",
		"Submit a task to a work queue and print its id",
		`Submits a task with PAYLOAD to work queue QUEUE and prints its id. --group puts it
in a task group (TaskGroup: the group's tasks are cancelled when one fails, unless
--shielded), --max-attempts allows retries, --delay makes it pending only later,
--run-timeout bounds each attempt.

--json prints the baton.v1.SubmitTaskResponse (Tasks/Submit).`+exits("0 submitted", "5 QUEUE is another kind"),
		`  baton task submit thumbnails photo.png --max-attempts 3
  baton task submit etl "2024-06-01" --group nightly`,
		1, 2, func(cmd *cobra.Command, pos []string) error {
			var payload []byte
			if len(pos) == 2 {
				payload = []byte(pos[1])
			}
			opts := []baton.SubmitOption{baton.MaxAttempts(maxAttempts), baton.Delay(delay), baton.RunTimeout(runTimeout)}
			if group != "" {
				opts = append(opts, baton.InGroup(group))
			}
			if shielded {
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
			e.reply(batonv1.Tasks_Submit_FullMethodName, "%s\n", t.ID())
			return nil
		})
	cmd.Flags().StringVar(&group, "group", "", "task group (its tasks are cancelled together when one fails)")
	cmd.Flags().IntVar(&maxAttempts, "max-attempts", 0, "attempts before the task fails for good (default 1)")
	cmd.Flags().DurationVar(&delay, "delay", 0, "pending only after this long")
	cmd.Flags().BoolVar(&shielded, "shielded", false, "not cancelled with its group")
	cmd.Flags().DurationVar(&runTimeout, "run-timeout", 0, "longest an attempt may run")
	cmd.ValidArgsFunction = e.completeNames(baton.KindTasks)
	return cmd
}

func taskAwaitCmd(e *env) *cobra.Command {
	return leaf("await ID", "Wait for a task and print its result",
		`Waits until task ID is done and prints its result. A task that failed (after its
last attempt) or was cancelled exits 7, with its error code and message on stderr.

--json prints the baton.v1.TaskOutcome (Tasks/Await), also when the task failed or was
cancelled.`+
			exits("0 the result", "7 the task failed or was cancelled", "3 not done within --timeout", "4 no such task (never submitted, or reclaimed)", "130 interrupted"),
		`  baton task await thumbnails#17 --timeout 10m`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			t := c.Task(pos[0])
			o, err := t.Outcome(ctx)
			if err != nil {
				return err
			}
			return e.printOutcome("task "+t.ID(), batonv1.Tasks_Await_FullMethodName, o.Result, o.Err)
		})
}

func taskCancelCmd(e *env) *cobra.Command {
	return leaf("cancel ID", "Cancel a task that is not done",
		`Cancels task ID: a pending one at once, a running one at its worker's next heartbeat
or completion ('task work' sends its command SIGTERM). Prints whether it was
cancelled and its state; a task already done is not, and exits 5.

--json prints the baton.v1.CancelTaskResponse (Tasks/Cancel).`+
			exits("0 cancelled", "4 no such task", "5 already done"),
		`  baton task cancel thumbnails#17`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			t := c.Task(pos[0])
			ok, state, err := t.Cancel(ctx)
			if err != nil {
				return err
			}
			e.reply(batonv1.Tasks_Cancel_FullMethodName, "cancelled %v (%s)\n", ok, stateName(state))
			if !ok {
				return &exitError{exitConflict, fmt.Sprintf("task %s was already done (%s)", t.ID(), stateName(state))}
			}
			return nil
		})
}

func stateName(s baton.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

func taskWaitCmd(e *env) *cobra.Command {
	var mode, queue, group string
	var wait time.Duration
	cmd := leaf("wait (ID... | --queue Q --group G) [--mode M] [--wait D]",
		"Wait for several tasks (asyncio.wait): print ID<TAB>STATE lines",
		`Waits for the tasks ID... (or the tasks of group G in work queue Q) until the first
is done (--mode first-completed), the first fails (first-exception) or all are done
(all-completed, the default); with --wait D, returns what is done after D instead of
waiting on. Prints "ID<TAB>STATE" for each task, "pending" for those not done.

--json prints the baton.v1.WaitTasksResponse (Tasks/Wait).`+
			exits("0 done (or --wait passed)", "3 not within --timeout", "4 no such task", "130 interrupted"),
		`  baton task wait thumbnails#17 thumbnails#18 --mode first-completed
  baton task wait --queue etl --group nightly --wait 1h`,
		0, -1, func(cmd *cobra.Command, pos []string) error {
			var m baton.WaitMode
			switch mode {
			case "first-completed":
				m = baton.FirstCompleted
			case "first-exception":
				m = baton.FirstException
			case "all-completed":
				m = baton.AllCompleted
			default:
				return usageErr("--mode must be first-completed, first-exception or all-completed, not %q", mode)
			}
			if (group == "") == (len(pos) == 0) || (group != "" && queue == "") {
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
			if group != "" {
				g := c.Tasks(queue).Group(group)
				if wait > 0 {
					done, pending, err = g.WaitTimeout(ctx, m, wait)
				} else {
					done, pending, err = g.Wait(ctx, m)
				}
			} else {
				done, pending, err = c.WaitTasks(ctx, m, wait, pos...)
			}
			if err != nil {
				return err
			}
			if e.g.json {
				e.reply(batonv1.Tasks_Wait_FullMethodName, "")
				return nil
			}
			for _, o := range done {
				fmt.Fprintf(e.stdout, "%s\t%s\n", o.TaskID, stateName(o.State))
			}
			for _, t := range pending {
				fmt.Fprintf(e.stdout, "%s\tpending\n", t.ID())
			}
			return nil
		})
	cmd.Flags().StringVar(&mode, "mode", "all-completed", "first-completed, first-exception or all-completed")
	cmd.Flags().StringVar(&queue, "queue", "", "with --group: the work queue")
	cmd.Flags().StringVar(&group, "group", "", "wait for the tasks of this group instead of IDs")
	cmd.Flags().DurationVar(&wait, "wait", 0, "return what is done after this long (exit 0) instead of waiting on")
	return cmd
}

func taskTakeCmd(e *env) *cobra.Command {
	var visibility time.Duration
	var try bool
	cmd := leaf("take QUEUE [--visibility D] [--try]", "Take a task to work on by hand: print ID<TAB>ATTEMPT<TAB>PAYLOAD",
		`Takes the oldest pending task of work queue QUEUE, waiting while there is none
(--try: fail at once), and prints "ID<TAB>ATTEMPT<TAB>PAYLOAD". The task runs under a
lease of --visibility (default 1m; or --session): renew it with 'task heartbeat', end
it with 'task complete' or 'task fail', each with --attempt ATTEMPT.

--json prints the baton.v1.TakeTaskResponse (Tasks/Take).`+
			exits("0 taken", "3 none pending (--try) or none within --timeout", "5 QUEUE is another kind", "130 interrupted"),
		`  IFS=$'\t' read -r ID ATTEMPT PAYLOAD < <(baton task take thumbnails --visibility 5m)
  baton task complete "$ID" --attempt "$ATTEMPT" "done"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			owner, err := e.getOwner(visibility)
			if err != nil {
				return err
			}
			tq := e.client.Tasks(pos[0], owner...)
			var j *baton.Job
			if try {
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
			e.reply(batonv1.Tasks_Take_FullMethodName, "%s\t%d\t%s\n", j.TaskID, j.Attempt, j.Payload)
			return nil
		})
	cmd.Flags().DurationVar(&visibility, "visibility", time.Minute, "lease on the task: lost unless heartbeaten or completed within it")
	cmd.Flags().BoolVar(&try, "try", false, "do not wait: fail (exit 3) if no task is pending")
	cmd.ValidArgsFunction = e.completeNames(baton.KindTasks)
	return cmd
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

func taskReportCmd(e *env, sub string) *cobra.Command {
	var attempt int
	var code int32
	var msg string
	var final bool
	use, short, long, example, max := "heartbeat ID --attempt N", "Renew the lease of a task taken with 'task take'",
		`Renews the lease of attempt N of task ID and prints whether the task was cancelled
meanwhile (then stop working on it).

--json prints the baton.v1.TaskHeartbeatResponse (Tasks/Heartbeat).`,
		`  baton task heartbeat thumbnails#17 --attempt 1`, 1
	method := batonv1.Tasks_Heartbeat_FullMethodName
	switch sub {
	case "complete":
		use, short, long, example, max = "complete ID --attempt N [RESULT]", "Finish a task taken with 'task take', with a result",
			`Completes attempt N of task ID with RESULT: its awaiters get it. Prints the task's
state.

--json prints the baton.v1.CompleteTaskResponse (Tasks/Complete).`,
			`  baton task complete thumbnails#17 --attempt 1 "s3://thumbs/17.png"`, 2
		method = batonv1.Tasks_Complete_FullMethodName
	case "fail":
		use, short, long, example = "fail ID --attempt N [--code C] [--message M] [--final]", "Fail an attempt of a task taken with 'task take'",
			`Fails attempt N of task ID with error code C (default 2) and message M. The task is
retried while attempts remain, unless --final. Prints the task's state.

--json prints the baton.v1.CompleteTaskResponse (Tasks/Complete).`,
			`  baton task fail thumbnails#17 --attempt 1 --code 3 --message "not an image" --final`
		method = batonv1.Tasks_Complete_FullMethodName
	}
	cmd := leaf(use, short, long+exits("0 done", "5 not running with this attempt (lost and retried, or done)"), example,
		1, max, func(cmd *cobra.Command, pos []string) error {
			if attempt <= 0 {
				return usageErr("--attempt is required")
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			j := jobOf(c, pos[0], attempt)
			switch sub {
			case "heartbeat":
				cancelled, err := j.Heartbeat(ctx)
				if err != nil {
					return err
				}
				e.reply(method, "cancelled %v\n", cancelled)
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
				e.reply(method, "%s\n", stateName(state))
				return nil
			}
			state, err := j.Fail(ctx, code, msg, final)
			if err != nil {
				return err
			}
			e.reply(method, "%s\n", stateName(state))
			return nil
		})
	cmd.Flags().IntVar(&attempt, "attempt", 0, "the attempt, as printed by 'task take' (required)")
	if sub == "fail" {
		cmd.Flags().Int32Var(&code, "code", 2, "the error code")
		cmd.Flags().StringVar(&msg, "message", "", "the error message")
		cmd.Flags().BoolVar(&final, "final", false, "no further attempts")
	}
	return cmd
}

// taskWorkCmd runs CMD for each task: the payload on its stdin, its stdout as
// the result; a non-zero exit fails the attempt with the exit code and the
// last line of its stderr.
func taskWorkCmd(e *env) *cobra.Command {
	var count int
	var visibility time.Duration
	cmd := &cobra.Command{
		Use:   "work QUEUE [--count N] [--visibility D] -- CMD [ARGS...]",
		Short: "Work on the tasks of a queue: run a command per task",
		Long: `A worker: takes the tasks of work queue QUEUE one at a time and runs CMD for each,
with the payload on its stdin and BATON_TASK_ID, BATON_TASK_ATTEMPT, BATON_TASK_QUEUE
and BATON_ADDR in its environment. CMD's stdout is the task's result; a non-zero exit
fails the attempt with that code and the last line of CMD's stderr as the message
(127 if CMD was not found, 126 if not executable). A task cancelled while CMD runs
gets CMD SIGTERM (SIGKILL 10s later). The task is owned by baton's session, and with
--visibility also by a lease renewed by heartbeats. Prints "ID<TAB>succeeded" or
"ID<TAB>failed" per task. Stops after --count tasks, --timeout, or an interrupt.

--json prints, per task, a baton.v1.TaskOutcome of the attempt run: its id, the state
Tasks/Complete answered (PENDING again if it is retried), the result or the error,
and the attempt.` +
			exits("0 done (--count tasks, or --timeout)", "5 QUEUE is another kind", "130 interrupted"),
		Example: `  baton task work thumbnails -- ./make-thumbnail.sh
  baton task work etl --count 1 --visibility 1m -- python3 etl.py`,
		ValidArgsFunction: e.completeNames(baton.KindTasks),
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many tasks (default: until interrupted or --timeout)")
	cmd.Flags().DurationVar(&visibility, "visibility", 0, "lease on each task, renewed by heartbeats (default: the session only)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		pos, child, err := childArgs(cmd, args, 1, 1)
		if err != nil {
			return err
		}
		if len(child) == 0 {
			return usageErr("no command: give one after --")
		}
		opts, err := e.ownerOpts(visibility, false)
		if err != nil {
			return err
		}
		workCtx, stop := context.WithCancel(e.ctx)
		defer stop()
		if e.g.timeout > 0 {
			workCtx, stop = context.WithTimeout(workCtx, e.g.timeout)
			defer stop()
		}
		if e.g.json {
			e.rec.onReply(batonv1.Tasks_Complete_FullMethodName, func(req, reply proto.Message) {
				q, _ := req.(*batonv1.CompleteTaskRequest)
				r, _ := reply.(*batonv1.CompleteTaskResponse)
				o := &batonv1.TaskOutcome{TaskId: q.GetTaskId(), State: r.GetState(), Result: q.GetResult(),
					Error: q.GetError(), Attempts: q.GetAttempt()}
				if utf8.Valid(o.Result) {
					o.Text = string(o.Result)
				}
				e.printMsg(o)
			})
		}
		n := 0
		handler := func(ctx context.Context, j *baton.Job) ([]byte, error) {
			c := exec.CommandContext(ctx, child[0], child[1:]...)
			c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
			c.WaitDelay = 10 * time.Second
			c.Stdin = bytes.NewReader(j.Payload)
			var out, errOut bytes.Buffer
			c.Stdout = &out
			c.Stderr = &tee{&errOut, e.stderr}
			c.Env = append(append(os.Environ(), envVar("BATON_TASK_ID", j.TaskID), envVar("BATON_TASK_ATTEMPT", j.Attempt),
				envVar("BATON_TASK_QUEUE", pos[0])), e.g.serverEnv()...)
			runErr := c.Run()
			n++
			if count > 0 && n >= count {
				stop() // Work completes this task, then returns
			}
			if runErr == nil {
				if !e.g.json {
					fmt.Fprintf(e.stdout, "%s\tsucceeded\n", j.TaskID)
				}
				return out.Bytes(), nil
			}
			if !e.g.json {
				fmt.Fprintf(e.stdout, "%s\tfailed\n", j.TaskID)
			}
			var ee *exec.ExitError
			if !errors.As(runErr, &ee) {
				return nil, &baton.RemoteError{Code: int32(startFailureCode(runErr)), Message: runErr.Error()}
			}
			last := strings.TrimSpace(errOut.String())
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			if last == "" {
				last = runErr.Error()
			}
			return nil, &baton.RemoteError{Code: int32(ee.ExitCode()), Message: last}
		}
		err = e.client.Tasks(pos[0], opts...).Work(workCtx, handler, baton.WorkOptions{})
		if workCtx.Err() != nil && e.ctx.Err() == nil {
			return nil // --count reached or --timeout passed
		}
		return err
	}
	return cmd
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
