package baton_test

import (
	"errors"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestTimerAfterSetsEvent(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	ev := name(t, "ev")
	tm := c.Timer(name(t, "timer"))
	due := must[time.Duration](t)(tm.After(ctx, 200*time.Millisecond, baton.SetEventAction(ev)))
	if due <= 0 || due > 200*time.Millisecond {
		t.Fatalf("due in %v", due)
	}
	if _, err := tm.After(ctx, time.Second, baton.SetEventAction(ev)); !errors.Is(err, baton.ErrFailedPrecondition) {
		t.Fatalf("second schedule without Replace: %v", err)
	}
	must[time.Duration](t)(tm.After(ctx, 100*time.Millisecond, baton.SetEventAction(ev), baton.Replace()))
	must[struct{}](t)(struct{}{}, c.Event(ev).Wait(ctx))
	info := must[*baton.ResourceInfo](t)(c.Describe(ctx, tm.Name()))
	if info.GetTimer().GetFired() != 1 || info.GetTimer().GetAction() != "set_event "+ev {
		t.Fatalf("timer %v", info.GetTimer())
	}
	if ok, fired, err := tm.Cancel(ctx); err != nil || ok || fired != 1 {
		t.Fatalf("cancel of a fired one-shot: %v %d %v", ok, fired, err)
	}
	_, _ = c.Event(ev).Clear(ctx)
}

func TestTimerEveryPutsUntilCancelled(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	qn := name(t, "q")
	tm := c.Timer(name(t, "timer"))
	must[time.Duration](t)(tm.Every(ctx, 50*time.Millisecond, baton.PutAction(qn, baton.TextItem("beat")), baton.FirstAfter(0)))
	q := c.Queue(qn)
	for i := 0; i < 3; i++ {
		d := must[*baton.Delivery](t)(q.Get(ctx))
		if d.Text() != "beat" {
			t.Fatalf("got %q", d.Text())
		}
		_ = d.Ack(ctx)
	}
	ok, fired, err := tm.Cancel(ctx)
	if err != nil || !ok || fired < 3 {
		t.Fatalf("cancel: %v %d %v", ok, fired, err)
	}
	_, _ = q.Purge(ctx)
}

func TestTimerAtSetsFutureAndSubmitsTask(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	fn := name(t, "fut")
	must[time.Duration](t)(c.Timer(name(t, "timer")).At(ctx, time.Now().Add(100*time.Millisecond), baton.SetFutureAction(fn, []byte("v"))))
	if v := must[[]byte](t)(c.Future(fn).Await(ctx)); string(v) != "v" {
		t.Fatalf("future %q", v)
	}
	qn := name(t, "tasks")
	must[time.Duration](t)(c.Timer(name(t, "timer")).After(ctx, 0, baton.SubmitTaskAction(qn, []byte("p"), 1)))
	j := must[*baton.Job](t)(c.Tasks(qn).Take(ctx))
	if string(j.Payload) != "p" {
		t.Fatalf("payload %q", j.Payload)
	}
	must[baton.TaskState](t)(j.Complete(ctx, nil))
	ev := name(t, "ev")
	must[int](t)(c.Event(ev).Set(ctx))
	must[time.Duration](t)(c.Timer(name(t, "timer")).After(ctx, 0, baton.ClearEventAction(ev)))
	eventually(t, 5*time.Second, "event cleared by the timer", func() bool {
		set, err := c.Event(ev).IsSet(ctx)
		return err == nil && !set
	})
}
