package main

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
)

// certReloader serves tls.cert and tls.key, re-read when either file's
// content changes (read at each handshake: two small files, and no
// reliance on modification times, which some filesystems keep coarse). A pair that fails to load keeps the previous one in service
// and is logged; the first load must succeed (a startup error).
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	stamp string
	cert  *tls.Certificate
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// maxPEM bounds what a certificate or key file may hold.
const maxPEM = 1 << 20

// stampOf names the files' current content.
func (r *certReloader) stampOf() (string, error) {
	h := sha256.New()
	for _, f := range []string{r.certFile, r.keyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if len(b) > maxPEM {
			return "", fmt.Errorf("%s is larger than %d bytes", f, maxPEM)
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return string(h.Sum(nil)), nil
}

// reload loads the pair if it changed since the last load.
func (r *certReloader) reload() error {
	stamp, err := r.stampOf()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if stamp == r.stamp && r.cert != nil {
		return nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if err := r.reload(); err != nil {
		r.log.Warn("tls certificate not reloaded; serving the previous one", "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}

// tlsConfig is the server's TLS configuration over r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// hsts tells browsers to come back over HTTPS only, on every answer
// served over TLS (the dashboard's pages and the rest alike).
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, req)
	})
}
