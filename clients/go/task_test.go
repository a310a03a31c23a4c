package baton_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestTaskSubmitTakeCompleteAwait(t *testing.T) {
	ctx := ctxT(t)
	client, worker := dial(t), dial(t)
	qn := name(t, "tasks")
	task := must[*baton.Task](t)(client.Tasks(qn).Submit(ctx, []byte("42.png"), baton.MaxAttempts(3)))
	job := must[*baton.Job](t)(worker.Tasks(qn, baton.WithLease(30*time.Second)).Take(ctx))
	if job.TaskID != task.ID() || string(job.Payload) != "42.png" || job.Attempt != 1 {
		t.Fatalf("job %+v", job)
	}
	if cancelled := must[bool](t)(job.Heartbeat(ctx)); cancelled {
		t.Fatal("heartbeat says cancelled")
	}
	if st := must[baton.TaskState](t)(job.Complete(ctx, []byte("thumb-42.png"))); st != baton.TaskSucceeded {
		t.Fatalf("state %v", st)
	}
	if v := must[[]byte](t)(client.Task(task.ID()).Await(ctx)); string(v) != "thumb-42.png" {
		t.Fatalf("result %q", v)
	}
	o := must[*baton.TaskOutcome](t)(task.Outcome(ctx))
	if o.State != baton.TaskSucceeded || o.Attempts != 1 || o.Err != nil {
		t.Fatalf("outcome %+v", o)
	}
	if _, err := job.Heartbeat(ctx); !errors.Is(err, baton.ErrNotHeld) {
		t.Fatalf("heartbeat of a done task: %v", err)
	}
}

func TestTaskFailureRetriesThenFails(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	tq := c.Tasks(name(t, "tasks"))
	task := must[*baton.Task](t)(tq.Submit(ctx, nil, baton.MaxAttempts(2)))
	j1 := must[*baton.Job](t)(tq.Take(ctx))
	if st := must[baton.TaskState](t)(j1.Fail(ctx, 7, "flaky", false)); st != baton.TaskPending {
		t.Fatalf("after first failure %v", st)
	}
	j2 := must[*baton.Job](t)(tq.Take(ctx))
	if j2.Attempt != 2 {
		t.Fatalf("attempt %d", j2.Attempt)
	}
	if st := must[baton.TaskState](t)(j2.Fail(ctx, 8, "broken", false)); st != baton.TaskFailed {
		t.Fatalf("after last failure %v", st)
	}
	_, err := task.Await(ctx)
	var re *baton.RemoteError
	if !errors.As(err, &re) || re.Code != 8 || re.Message != "broken" {
		t.Fatalf("Await: %v", err)
	}
}

func TestTaskCancelPendingAndRunning(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	tq := c.Tasks(name(t, "tasks"))
	pending := must[*baton.Task](t)(tq.Submit(ctx, nil, baton.Delay(time.Hour)))
	if ok, st, err := pending.Cancel(ctx); err != nil || !ok || st != baton.TaskCancelled {
		t.Fatalf("cancel pending: %v %v %v", ok, st, err)
	}
	if _, err := pending.Await(ctx); !errors.Is(err, baton.ErrTaskCancelled) {
		t.Fatalf("Await of cancelled: %v", err)
	}
	running := must[*baton.Task](t)(tq.Submit(ctx, nil))
	job := must[*baton.Job](t)(tq.Take(ctx))
	if ok, _, err := running.Cancel(ctx); err != nil || !ok {
		t.Fatalf("cancel running: %v %v", ok, err)
	}
	if cancelled := must[bool](t)(job.Heartbeat(ctx)); !cancelled {
		t.Fatal("heartbeat did not report the cancel")
	}
	if st := must[baton.TaskState](t)(job.Complete(ctx, nil)); st != baton.TaskCancelled {
		t.Fatalf("state %v", st)
	}
	if ok, _, _ := running.Cancel(ctx); ok {
		t.Fatal("second Cancel returned true")
	}
	if _, err := c.Task(tq.Name() + "#999999").Await(ctx); !errors.Is(err, baton.ErrNotFound) {
		t.Fatalf("Await of unknown task: %v", err)
	}
}

func TestTaskWaitModesAndTimeout(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	tq := c.Tasks(name(t, "tasks"))
	t1 := must[*baton.Task](t)(tq.Submit(ctx, []byte("1")))
	t2 := must[*baton.Task](t)(tq.Submit(ctx, []byte("2")))
	done, pending := mustWait(t)(tq.WaitTimeout(ctx, baton.FirstCompleted, 50*time.Millisecond, t1, t2))
	if len(done) != 0 || len(pending) != 2 {
		t.Fatalf("nothing done yet: done %d pending %d", len(done), len(pending))
	}
	j := must[*baton.Job](t)(tq.Take(ctx))
	must[baton.TaskState](t)(j.Complete(ctx, []byte("r1")))
	done, pending = mustWait(t)(tq.Wait(ctx, baton.FirstCompleted, t1, t2))
	if len(done) != 1 || done[0].TaskID != t1.ID() || string(done[0].Result) != "r1" || len(pending) != 1 || pending[0].ID() != t2.ID() {
		t.Fatalf("FIRST_COMPLETED: done %+v pending %+v", done, pending)
	}
	j = must[*baton.Job](t)(tq.Take(ctx))
	must[baton.TaskState](t)(j.Fail(ctx, 1, "bad", true))
	done, pending = mustWait(t)(c.WaitTasks(ctx, baton.AllCompleted, 0, t1.ID(), t2.ID()))
	if len(done) != 2 || len(pending) != 0 {
		t.Fatalf("ALL_COMPLETED: done %d pending %d", len(done), len(pending))
	}
}

