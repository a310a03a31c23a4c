package baton_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
	"github.com/baton/baton/clients/go/internal/testserver"
)

// addr is the batond every test talks to, started by TestMain.
var addr string

func TestMain(m *testing.M) {
	srv, err := testserver.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	addr = srv.Addr
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

var nameSeq atomic.Int64

// name returns a resource name unique to this test run.
func name(t testing.TB, what string) string {
	return fmt.Sprintf("gotest/%s/%s-%d-%d", t.Name(), what, os.Getpid(), nameSeq.Add(1))
}

// ctxT is a context bounded well within the test timeout.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a new client, closed at the end of the test.
func dial(t testing.TB, opts ...baton.Option) *baton.Client {
	t.Helper()
	return dialAddr(t, addr, opts...)
}

func dialAddr(t testing.TB, a string, opts ...baton.Option) *baton.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := baton.Dial(ctx, a, opts...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", a, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
