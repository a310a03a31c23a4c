package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton/baton/clients/go/internal/authtest"
	"github.com/baton/baton/clients/go/internal/testcerts"
	"github.com/baton/baton/clients/go/internal/testserver"
)

const healthCheck = "/grpc.health.v1.Health/Check"

// lastAuth is the authorization header of the last call of method.
func lastAuth(t *testing.T, srv *authtest.Server, method string) string {
	t.Helper()
	got := srv.Auth(method)
	if len(got) == 0 {
		t.Fatalf("no %s call arrived", method)
	}
	return got[len(got)-1]
}

// --auth-token, --auth-token-file, $BATON_TOKEN and $BATON_TOKEN_FILE send
// the token as "authorization: Bearer TOKEN", on unary and streaming calls.
func TestTokenFlags(t *testing.T) {
	ownServers(t)
	srv := authtest.Start(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		env  []string
		args []string
		want string
	}{
		{"--auth-token", nil, []string{"--auth-token", "fl4g"}, "Bearer fl4g"},
		{"--auth-token-file", nil, []string{"--auth-token-file", file}, "Bearer from-file"},
		{"$BATON_TOKEN", []string{"BATON_TOKEN=fr0m-env"}, nil, "Bearer fr0m-env"},
		{"$BATON_TOKEN_FILE", []string{"BATON_TOKEN_FILE=" + file}, nil, "Bearer from-file"},
		{"a flag replaces both variables", []string{"BATON_TOKEN=fr0m-env", "BATON_TOKEN_FILE=" + file},
			[]string{"--auth-token", "fl4g"}, "Bearer fl4g"},
		{"none", nil, nil, ""},
	} {
		args := append(append([]string{"--addr", srv.Addr}, tc.args...), "health")
		if r := runEnv(t, tc.env, args...); r.code != 0 || r.stdout != "SERVING\n" {
			t.Fatalf("%s: health: exit %d, %q %q", tc.what, r.code, r.stdout, r.stderr)
		}
		if got := lastAuth(t, srv, healthCheck); got != tc.want {
			t.Errorf("%s: health arrived with authorization %q, want %q", tc.what, got, tc.want)
		}
		// A streaming call: event watch (Events/Watch); the fake server
		// answers with one empty change and ends the stream.
		args = append(append([]string{"--addr", srv.Addr}, tc.args...), "event", "watch", "x", "--count", "1")
		runEnv(t, tc.env, args...)
		if got := lastAuth(t, srv, "/baton.v1.Events/Watch"); got != tc.want {
			t.Errorf("%s: event watch arrived with authorization %q, want %q", tc.what, got, tc.want)
		}
	}
}

// Bad tokens, files that are not there or empty, a token in plaintext to a
// non-loopback address: bad usage (exit 2) at once, naming the file and
// never printing the token.
func TestTokenFlagErrors(t *testing.T) {
	ownServers(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("s3kr1t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		env  []string
		args []string
		want []string
	}{
		{"missing file", nil, []string{"--auth-token-file", missing}, []string{missing}},
		{"missing file in $BATON_TOKEN_FILE", []string{"BATON_TOKEN_FILE=" + missing}, nil, []string{missing}},
		{"empty file", nil, []string{"--auth-token-file", empty}, []string{empty, "empty"}},
		{"empty token", nil, []string{"--auth-token", ""}, []string{"empty"}},
		{"token with a space", nil, []string{"--auth-token", "s3k r1t"}, []string{"whitespace"}},
		{"both flags", nil, []string{"--auth-token", "s3kr1t", "--auth-token-file", file}, []string{"not both"}},
		{"both variables", []string{"BATON_TOKEN=s3kr1t", "BATON_TOKEN_FILE=" + file}, nil, []string{"both"}},
		{"plaintext beyond loopback", nil, []string{"--addr", "192.0.2.1:7411", "--auth-token", "s3kr1t"},
			[]string{"plaintext", "192.0.2.1:7411", "--insecure-token"}},
		{"plaintext beyond loopback, from $BATON_TOKEN_FILE", []string{"BATON_TOKEN_FILE=" + file},
			[]string{"--addr", "db1.example:7411"}, []string{"plaintext", "db1.example:7411"}},
	} {
		r := runEnv(t, tc.env, append(append([]string{"--dial-timeout", "1s"}, tc.args...), "health")...)
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr %q", tc.what, r.code, r.stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", tc.what, r.stderr, w)
			}
		}
		if strings.Contains(r.stderr, "r1t") {
			t.Errorf("%s: stderr %q shows the token", tc.what, r.stderr)
		}
	}
	// --insecure-token lets it go: the address is then merely unreachable.
	r := runEnv(t, nil, "--addr", "192.0.2.1:7411", "--dial-timeout", "1s", "--auth-token", "s3kr1t", "--insecure-token", "health")
	if r.code != 6 {
		t.Errorf("--insecure-token: exit %d, want 6 (unreachable); stderr %q", r.code, r.stderr)
	}
}

