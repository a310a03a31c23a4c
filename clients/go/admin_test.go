package baton_test

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	baton "github.com/baton/baton/clients/go"
)

func TestAdminListAndDescribe(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	prefix := name(t, "admin") + "/"
	held := must[*baton.HeldLock](t)(c.Mutex(prefix+"lock", baton.WithRequestID("req-1")).Lock(ctx))
	defer held.Unlock(ctx)
	p := must[*baton.Permits](t)(c.Semaphore(prefix+"sem", 3).Acquire(ctx, 1))
	defer p.Release(ctx)
	must[int](t)(c.Event(prefix + "ev").Set(ctx))
	defer c.Event(prefix + "ev").Clear(ctx)

	all := must[[]baton.ResourceSummary](t)(c.List(ctx, prefix, baton.KindAny))
	if len(all) != 3 || all[0].Name != prefix+"ev" || all[1].Name != prefix+"lock" || all[2].Name != prefix+"sem" {
		t.Fatalf("list %+v", all)
	}
	locks := must[[]baton.ResourceSummary](t)(c.List(ctx, prefix, baton.KindLock))
	if len(locks) != 1 || locks[0].Kind != baton.KindLock || locks[0].Holders != 1 {
		t.Fatalf("locks %+v", locks)
	}
	info := must[*baton.ResourceInfo](t)(c.Describe(ctx, prefix+"lock"))
	if info.GetKind() != baton.KindLock || len(info.GetHolders()) != 1 ||
		info.GetHolders()[0].GetRequestId() != "req-1" || info.GetHolders()[0].GetToken() != held.Fence() ||
		info.GetHolders()[0].GetSessionId() != held.Session().ID() {
		t.Fatalf("describe %v", info)
	}
	_, err := c.Describe(ctx, prefix+"nothing")
	if !errors.Is(err, baton.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Fatalf("describe of nothing: %v", err)
	}
}

func TestListPagesThroughManyResources(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	prefix := name(t, "many") + "/"
	var held []*baton.HeldLock
	for i := 0; i < 1050; i++ {
		held = append(held, must[*baton.HeldLock](t)(c.Mutex(fmt.Sprintf("%s%04d", prefix, i)).Lock(ctx)))
	}
	all := must[[]baton.ResourceSummary](t)(c.List(ctx, prefix, baton.KindLock))
	if len(all) != 1050 {
		t.Fatalf("listed %d of 1050", len(all))
	}
	for _, h := range held {
		_ = h.Unlock(ctx)
	}
}
