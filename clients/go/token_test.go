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
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
	"github.com/baton/baton/clients/go/internal/authtest"
	"github.com/baton/baton/clients/go/internal/testcerts"
	"google.golang.org/grpc/credentials/insecure"
)

// wantAuth checks that every call of method arrived, at least once, with
// the authorization header want.
func wantAuth(t *testing.T, srv *authtest.Server, method, want string) {
	t.Helper()
	got := srv.Auth(method)
	if len(got) == 0 {
		t.Fatalf("%s: no call arrived (methods called: %v)", method, srv.Methods())
	}
	for _, g := range got {
		if g != want {
			t.Fatalf("%s arrived with authorization %q, want %q", method, g, want)
		}
	}
}

// The token is sent on every call: the health check of Dial, a unary call,
// the bidirectional streams (Stream/Connect, Sessions/KeepAliveStream) and a
// server-streaming call (Events/Watch).
func TestTokenIsSentOnEveryCall(t *testing.T) {
	srv := authtest.Start(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("  file-token.42\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		opts []baton.Option
		want string
	}{
		{"WithToken", []baton.Option{baton.WithToken("s3cret-T0ken")}, "Bearer s3cret-T0ken"},
		{"WithTokenFile", []baton.Option{baton.WithTokenFile(tokenFile)}, "Bearer file-token.42"},
		{"last of the two", []baton.Option{baton.WithTokenFile(tokenFile), baton.WithToken("second")}, "Bearer second"},
		{"no token", nil, ""},
	} {
		t.Run(tc.what, func(t *testing.T) {
			srv := authtest.Start(t)
			c := dialAddr(t, srv.Addr, tc.opts...)
			ctx := ctxT(t)
			if _, err := c.Raw().Admin.Describe(ctx, &batonv1.DescribeRequest{Name: "x"}); err != nil {
				t.Fatal(err)
			}
			st, err := c.Raw().Stream.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&batonv1.StreamRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			ka, err := c.Raw().Sessions.KeepAliveStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := ka.Send(&batonv1.KeepAliveRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := ka.Recv(); err != nil {
				t.Fatal(err)
			}
			w, err := c.Raw().Events.Watch(ctx, &batonv1.WatchEventRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Recv(); err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"/grpc.health.v1.Health/Check", batonv1.Admin_Describe_FullMethodName,
				batonv1.Stream_Connect_FullMethodName, batonv1.Sessions_KeepAliveStream_FullMethodName,
				batonv1.Events_Watch_FullMethodName} {
				wantAuth(t, srv, m, tc.want)
			}
		})
	}
	// localhost is loopback too.
	_, port, _ := strings.Cut(srv.Addr, ":")
	c := dialAddr(t, "localhost:"+port, baton.WithToken("t"))
	if _, err := c.Raw().Admin.Describe(ctxT(t), &batonv1.DescribeRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	wantAuth(t, srv, batonv1.Admin_Describe_FullMethodName, "Bearer t")
}

// A token is never sent in plaintext to an address that is not loopback:
// Dial refuses at once, before connecting, unless TLS or WithInsecureToken.
func TestTokenNeedsTLSBeyondLoopback(t *testing.T) {
	quick := func(a string, opts ...baton.Option) error {
		t.Helper()
		start := time.Now()
		c, err := baton.Dial(context.Background(), a, append(opts, baton.WithoutConnectCheck())...)
		if err == nil {
			c.Close()
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Dial(%s) took %v", a, d)
		}
		return err
	}
	for _, a := range []string{"db1:7411", "192.0.2.1:7411", "[2001:db8::1]:7411", "10.0.0.1",
		"dns:///db1:7411", "dns://127.0.0.1/localhost:7411", "localhost.example.com:7411", "128.0.0.1:7411"} {
		for _, creds := range [][]baton.Option{nil, {baton.WithTransportCredentials(insecure.NewCredentials())}} {
			err := quick(a, append(creds, baton.WithToken("t"))...)
			if !errors.Is(err, baton.ErrInvalidArgument) || !errors.Is(err, baton.ErrPlaintextToken) ||
				!strings.Contains(err.Error(), "plaintext") || !strings.Contains(err.Error(), a) {
				t.Errorf("token in plaintext to %s: err %v, want ErrInvalidArgument refusing plaintext", a, err)
			}
		}
		// TLS, or an explicit opt-out, allow it.
		if err := quick(a, baton.WithToken("t"), baton.WithTLS(baton.TLSConfig{})); err != nil {
			t.Errorf("token over TLS to %s: %v", a, err)
		}
		if err := quick(a, baton.WithToken("t"), baton.WithInsecureToken()); err != nil {
			t.Errorf("token with WithInsecureToken to %s: %v", a, err)
		}
		if err := quick(a); err != nil {
			t.Errorf("no token to %s: %v", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1:7411", "127.8.9.10:7411", "[::1]:7411", "localhost:7411", "LOCALHOST:7411",
		"localhost", "passthrough:///127.0.0.1:7411", "dns:///localhost:7411", "unix:/tmp/batond.sock", "unix:///tmp/batond.sock"} {
		if err := quick(a, baton.WithToken("t")); err != nil {
			t.Errorf("token in plaintext to loopback %s: %v", a, err)
		}
	}
}

// A token over TLS to a server on loopback arrives too (the credentials do
// not stand in the way of TLS).
func TestTokenOverTLS(t *testing.T) {
	certs, a := testcerts.StartServer(t, false)
	lockUnlock(t, dialAddr(t, a, baton.WithTLS(baton.TLSConfig{CAFile: certs.CA}), baton.WithToken("t")))
}

// Bad tokens and token files fail Dial at once with ErrInvalidArgument,
// naming the file and never repeating the token.
func TestTokenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	empty := write("empty", "")
	blank := write("blank", " \n\t\n")
	twoWords := write("two-words", "sek r3t\n")
	twoLines := write("two-lines", "sek\nr3t\n")
	unreadable := write("unreadable", "sekr3t\n")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	_, canRead := os.ReadFile(unreadable) // root reads it anyway
	for _, tc := range []struct {
		what string
		opt  baton.Option
		want []string
	}{
		{"missing file", baton.WithTokenFile(missing), []string{"token file", missing, "no such file"}},
		{"directory", baton.WithTokenFile(dir), []string{"token file", dir}},
		{"empty file", baton.WithTokenFile(empty), []string{"token file", empty, "empty"}},
		{"blank file", baton.WithTokenFile(blank), []string{"token file", blank, "empty"}},
		{"two words in the file", baton.WithTokenFile(twoWords), []string{"token file", twoWords, "whitespace"}},
		{"two lines in the file", baton.WithTokenFile(twoLines), []string{"token file", twoLines, "whitespace"}},
		{"unreadable file", baton.WithTokenFile(unreadable), []string{"token file", unreadable, "permission denied"}},
		{"empty token", baton.WithToken(""), []string{"token", "empty"}},
		{"token with a space", baton.WithToken("sek r3t"), []string{"token", "whitespace"}},
		{"token with a newline", baton.WithToken("sekr3t\n"), []string{"token", "whitespace"}},
		{"token with a tab", baton.WithToken("sek\tr3t"), []string{"token", "whitespace"}},
		{"token not ASCII", baton.WithToken("sékr3t"), []string{"token", "ASCII"}},
	} {
		if tc.what == "unreadable file" && canRead == nil {
			t.Logf("%s: skipped (running as root)", tc.what)
			continue
		}
		start := time.Now()
		c, err := baton.Dial(context.Background(), addr, tc.opt)
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
		if strings.Contains(err.Error(), "r3t") {
			t.Errorf("%s: err %q repeats the token", tc.what, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tc.what, d)
		}
	}
	if _, err := baton.Dial(context.Background(), addr, baton.WithTokenFile(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing token file: err %v does not match fs.ErrNotExist", err)
	}
}
