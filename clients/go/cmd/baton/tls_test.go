package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton/baton/clients/go/internal/testcerts"
)

// runFails runs baton, which must exit code within a bounded time, and
// returns its stderr.
func runFails(t *testing.T, code int, args ...string) string {
	t.Helper()
	start := time.Now()
	r := runB(t, "", args...)
	if r.code != code {
		t.Fatalf("baton %v: exit %d, want %d; stdout %q, stderr %q", args, r.code, code, r.stdout, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("baton %v took %v", args, d)
	}
	return r.stderr
}

func TestTLSFlags(t *testing.T) {
	ownServers(t)
	certs, a := testcerts.StartServer(t, false)
	if out := ok(t, "", "--addr", a, "--ca", certs.CA, "health"); out != "SERVING\n" {
		t.Fatalf("health over TLS printed %q", out)
	}
	// Every command dials the same way: a lock taken and released.
	n := name(t, "lock")
	if out := ok(t, "", "--addr", a, "--ca", certs.CA, "--server-name", "localhost", "lock", n, "--", "sh", "-c", "echo $BATON_LOCK"); out != n+"\n" {
		t.Fatalf("lock over TLS printed %q", out)
	}
	// A command baton runs gets the TLS settings with BATON_ADDR: a baton it
	// runs reaches the same server.
	if out := ok(t, "", "--addr", a, "--ca", certs.CA, "lock", name(t, "lock"), "--", binry, "health"); out != "SERVING\n" {
		t.Fatalf("baton health run by baton lock printed %q", out)
	}
	// The environment variable does what the flag does.
	r := runEnv(t, []string{"BATON_CA=" + certs.CA}, "--addr", a, "health")
	if r.code != 0 || r.stdout != "SERVING\n" {
		t.Fatalf("health with $BATON_CA: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// Plaintext to a TLS server, a CA that did not sign the server's
	// certificate, the system's roots (--tls): unreachable, exit 6.
	runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "health")
	if e := runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "--ca", certs.OtherCA, "health"); !strings.Contains(e, "certificate") {
		t.Errorf("wrong CA: stderr %q does not name the certificate", e)
	}
	runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "--tls", "health")
	// (Over TLS, not plaintext: the handshake, not the server's preface, failed.)
	if r := runEnv(t, []string{"BATON_TLS=1"}, "--addr", a, "--dial-timeout", "1s", "health"); r.code != 6 ||
		strings.Contains(r.stderr, "preface") {
		t.Fatalf("$BATON_TLS=1 (the system's roots): exit %d, stderr %q", r.code, r.stderr)
	}
	runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "--ca", certs.CA, "--server-name", "db.example", "describe", n)
	// Files that are not there, or not both: bad usage, naming the file.
	missing := filepath.Join(t.TempDir(), "missing.pem")
	if e := runFails(t, 2, "--addr", a, "--ca", missing, "health"); !strings.Contains(e, missing) {
		t.Errorf("missing CA: stderr %q", e)
	}
	if e := runFails(t, 2, "--addr", a, "--ca", certs.CA, "--cert", certs.ClientCert, "health"); !strings.Contains(e, "both") {
		t.Errorf("--cert without --key: stderr %q", e)
	}
}

func TestMutualTLSFlags(t *testing.T) {
	ownServers(t)
	certs, a := testcerts.StartServer(t, true)
	if out := ok(t, "", "--addr", a, "--ca", certs.CA, "--cert", certs.ClientCert, "--key", certs.ClientKey, "health"); out != "SERVING\n" {
		t.Fatalf("health over mutual TLS printed %q", out)
	}
	r := runEnv(t, []string{"BATON_CA=" + certs.CA, "BATON_CERT=" + certs.ClientCert, "BATON_KEY=" + certs.ClientKey},
		"--addr", a, "lock", name(t, "lock"), "--", "true")
	if r.code != 0 {
		t.Fatalf("lock with $BATON_CA/CERT/KEY: exit %d, %q", r.code, r.stderr)
	}
	runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "--ca", certs.CA, "health")
	runFails(t, 6, "--addr", a, "--dial-timeout", "1s", "--ca", certs.CA,
		"--cert", certs.OtherClientCert, "--key", certs.OtherClientKey, "health")
}

// runEnv is runB with extra environment variables.
func runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := batonCmd(t, args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("baton %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}