// A command baton runs gets the token in effect, as it gets the TLS
// settings: one variable set, the other emptied. (The suite's server takes
// any token, or under BATON_TEST_SECURE=1 only the suite's: then both the
// flag and the file give that one.)
func TestTokenReachesTheCommand(t *testing.T) {
	token, fileToken := "fl4g", "from-file"
	if suite.Creds != nil {
		token, fileToken = suite.Creds.Token, suite.Creds.Token
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(fileToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	show := []string{"--", "sh", "-c", `echo "token=$BATON_TOKEN file=$BATON_TOKEN_FILE"`}
	r := runEnv(t, []string{"BATON_TOKEN_FILE=" + file}, append([]string{"--auth-token", token, "lock", name(t, "lock")}, show...)...)
	if r.code != 0 || r.stdout != "token="+token+" file=\n" {
		t.Fatalf("lock --auth-token: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, []string{"BATON_TOKEN=fr0m-env"}, append([]string{"--auth-token-file", file, "lock", name(t, "lock")}, show...)...)
	if r.code != 0 || r.stdout != "token= file="+file+"\n" {
		t.Fatalf("lock --auth-token-file: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// The token flags are global: every command's help lists them, and never
// shows a token.
func TestHelpListsTheTokenFlags(t *testing.T) {
	t.Setenv("BATON_TOKEN", "fr0m-env")
	out, _, code := runIn("health", "--help")
	if code != 0 {
		t.Fatalf("health --help: exit %d", code)
	}
	for _, want := range []string{"--auth-token string", "$BATON_TOKEN", "--auth-token-file string", "$BATON_TOKEN_FILE",
		"--insecure-token", "$BATON_INSECURE_TOKEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("'baton health --help' lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fr0m-env") {
		t.Errorf("'baton health --help' shows $BATON_TOKEN:\n%s", out)
	}
}

// A batond with principals refuses through the CLI too: no token or an
// unknown one is unauthenticated, a read-only principal may describe but
// not lock (exit 1, the code named); a writer locks.
func TestPrincipalsAreEnforcedThroughTheCLI(t *testing.T) {
	ownServers(t)
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	reader, writer := testserver.NewToken(), testserver.NewToken()
	auth, err := testserver.AuthFlags(dir, map[string]string{"reader": reader, "writer": writer},
		"role ro read billing/", "role rw write billing/", "grant reader ro", "grant writer rw")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testserver.Start(append([]string{"--durability", "none",
		"--tls_cert", certs.ServerCert, "--tls_key", certs.ServerKey}, auth...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	n := "billing/" + name(t, "lock")
	lock := []string{"lock", n, "--ttl", "1s"}
	for _, tc := range []struct {
		what string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"no token", nil, lock, 1, "unauthenticated"},
		{"unknown token", []string{"BATON_TOKEN=not-" + writer}, lock, 1, "unauthenticated"},
		{"read only: lock", []string{"BATON_TOKEN=" + reader}, lock, 1, "permission denied"},
		{"read only: describe", []string{"BATON_TOKEN=" + reader}, []string{"describe", n}, 4, "not found"},
		{"write", []string{"BATON_TOKEN=" + writer}, lock, 0, ""},
	} {
		r := runEnv(t, append([]string{"BATON_CA=" + certs.CA}, tc.env...), append([]string{"--addr", srv.Addr}, tc.args...)...)
		t.Logf("%s: exit %d, stderr %q", tc.what, r.code, r.stderr)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.what, r.code, r.stderr, tc.code, tc.msg)
		}
		if strings.Contains(r.stderr, reader) || strings.Contains(r.stderr, writer) {
			t.Errorf("%s: stderr %q shows a token", tc.what, r.stderr)
		}
	}
}
