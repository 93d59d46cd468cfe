package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundlesSigningKey: bundles.signing_key is read when the config is
// validated, so a missing or unusable key stops the server before it
// starts, naming the key; a good one is taken.
func TestBundlesSigningKey(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	good := filepath.Join(dir, "good.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	public := filepath.Join(dir, "public.pem")
	os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	weak, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	weakDER, _ := x509.MarshalECPrivateKey(weak)
	p224 := filepath.Join(dir, "p224.pem")
	os.WriteFile(p224, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: weakDER}), 0o600)

	if c, err := parse(t, "bundles: {signing_key: "+good+"}\n"); err != nil || c.Bundles.SigningKey != good {
		t.Fatalf("a good key: %v", err)
	}
	for _, tc := range []struct{ key, want string }{
		{filepath.Join(dir, "missing.pem"), "no such file"},
		{public, "not a PEM private key"},
		{p224, "want P-256 or P-384"},
	} {
		_, err := parse(t, "bundles: {signing_key: "+tc.key+"}\n")
		if err == nil || !strings.Contains(err.Error(), "bundles.signing_key") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("signing_key %s: %v, want it refused (%s)", filepath.Base(tc.key), err, tc.want)
		}
	}
	if _, err := parse(t, "bundles: {max_import_size: 0}\n"); err == nil || !strings.Contains(err.Error(), "max_import_size") {
		t.Errorf("max_import_size 0: %v", err)
	}
}

// TestExportKeepsADirectory: export to a directory that is not empty is a
// usage error before the server is asked, and leaves the directory as it
// was (a failed export removes what it wrote, so it may only write to a
// directory of its own).
func TestExportKeepsADirectory(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.txt")
	os.WriteFile(keep, []byte("mine"), 0o600)
	// A server that would answer with a bundle.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Write(make([]byte, 1024))
	}))
	defer srv.Close()
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"export", "-o", dir + "/", "--server", srv.URL}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "not empty") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("the directory's file: %q %v", b, err)
	}
}
