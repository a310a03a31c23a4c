package baton_test

import (
	"errors"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestConditionWaitNotify(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "lock")
	type result struct {
		token uint64
		err   error
	}
	done := make(chan result, 1)
	ready := make(chan uint64, 1)
	go func() {
		m := b.Mutex(n)
		held, err := m.Lock(ctx)
		if err != nil {
			done <- result{0, err}
			return
		}
		ready <- held.Fence()
		err = m.Cond("non-empty").Wait(ctx, held)
		token := held.Fence()
		if err == nil {
			err = held.Unlock(ctx)
		}
		done <- result{token, err}
	}()
	first := <-ready
	eventually(t, 5*time.Second, "waiter on the condition", func() bool {
		info, err := a.Describe(ctx, n)
		return err == nil && len(info.GetConditions()) == 1 && info.GetConditions()[0].GetWaiters() == 1
	})
	m := a.Mutex(n)
	held := must[*baton.HeldLock](t)(m.Lock(ctx)) // free: the waiter released it
	cond := m.Cond("non-empty")
	if woken := must[int](t)(cond.Notify(ctx, held, 1)); woken != 1 {
		t.Fatalf("woken %d", woken)
	}
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.token <= first {
		t.Fatalf("token after Wait %d, before %d", r.token, first)
	}
}

func TestConditionWaitTimeoutReacquires(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	m := c.Mutex(name(t, "lock"))
	held := must[*baton.HeldLock](t)(m.Lock(ctx))
	before := held.Fence()
	notified := must[bool](t)(m.Cond("").WaitTimeout(ctx, held, 100*time.Millisecond))
	if notified || held.Fence() <= before {
		t.Fatalf("notified %v token %d->%d", notified, before, held.Fence())
	}
	// The old token no longer proves the lock; the new one does.
	stale := must[*baton.HeldLock](t)(c.Mutex(name(t, "other")).Lock(ctx)) // a holding of another lock
	if _, err := m.Cond("").Notify(ctx, stale, 1); !errors.Is(err, baton.ErrNotHeld) {
		t.Fatalf("Notify without the lock: %v", err)
	}
	_ = stale.Unlock(ctx)
	if woken := must[int](t)(m.Cond("").NotifyAll(ctx, held)); woken != 0 {
		t.Fatalf("woken %d", woken)
	}
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
}

func TestConditionWaitUntilPredicate(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "lock")
	ev := name(t, "ev") // the shared state the predicate reads
	errc := make(chan error, 1)
	go func() {
		m := b.Mutex(n)
		held, err := m.Lock(ctx)
		if err != nil {
			errc <- err
			return
		}
		err = m.Cond("").WaitUntil(ctx, held, func() bool {
			set, _ := b.Event(ev).IsSet(ctx)
			return set
		})
		_ = held.Unlock(ctx)
		errc <- err
	}()
	for i := 0; i < 2; i++ { // one spurious notify, then the real one
		time.Sleep(100 * time.Millisecond)
		m := a.Mutex(n)
		held := must[*baton.HeldLock](t)(m.Lock(ctx))
		if i == 1 {
			must[int](t)(a.Event(ev).Set(ctx))
		}
		must[int](t)(m.Cond("").NotifyAll(ctx, held))
		_ = held.Unlock(ctx)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitUntil did not return")
	}
	_, _ = a.Event(ev).Clear(ctx)
}
