package baton

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// WithToken makes Dial send the bearer token on every call, unary and
// streaming, as the gRPC metadata "authorization: Bearer <token>".
//
// The token is only sent over TLS (WithTLS, or WithTransportCredentials
// with credentials other than insecure ones), or in plaintext to a loopback
// address (127.0.0.0/8, ::1, localhost, unix:). Dial refuses, with an error
// matching ErrInvalidArgument, a token with plaintext to any other address,
// unless WithInsecureToken. An empty token, or one holding whitespace or a
// control character, is an error matching ErrInvalidArgument too.
//
// WithToken and WithTokenFile replace each other: the last given applies.
// They configure Dial; a connection given to New carries its own
// credentials (grpc.WithPerRPCCredentials).
func WithToken(token string) Option {
	return func(c *config) { c.token, c.tokenFile, c.tokenSet, c.tokenFromFile = token, "", true, false }
}

// WithTokenFile is WithToken with the token read by Dial from the file at
// path, without the whitespace around it (a trailing newline). A file that
// cannot be read, or is empty, fails Dial with an error matching
// ErrInvalidArgument that names the file (and fs.ErrNotExist for a missing
// file).
func WithTokenFile(path string) Option {
	return func(c *config) { c.token, c.tokenFile, c.tokenSet, c.tokenFromFile = "", path, true, true }
}

// WithInsecureToken lets Dial send the token of WithToken or WithTokenFile
// in plaintext to an address that is not loopback, where anyone on the path
// can read it: only for a batond started with --allow_plaintext on a network
// that is already protected (a VPN, a service mesh's mutual TLS).
func WithInsecureToken() Option { return func(c *config) { c.insecureToken = true } }

// ErrPlaintextToken is what Dial's error matches when it refuses to send a
// token in plaintext to an address that is not loopback (see WithToken). The
// error matches ErrInvalidArgument too.
var ErrPlaintextToken = errors.New("refusing to send the token in plaintext")

// tokenCreds are the per-RPC credentials carrying the bearer token.
type tokenCreds struct {
	header     string // "Bearer <token>"
	requireTLS bool
}

func (t tokenCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return map[string]string{"authorization": t.header}, nil
}

func (t tokenCreds) RequireTransportSecurity() bool { return t.requireTLS }

// perRPCCreds are the credentials of WithToken or WithTokenFile (nil
// without a token) for a connection to addr whose transport is creds (nil:
// plaintext).
func (cfg *config) perRPCCreds(addr string, creds credentials.TransportCredentials) (credentials.PerRPCCredentials, error) {
	if !cfg.tokenSet {
		return nil, nil
	}
	invalid := func(err error) error {
		return &Error{Op: "Dial", Name: addr, st: status.New(codes.InvalidArgument, err.Error()), cause: err}
	}
	token, what := cfg.token, "token"
	if cfg.tokenFromFile {
		if cfg.tokenFile == "" {
			return nil, invalid(errors.New("token file: no file name given"))
		}
		what = "token file " + cfg.tokenFile
		b, err := os.ReadFile(cfg.tokenFile)
		if err != nil {
			return nil, invalid(fmt.Errorf("%s: %w", what, err))
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, invalid(fmt.Errorf("%s: empty (no token in it)", what))
		}
	}
	if err := checkToken(token); err != nil {
		return nil, invalid(fmt.Errorf("%s: %w", what, err))
	}
	loopback := isLoopback(addr)
	plaintext := creds == nil || creds.Info().SecurityProtocol == "insecure"
	if plaintext && !loopback && !cfg.insecureToken {
		return nil, invalid(fmt.Errorf("%w to %s, which is not a loopback address: "+
			"use TLS (WithTLS), or WithInsecureToken for a batond --allow_plaintext on a protected network", ErrPlaintextToken, addr))
	}
	return tokenCreds{header: "Bearer " + token, requireTLS: !loopback && !cfg.insecureToken}, nil
}

// checkToken refuses an empty token and one that cannot be a header value
// as is: whitespace, control characters, non-ASCII. The error does not
// repeat the token.
func checkToken(token string) error {
	if token == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("byte %d of %d is whitespace, a control character or not ASCII: a token is one word of printable ASCII", i+1, len(token))
		}
	}
	return nil
}

// isLoopback reports whether a gRPC target names this machine only: a
// unix socket, or a host that is localhost or a loopback IP (127.0.0.0/8,
// ::1), alone or after passthrough:/// or dns:/// (without a DNS server).
func isLoopback(target string) bool {
	if addrs := splitAddrs(target); addrs != nil {
		for _, a := range addrs {
			if !isLoopback(a) {
				return false
			}
		}
		return true
	}
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	for _, scheme := range []string{"passthrough:///", "dns:///"} {
		if rest, ok := strings.CutPrefix(target, scheme); ok {
			target = rest
			break
		}
	}
	if strings.Contains(target, "/") {
		return false // another scheme, or dns:// with a DNS server
	}
	host := target
	if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
