package registry

import (
	"net/http"
	"testing"
)

func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:5000", true},
		{"127.200.0.9:1", true},
		{"[::1]:5000", true},
		{"[::ffff:127.0.0.1]:5000", true},
		{"192.0.2.1:1234", false},
		{"10.0.0.1:5000", false},
		{"[2001:db8::1]:5000", false},
		{"[::ffff:10.0.0.1]:5000", false},
		{"127.0.0.1", false}, // no port: not what net/http sets, so not trusted
		{"", false},
		{"@", false}, // a unix socket's peer
		{"localhost:5000", false},
	} {
		if got := sameHost(&http.Request{RemoteAddr: c.remote}); got != c.want {
			t.Errorf("sameHost(%q) = %v, want %v", c.remote, got, c.want)
		}
	}
}
