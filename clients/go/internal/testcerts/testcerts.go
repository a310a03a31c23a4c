// Package testcerts makes the certificates of the TLS tests with
// crypto/x509: a CA, a server certificate for 127.0.0.1 and localhost, a
// client certificate signed by the CA, and another CA with a client
// certificate of its own, written as PEM files (keys unencrypted, PKCS #8).
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton/baton/clients/go/internal/testserver"
)

// Set is the paths of the PEM files Write made.
type Set struct {
	CA                              string // the CA that signs the server and client certificates
	ServerCert, ServerKey           string // SANs: IP 127.0.0.1, DNS localhost
	ClientCert, ClientKey           string // signed by CA
	OtherCA                         string // a CA that signed neither
	OtherClientCert, OtherClientKey string // signed by OtherCA
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Write makes the certificates in dir (which must exist).
func Write(dir string) (*Set, error) {
	s := &Set{
		CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey: filepath.Join(dir, "server-key.pem"), ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey: filepath.Join(dir, "client-key.pem"), OtherCA: filepath.Join(dir, "other-ca.pem"),
		OtherClientCert: filepath.Join(dir, "other-client.pem"), OtherClientKey: filepath.Join(dir, "other-client-key.pem"),
	}
	ca, err := newCA("baton test CA", s.CA)
	if err != nil {
		return nil, err
	}
	other, err := newCA("baton other test CA", s.OtherCA)
	if err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "batond test server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := leaf(ca, server, s.ServerCert, s.ServerKey); err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "baton test client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := leaf(ca, client, s.ClientCert, s.ClientKey); err != nil {
		return nil, err
	}
	otherClient := *client
	otherClient.Subject.CommonName = "baton client of another CA"
	if err := leaf(other, &otherClient, s.OtherClientCert, s.OtherClientKey); err != nil {
		return nil, err
	}
	return s, nil
}

func newCA(cn, certFile string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	stamp(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return &issuer{cert, key}, nil
}

func leaf(ca *issuer, tmpl *x509.Certificate, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	stamp(tmpl)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", pkcs8)
}

// stamp gives a certificate a serial number and a validity of a day around
// now (an hour back, for clocks a little apart).
func stamp(c *x509.Certificate) {
	c.SerialNumber, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	c.NotBefore = time.Now().Add(-time.Hour)
	c.NotAfter = time.Now().Add(24 * time.Hour)
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// StartServer writes a fresh Set into a temporary directory of t and starts
// a batond serving TLS with it (mutual TLS when mutual: client certificates
// of the Set's CA required), stopped at the end of the test. It returns the
// Set and the server's address.
func StartServer(t testing.TB, mutual bool) (*Set, string) {
	t.Helper()
	certs, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--durability", "none", "--tls_cert", certs.ServerCert, "--tls_key", certs.ServerKey}
	if mutual {
		flags = append(flags, "--client_ca", certs.CA)
	}
	srv, err := testserver.Start(flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return certs, srv.Addr
}
