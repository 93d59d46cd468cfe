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

// TestTLSReloadUnderHandshakes: handshakes at once (each one re-reads the
// files) while the certificate is replaced several times, the key and
// the certificate written one after the other: every handshake gets a
// whole certificate that was in the files, and once the last is written
// every handshake gets it.
func TestTLSReloadUnderHandshakes(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, cert, key, 1)
	r, err := newCertReloader(cert, key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
	const last = 4
	var stop atomic.Bool
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Errorf("handshake: %v", err)
					return
				}
				s := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
				c.Close()
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
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s != last {
		t.Fatalf("after the last replacement: serial %d, want %d", s, last)
	}
}
