package baton

import (
	"context"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Kind is a kind of resource.
type Kind = batonv1.ResourceKind

const (
	KindAny       = batonv1.ResourceKind_RESOURCE_KIND_UNSPECIFIED
	KindLock      = batonv1.ResourceKind_RESOURCE_KIND_LOCK
	KindSemaphore = batonv1.ResourceKind_RESOURCE_KIND_SEMAPHORE
	KindEvent     = batonv1.ResourceKind_RESOURCE_KIND_EVENT
	KindQueue     = batonv1.ResourceKind_RESOURCE_KIND_QUEUE
	KindFuture    = batonv1.ResourceKind_RESOURCE_KIND_FUTURE
	KindBarrier   = batonv1.ResourceKind_RESOURCE_KIND_BARRIER
	KindTimer     = batonv1.ResourceKind_RESOURCE_KIND_TIMER
	KindTasks     = batonv1.ResourceKind_RESOURCE_KIND_TASKS
)

// ResourceSummary is one line of List.
type ResourceSummary struct {
	Name    string
	Kind    Kind
	Holders int
	Waiters int
}

// List lists the live resources whose names start with prefix, of one kind
// (KindAny: every kind), in name order, fetching every page.
func (c *Client) List(ctx context.Context, prefix string, kind Kind) ([]ResourceSummary, error) {
	var out []ResourceSummary
	req := &batonv1.ListRequest{Prefix: prefix, Kind: kind, PageSize: 1000}
	for {
		resp, err := call(ctx, c, false, "list", req, func(ctx context.Context) (*batonv1.ListResponse, error) {
			return c.raw.Admin.List(ctx, req)
		})
		if err != nil {
			return nil, wrapErr(ctx, "Admin.List", prefix, err)
		}
		for _, r := range resp.GetResources() {
			out = append(out, ResourceSummary{Name: r.GetName(), Kind: r.GetKind(), Holders: int(r.GetHolders()), Waiters: int(r.GetWaiters())})
		}
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// ResourceInfo is Admin/Describe's answer: holders, waiters and the state of
// one resource, with kind-specific fields (see admin.proto).
type ResourceInfo = batonv1.DescribeResponse

// Describe describes one resource. Errors: ErrNotFound (never used, or
// reclaimed because idle).
func (c *Client) Describe(ctx context.Context, name string) (*ResourceInfo, error) {
	req := &batonv1.DescribeRequest{Name: name}
	resp, err := call(ctx, c, false, "describe", req, func(ctx context.Context) (*batonv1.DescribeResponse, error) {
		return c.raw.Admin.Describe(ctx, req)
	})
	if err != nil {
		return nil, wrapErr(ctx, "Admin.Describe", name, err)
	}
	return resp, nil
}
