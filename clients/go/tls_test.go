package baton_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
	"github.com/baton/baton/clients/go/internal/testcerts"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// dialFails dials a that must not be reached, with a short dial timeout,
// and returns the error.
func dialFails(t *testing.T, a string, opts ...baton.Option) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := baton.Dial(ctx, a, append([]baton.Option{baton.WithDialTimeout(time.Second)}, opts...)...)
	if err == nil {
		c.Close()
		t.Fatalf("Dial(%s) succeeded", a)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("Dial(%s) took %v to fail", a, d)
	}
	return err
}

// lockUnlock takes and releases a lock over c.
func lockUnlock(t *testing.T, c *baton.Client) {
	t.Helper()
	ctx := ctxT(t)
	held, err := c.Mutex(name(t, "lock")).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held.Fence() == 0 {
		t.Fatal("no fencing token")
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	certs, a := testcerts.StartServer(t, false)

	t.Run("CAFile", func(t *testing.T) {
		lockUnlock(t, dialAddr(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.CA})))
	})
	t.Run("ServerNameLocalhost", func(t *testing.T) {
		lockUnlock(t, dialAddr(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.CA, ServerName: "localhost"})))
	})
	t.Run("WrongServerName", func(t *testing.T) {
		err := dialFails(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.CA, ServerName: "db.example"}))
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
	t.Run("PlaintextFails", func(t *testing.T) {
		err := dialFails(t, a)
		t.Logf("plaintext: %v", err)
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
	t.Run("WrongCAFails", func(t *testing.T) {
		err := dialFails(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.OtherCA}))
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
		t.Logf("wrong CA: %v", err)
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("err %q does not say the certificate is the trouble", err)
		}
	})
	t.Run("SystemRootsFail", func(t *testing.T) {
		err := dialFails(t, a, baton.WithTLS(baton.TLSConfig{}))
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	certs, a := testcerts.StartServer(t, true)

	t.Run("ClientCert", func(t *testing.T) {
		lockUnlock(t, dialAddr(t, a, baton.WithTLS(baton.TLSConfig{
			CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey})))
	})
	t.Run("NoClientCertFails", func(t *testing.T) {
		err := dialFails(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.CA}))
		t.Logf("no client certificate: %v", err)
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
	t.Run("ClientCertOfAnotherCAFails", func(t *testing.T) {
		err := dialFails(t, a, baton.WithTLS(baton.TLSConfig{
			CAFile: certs.CA, CertFile: certs.OtherClientCert, KeyFile: certs.OtherClientKey}))
		if !errors.Is(err, baton.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}

// Files that are missing or wrong fail Dial at once with an error naming
// them, without reaching for the server (addr, the suite's server).
func TestTLSConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		what string
		cfg  baton.TLSConfig
		want []string
	}{
		{"missing CA", baton.TLSConfig{CAFile: missing}, []string{"CA file", missing}},
		{"junk CA", baton.TLSConfig{CAFile: junk}, []string{"CA file", junk, "no PEM certificate"}},
		{"cert without key", baton.TLSConfig{CertFile: certs.ClientCert}, []string{"both"}},
		{"key without cert", baton.TLSConfig{KeyFile: certs.ClientKey}, []string{"both"}},
		{"missing key", baton.TLSConfig{CertFile: certs.ClientCert, KeyFile: missing}, []string{missing}},
		{"junk cert", baton.TLSConfig{CertFile: junk, KeyFile: certs.ClientKey}, []string{junk}},
		{"key of another cert", baton.TLSConfig{CertFile: certs.ClientCert, KeyFile: certs.ServerKey},
			[]string{certs.ClientCert, certs.ServerKey}},
	} {
		start := time.Now()
		c, err := baton.Dial(context.Background(), addr, baton.WithTLS(tc.cfg))
		if err == nil {
			c.Close()
			t.Errorf("%s: Dial succeeded", tc.what)
			continue
		}
		if !errors.Is(err, baton.ErrInvalidArgument) {
			t.Errorf("%s: err %v, want ErrInvalidArgument", tc.what, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err %q lacks %q", tc.what, err, w)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tc.what, d)
		}
	}
	_, err = baton.Dial(context.Background(), addr, baton.WithTLS(baton.TLSConfig{CAFile: missing}))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing CA: err %v does not match fs.ErrNotExist", err)
	}
	// The last of WithTLS and WithTransportCredentials applies: here the
	// suite's server is reached with the credentials given last: insecure
	// ones, or gRPC's TLS credentials with its CA (and its token) under
	// BATON_TEST_SECURE=1.
	last := insecure.NewCredentials()
	var token []baton.Option
	if suite.Creds != nil {
		cfg, err := suite.Creds.TLS().ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		last, token = credentials.NewTLS(cfg), []baton.Option{baton.WithToken(suite.Creds.Token)}
	}
	c := dialAddr(t, addr, append([]baton.Option{baton.WithTLS(baton.TLSConfig{CAFile: missing}),
		baton.WithTransportCredentials(last)}, token...)...)
	lockUnlock(t, c)
	tc, err := (baton.TLSConfig{CAFile: certs.CA, ServerName: "localhost"}).ClientConfig()
	if err != nil || tc.RootCAs == nil || tc.ServerName != "localhost" || len(tc.Certificates) != 0 {
		t.Fatalf("ClientConfig: %+v, %v", tc, err)
	}
}
