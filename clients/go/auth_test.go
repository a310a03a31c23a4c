package baton_test

import (
	"errors"
	"testing"

	baton "github.com/baton/baton/clients/go"
	"github.com/baton/baton/clients/go/internal/testcerts"
	"github.com/baton/baton/clients/go/internal/testserver"
)

// startPolicyServer starts a batond of the test's own with TLS and
// principals: tokens maps principals to tokens, policy is the policy file's
// lines. It returns the options that reach it over TLS (no token).
func startPolicyServer(t *testing.T, tokens map[string]string, policy ...string) (string, []baton.Option) {
	t.Helper()
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := testserver.AuthFlags(dir, tokens, policy...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testserver.Start(append([]string{"--durability", "none",
		"--tls_cert", certs.ServerCert, "--tls_key", certs.ServerKey}, auth...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv.Addr, []baton.Option{baton.WithTLS(baton.TLSConfig{CAFile: certs.CA, ServerName: "localhost"})}
}

// A batond with principals refuses, through the client's errors: a call
// without a token or with a token it does not know (ErrUnauthenticated),
// and a principal whose roles do not grant the access on the name
// (ErrPermissionDenied): read only on billing/ cannot take a lock or a
// permit there, write on billing/ can there but not elsewhere.
func TestPrincipalsAreEnforced(t *testing.T) {
	tokens := map[string]string{"reader": testserver.NewToken(), "writer": testserver.NewToken(),
		"boss": testserver.NewToken()}
	a, tlsOpts := startPolicyServer(t, tokens,
		"role billing-read read billing/",
		"role billing-rw write billing/",
		"role everything admin *",
		"grant reader billing-read",
		"grant writer billing-rw",
		"grant boss everything")
	as := func(opts ...baton.Option) *baton.Client {
		t.Helper()
		return dialAddr(t, a, append(append([]baton.Option{}, tlsOpts...), opts...)...)
	}
	ctx := ctxT(t)
	billing := "billing/" + name(t, "lock")
	other := "other/" + name(t, "lock")

	t.Run("NoToken", func(t *testing.T) {
		_, err := as().Mutex(billing).TryLock(ctx)
		t.Logf("no token: %v", err)
		if !errors.Is(err, baton.ErrUnauthenticated) || errors.Is(err, baton.ErrPermissionDenied) {
			t.Fatalf("err %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("WrongToken", func(t *testing.T) {
		_, err := as(baton.WithToken("not-"+tokens["boss"])).Semaphore(billing+"-sem", 2).TryAcquire(ctx, 1)
		t.Logf("wrong token: %v", err)
		if !errors.Is(err, baton.ErrUnauthenticated) {
			t.Fatalf("err %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("ReadOnlyCannotAcquire", func(t *testing.T) {
		c := as(baton.WithToken(tokens["reader"]))
		_, err := c.Mutex(billing).Lock(ctx)
		t.Logf("read only, Lock: %v", err)
		var be *baton.Error
		if !errors.Is(err, baton.ErrPermissionDenied) || errors.Is(err, baton.ErrUnauthenticated) ||
			!errors.As(err, &be) || be.Op != "Locks.Acquire" || be.Name != billing {
			t.Fatalf("Lock: err %v, want ErrPermissionDenied from Locks.Acquire %s", err, billing)
		}
		if _, err := c.Semaphore(billing+"-sem", 2).Acquire(ctx, 1); !errors.Is(err, baton.ErrPermissionDenied) {
			t.Fatalf("Semaphore.Acquire: err %v, want ErrPermissionDenied", err)
		}
		if _, err := c.Mutex(other).Lock(ctx); !errors.Is(err, baton.ErrPermissionDenied) {
			t.Fatalf("Lock outside billing/: err %v, want ErrPermissionDenied", err)
		}
		// Reading is what the role grants: not found, not refused.
		if _, err := c.Describe(ctx, billing); err != nil && !errors.Is(err, baton.ErrNotFound) {
			t.Fatalf("Describe: err %v, want nil or ErrNotFound", err)
		}
	})
	t.Run("WriteOnItsPrefixOnly", func(t *testing.T) {
		c := as(baton.WithToken(tokens["writer"]))
		held, err := c.Mutex(billing).Lock(ctx)
		if err != nil {
			t.Fatalf("Lock on billing/: %v", err)
		}
		if err := held.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Mutex(other).Lock(ctx); !errors.Is(err, baton.ErrPermissionDenied) {
			t.Fatalf("Lock outside billing/: err %v, want ErrPermissionDenied", err)
		}
	})
	t.Run("AdminEverywhere", func(t *testing.T) {
		c := as(baton.WithToken(tokens["boss"]))
		for _, n := range []string{billing, other} {
			held, err := c.Mutex(n).Lock(ctx)
			if err != nil {
				t.Fatalf("Lock %s: %v", n, err)
			}
			if err := held.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}
