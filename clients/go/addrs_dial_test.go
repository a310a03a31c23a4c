package baton_test

import (
	"context"
	"net"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

// Given several addresses (a cluster's nodes), the client uses one that
// answers: here the first is closed, the second is the suite's server.
func TestSeveralAddressesUseOneThatAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, target := range []string{closed + "," + addr, "ipv4:" + closed + "," + addr} {
		c := dialAddr(t, target, suite.Options()...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		held := must[*baton.HeldLock](t)(c.Mutex(name(t, "lock")).Lock(ctx))
		if err := held.Unlock(ctx); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		cancel()
	}
}
