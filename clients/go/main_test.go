package baton_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
	"github.com/baton/baton/clients/go/internal/suiteserver"
)

var (
	// addr is the batond every test talks to, started by TestMain:
	// plaintext, or with TLS and a token under BATON_TEST_SECURE=1.
	addr string
	// suite is that server; suite.Options() dial it (nothing, or TLS and
	// the token), and dial adds them.
	suite *suiteserver.Server
	// dialOpts are suite.Options(), for the examples.
	dialOpts []baton.Option
)

func TestMain(m *testing.M) {
	srv, err := suiteserver.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	addr, suite, dialOpts = srv.Addr, srv, srv.Options()
	if srv.Creds != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %s=1: batond at %s with TLS and principal %q's token\n",
			suiteserver.EnvVar, addr, suiteserver.Principal)
	}
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// transportOpts come first in every dial: none (the default transport, the
// stream) or WithTransport(Unary) while TestUnaryTransport runs.
var transportOpts []baton.Option

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

// dial connects a new client to the suite's server, closed at the end of
// the test; opts come after the suite's own (TLS and the token when secure).
func dial(t testing.TB, opts ...baton.Option) *baton.Client {
	t.Helper()
	return dialAddr(t, addr, append(suite.Options(), opts...)...)
}

// dialAddr connects a new client to a, with opts only (a server of the
// test's own; for the suite's server through a proxy, give suite.Options()).
func dialAddr(t testing.TB, a string, opts ...baton.Option) *baton.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := baton.Dial(ctx, a, append(append([]baton.Option(nil), transportOpts...), opts...)...)
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
