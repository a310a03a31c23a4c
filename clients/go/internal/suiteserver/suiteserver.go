// Package suiteserver starts the batond that a test package shares, and
// tells the package's clients how to reach it. By default the server is
// plaintext and takes no credentials (testserver.Start). With
// BATON_TEST_SECURE=1 in the environment it is started with TLS and
// principals instead:
//
//   - a CA and a server certificate for 127.0.0.1 and localhost
//     (internal/testcerts, crypto/x509), passed as --tls_cert/--tls_key;
//   - a tokens file with one principal, "suite", and a random token, and a
//     policy granting it admin on every name, passed as
//     --auth_tokens/--auth_policy;
//
// and every client must dial it with Options() (the library) or Env() (the
// baton CLI): TLS with the CA and server name localhost, and the token.
// Everything lives in a temporary directory removed by Stop.
package suiteserver

import (
	"os"

	baton "github.com/baton/baton/clients/go"
	"github.com/baton/baton/clients/go/internal/testcerts"
	"github.com/baton/baton/clients/go/internal/testserver"
)

// EnvVar is the switch: "1" runs the suites against a TLS + token server.
const EnvVar = "BATON_TEST_SECURE"

// Secure reports whether the suites run against a TLS + token server.
func Secure() bool { return os.Getenv(EnvVar) == "1" }

// Principal is the one principal of a secure server; its token is
// Creds.Token.
const Principal = "suite"

// ServerName is the name the clients verify the server's certificate for
// (the certificate also holds 127.0.0.1).
const ServerName = "localhost"

// Creds are what a secure server is started with and its clients need.
type Creds struct {
	Dir   string         // the temporary directory holding the files
	Certs *testcerts.Set // CA, server certificate and key (and client certificates, unused)
	Token string         // the bearer token of Principal
	// AuthFlags are batond's --auth_policy and --auth_tokens flags.
	AuthFlags []string
}

// NewCreds makes a fresh set of credentials in a new temporary directory.
func NewCreds() (*Creds, error) {
	dir, err := os.MkdirTemp("", "baton-go-test-secure-")
	if err != nil {
		return nil, err
	}
	certs, err := testcerts.Write(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c := &Creds{Dir: dir, Certs: certs, Token: testserver.NewToken()}
	c.AuthFlags, err = testserver.AuthFlags(dir, map[string]string{Principal: c.Token},
		"role all admin *", "grant "+Principal+" all")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// ServerFlags are the batond flags of a secure server: TLS and principals.
func (c *Creds) ServerFlags() []string {
	return append([]string{"--tls_cert", c.Certs.ServerCert, "--tls_key", c.Certs.ServerKey}, c.AuthFlags...)
}

// TLS is the client's TLS configuration: the CA, and ServerName.
func (c *Creds) TLS() baton.TLSConfig {
	return baton.TLSConfig{CAFile: c.Certs.CA, ServerName: ServerName}
}

// Server is the shared batond.
type Server struct {
	*testserver.Server
	// Creds are nil for a plaintext server without principals.
	Creds *Creds
	// owned: Stop removes Creds.Dir.
	owned bool
}

// Start starts the shared server with extra batond flags: plaintext, or
// with TLS and principals when Secure().
func Start(extra ...string) (*Server, error) {
	if !Secure() {
		return StartWith(nil, extra...)
	}
	c, err := NewCreds()
	if err != nil {
		return nil, err
	}
	s, err := StartWith(c, extra...)
	if err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	s.owned = true
	return s, nil
}

// StartWith starts a server with the credentials c (nil: plaintext, no
// principals), e.g. a second server that the clients of the first reach
// the same way. Stop leaves c's files alone.
func StartWith(c *Creds, extra ...string) (*Server, error) {
	flags := extra
	if c != nil {
		flags = append(c.ServerFlags(), extra...)
	}
	srv, err := testserver.Start(flags...)
	if err != nil {
		return nil, err
	}
	return &Server{Server: srv, Creds: c}, nil
}

// Another starts a further server with the same credentials as s (and
// extra flags), stopped by the caller.
func (s *Server) Another(extra ...string) (*Server, error) { return StartWith(s.Creds, extra...) }

// Stop stops the server and removes the credentials Start made.
func (s *Server) Stop() {
	s.Server.Stop()
	if s.owned {
		_ = os.RemoveAll(s.Creds.Dir)
	}
}

// Options are the Dial options of a client of the server: none, or TLS and
// the token.
func (s *Server) Options() []baton.Option { return s.Creds.Options() }

// Options are the Dial options of a client of a server started with c:
// none if c is nil, else TLS and the token.
func (c *Creds) Options() []baton.Option {
	if c == nil {
		return nil
	}
	return []baton.Option{baton.WithTLS(c.TLS()), baton.WithToken(c.Token)}
}

// Env is the environment of a baton command that reaches the server: none,
// or BATON_CA, BATON_SERVER_NAME and BATON_TOKEN.
func (s *Server) Env() []string {
	if s.Creds == nil {
		return nil
	}
	return []string{"BATON_CA=" + s.Creds.Certs.CA, "BATON_SERVER_NAME=" + ServerName, "BATON_TOKEN=" + s.Creds.Token}
}
