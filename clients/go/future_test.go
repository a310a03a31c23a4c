package baton_test

import (
	"errors"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestFutureSetOnceAwaitedByMany(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "fut")
	f := a.Future(n, baton.WithRetention(time.Minute))
	if _, err := f.TryAwait(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("TryAwait on pending: %v", err)
	}
	got := make(chan []byte, 2)
	for i := 0; i < 2; i++ {
		go func() {
			v, err := b.Future(n).Await(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
	}
	eventually(t, 5*time.Second, "two awaiters", func() bool {
		info, err := a.Describe(ctx, n)
		return err == nil && info.GetWaiters() == 2
	})
	if woken := must[int](t)(f.Set(ctx, []byte("42 rows"))); woken != 2 {
		t.Fatalf("woken %d", woken)
	}
	for i := 0; i < 2; i++ {
		if v := <-got; string(v) != "42 rows" {
			t.Fatalf("awaited %q", v)
		}
	}
	if _, err := f.Set(ctx, []byte("again")); !errors.Is(err, baton.ErrFailedPrecondition) {
		t.Fatalf("second Set: %v", err)
	}
	if ok := must[bool](t)(f.Cancel(ctx)); ok {
		t.Fatal("Cancel of a done future returned true")
	}
	if v := must[[]byte](t)(f.TryAwait(ctx)); string(v) != "42 rows" {
		t.Fatalf("TryAwait on done: %q", v)
	}
}

func TestFutureErrorAndCancelAreOutcomes(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	f := c.Future(name(t, "fut"))
	must[int](t)(f.SetError(ctx, 404, "no such report"))
	_, err := f.Await(ctx)
	var re *baton.RemoteError
	if !errors.As(err, &re) || re.Code != 404 || re.Message != "no such report" {
		t.Fatalf("Await of a failed future: %v", err)
	}
	g := c.Future(name(t, "fut"))
	done := make(chan error, 1)
	go func() { _, err := g.Await(ctx); done <- err }()
	eventually(t, 5*time.Second, "an awaiter", func() bool {
		info, err := c.Describe(ctx, g.Name())
		return err == nil && info.GetWaiters() == 1
	})
	if !must[bool](t)(g.Cancel(ctx)) {
		t.Fatal("Cancel of a pending future returned false")
	}
	if err := <-done; !errors.Is(err, baton.ErrFutureCancelled) {
		t.Fatalf("Await of a cancelled future: %v", err)
	}
}
