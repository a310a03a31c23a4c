package baton_test

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	baton "github.com/baton/baton/clients/go"
)

func TestLockGrantsIncreasingFencingTokens(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	m := c.Mutex(name(t, "lock"))
	var last uint64
	for i := 0; i < 3; i++ {
		held, err := m.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if held.Fence() <= last {
			t.Fatalf("token %d not above previous %d", held.Fence(), last)
		}
		if held.Outcome() != baton.OutcomeImmediate {
			t.Fatalf("outcome %v, want immediate", held.Outcome())
		}
		last = held.Fence()
		if err := held.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTryLockFailsWithWouldBlockWhileHeld(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(a.Mutex(n).Lock(ctx))
	_, err := b.Mutex(n).TryLock(ctx)
	if !errors.Is(err, baton.ErrWouldBlock) || !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("TryLock while held: %v, want ErrWouldBlock and ErrTimeout", err)
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status.Code = %v", status.Code(err))
	}
	var be *baton.Error
	if !errors.As(err, &be) || be.Op != "Locks.Acquire" || be.Name != n {
		t.Fatalf("error %#v lacks op/name", err)
	}
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	h2, err := b.Mutex(n).TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock after unlock: %v", err)
	}
	_ = h2.Unlock(ctx)
}

func TestLockWaitsInLineAndIsHandedOff(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(a.Mutex(n).Lock(ctx))
	got := make(chan *baton.HeldLock, 1)
	go func() {
		h, err := b.Mutex(n).Lock(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	eventually(t, 5*time.Second, "second Lock to wait", func() bool {
		info, err := a.Describe(ctx, n)
		return err == nil && info.GetWaiters() == 1
	})
	select {
	case <-got:
		t.Fatal("granted while held")
	default:
	}
	first := held.Fence()
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	h2 := <-got
	if h2 == nil {
		t.FailNow()
	}
	if h2.Fence() <= first || h2.Outcome() != baton.OutcomeAfterWait {
		t.Fatalf("second grant: token %d (first %d) outcome %v", h2.Fence(), first, h2.Outcome())
	}
	_ = h2.Unlock(ctx)
}

func TestLockCtxDeadlineTimesOut(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(a.Mutex(n).Lock(ctx))
	defer held.Unlock(ctx)
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Mutex(n).Lock(tctx)
	if !errors.Is(err, baton.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past deadline: %v", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Fatalf("returned after %v", el)
	}
}

func TestUnlockTwiceIsNotHeld(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	held := must[*baton.HeldLock](t)(c.Mutex(name(t, "lock")).Lock(ctx))
	must[struct{}](t)(struct{}{}, held.Unlock(ctx))
	if err := held.Unlock(ctx); !errors.Is(err, baton.ErrNotHeld) || !errors.Is(err, baton.ErrFailedPrecondition) {
		t.Fatalf("second Unlock: %v", err)
	}
}

func TestUnlockWithCancelledCtxStillReleases(t *testing.T) {
	c := dial(t)
	n := name(t, "lock")
	ctx, cancel := context.WithCancel(context.Background())
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	cancel()
	if err := held.Unlock(ctx); err != nil {
		t.Fatalf("Unlock with a cancelled ctx: %v", err)
	}
	h := must[*baton.HeldLock](t)(c.Mutex(n).TryLock(ctxT(t)))
	_ = h.Unlock(ctxT(t))
}

func TestLeaseOnlyLockExpiresAndRefreshExtends(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "lock")
	m := c.Mutex(n, baton.WithLease(300*time.Millisecond), baton.WithoutSession())
	held := must[*baton.HeldLock](t)(m.Lock(ctx))
	if held.Session() != nil || held.ExpiresIn() <= 0 {
		t.Fatalf("lease-only grant: session %v expires in %v", held.Session(), held.ExpiresIn())
	}
	left := must[time.Duration](t)(held.Refresh(ctx, 5*time.Second))
	if left < 4*time.Second {
		t.Fatalf("Refresh left %v", left)
	}
	info := must[*baton.ResourceInfo](t)(c.Describe(ctx, n))
	if len(info.GetHolders()) != 1 || info.GetHolders()[0].GetSessionId() != 0 {
		t.Fatalf("holders %v", info.GetHolders())
	}
	must[time.Duration](t)(held.Refresh(ctx, 200*time.Millisecond))
	eventually(t, 5*time.Second, "lease to run out", func() bool {
		_, err := c.Describe(ctx, n)
		return errors.Is(err, baton.ErrNotFound)
	})
	if err := held.Unlock(ctx); !errors.Is(err, baton.ErrNotHeld) {
		t.Fatalf("Unlock after expiry: %v", err)
	}
}

func TestWithoutSessionNeedsLease(t *testing.T) {
	c := dial(t)
	_, err := c.Mutex(name(t, "lock"), baton.WithoutSession()).Lock(ctxT(t))
	if !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestLockRequestIDReplaysTheHeldGrant(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "lock")
	m := c.Mutex(n, baton.WithRequestID("job-42"))
	h1 := must[*baton.HeldLock](t)(m.Lock(ctx))
	h2 := must[*baton.HeldLock](t)(m.Lock(ctx))
	if h2.Fence() != h1.Fence() || h2.Outcome() != baton.OutcomeReplayed {
		t.Fatalf("replay: token %d vs %d, outcome %v", h2.Fence(), h1.Fence(), h2.Outcome())
	}
	_ = h1.Unlock(ctx)
}

func TestInvalidNameIsInvalidArgument(t *testing.T) {
	_, err := dial(t).Mutex("not a name").Lock(ctxT(t))
	if !errors.Is(err, baton.ErrInvalidArgument) || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v", err)
	}
}

