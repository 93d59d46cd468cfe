package main

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// tlsReloading serves TLS handshakes on a loopback address through a
// certReloader of a certificate (serial 1) and key it wrote, each
// connection on its own goroutine, until the test ends.
func tlsReloading(t *testing.T) (addr, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, cert, key, 1)
	r, err := newCertReloader(cert, key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), cert, key
}

// serialAt is the serial number of the certificate a handshake with addr
// gets.
func serialAt(addr string) (int64, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestTLSReloadUnderHandshakes: handshakes at once (each one re-reads the
// files) while the certificate is replaced several times, the key and
// the certificate written one after the other: every handshake gets a
// whole certificate that was in the files, and once the last is written
// every handshake gets it.
func TestTLSReloadUnderHandshakes(t *testing.T) {
	addr, cert, key := tlsReloading(t)
	const last = 4
	var stop atomic.Bool
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				s, err := serialAt(addr)
				if err != nil {
					t.Errorf("handshake: %v", err)
					return
				}
				if s < 1 || s > last {
					t.Errorf("serial %d, never written", s)
				}
				done.Add(1)
			}
		})
	}
	for serial := int64(2); serial <= last; serial++ {
		for n := done.Load(); done.Load() < n+3 && !t.Failed(); {
			runtime.Gosched()
		}
		selfSigned(t, cert, key, serial)
	}
	stop.Store(true)
	wg.Wait()
	if s, err := serialAt(addr); err != nil || s != last {
		t.Fatalf("after the last replacement: serial %d (%v), want %d", s, err, last)
	}
}
