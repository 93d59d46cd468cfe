package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/auth"
)

// TestStartupRules: credentials cross the network only over TLS (or
// with --insecure-http), and beyond loopback without auth still needs
// --allow-anonymous.
func TestStartupRules(t *testing.T) {
	withAuth := func(c *Config) { c.Auth.Htpasswd = "/etc/packreg/htpasswd" }
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" valid
	}{
		{"auth on loopback without tls", func(c *Config) { withAuth(c) }, ""},
		{"auth beyond loopback without tls", func(c *Config) { withAuth(c); c.Addr = "0.0.0.0:5000" }, "tls is not configured"},
		{"auth beyond loopback, insecure-http", func(c *Config) { withAuth(c); c.Addr = "0.0.0.0:5000"; c.InsecureHTTP = true }, ""},
		{"auth beyond loopback with tls", func(c *Config) {
			withAuth(c)
			c.Addr = ":5000"
			c.TLS = TLSConfig{Cert: "/c.pem", Key: "/k.pem"}
		}, ""},
		{"no auth beyond loopback", func(c *Config) { c.Addr = "0.0.0.0:5000" }, "no authentication is configured"},
		{"no auth beyond loopback, allow-anonymous", func(c *Config) { c.Addr = "0.0.0.0:5000"; c.AllowAnonymous = true }, ""},
		{"tls cert without key", func(c *Config) { c.TLS.Cert = "/c.pem" }, "tls.cert and tls.key go together"},
		{"token ttl too long", func(c *Config) { withAuth(c); c.Auth.Token.TTL = 2 * time.Hour }, "auth.token.ttl"},
		{"admins without users", func(c *Config) { c.Auth.Admins = []string{"root"} }, "without auth.htpasswd"},
		{"bad rule action", func(c *Config) {
			withAuth(c)
			c.Auth.Rules = []auth.Rule{{Repositories: []string{"**"}, Users: []string{"*"}, Actions: []string{"write"}}}
		}, `unknown action "write"`},
	} {
		c := DefaultConfig()
		c.Data = t.TempDir()
		tc.change(&c)
		if err := c.Resolve(); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestStartupRefusesOtherHashes: an htpasswd file with a non-bcrypt line
// stops the start, naming the line and never its hash.
func TestStartupRefusesOtherHashes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(p, []byte("alice:$apr1$salt$hashhashhashhashhashhash\n"), 0o600)
	c := DefaultConfig()
	c.Data = t.TempDir()
	c.Auth.Htpasswd = p
	_, err := newGate(c, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "bcrypt") || strings.Contains(err.Error(), "hashhash") {
		t.Fatalf("start: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 with serial and its key.
func selfSigned(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	// The key first: a handshake between the two writes sees a pair that
	// does not match, which the reloader refuses (keeping the old one).
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSReload: replacing the certificate files changes the certificate
// of the next handshake, without a restart; a broken pair keeps the old.
func TestTLSReload(t *testing.T) {
	addr, cert, key := tlsReloading(t)
	serial := func() int64 {
		s, err := serialAt(addr)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	selfSigned(t, cert, key, 2)
	if s := serial(); s != 2 {
		t.Fatalf("after replacing the files: serial %d, want 2", s)
	}
	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	if s := serial(); s != 2 {
		t.Fatalf("after breaking the files: serial %d, want the previous 2", s)
	}
	if _, err := newCertReloader(cert, key, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a broken pair starts")
	}
}
