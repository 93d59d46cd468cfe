// Package netguardtest helps tests of code behind netguard, which can only
// use loopback: it serves on a chosen loopback address and classifies
// some loopback addresses as public, so that the public→private rule can
// be exercised. Tests only; it imports netguard and the standard library.
package netguardtest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/packreg/packreg/internal/netguard"
)

// ServeOn starts h on ip (127.0.0.1, 127.0.0.2...) until the test ends; it
// skips the test where that address cannot be listened on.
func ServeOn(t testing.TB, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// PublicAt is the real classification, except that the addresses given
// are public.
func PublicAt(public ...string) netguard.Classifier {
	set := map[netip.Addr]bool{}
	for _, p := range public {
		set[netip.MustParseAddr(p)] = true
	}
	return func(a netip.Addr) netguard.Class {
		if set[a] {
			return netguard.Public
		}
		return netguard.Classify(a)
	}
}