func TestNameOfAnotherKindIsFailedPrecondition(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "res")
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	defer held.Unlock(ctx)
	_, err := c.Semaphore(n, 2).Acquire(ctx, 1)
	if !errors.Is(err, baton.ErrFailedPrecondition) {
		t.Fatalf("semaphore on a lock's name: %v", err)
	}
}

// Cancelled Lock calls racing with grants must never leave the lock held:
// the server rolls back a grant whose call it sees cancelled, and the client
// releases one whose reply it dropped (see Mutex.rollBack). Half the calls end
// by a ctx deadline, half by an explicit cancel, at random moments around
// the release that grants them.
func TestCancelledLocksRacingWithGrantsNeverLeak(t *testing.T) {
	ctx := ctxT(t)
	holder, waiter, checker := dial(t), dial(t), dial(t)
	n := name(t, "lock")
	rng := rand.New(rand.NewSource(1))
	granted, cancelled := 0, 0
	for i := 0; i < 150; i++ {
		held := must[*baton.HeldLock](t)(holder.Mutex(n).Lock(ctx))
		var wctx context.Context
		var cancel context.CancelFunc
		if i%2 == 0 {
			wctx, cancel = context.WithTimeout(ctx, time.Duration(rng.Intn(3000))*time.Microsecond)
		} else {
			wctx, cancel = context.WithCancel(ctx)
			time.AfterFunc(time.Duration(rng.Intn(3000))*time.Microsecond, cancel)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		var got *baton.HeldLock
		var err error
		go func() {
			defer wg.Done()
			got, err = waiter.Mutex(n).Lock(wctx)
		}()
		time.Sleep(time.Duration(rng.Intn(3000)) * time.Microsecond)
		uerr := held.Unlock(ctx)
		wg.Wait()
		cancel()
		if uerr != nil {
			t.Fatalf("iteration %d: holder's Unlock: %v", i, uerr)
		}
		switch {
		case err == nil:
			granted++
			if e := got.Unlock(ctx); e != nil {
				t.Fatalf("iteration %d: Unlock of a granted lock: %v", i, e)
			}
		case errors.Is(err, baton.ErrTimeout) || errors.Is(err, baton.ErrCanceled):
			cancelled++
		default:
			t.Fatalf("iteration %d: unexpected error %v", i, err)
		}
		// Whatever happened, the lock must become free.
		if !waitFree(ctx, checker, n) {
			info, derr := checker.Describe(ctx, n)
			t.Fatalf("iteration %d: lock still held after 3 s (waiter: %v): %v %v", i, err, info, derr)
		}
	}
	t.Logf("granted %d, cancelled %d", granted, cancelled)
	if cancelled == 0 || granted == 0 {
		t.Fatalf("granted %d, cancelled %d: the race was not exercised", granted, cancelled)
	}
}

func TestSessionCloseReleasesLockAndAbortsWaits(t *testing.T) {
	ctx := ctxT(t)
	c, other := dial(t), dial(t)
	n := name(t, "lock")
	s1 := must[*baton.Session](t)(c.NewSession(ctx))
	s2 := must[*baton.Session](t)(c.NewSession(ctx))
	held := must[*baton.HeldLock](t)(c.Mutex(n, baton.WithSession(s1)).Lock(ctx))
	if held.Session() != s1 {
		t.Fatal("grant not owned by s1")
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Mutex(n, baton.WithSession(s2)).Lock(ctx)
		errc <- err
	}()
	eventually(t, 5*time.Second, "waiter", func() bool {
		info, err := other.Describe(ctx, n)
		return err == nil && info.GetWaiters() == 1
	})
	must[struct{}](t)(struct{}{}, s2.Close(ctx))
	if err := <-errc; !errors.Is(err, baton.ErrSessionLost) {
		t.Fatalf("waiter of a closed session: %v", err)
	}
	select {
	case <-s2.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if !errors.Is(s2.Err(), baton.ErrSessionClosed) {
		t.Fatalf("Err = %v", s2.Err())
	}
	must[struct{}](t)(struct{}{}, s1.Close(ctx))
	h := must[*baton.HeldLock](t)(other.Mutex(n).TryLock(ctx))
	_ = h.Unlock(ctx)
	if _, err := c.Mutex(n, baton.WithSession(s1)).Lock(ctx); !errors.Is(err, baton.ErrSessionLost) {
		t.Fatalf("Lock with a closed session: %v", err)
	}
}

func waitFree(ctx context.Context, c *baton.Client, n string) bool {
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		h, err := c.Mutex(n).TryLock(ctx)
		if err == nil {
			_ = h.Unlock(ctx)
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
