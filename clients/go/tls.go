package baton

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// TLSConfig names the PEM files of a TLS connection to batond (started with
// --tls_cert and --tls_key, and --client_ca for mutual TLS). The zero value
// is TLS that trusts the system's root CAs and presents no certificate.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CA certificates that sign the server's
	// certificate. Empty: the system's root CAs.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate (chain) and its
	// unencrypted private key, presented to a server that asks for one
	// (batond --client_ca). Give both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name the server's certificate must be valid for.
	// Empty: the host of the address dialed (an IP address must then be an
	// IP SAN of the certificate).
	ServerName string
}

// ClientConfig reads the files and returns the crypto/tls configuration that
// WithTLS dials with. An error names the file it is about.
func (t TLSConfig) ClientConfig() (*tls.Config, error) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("TLS: a client certificate needs both CertFile and KeyFile (give both or neither)")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file %s: %w", t.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		for _, f := range []string{t.CertFile, t.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("TLS client certificate: %w", err)
			}
		}
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// WithTLS makes Dial connect over TLS configured from PEM files: the server's
// certificate is checked against t.CAFile (the system's roots when empty) and
// t.ServerName (the dialed host when empty); t.CertFile and t.KeyFile, when
// given, are presented for mutual TLS. Dial reads the files and returns an
// error matching ErrInvalidArgument, naming the file, when one is missing or
// not what it should be. A server whose certificate does not verify is
// unreachable: Dial fails with an error matching ErrUnavailable.
//
//	c, err := baton.Dial(ctx, "db1:7411", baton.WithTLS(baton.TLSConfig{
//		CAFile:   "ca.pem",
//		CertFile: "client.pem", KeyFile: "client-key.pem", // for batond --client_ca
//	}))
//
// WithTLS and WithTransportCredentials replace each other: the last given
// applies.
func WithTLS(t TLSConfig) Option {
	return func(c *config) {
		tc := t
		c.tls = &tc
		c.creds = nil
	}
}

// transportCreds are the credentials Dial uses: those of WithTLS (reading
// its files), of WithTransportCredentials, or nil for plaintext.
func (cfg *config) transportCreds(addr string) (credentials.TransportCredentials, error) {
	if cfg.tls == nil {
		return cfg.creds, nil
	}
	tc, err := cfg.tls.ClientConfig()
	if err != nil {
		return nil, &Error{Op: "Dial", Name: addr, st: status.New(codes.InvalidArgument, err.Error()), cause: err}
	}
	return credentials.NewTLS(tc), nil
}
