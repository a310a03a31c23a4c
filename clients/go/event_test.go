package baton_test

import (
	"context"
	"errors"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestEventSetWakesWaitersAndClear(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "ev")
	ev := a.Event(n)
	if set := must[bool](t)(ev.IsSet(ctx)); set {
		t.Fatal("new event is set")
	}
	errc := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errc <- b.Event(n).Wait(ctx) }()
	}
	eventually(t, 5*time.Second, "two waiters", func() bool {
		info, err := a.Describe(ctx, n)
		return err == nil && info.GetWaiters() == 2
	})
	if woken := must[int](t)(ev.Set(ctx)); woken != 2 {
		t.Fatalf("woken %d", woken)
	}
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if !must[bool](t)(ev.IsSet(ctx)) {
		t.Fatal("not set after Set")
	}
	must[struct{}](t)(struct{}{}, ev.Wait(ctx))
	if was := must[bool](t)(ev.Clear(ctx)); !was {
		t.Fatal("Clear: was not set")
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := ev.Wait(tctx); !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("Wait on a clear event: %v", err)
	}
}

func TestEventWaitWithSessionEndsWhenSessionCloses(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	s := must[*baton.Session](t)(c.NewSession(ctx))
	errc := make(chan error, 1)
	go func() { errc <- c.Event(name(t, "ev"), baton.WithSession(s)).Wait(ctx) }()
	time.Sleep(100 * time.Millisecond)
	_ = s.Close(ctx)
	select {
	case err := <-errc:
		if !errors.Is(err, baton.ErrSessionLost) && !errors.Is(err, baton.ErrAborted) {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not end with its session")
	}
}

func TestEventWatchStreamsChanges(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "ev")
	ev := c.Event(n)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := make(chan baton.EventChange, 10)
	errc := make(chan error, 1)
	go func() {
		for ch, err := range ev.Watch(wctx) {
			if err != nil {
				errc <- err
				return
			}
			changes <- ch
		}
	}()
	next := func() baton.EventChange {
		select {
		case ch := <-changes:
			return ch
		case <-time.After(5 * time.Second):
			t.Fatal("no change")
		}
		return baton.EventChange{}
	}
	if ch := next(); ch.Set || ch.Sequence != 1 {
		t.Fatalf("first: %+v", ch)
	}
	must[int](t)(ev.Set(ctx))
	if ch := next(); !ch.Set {
		t.Fatalf("after Set: %+v", ch)
	}
	must[bool](t)(ev.Clear(ctx))
	if ch := next(); ch.Set {
		t.Fatalf("after Clear: %+v", ch)
	}
	cancel()
	if err := <-errc; !errors.Is(err, baton.ErrCanceled) {
		t.Fatalf("end of watch: %v", err)
	}
}
