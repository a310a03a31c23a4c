package baton_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestBarrierReleasesPartiesTogether(t *testing.T) {
	ctx := ctxT(t)
	n := name(t, "barrier")
	type res struct {
		p   baton.BarrierPass
		err error
	}
	out := make(chan res, 3)
	for i := 0; i < 3; i++ {
		c := dial(t)
		go func() {
			p, err := c.Barrier(n, 3).Wait(ctx)
			out <- res{p, err}
		}()
	}
	var idx []int
	for i := 0; i < 3; i++ {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.p.Cycle != 1 {
			t.Fatalf("cycle %d", r.p.Cycle)
		}
		idx = append(idx, r.p.Index)
	}
	sort.Ints(idx)
	if idx[0] != 0 || idx[1] != 1 || idx[2] != 2 {
		t.Fatalf("indices %v", idx)
	}
}

func TestBarrierTimeoutBreaksItUntilReset(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	n := name(t, "barrier")
	b := c.Barrier(n, 2)
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.Wait(tctx); !errors.Is(err, baton.ErrTimeout) {
		t.Fatalf("lone Wait: %v", err)
	}
	if info := must[*baton.ResourceInfo](t)(c.Describe(ctx, n)); !info.GetBarrier().GetBroken() {
		t.Fatalf("not broken: %v", info)
	}
	if _, err := b.Wait(ctx); !errors.Is(err, baton.ErrAborted) {
		t.Fatalf("Wait on a broken barrier: %v", err)
	}
	must[int](t)(b.Reset(ctx))
	errc := make(chan error, 1)
	go func() { _, err := b.Wait(ctx); errc <- err }()
	eventually(t, 5*time.Second, "a waiter", func() bool {
		info, err := c.Describe(ctx, n)
		return err == nil && info.GetBarrier().GetArrived() == 1
	})
	if aborted := must[int](t)(b.Abort(ctx)); aborted != 1 {
		t.Fatalf("Abort ended %d", aborted)
	}
	if err := <-errc; !errors.Is(err, baton.ErrAborted) {
		t.Fatalf("waiter of an aborted barrier: %v", err)
	}
	must[int](t)(b.Reset(ctx))
}