func mustWait(t *testing.T) func([]*baton.TaskOutcome, []*baton.Task, error) ([]*baton.TaskOutcome, []*baton.Task) {
	return func(d []*baton.TaskOutcome, p []*baton.Task, err error) ([]*baton.TaskOutcome, []*baton.Task) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d, p
	}
}

func TestTaskGroupFailureCancelsSiblingsButNotShielded(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	tq := c.Tasks(name(t, "tasks"))
	g := tq.Group("batch-1")
	failing := must[*baton.Task](t)(g.Submit(ctx, []byte("fail")))
	sibling := must[*baton.Task](t)(g.Submit(ctx, []byte("sibling"), baton.Delay(time.Hour)))
	shielded := must[*baton.Task](t)(g.Submit(ctx, []byte("shielded"), baton.Shielded()))
	j := must[*baton.Job](t)(tq.Take(ctx))
	if j.TaskID != failing.ID() {
		t.Fatalf("took %s", j.TaskID)
	}
	must[baton.TaskState](t)(j.Fail(ctx, 3, "boom", true))
	done, _ := mustWait(t)(g.Wait(ctx, baton.FirstException))
	if len(done) == 0 {
		t.Fatal("FIRST_EXCEPTION returned nothing")
	}
	if _, err := sibling.Await(ctx); !errors.Is(err, baton.ErrTaskCancelled) {
		t.Fatalf("sibling: %v", err)
	}
	j = must[*baton.Job](t)(tq.Take(ctx))
	if j.TaskID != shielded.ID() {
		t.Fatalf("took %s, want the shielded task", j.TaskID)
	}
	must[baton.TaskState](t)(j.Complete(ctx, []byte("ok")))
	done, pending := mustWait(t)(g.Wait(ctx, baton.AllCompleted))
	if len(done) != 3 || len(pending) != 0 {
		t.Fatalf("group: done %d pending %d", len(done), len(pending))
	}
	if _, _, err := tq.Group("no-such-group").Wait(ctx, baton.AllCompleted); !errors.Is(err, baton.ErrNotFound) {
		t.Fatalf("Wait of an empty group: %v", err)
	}
}

func TestWorkLoopRunsHandlersAndStopsCancelledTasks(t *testing.T) {
	ctx := ctxT(t)
	c, w := dial(t), dial(t)
	qn := name(t, "tasks")
	tq := c.Tasks(qn)
	wctx, stop := context.WithCancel(ctx)
	var started atomic.Int32
	workErr := make(chan error, 1)
	go func() {
		workErr <- w.Tasks(qn, baton.WithLease(2*time.Second)).Work(wctx, func(ctx context.Context, j *baton.Job) ([]byte, error) {
			switch string(j.Payload) {
			case "slow":
				started.Add(1)
				<-ctx.Done() // until the task is cancelled
				return nil, ctx.Err()
			case "bad":
				return nil, baton.Permanent(&baton.RemoteError{Code: 22, Message: "bad input"})
			case "panic":
				panic("oops")
			}
			return []byte("done:" + string(j.Payload)), nil
		}, baton.WorkOptions{HeartbeatEvery: 50 * time.Millisecond})
	}()
	ok := must[*baton.Task](t)(tq.Submit(ctx, []byte("a")))
	if v := must[[]byte](t)(ok.Await(ctx)); string(v) != "done:a" {
		t.Fatalf("result %q", v)
	}
	bad := must[*baton.Task](t)(tq.Submit(ctx, []byte("bad"), baton.MaxAttempts(5)))
	o := must[*baton.TaskOutcome](t)(bad.Outcome(ctx))
	var re *baton.RemoteError
	if o.State != baton.TaskFailed || o.Attempts != 1 || !errors.As(o.Err, &re) || re.Code != 22 {
		t.Fatalf("permanent failure: %+v", o)
	}
	pn := must[*baton.Task](t)(tq.Submit(ctx, []byte("panic")))
	if _, err := pn.Await(ctx); !errors.As(err, &re) {
		t.Fatalf("panicking handler: %v", err)
	}
	slow := must[*baton.Task](t)(tq.Submit(ctx, []byte("slow")))
	eventually(t, 5*time.Second, "slow task to start", func() bool { return started.Load() == 1 })
	if ok, _, err := slow.Cancel(ctx); err != nil || !ok {
		t.Fatalf("cancel slow: %v %v", ok, err)
	}
	if _, err := slow.Await(ctx); !errors.Is(err, baton.ErrTaskCancelled) {
		t.Fatalf("cancelled running task: %v", err)
	}
	// The loop goes on after a cancelled task.
	again := must[*baton.Task](t)(tq.Submit(ctx, []byte("b")))
	if v := must[[]byte](t)(again.Await(ctx)); string(v) != "done:b" {
		t.Fatalf("result %q", v)
	}
	stop()
	if err := <-workErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Work returned %v", err)
	}
}

func TestTaskTakeCtxDeadline(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	tq := c.Tasks(name(t, "tasks"))
	if _, err := tq.TryTake(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("TryTake on empty: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := tq.Take(tctx); !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("Take: %v", err)
	}
}
